"""``sitewatch bench``: the benchmarks behind every performance figure in the README."""

from __future__ import annotations

import click

from .cli_support import LazyGroup

BENCHMARKS = {
    "simulate": "sitewatch.simulators.bench:bench_simulate",
    "gateway": "sitewatch.gateway.bench:bench_gateway",
    "ingest": "sitewatch.ingest.bench:bench_ingest",
    "assets": "sitewatch.assets.bench:bench_assets",
    "store": "sitewatch.store.bench:bench_store",
    "modbus": "sitewatch.gateway.connectors.modbus_bench:bench_modbus",
    "ocpp": "sitewatch.gateway.connectors.ocpp_bench:bench_ocpp",
    "alerts": "sitewatch.devtools.alerts_bench:bench_alerts",
}


@click.group(cls=LazyGroup, lazy=BENCHMARKS)
def bench() -> None:
    """Measure a component and print its figure beside the limit it is judged against."""
