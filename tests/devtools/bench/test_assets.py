"""``sitewatch bench assets`` imports the synthetic city's ledger and prints consistent figures."""

from __future__ import annotations

import json

from click.testing import CliRunner

from sitewatch.devtools.bench.assets import bench_assets
from sitewatch.simulators.city import generate_city


def test_bench_assets_imports_the_synthetic_city_and_times_the_api() -> None:
    result = CliRunner().invoke(bench_assets, ["--compounds", "2", "--seed", "3", "--requests", "60", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    city = generate_city(2, 3)
    assert figures["assets"] == len(city["assets"])
    assert figures["import_rows"] == sum(len(rows) for rows in city.values())
    for name, requests in (("lookup", 60), ("list", 50), ("batch_lookup_1000", 20)):
        assert figures[name]["requests"] == requests
        assert 0 < figures[name]["p50_ms"] <= figures[name]["p99_ms"]
