"""``sitewatch bench ingest --steps``: the CPU cost of each ingest step, without servers."""

from __future__ import annotations

import json

from click.testing import CliRunner

from sitewatch.devtools.bench.ingest import bench_ingest
from sitewatch.devtools.bench.ingest_steps import STEPS, step_costs


def test_every_step_costs_something_and_little() -> None:
    costs = step_costs(samples_per_message=20, messages=50, rounds=1)
    assert list(costs) == list(STEPS)
    for name, value in costs.items():
        assert 0 < value < 1000, (name, value)  # microseconds per reading


def test_steps_option_prints_json_and_a_table() -> None:
    done = CliRunner().invoke(bench_ingest, ["--steps", "--json", "--samples-per-message", "10"])
    assert done.exit_code == 0, done.output
    assert set(json.loads(done.output)["us_per_reading"]) == set(STEPS)
    table = CliRunner().invoke(bench_ingest, ["--steps", "--samples-per-message", "10"])
    assert table.exit_code == 0, table.output
    assert "line protocol" in table.output and "合计" in table.output


def test_the_garbage_collector_is_left_as_it_was() -> None:
    import gc

    before = gc.get_threshold()
    step_costs(samples_per_message=5, messages=5, rounds=1)
    assert gc.get_threshold() == before
