"""The evaluation on a small backfill: one compound, four days, every fault type, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sitewatch.analytics.evaluate import episodes, score
from sitewatch.cli import main
from sitewatch.contract import DeviceKind, Finding, FindingState, Severity

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("backfill")
    runner = CliRunner()
    city = runner.invoke(main, ["--lang", "en", "simulate", "city", "--compounds", "1", "--seed", "3",
                                "--out", str(root / "city.xlsx")])  # fmt: skip
    assert city.exit_code == 0, city.output
    out = runner.invoke(main, ["--lang", "en", "simulate", "backfill", "--ledger", str(root / "city.xlsx"),
                               "--days", "4", "--start", "2026-03-02", "--seed", "7", "--faults", "all",
                               "--out", str(root / "history")])  # fmt: skip
    assert out.exit_code == 0, out.output
    return root / "history"


@pytest.fixture(scope="module")
def result(history: Path) -> dict:
    out = CliRunner().invoke(
        main, ["--lang", "en", "analytics", "evaluate", "--history", str(history), "--json"]
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_json_has_the_issue_shape(result: dict) -> None:
    assert set(result) >= {"faults", "overall", "generic"}
    assert result["overall"]["false_findings_per_100_device_months"] is not None
    for fault, row in result["faults"].items():
        assert set(row) >= {"precision", "recall", "recall_by_band", "ttd_median_s", "ttd_p95_s"}, fault
        assert set(row["recall_by_band"]) == {"subtle", "moderate", "clear"}


def test_quality_floor(result: dict) -> None:
    """Floors well under what the rules reach on this history: a regression falls through them."""
    faults = result["faults"]
    assert len(faults) == 20
    labelled = sum(r["labelled"] for r in faults.values())
    detected = sum(r["detected"] for r in faults.values())
    assert labelled >= 40
    assert detected / labelled >= 0.7  # 43 of 58 with the rules of 2026-12 (40 before)
    for fault in ("entrapment", "reverse_flow", "camera_offline", "charger_faulted", "lamp_failure", "video_loss"):
        assert (faults[fault]["recall"] or 0) >= 0.75, fault
    clear = [
        r["recall_by_band"]["clear"] for r in faults.values() if r["recall_by_band"]["clear"] is not None
    ]
    assert sum(clear) / len(clear) >= 0.7
    assert result["overall"]["false_findings_per_100_device_months"] <= 15


def test_table_in_english_and_chinese(history: Path, result: dict) -> None:
    """The table through the CLI in Chinese, and the English one made from the same figures (one
    replay less: the table is the JSON's figures, rendered)."""
    from rich.console import Console

    from sitewatch.analytics.cli_evaluate import _table
    from sitewatch.i18n import using

    wide = {"COLUMNS": "250"}  # the table's 16 columns
    zh = CliRunner().invoke(
        main, ["--lang", "zh_CN", "analytics", "evaluate", "--history", str(history)], env=wide
    )
    assert zh.exit_code == 0 and "每百设备月误报" in zh.output and "entrapment" in zh.output
    console = Console(width=250, record=True)
    with using("en"), console.capture() as captured:
        _table(console, result)
    assert "false findings per 100 device-months" in captured.get() and "entrapment" in captured.get()


def test_bad_directories_and_rules_are_clear_errors(tmp_path: Path, history: Path) -> None:
    out = CliRunner().invoke(main, ["--lang", "en", "analytics", "evaluate", "--history", str(tmp_path)])
    assert out.exit_code != 0 and "readings.parquet is missing" in out.output
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: [{name: x, kind: camera, type: threshold, metric: colour, above: 1}]")
    out = CliRunner().invoke(main, ["--lang", "en", "analytics", "evaluate", "--history", str(history),
                                    "--rules", str(rules)])  # fmt: skip
    assert out.exit_code != 0 and "rule 'x': metric: 'colour'" in out.output


def test_an_unlabelled_finding_is_false(history: Path) -> None:
    """Scoring alone: a finding on a device that has no label counts against precision."""
    labels = pd.read_parquet(history / "labels.parquet")
    devices = pd.read_parquet(history / "devices.parquet")
    clean = sorted(set(devices[devices["kind"] == "camera"]["device"]) - set(labels["device"]))[0]
    label = labels[labels["fault"] == "camera_tamper"].iloc[0]

    def finding(device: str, start: int, fault: str) -> Finding:
        return Finding(id=f"rule:t:{device}:{start}", compound=device[:11], device=device, kind=DeviceKind.CAMERA,
                       source="rule:t", fault=fault, severity=Severity.WARNING, state=FindingState.ACTIVE,
                       started_ms=start, ts_ms=start, message="m")  # fmt: skip

    hit = finding(str(label["device"]), int(label["start_ms"]) + 1000, "camera_tamper")
    false = finding(clean, int(label["start_ms"]), "camera_tamper")
    end = int(label["end_ms"]) + 1
    assert len(episodes([hit, false], end)) == 2
    row = score(history, [hit, false], int(label["start_ms"]) - 86_400_000, end)["faults"]["camera_tamper"]
    assert row["false_findings"] == 1 and row["precision"] == 0.5 and row["detected"] >= 1
    assert row["ttd_median_s"] == 1.0


def test_the_rules_file_setting_is_used(
    history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "mine.yaml"
    rules.write_text("rules: [{name: y, kind: camera, type: no_data, interval: 60s, intervals: 0}]")
    monkeypatch.setenv("SITEWATCH_ANALYTICS__RULES_FILE", str(rules))
    out = CliRunner().invoke(main, ["--lang", "en", "analytics", "evaluate", "--history", str(history)])
    assert out.exit_code != 0 and "mine.yaml: rule 'y': intervals" in out.output


def test_detector_findings_join_through_the_hook(history: Path) -> None:
    from sitewatch.analytics.evaluate import evaluate
    from sitewatch.analytics.rules import parse_rules

    label = pd.read_parquet(history / "labels.parquet").query("fault == 'leak' and observable").iloc[0]
    found = Finding(id="detector:night:x", compound=str(label["compound"]), device=str(label["device"]),
                    kind=DeviceKind.WATER_METER, source="detector:night", fault="leak", severity=Severity.WARNING,
                    state=FindingState.ACTIVE, started_ms=int(label["start_ms"]), ts_ms=int(label["start_ms"]),
                    message="m")  # fmt: skip
    nothing = parse_rules("rules: []", "empty.yaml")
    result = evaluate(history, nothing, extra=lambda _h: [found])
    assert result["faults"]["leak"]["detected"] == 1 and result["faults"]["leak"]["false_findings"] == 0
    assert sum(r["detected"] for r in result["faults"].values()) == 1


def test_one_pass_gives_each_detector_run_what_its_own_read_gives(history: Path) -> None:
    from sitewatch.analytics.detectors.findings import DETECTOR_RUNS, read_parquet, read_runs

    compound = str(pd.read_parquet(history / "devices.parquet")["compound"].iloc[0])
    for compounds in (None, [compound], ["no-such-compound"]):
        frames = list(read_runs(history, DETECTOR_RUNS, compounds))
        assert len(frames) == len(DETECTOR_RUNS)
        for run, frame in zip(DETECTOR_RUNS, frames, strict=True):
            own = read_parquet(history, run.kind.value, run.metrics, compounds)
            if own.empty:
                assert frame.empty, run.name
                continue
            pd.testing.assert_frame_equal(frame, own, check_dtype=True, obj=run.name)


def test_generic_findings_are_scored_against_their_own_history_labels(history: Path, tmp_path: Path) -> None:
    """A generic finding (no fault type) on a labelled device is true; scored again against a copy of
    the history whose labels are gone, in the same process, the same finding is false."""
    import shutil

    labels = pd.read_parquet(history / "labels.parquet")
    label = labels.iloc[0]
    device, start = str(label["device"]), int(label["start_ms"])
    kinds = pd.read_parquet(history / "devices.parquet").set_index("device")["kind"]
    kind = DeviceKind(str(kinds[device]))
    generic = Finding(id=f"detector:pca_t2q:{device}:{start}", compound=device[:11], device=device, kind=kind,
                      source="detector:pca_t2q", fault=None, severity=Severity.WARNING,
                      state=FindingState.ACTIVE, started_ms=start, ts_ms=start, message="m")  # fmt: skip
    end = int(label["end_ms"]) + 1
    first = score(history, [generic], start - 86_400_000, end)["generic"]
    assert (first["true_findings"], first["false_findings"]) == (1, 0)
    bare = tmp_path / "bare"
    shutil.copytree(history, bare)
    labels.iloc[0:0].to_parquet(bare / "labels.parquet")
    again = score(bare, [generic], start - 86_400_000, end)["generic"]
    assert (again["true_findings"], again["false_findings"]) == (0, 1)
