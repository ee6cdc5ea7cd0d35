"""``sitewatch bench gateway`` runs end to end on a small load and prints consistent figures."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sitewatch.cli import main

pytestmark = pytest.mark.integration


def test_bench_prints_three_rates_and_ratios() -> None:
    result = CliRunner().invoke(
        main, ["--lang", "en", "bench", "gateway", "--readings", "6000", "--repeats", "1", "--devices", "10", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["readings"] == 6000
    for kind in ("raw", "live", "replay"):
        assert len(figures["repeats"][kind]) == 1 and figures["median"][kind] > 0
    assert "replay / site live rate" in result.output
    assert ("live readings during replay" in result.output) == (
        figures["live_latency_during_replay"]["batches"] > 0
    )
    assert set(figures["live_latency_during_replay"]) == {"p50_ms", "p99_ms", "max_ms", "batches"}
    zh = CliRunner().invoke(main, ["--lang", "zh_CN", "bench", "gateway", "--readings", "1200", "--repeats", "1", "--devices", "5"])
    assert zh.exit_code == 0 and "补发速率" in zh.output
