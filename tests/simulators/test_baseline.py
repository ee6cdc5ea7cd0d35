"""The trivial-threshold baseline: the obvious rules miss subtle faults and trip over harmless anomalies."""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner

from sitewatch.cli import main
from sitewatch.simulators.backfill import BackfillResult
from sitewatch.simulators.baseline import RULES, evaluate
from sitewatch.simulators.faults import BANDS, FAULT_TYPES

Month = tuple[BackfillResult, pd.DataFrame, pd.DataFrame]

# Faults whose subtle (and here moderate) sizes the obvious rule cannot reach, whatever the draw.
OUT_OF_REACH = {
    "bearing_wear": ("subtle",), "video_loss": ("subtle",), "leak": ("subtle",),
    "lamp_failure": ("subtle", "moderate"), "day_burning": ("subtle", "moderate"),
    "camera_tamper": ("subtle", "moderate"), "stuck_session": ("subtle", "moderate"), "battery_low": ("subtle",),
}  # fmt: skip


def test_the_obvious_rules_miss_small_faults_and_raise_false_alarms(month: Month) -> None:
    result, _, _ = month
    scores = {s.fault: s for s in evaluate(result.out_dir)}
    assert set(scores) == set(FAULT_TYPES) == {r.fault for r in RULES}
    for fault, score in scores.items():
        for band in BANDS:
            labelled = sum(1 for lab in result.labels if lab.fault == fault and lab.band == band.value)
            assert score.labels[band.value] == labelled and 0 <= score.found[band.value] <= labelled
    for fault, bands in OUT_OF_REACH.items():
        for band in bands:
            assert scores[fault].found[band] == 0, (fault, band)
    for fault in ("entrapment", "lamp_failure", "day_burning", "stuck_register", "meter_tamper"):
        assert scores[fault].found["clear"] == scores[fault].labels["clear"], fault  # the big ones still show
    blips = scores["camera_offline"].false_alarms
    assert blips.get("harmless:camera_blip", 0) > 0  # a camera missing a few checks looks offline
    found = {b.value: sum(s.found[b.value] for s in scores.values()) for b in BANDS}
    labelled = {b.value: sum(s.labels[b.value] for s in scores.values()) for b in BANDS}
    assert found["subtle"] / labelled["subtle"] < 0.5 < found["clear"] / labelled["clear"]


def test_the_baseline_command(month: Month) -> None:
    result, _, _ = month
    runner = CliRunner()
    table = runner.invoke(main, ["--lang", "en", "simulate", "baseline", "--history", str(result.out_dir)],
                          env={"COLUMNS": "250"})  # fmt: skip
    assert table.exit_code == 0, table.output
    assert all(name in table.output for name in FAULT_TYPES) and "lamp on, power below 5 W" in table.output
    zh = runner.invoke(main, ["--lang", "zh-CN", "simulate", "baseline", "--history", str(result.out_dir)],
                       env={"COLUMNS": "250"})  # fmt: skip
    assert zh.exit_code == 0 and "误报" in zh.output
    data = json.loads(runner.invoke(main, ["simulate", "baseline", "--history", str(result.out_dir), "--json"]).output)
    assert [d["fault"] for d in data] == [r.fault for r in RULES]
    assert set(data[0]["recall"]) == {"subtle", "moderate", "clear"} and "false_alarms_total" in data[0]
