"""``sitewatch bench analytics`` on a small city: every figure printed and consistent."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sitewatch.cli import main
from sitewatch.simulators.city import generate_city

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_analytics_on_a_small_city_prints_consistent_figures() -> None:
    result = CliRunner().invoke(
        main, ["--lang", "en", "bench", "analytics", "--compounds", "3", "--minutes", "2", "--pace", "30", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    record, processing, broker = figures["record"], figures["processing"], figures["broker"]
    assert record["compounds"] == 3 and record["devices"] > 100 and record["live_readings_per_s"] > 0
    assert processing["readings"] == record["readings"] and processing["engine_errors"] == 0
    assert processing["refused"] == {}  # the gateways' own stream passes the contract whole
    assert processing["engine_devices"] >= record["devices"]  # every device (and gateway) has state
    assert figures["factor"] == pytest.approx(processing["readings_per_s"] / record["live_readings_per_s"])
    assert processing["state_bytes_per_device"] > 0 and processing["snapshot_bytes"] > 0
    # the injected entrapments: event-driven findings, through the broker as in memory
    assert processing["findings"] >= 3 and broker["findings_published"] >= 3
    assert broker["findings_received"] == broker["findings_published"] and broker["engine_errors"] == 0
    assert broker["latency_ms"]["count"] >= 3 and broker["latency_ms"]["p99"] >= broker["latency_ms"]["p50"]
    assert broker["worker_devices"] >= record["devices"]  # restored from the checkpoint of the first report
    assert 0 < broker["worker_peak_rss_bytes"] < figures["targets"]["rss_bytes"]
    assert broker["checkpoints"] >= 1 and broker["restore_s"] > 0


def test_bench_analytics_scorer_only_times_the_scorer_runs() -> None:
    result = CliRunner().invoke(
        main, ["--lang", "en", "bench", "analytics", "--compounds", "2", "--score-compounds", "1", "--scorer-only", "2"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["city_compounds"] == 2 and len(figures["compounds"]) == 1 and figures["readings"] > 0
    # the first of the city's compound codes, as the ledger reader gives them
    assert figures["compounds"] == sorted(c["code"] for c in generate_city(2, 1)["compounds"])[:1]
    first, second = figures["runs"]
    assert first["points"] > 0 and second["points"] > 0 and first["findings"] == second["findings"]
    assert first["wall_s"] > 0 and first["cpu_s"] > 0 and first["cpu_s_per_compound"] == first["cpu_s"]
