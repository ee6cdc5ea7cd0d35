"""``sitewatch gateway``: run a site gateway, check its configuration, show its queue and counters."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import click
import orjson
from rich.console import Console
from rich.table import Table

from ..i18n import N_, _
from .config import EXAMPLE, GatewayConfig, GatewayConfigError, build_connectors, load_config
from .counters import COUNTERS

CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("gateway.yaml"),
    show_default=True,
    help="The gateway's configuration file (see `sitewatch gateway example`).",
)


# what `status` shows beside the counters, when the gateway saved them
_GAUGES = {
    "connected": N_("connected to the broker then (1/0)"),
    "live_latency_p50_ms": N_("live data, queue to PUBACK, median ms"),
    "live_latency_max_ms": N_("live data, queue to PUBACK, max ms"),
    "uptime_s": N_("seconds the gateway had been running"),
}


def _load(config_path: Path) -> GatewayConfig:
    try:
        return load_config(config_path)
    except GatewayConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def gateway() -> None:
    """Site gateway: read devices, queue readings on disk, forward them to the broker over MQTT."""


@gateway.command("run")
@CONFIG
def run(config_path: Path) -> None:
    """Run the gateway until SIGTERM or Ctrl-C (then it flushes, publishes its death and exits)."""
    from .queue import QueueError
    from .runtime import Gateway

    config = _load(config_path)
    try:
        gw = Gateway(config, config_path=config_path)
    except (GatewayConfigError, QueueError) as exc:
        raise click.ClickException(str(exc)) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await gw.run(stop)

    asyncio.run(main())


@gateway.command("check")
@CONFIG
def check(config_path: Path) -> None:
    """Validate gateway.yaml and build every connector; list the devices; exit 1 on any problem."""
    config = _load(config_path)
    try:
        connectors = build_connectors(config)
    except GatewayConfigError as exc:
        raise click.ClickException(str(exc)) from None
    console = Console()
    table = Table(title=_("Connectors and devices"))
    for column in (N_("connector"), N_("devices"), N_("kinds"), N_("protocol")):
        table.add_column(_(column))
    total = 0
    for connector in connectors:
        devices = connector.devices()
        total += len(devices)
        table.add_row(
            connector.name,
            str(len(devices)),
            ", ".join(sorted({d.kind.value for d in devices})),
            ", ".join(sorted({d.protocol for d in devices})),
        )
    console.print(table)
    budget = f"{config.queue.budget_bytes / 1024**2:,.1f} MiB"
    console.print(
        _(
            "configuration valid: compound {compound}, gateway {gateway}, {connectors} connectors, "
            "{devices} devices; broker {broker}; queue {queue} (budget {budget})",
            compound=config.compound, gateway=config.gateway, connectors=len(connectors), devices=total,
            broker=config.mqtt.url, queue=config.queue.path, budget=budget,
        )
    )


@gateway.command("status")
@CONFIG
def status(config_path: Path) -> None:
    """Show the disk queue and the last counters the gateway saved (works while it runs)."""
    config = _load(config_path)
    path = config.queue.path
    if not path.exists():
        raise click.ClickException(_("{path}: no queue file yet; the gateway has not run", path=path))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows, readings, size = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(readings), 0), COALESCE(SUM(size), 0) FROM items"
        ).fetchone()
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    counters = orjson.loads(meta["counters"]) if "counters" in meta else {}
    console = Console()
    table = Table(title=_("Gateway queue: {gateway}", gateway=config.gateway))
    table.add_column(_("item"))
    table.add_column(_("value"), justify="right")
    table.add_row(_("queued rows"), f"{rows:,}")
    table.add_row(_("queued readings"), f"{readings:,}")
    table.add_row(_("bytes / budget"), f"{size:,} / {config.queue.budget_bytes:,}")
    table.add_row(_("boot sequence (bdseq)"), str(meta.get("bdseq", "-")))
    console.print(table)
    if counters:
        table = Table(title=_("Counters (last saved)"))
        table.add_column(_("counter"))
        table.add_column(_("value"), justify="right")
        table.add_column(_("meaning"))
        for name, meaning in COUNTERS.items():
            table.add_row(name, f"{counters.get(name, 0):,}", _(meaning))
        for name, value in sorted(counters.items()):
            if "." in name:
                table.add_row(name, f"{value:,}", _("connector counter"))
        for name, meaning in _GAUGES.items():
            if name in counters:
                table.add_row(name, f"{counters[name]:,}", _(meaning))
        console.print(table)


@gateway.command("example")
def example() -> None:
    """Print an example gateway.yaml (redirect it to a file and edit it)."""
    click.echo(EXAMPLE, nl=False)
