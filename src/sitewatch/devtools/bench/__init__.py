"""``sitewatch bench``: the benchmarks behind every performance figure in the README."""

from __future__ import annotations

import click

from ...cli_support import LazyGroup

BENCHMARKS = {
    "simulate": "sitewatch.devtools.bench.simulate:bench_simulate",
    "gateway": "sitewatch.devtools.bench.gateway:bench_gateway",
    "ingest": "sitewatch.devtools.bench.ingest:bench_ingest",
    "assets": "sitewatch.devtools.bench.assets:bench_assets",
    "store": "sitewatch.devtools.bench.store:bench_store",
    "modbus": "sitewatch.devtools.bench.modbus:bench_modbus",
    "ocpp": "sitewatch.devtools.bench.ocpp:bench_ocpp",
    "alerts": "sitewatch.devtools.bench.alerts:bench_alerts",
    "analytics": "sitewatch.devtools.bench.analytics:bench_analytics",
    "console": "sitewatch.devtools.bench.console:bench_console",
}


@click.group(cls=LazyGroup, lazy=BENCHMARKS)
def bench() -> None:
    """Measure a component and print its figure beside the limit it is judged against."""
