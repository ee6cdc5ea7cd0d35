"""``sitewatch bench modbus``: how many Modbus devices one gateway process polls, with some of them hung.

Simulated water meters (real pymodbus servers, up to 240 unit ids each) are polled by the real
connector at a fixed interval; a share of extra devices never answer. The bench prints the poll
rate reached against the rate asked for, so the figure shows both capacity and that hung devices
do not slow the others. Servers and connector share one process and one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ...contract import DeviceKind, Event, Sample
from ...gateway.connectors.base import ConnectorContext
from ...gateway.connectors.modbus import ModbusConnector
from ...i18n import _
from ..services import free_port


class CountingSink:
    """Counts samples and readings per device."""

    def __init__(self) -> None:
        self.samples_n = 0
        self.readings = 0
        self.devices: set[str] = set()

    def samples(self, samples: Sequence[Sample]) -> None:
        self.samples_n += len(samples)
        for s in samples:
            self.readings += len(s.values)
            self.devices.add(s.device)

    def events(self, events: Sequence[Event]) -> None:
        return None


async def _mute(port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(1024):
                pass
        except OSError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def _run(devices: int, hung: int, interval: float, duration: float, timeout: float) -> dict[str, float]:
    from ...simulators.frontends.modbus_devices import (
        REGISTER_MAPS,
        ModbusDeviceServer,
        ModbusUnit,
        register_map_config,
    )

    registers = REGISTER_MAPS[DeviceKind.WATER_METER]
    values = {
        "volume_register": 1234.567,
        "flow": 0.5,
        "pressure": 0.3,
        "battery": 90.0,
        "tamper": 0,
        "reverse_flow": 0,
    }
    servers: list[ModbusDeviceServer] = []
    entries = []
    for start in range(0, devices, 240):
        count = min(240, devices - start)
        server = ModbusDeviceServer(
            [ModbusUnit(u, registers, lambda: values) for u in range(1, count + 1)], port=free_port()
        )
        servers.append(server)
        entries += [
            {"device": f"WM{start + u:05d}", "kind": "water_meter", "host": "127.0.0.1", "port": server.port,
             "unit": u, "map": "wm"}
            for u in range(1, count + 1)
        ]  # fmt: skip
    mute_port = free_port()
    entries += [
        {"device": f"WMX{i:04d}", "kind": "water_meter", "host": "127.0.0.1", "port": mute_port, "unit": 1,
         "map": "wm"}
        for i in range(hung)
    ]  # fmt: skip
    spec = {
        "poll_interval_s": interval,
        "timeout_s": timeout,
        "backoff_max_s": interval * 4,
        "register_maps": {"wm": register_map_config(DeviceKind.WATER_METER)},
        "devices": entries,
    }
    connector = ModbusConnector.from_config({"type": "modbus", "name": "bench", **spec}, ConnectorContext("BENCH", "gw"))
    for server in servers:
        await server.start()
    mute = await _mute(mute_port)
    sink, stop = CountingSink(), asyncio.Event()
    task = asyncio.create_task(connector.run(sink, stop))
    try:
        # let every device connect and settle into its schedule, then measure
        await asyncio.sleep(min(3.0, interval * 2 + timeout))
        before, started = sink.samples_n, time.perf_counter()
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as bar:  # fmt: skip
            job = bar.add_task("polling", total=duration)
            while (elapsed := time.perf_counter() - started) < duration:
                bar.update(job, completed=elapsed)
                await asyncio.sleep(0.25)
        polls = sink.samples_n - before
        seconds = time.perf_counter() - started
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)
        mute.close()
        for server in servers:
            await server.stop()
    counters = connector.counters()
    return {
        "devices": devices,
        "hung": hung,
        "target": devices / interval,
        "achieved": polls / seconds,
        "readings": polls * len(registers) / seconds,
        "timeouts": counters["timeouts"],
        "answered": len(sink.devices),
    }


@click.command("modbus")
@click.option("--devices", type=click.IntRange(1, 20_000), default=500, show_default=True,
              help="Answering devices (simulated water meters, 240 per server).")  # fmt: skip
@click.option("--hung", type=click.IntRange(0, 20_000), default=50, show_default=True,
              help="Extra devices that accept the connection but never answer.")  # fmt: skip
@click.option("--interval", type=click.FloatRange(0.05, 3600), default=1.0, show_default=True,
              help="Poll interval of every device, seconds.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(0.05, 60), default=0.5, show_default=True,
              help="Per-request timeout, seconds.")  # fmt: skip
@click.option("--duration", type=click.FloatRange(1, 3600), default=10.0, show_default=True,
              help="Measured seconds.")  # fmt: skip
def bench_modbus(
    devices: int, hung: int, interval: float, timeout: float, duration: float
) -> None:
    """Poll simulated Modbus devices with the real connector; print the poll rate reached vs asked for."""
    # one line per device going online would bury the figures
    logging.getLogger("sitewatch.gateway.connectors").setLevel(logging.WARNING)
    result = asyncio.run(_run(devices, hung, interval, duration, timeout))
    table = Table(title=_("Modbus polling benchmark"))
    table.add_column(_("figure"))
    table.add_column(_("value"), justify="right")
    rows = [
        (_("answering / hung devices"), f"{devices:,} / {hung:,}"),
        (_("polls/s asked for"), f"{result['target']:,.1f}"),
        (_("polls/s reached"), f"{result['achieved']:,.1f}"),
        (_("reached / asked"), f"{result['achieved'] / result['target']:.1%}"),
        (_("readings/s"), f"{result['readings']:,.0f}"),
        (_("devices with readings"), f"{int(result['answered']):,}"),
        (_("timeouts counted"), f"{int(result['timeouts']):,}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
