"""``sitewatch simulate site``: one compound's simulated devices behind real protocols, plus its gateway.yaml."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from ...i18n import N_, _

ENDPOINTS = {
    "modbus": N_("{n} Modbus TCP servers (one per building)"),
    "ocpp": N_("chargers connect to ws://{host}:{port}/<ocpp_id>"),
    "camera": N_("one {camera} port per camera"),
    "mqtt": N_("site MQTT broker {broker}"),
}


@click.command("site")
@click.option(
    "--ledger", type=click.Path(exists=True, path_type=Path), required=True, help="Ledger (台账) of the city."
)
@click.option("--compound", required=True, help="Code of the compound to simulate.")
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Where to write the matching gateway configuration (gateway.yaml).")  # fmt: skip
@click.option("--broker", help="Central broker the gateway publishes to (default: SITEWATCH_MQTT__URL).")
@click.option("--site-broker", help="Compound's own MQTT broker the streetlights use (default: --broker).")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address the simulated devices listen on."
)
@click.option("--ocpp-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port of the gateway's OCPP central system (0: pick a free one).")  # fmt: skip
@click.option("--modbus-poll", type=click.FloatRange(0.1, 3600), default=10.0, show_default=True,
              help="Seconds between two Modbus polls of one device (written to gateway.yaml).")  # fmt: skip
@click.option("--camera-interval", type=click.FloatRange(0.1, 3600), default=30.0, show_default=True,
              help="Seconds between two camera probes (written to gateway.yaml).")  # fmt: skip
@click.option("--camera-probe", type=click.Choice(["rtsp", "onvif"]), default="rtsp", show_default=True,
              help="What the simulated cameras serve and the gateway probes: RTSP OPTIONS or ONVIF.")  # fmt: skip
@click.option("--charger-interval", type=click.FloatRange(0.1, 3600), default=10.0, show_default=True,
              help="Seconds between two meter-value reports of a charger.")  # fmt: skip
@click.option("--kinds", default="elevator,water_meter,charger,camera,streetlight", show_default=True,
              help="Device kinds to simulate (comma-separated).")  # fmt: skip
@click.option(
    "--duration", type=click.FloatRange(0.1, None), help="Stop after this many seconds (default: Ctrl-C)."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed of the device models.")
@click.option("--faults", type=click.Choice(["none", "random", "all"]), default="random", show_default=True,
              help="Faults of the device models: none, random (yearly rates) or all.")  # fmt: skip
def site(
    ledger: Path, compound: str, out: Path, broker: str | None, site_broker: str | None, host: str, ocpp_port: int,
    modbus_poll: float, camera_interval: float, camera_probe: str, charger_interval: float, kinds: str, duration: float | None,
    seed: int, faults: str,
) -> None:  # fmt: skip
    """Run one compound's devices behind real protocols (Modbus TCP, OCPP 1.6J, RTSP, MQTT) and write
    a gateway.yaml that reads them; start the gateway with `sitewatch gateway run --config <out>`."""
    from ...contract import DeviceKind
    from ...settings import load_settings
    from ..live import LiveSite
    from ..site import LedgerError, load_sites
    from .site import SimulatedSite, SiteOptions

    console = Console(stderr=True)
    try:
        wanted = tuple(DeviceKind(k.strip()) for k in kinds.split(",") if k.strip())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--kinds") from None
    try:
        central = broker or load_settings().mqtt.url
        sites = load_sites(ledger, [compound])
    except LedgerError as exc:
        console.print(_("cannot use the ledger: {reason}", reason=exc), style="red")
        sys.exit(2)
    options = SiteOptions(
        host=host, site_broker=site_broker or central, ocpp_port=ocpp_port, modbus_poll_s=modbus_poll,
        camera_interval_s=camera_interval, camera_probe=camera_probe, charger_interval_s=charger_interval,
        kinds=wanted,
    )  # fmt: skip
    simulated = SimulatedSite(LiveSite(sites[0], seed=seed, faults=faults), options)
    counts = simulated.device_count()
    if not sum(counts.values()):
        console.print(_("compound {compound} has no device to simulate", compound=compound), style="red")
        sys.exit(2)
    config = simulated.gateway_config(central, f"{sites[0].gateway}-queue.db")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _print_plan(simulated, counts, out)
    asyncio.run(_serve(simulated, duration, console))


def _print_plan(simulated: Any, counts: dict[str, int], out: Path) -> None:
    table = Table(title=_("Simulated devices of compound {compound} ({name})", compound=simulated.site.compound, name=simulated.site.name))
    table.add_column(_("protocol"))
    table.add_column(_("devices"), justify="right")
    table.add_column(_("endpoint"))
    params = {
        "n": len(simulated.modbus),
        "host": simulated.options.host,
        "port": simulated.ocpp_port,
        "broker": simulated.options.site_broker,
        "camera": "ONVIF" if simulated.options.camera_probe == "onvif" else "RTSP",
    }
    for protocol, n in counts.items():
        if n:
            text = _(ENDPOINTS[protocol], **params)
            table.add_row(protocol, f"{n:,}", text)
    Console().print(table)
    click.echo(_("gateway configuration written to {path}", path=out))
    click.echo(_("start the gateway: sitewatch gateway run --config {path}", path=out))


async def _serve(simulated: Any, duration: float | None, console: Console) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    started = time.monotonic()
    last = [started]

    def tick(stats: Any) -> None:
        now = time.monotonic()
        if now - last[0] >= 10.0:
            last[0] = now
            console.print(_status(stats, now - started))

    await simulated.start()
    with console.status(_("{seconds:.0f} s: {steps} model steps, {modbus:,} Modbus reads, {ocpp:,} OCPP reports ({chargers} chargers connected), {cameras:,} camera probes answered, {mqtt:,} MQTT messages", **_zero()), spinner="dots") as spinner:

        def update(stats: Any) -> None:
            spinner.update(_status(stats, time.monotonic() - started))
            tick(stats)

        stats = await simulated.run(stop, update)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    click.echo(_status(stats, time.monotonic() - started))
    click.echo(_("stopped."))


def _zero() -> dict[str, Any]:
    return {"seconds": 0, "steps": 0, "modbus": 0, "ocpp": 0, "chargers": 0, "cameras": 0, "mqtt": 0}


def _status(stats: Any, seconds: float) -> str:
    return _("{seconds:.0f} s: {steps} model steps, {modbus:,} Modbus reads, {ocpp:,} OCPP reports ({chargers} chargers connected), {cameras:,} camera probes answered, {mqtt:,} MQTT messages", seconds=seconds, steps=stats.steps, modbus=stats.modbus_reads, ocpp=stats.ocpp_reports, chargers=stats.chargers_connected, cameras=stats.camera_requests, mqtt=stats.mqtt_messages)  # fmt: skip
