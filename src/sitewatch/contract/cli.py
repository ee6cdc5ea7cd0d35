"""``sitewatch contract``: show the message contract (kinds, metrics, events, topics)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from .kinds import KINDS, DeviceKind
from .messages import SCHEMA_VERSION
from .topics import DEADLETTER_TOPIC, HOST_STATE_TOPIC, Channel, subscription


@click.group()
def contract() -> None:
    """Show the message contract shared by simulators, gateways and ingest."""


@contract.command("kinds")
@click.argument("kind", required=False, type=click.Choice([k.value for k in DeviceKind]))
def kinds(kind: str | None) -> None:
    """List device kinds with their metrics (unit, type, valid range) and events."""
    console = Console()
    for spec in KINDS.values():
        if kind and spec.kind != kind:
            continue
        table = Table(title=f"{spec.kind} ({spec.label_zh}), id code {spec.code}")
        table.add_column("metric", no_wrap=True)
        for column in ("unit", "type", "range", "description", "说明"):
            table.add_column(column)
        for m in spec.metrics.values():
            table.add_row(
                m.name, m.unit, m.type, f"{m.minimum:g} … {m.maximum:g}", m.description, m.description_zh
            )
        console.print(table)
        events = ", ".join(f"{e.name} ({e.severity})" for e in spec.events.values())
        console.print(f"events: {events}\n")


@contract.command("topics")
def topics() -> None:
    """List the MQTT topics of schema version 1."""
    click.echo(f"schema version: {SCHEMA_VERSION}")
    for channel in Channel:
        click.echo(f"{channel.value:6} {subscription(channel, '<compound>', '<gateway>')}")
    click.echo(f"host   {HOST_STATE_TOPIC}")
    click.echo(f"dead   {DEADLETTER_TOPIC}")
