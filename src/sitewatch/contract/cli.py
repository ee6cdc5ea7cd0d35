"""``sitewatch contract``: show the message contract (kinds, metrics, events, topics)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from ..i18n import N_, _
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
        title = _("{kind} ({label}), id code {code}", kind=spec.kind, label=_(spec.label), code=spec.code)
        table = Table(title=title)
        table.add_column(_("metric"), no_wrap=True)
        for column in (_("unit"), _("type"), _("valid range"), _("meaning")):
            table.add_column(column)
        for m in spec.metrics.values():
            table.add_row(
                m.name, m.unit, _(m.type), f"{m.minimum:g} … {m.maximum:g}", _(m.description)
            )
        console.print(table)
        events = ", ".join(f"{e.name} ({_(e.severity)})" for e in spec.events.values())
        console.print(_("events: {events}", events=events) + "\n")


# metric types and event severities, as shown by `contract kinds`
_WORDS = (N_("gauge"), N_("counter"), N_("flag"), N_("state"), N_("critical"), N_("warning"), N_("info"))


@contract.command("topics")
def topics() -> None:
    """List the MQTT topics of schema version 1."""
    click.echo(_("schema version: {version}", version=SCHEMA_VERSION))
    for channel in Channel:
        click.echo(f"{channel.value:6} {subscription(channel, '<compound>', '<gateway>')}")
    click.echo(f"host   {HOST_STATE_TOPIC}")
    click.echo(f"dead   {DEADLETTER_TOPIC}")
