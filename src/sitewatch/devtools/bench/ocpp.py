"""``sitewatch bench ocpp``: MeterValues calls per second the OCPP central system answers.

Simulated charge points (the ``ocpp`` library's client side over websockets) send MeterValues
back to back, each waiting for its answer as OCPP requires; the bench prints the calls answered
per second and the round-trip percentiles. Charge points and central system share one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ...contract import Event, Sample
from ...gateway.connectors.base import ConnectorContext
from ...gateway.connectors.ocpp import OcppConnector
from ...i18n import _


class CountingSink:
    """Counts readings."""

    def __init__(self) -> None:
        self.readings = 0

    def samples(self, samples: Sequence[Sample]) -> None:
        self.readings += sum(len(s.values) for s in samples)

    def events(self, events: Sequence[Event]) -> None:
        return None


async def _run(chargers: int, duration: float) -> dict[str, float]:
    from ...simulators.frontends.ocpp_chargers import charge_point

    spec = {
        "host": "127.0.0.1",
        "port": 0,
        "rate_limit_per_s": 10_000,
        "rate_burst": 10_000,
        "chargers": [{"device": f"CH{i:04d}"} for i in range(chargers)],
    }
    connector = OcppConnector.from_config(spec, ConnectorContext("BENCH", "gw"))
    sink, stop = CountingSink(), asyncio.Event()
    server = asyncio.create_task(connector.run(sink, stop))
    await asyncio.wait_for(connector.listening.wait(), 10)
    url = f"ws://127.0.0.1:{connector.bound_port}"
    rtts: list[float] = []
    done = asyncio.Event()
    values = {"energy_register": 1000.0, "power": 7.0, "voltage": 230.0, "current": 30.4, "temperature": 35.0}

    async def charger(i: int) -> None:
        async with charge_point(url, f"CH{i:04d}") as cp:
            await cp.boot()
            while not done.is_set():
                t0 = time.perf_counter()
                await cp.meter(1, values)
                rtts.append(time.perf_counter() - t0)

    tasks = [asyncio.create_task(charger(i)) for i in range(chargers)]
    await asyncio.sleep(1.0)  # connect and boot
    start_n, started = len(rtts), time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                  transient=True) as bar:  # fmt: skip
        job = bar.add_task("MeterValues", total=duration)
        while (elapsed := time.perf_counter() - started) < duration:
            bar.update(job, completed=elapsed)
            await asyncio.sleep(0.25)
    measured = rtts[start_n:]
    seconds = time.perf_counter() - started
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    stop.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server, 10)
    ms = np.array(measured) * 1000 if measured else np.array([0.0])
    return {
        "calls": len(measured) / seconds,
        "readings": len(measured) * len(values) / seconds,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "connected": connector.counters()["connections"],
    }


@click.command("ocpp")
@click.option("--chargers", type=click.IntRange(1, 5000), default=50, show_default=True,
              help="Simulated charge points, each sending MeterValues back to back.")  # fmt: skip
@click.option("--duration", type=click.FloatRange(1, 3600), default=10.0, show_default=True,
              help="Measured seconds.")  # fmt: skip
def bench_ocpp(chargers: int, duration: float) -> None:
    """Drive the OCPP central system with simulated charge points; print calls/s and round trips."""
    # one line per device going online would bury the figures
    logging.getLogger("sitewatch.gateway.connectors").setLevel(logging.WARNING)
    result = asyncio.run(_run(chargers, duration))
    table = Table(title=_("OCPP central system benchmark"))
    table.add_column(_("figure"))
    table.add_column(_("value"), justify="right")
    rows = [
        (_("charge points connected"), f"{int(result['connected']):,}"),
        (_("MeterValues answered/s"), f"{result['calls']:,.0f}"),
        (_("readings/s"), f"{result['readings']:,.0f}"),
        (_("round trip p50 (ms)"), f"{result['p50']:.1f}"),
        (_("round trip p99 (ms)"), f"{result['p99']:.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
