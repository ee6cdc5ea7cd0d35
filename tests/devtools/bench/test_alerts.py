"""``sitewatch bench alerts`` runs every part and prints its figures beside their limits (small sizes)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from sitewatch.cli import main
from sitewatch.devtools.bench.alerts import percentile

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_alerts_prints_each_figure_and_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(
        main,
        ["--log-level", "WARNING", "bench", "alerts", "--episodes", "3", "--storm-devices", "60",
         "--dedup-producers", "2", "--dedup-rate", "500", "--dedup-seconds", "2", "--dedup-fingerprints", "50",
         "--dedup-store-findings", "1000", "--database", "sqlite", "--database", "postgres"],
        catch_exceptions=False,
    )  # fmt: skip
    out = result.output
    assert result.exit_code == 0, out
    assert re.search(r"entrapment, gateway sample → webhook receipt\s+│ p50 \d+ ms, p99 \d+ ms", out), out
    assert re.search(r"storm: notifications while the gateway of \d+ devices was down\s+│ 1 ", out), out
    assert re.search(r"storm: device alerts notified after it came back\s+│ 0 ", out), out
    for db in ("SQLite", r"PostgreSQL \(private, fsync off\)"):
        assert re.search(rf"dedup \({db}\): open alerts / distinct fingerprints, every run\s+│ 50/50 50/50 ", out), out
        assert re.search(rf"dedup \({db}\): alerts listed twice in notifications\s+│ 0 ", out), out
        assert re.search(rf"dedup \({db}\): apply path alone .*│ [\d,]+/s \([\d,]+\)\s+│ 500/s: met", out), out
        # the producers publish like analytics: batches of what each made within 50 ms
        assert re.search(rf"dedup \({db}\): findings applied by one alerting process over MQTT", out), out
    batched = r"run 1/1: over MQTT [\d,]+/s applied \([\d,]+/s\s+offered, \d+ findings a\s+message, \d+ a\s+transaction\)"
    assert re.search(batched, out), out


def test_percentile_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (
        percentile(values, 0.5) in (50.0, 51.0)
        and percentile(values, 0.99) == 99.0
        and percentile([3.0], 0.99) == 3.0
    )
