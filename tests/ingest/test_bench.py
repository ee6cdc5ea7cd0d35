"""``sitewatch bench ingest`` runs end to end on a small load and prints every figure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_ingest_small_run_prints_the_figures() -> None:
    args = [
        sys.executable, "-m", "sitewatch", "bench", "ingest", "--store", "embedded", "--repeats", "1",
        "--duration", "1", "--warmup", "0", "--backlog", "150000", "--workers", "2", "--publishers", "1",
        "--json",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)["embedded"]
    for name in ("capacity", "end_to_end", "direct", "latency_p50_ms", "latency_p99_ms", "peak_rss_mb"):
        assert figures[name] > 0, (name, figures)
    assert figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    (run,) = figures["runs"]  # the limit is the faster direct write: one writer, or one per worker
    assert 0 < figures["ratio"] == round(run["end_to_end"] / run["direct"], 3)
    assert run["direct_one_writer"] > 0 and run["direct_writers"] > 0
    assert run["direct"] == max(run["direct_one_writer"], run["direct_writers"])
    assert figures["end_to_end_target"] == 100_000 and isinstance(figures["end_to_end_met"], bool)
