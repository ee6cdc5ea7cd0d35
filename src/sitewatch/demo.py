"""``sitewatch demo``: a simulated city flowing through an MQTT broker and ingest into the embedded store.

Starts a broker (Mosquitto when installed, otherwise the embedded amqtt broker), a few simulated
compounds with all five device kinds, and ingest into the embedded store under ``settings.data_dir``;
shows a live view until the duration ends or Ctrl-C. The data stays in the store for ``sitewatch query``.

Each compound runs through a real site gateway (:class:`sitewatch.gateway.runtime.Gateway` with
the ``simulated`` connector): its readings pass the gateway's contract checks, its durable queue
under ``<data_dir>/gateways/`` and its publisher (birth, bdseq/seq, deletion on PUBACK). On amqtt,
which speaks only MQTT 3.1.1, the gateways and ingest speak it too (``mqtt.protocol``).
"""

from __future__ import annotations

import contextlib
import logging
import resource
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from .contract import now_ms
from .i18n import N_, _, current_language
from .settings import MqttProtocol, MqttSettings, Settings, StoreBackend, load_settings

log = logging.getLogger(__name__)

MAX_BEHIND_MS = 80 * 86_400_000  # the validator refuses readings older than 90 days
ONLINE_WINDOW_MS = 30 * 60_000  # a device heard within this simulated time counts as online
ONLINE_REFRESH_S = 3.0
FINDINGS_SHOWN = 6
SEVERITY_LABELS = {"info": N_("info"), "warning": N_("warning"), "critical": N_("critical")}
STATE_LABELS = {"active": N_("active"), "cleared": N_("cleared")}

@dataclass
class _View:
    """What the live display shows."""

    broker: str
    compounds: int
    devices: int
    speed: float
    store_path: Path
    online: int = 0
    rate: float = 0.0
    stored: int = 0
    events: int = 0
    faults: int = 0
    dead: int = 0
    sim_ms: int = 0
    gateways: dict[str, int] | None = None  # summed gateway counters (None until the first tick)
    alerts: dict[str, int] | None = None  # open alerts, notifications delivered (None: no alerting)
    last_alert: str = ""
    findings: list[Any] | None = None  # the latest findings of analytics, newest first (None: no analytics)
    findings_published: int = 0

    def table(self) -> Table:
        table = Table(title=_("sitewatch demo"), caption=_("Ctrl-C stops everything cleanly"), show_header=False)
        table.add_column(style="bold")
        table.add_column(justify="right")
        sim = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.sim_ms / 1000)) if self.sim_ms else "—"
        for label, value in (
            (N_("MQTT broker"), self.broker),
            (N_("compounds (gateways)"), f"{self.compounds}"),
            (N_("devices"), f"{self.devices:,}"),
            (N_("devices online"), f"{self.online:,}"),
            (N_("readings/s stored"), f"{self.rate:,.0f}"),
            (N_("readings stored"), f"{self.stored:,}"),
            (N_("events stored"), f"{self.events:,}"),
            (N_("faults injected"), f"{self.faults}"),
            (N_("dead letters"), f"{self.dead}"),
            *(
                (
                    (N_("gateway queues (readings)"), f"{self.gateways['queue_readings']:,}"),
                    (N_("acknowledged by the broker"), f"{self.gateways['acknowledged']:,}"),
                    (N_("dropped by gateways"), f"{self.gateways['dropped']:,}"),
                )
                if self.gateways is not None
                else ()
            ),
            *(
                (
                    (N_("alerts open / notifications delivered"), f"{self.alerts['open']} / {self.alerts['delivered']}"),
                    (N_("latest notification"), self.last_alert[:80] or "—"),
                )
                if self.alerts is not None
                else ()
            ),
            *(
                ((N_("findings published by analytics"), f"{self.findings_published:,}"),)
                if self.findings is not None
                else ()
            ),
            (N_("simulated time"), sim),
            (N_("speed"), f"×{self.speed:g}"),
            (N_("store"), str(self.store_path)),
        ):
            table.add_row(_(label), value)
        return table

    def findings_table(self) -> Table:
        """The latest findings: time, compound, device, fault, the rule or detector that found it (two rules
        may find one fault: a charger's Faulted status and its fault event), severity, state, summary."""
        table = Table(title=_("latest findings (analytics)"), expand=False)
        for column in (N_("time"), N_("compound"), N_("device"), N_("fault"), N_("found by"), N_("severity"),
                       N_("state"), N_("summary")):  # fmt: skip
            table.add_column(_(column), overflow="fold")
        for f in self.findings or []:
            when = time.strftime("%m-%d %H:%M", time.localtime(f.started_ms / 1000))
            local = f.device[len(f.compound) + 1 :] if f.device.startswith(f.compound + "-") else f.device
            severity = _(SEVERITY_LABELS.get(f.severity.value, f.severity.value))
            style = {"critical": "bold red", "warning": "yellow"}.get(f.severity.value, "")
            table.add_row(when, f.compound, local, f.fault or "—", f.source,
                          f"[{style}]{severity}[/]" if style else severity,
                          _(STATE_LABELS.get(f.state.value, f.state.value)),
                          _(f.message, **dict(f.params)))  # fmt: skip
        if not self.findings:
            table.add_row("—", "", "", "", "", "", "", _("none yet"))
        return table

    def render(self) -> Any:
        """What the live display shows: the counters, then the findings panel."""
        return Group(self.table(), self.findings_table()) if self.findings is not None else self.table()


class _Stop(Exception):
    """A stop asked by a signal (Ctrl-C, SIGTERM), raised in the display loop."""


# Set by the demo command's SIGINT and SIGTERM handlers; the display loop stops at its next tick. A
# KeyboardInterrupt raised by the default handler can land in a weakref callback or a __del__, where
# Python prints it and drops it, and the demo would then run on.
_stop_requested = threading.Event()


@contextlib.contextmanager
def _broker(settings: Settings, choice: str, console: Console) -> Iterator[tuple[Any, str]]:
    """Start Mosquitto (if chosen or available) or the embedded broker; yields (service, label)."""
    from .devtools.amqtt_broker import EmbeddedBroker
    from .devtools.services import MosquittoService, find_binary

    service: Any
    if choice == "mosquitto" or (choice == "auto" and find_binary("mosquitto", "/usr/sbin")):
        service, label = MosquittoService(settings.data_dir / "mosquitto"), "Mosquitto"
    else:
        if choice == "auto":
            console.print(_("Mosquitto not found: using the embedded amqtt broker (MQTT 3.1.1)"), style="yellow")
        service, label = EmbeddedBroker(), "amqtt"
    service.start()
    try:
        yield service, label
    finally:
        service.stop()


# the fault injected first, per kind: a trapped passenger first, which the elevator announces and
# analytics turns into a finding at once; the other kinds' first fault type
DEMO_FAULTS = {"elevator": "entrapment"}


def _inject_faults(lives: list[Any], start_ms: int) -> None:
    """One fault per kind early in the run, so that every demo shows some (elevators first)."""
    from .simulators import FAULTS_BY_KIND

    kinds = sorted(FAULTS_BY_KIND, key=lambda k: k.value != "elevator")
    for i, kind in enumerate(kinds):
        live = lives[i % len(lives)]
        devices = [d.device for d in live.site.devices if d.kind is kind]
        if not devices:
            continue
        fault = DEMO_FAULTS.get(kind.value, FAULTS_BY_KIND[kind][0])
        begin = start_ms + (i + 1) * 5 * 60_000  # one every five simulated minutes
        live.inject(devices[0], fault, begin, begin + 3_600_000)


def _children_cpu() -> float:
    """CPU seconds of the child processes that ended (the Mosquitto broker, once stopped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


GATEWAY_COUNTERS = (
    "read",
    "buffered",
    "sent",
    "acknowledged",
    "dropped",
    "rejected",
    "births",
    "queue_readings",
)


class _GatewayFeed:
    """One real site gateway per compound (``simulated`` connector on a shared clock), each in a thread."""

    def __init__(
        self, lives: list[Any], mqtt: MqttSettings, queue_dir: Path, speed: float, start_ms: int
    ) -> None:
        from .gateway.config import parse_config
        from .gateway.runtime import Gateway
        from .simulators.connector import SimClock, SimulatedConnector

        queue_dir.mkdir(parents=True, exist_ok=True)
        self.queue_dir = queue_dir
        self.clock = SimClock(start_ms, speed)
        self.gateways = []
        for i, live in enumerate(lives):
            config = parse_config(
                {
                    "compound": live.compound,
                    "gateway": live.gateway,
                    # no client_id: each gateway connects under its own id
                    "mqtt": {"url": mqtt.url, "protocol": mqtt.protocol.value},
                    "queue": {"path": str(queue_dir / f"{live.gateway}.db"), "budget_bytes": "256 MiB"},
                    "counters_interval_s": 10,
                },
                "demo",
            )
            # staggered over one second, so that the broker sees a steady flow rather than bursts
            connector = SimulatedConnector(live, self.clock, phase_s=i / len(lives))
            self.gateways.append(Gateway(config, connectors=[connector]))
        self.threads: list[Any] = []

    def start(self) -> None:
        """Start the clock and every gateway."""
        from .gateway.runtime import GatewayThread

        self.clock.begin()
        self.threads = [GatewayThread(gw) for gw in self.gateways]

    def wait(self, seconds: float) -> None:
        """The gateways work in their own threads: only let time pass."""
        time.sleep(seconds)

    def sim_now(self) -> int:
        """Simulated time."""
        return self.clock.now()

    def counters(self) -> dict[str, int]:
        """The gateways' counters, summed."""
        total = dict.fromkeys(GATEWAY_COUNTERS, 0)
        for gw in self.gateways:
            snap = gw.snapshot()
            for key in GATEWAY_COUNTERS:
                total[key] += snap.get(key, 0)
        return total

    def close(self) -> None:
        """Stop every gateway at once: flush its queue, publish its death, close the queue file."""
        import threading

        def stop(thread: Any) -> None:
            try:
                thread.stop()
            except Exception:
                log.exception("gateway %s did not stop cleanly", thread.gateway.config.gateway)

        stoppers = [threading.Thread(target=stop, args=(t,)) for t in self.threads]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()


class _ProtocolFeed(_GatewayFeed):
    """One compound in real time behind real protocols, read by a gateway with its real connectors."""

    attempts = 3  # the devices' ports are picked free, then bound: another process may take one between

    def __init__(self, live: Any, url: str, queue_dir: Path) -> None:
        from .simulators.frontends.site import SimulatedSite, SiteOptions

        queue_dir.mkdir(parents=True, exist_ok=True)
        self.queue_dir = queue_dir
        self.live, self.url = live, url
        # streetlight controllers publish on the demo's broker, which the gateway's mqtt connector reads
        self.options = SiteOptions(site_broker=url)
        self.site = SimulatedSite(live, self.options)
        self.gateways = []
        self.threads = []
        self._site_thread: Any = None
        self._site_stop: Any = None
        self._site_loop: Any = None

    async def _start_site(self) -> None:
        """Start the devices' servers; on a port taken meanwhile, again on new ports."""
        from .simulators.frontends.site import SimulatedSite

        for attempt in range(1, self.attempts + 1):
            try:
                await self.site.start()
                return
            except OSError as exc:
                if attempt == self.attempts:
                    raise
                log.debug("a simulated device's port was taken (%s): new ports", exc)
                with contextlib.suppress(Exception):
                    await self.site.close()
                latest = self.site.latest
                self.site = SimulatedSite(self.live, self.options)
                for device, values in self.site.latest.items():  # the present values, kept
                    latest.setdefault(device, {}).update(values)
                self.site.latest = latest

    def start(self) -> None:
        """Start the devices' servers, then the gateway that reads them, then the chargers that call it."""
        import asyncio
        import threading

        from .gateway.config import parse_config
        from .gateway.runtime import Gateway, GatewayThread

        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        started, go = threading.Event(), threading.Event()
        failed: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)

            async def main() -> None:
                await self._start_site()  # Modbus servers, cameras, streetlight controllers
                started.set()
                await asyncio.to_thread(go.wait, 30)
                await self.site.run(stop)  # chargers connect (and retry) to the gateway's OCPP server

            try:
                loop.run_until_complete(main())
            except Exception as exc:
                failed.append(exc)
                log.exception("the simulated devices stopped with an error")
            finally:
                started.set()
                loop.close()

        self._site_loop, self._site_stop = loop, stop
        self._site_thread = threading.Thread(target=serve, name="demo-devices", daemon=True)
        self._site_thread.start()
        started.wait(30)
        if failed:
            raise RuntimeError(f"the simulated devices could not start: {failed[0]}")
        config = self.site.gateway_config(self.url, self.queue_dir / f"{self.live.gateway}.db")
        config["counters_interval_s"] = 10
        self.gateways = [Gateway(parse_config(config, "demo"))]
        self.threads = [GatewayThread(gw) for gw in self.gateways]
        go.set()

    def sim_now(self) -> int:
        """Real time: the devices run at the speed of the clock on the wall."""
        return now_ms()

    def close(self) -> None:
        """Stop the gateway (flush, death), then the simulated devices."""
        super().close()
        if self._site_thread is not None and self._site_thread.is_alive():
            self._site_loop.call_soon_threadsafe(self._site_stop.set)
            self._site_thread.join(30)


def _start_analytics(settings: Settings, records: dict[str, list[dict[str, Any]]], clock: Any) -> Any:
    """The live analytics service on the demo's broker (its shipped rules), its timer on simulated time.

    Each demo run starts from a clean state: a checkpoint left by an earlier run (another city,
    another simulated time) is removed first."""
    from .analytics.cli_run import engine_factory
    from .analytics.compounds import CompoundPlace
    from .analytics.service import AnalyticsService

    analytics = settings.analytics.model_copy(update={"tick_s": 1.0, "sites_refresh_s": 0.0})
    settings = settings.model_copy(update={"analytics": analytics})
    places = {
        c["code"]: CompoundPlace(c["code"], float(c["latitude"]), float(c["longitude"])) for c in records["compounds"]
    }
    client_id = "sitewatch-demo-analytics"
    (settings.analytics_state_dir / f"{client_id}.ckpt").unlink(missing_ok=True)
    service = AnalyticsService(settings, engine_factory(settings, places), lambda: list(places), client_id=client_id,
                               clock=clock)  # fmt: skip
    service.start()
    service.wait_connected(10)
    return service


def run_demo(
    settings: Settings, *, compounds: int, speed: float, duration: float | None, seed: int,
    broker: str, fault_rate: float, console: Console, protocols: bool = False, alerts: bool = True,
    web: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Run the demo until ``duration`` (or the present, or Ctrl-C); returns the final figures."""
    from .ingest import IngestService
    from .ingest.liveness import LivenessConsumer
    from .simulators import LiveSite, sites_from_records
    from .simulators.city import generate_city
    from .store import open_store

    t0, cpu0, broker_cpu0 = time.monotonic(), time.process_time(), _children_cpu()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if protocols:  # one compound, in real time: the protocol front-ends serve the present values
        from .devtools.services import find_binary

        if broker == "amqtt" or not find_binary("mosquitto", "/usr/sbin"):
            raise click.UsageError(_("--protocols needs Mosquitto (the site gateway speaks MQTT 5); install it or use --broker mosquitto"))
        compounds, speed, broker = 1, 1.0, "mosquitto"
    records = generate_city(compounds, seed)
    sites = sites_from_records(records)
    devices = sum(len(s.devices) + 1 for s in sites)  # and each compound's gateway
    horizon_s = duration if duration is not None else 3600.0
    behind = min(int((speed - 1) * horizon_s * 1000), MAX_BEHIND_MS) if speed > 1 else 0
    start = now_ms() - behind
    until_present = duration is None and speed > 1
    if until_present:
        duration = behind / 1000 / (speed - 1)  # wall time until simulated time reaches now
    lives = [
        LiveSite(s, seed=seed + i, faults="random", fault_rate=fault_rate, start_ms=start)
        for i, s in enumerate(sites)
    ]
    _inject_faults(lives, start)
    figures: dict[str, Any] = {}
    with _broker(settings, broker, console) as (service, label):
        console.print(
            _("Starting: {broker} broker, {compounds} simulated compounds ({devices} devices), ingest → {store}", broker=label, compounds=len(sites), devices=devices, store=settings.store_path)
        )
        protocol = MqttProtocol.V5 if label == "Mosquitto" else MqttProtocol.V311
        mqtt = settings.mqtt.model_copy(update={"url": service.url, "protocol": protocol})
        settings = settings.model_copy(update={"mqtt": mqtt})
        store = open_store(settings)
        reader = open_store(settings)
        ingest = IngestService(settings, store, client_id="sitewatch-demo-ingest")
        ingest.start()
        ingest.wait_connected(10)
        liveness = None
        if settings.ingest.liveness:  # gateways' births, deaths and counters, as `ingest run` stores them
            liveness = LivenessConsumer(settings, store, client_id="sitewatch-demo-liveness")
            liveness.start()
        feed: _GatewayFeed
        if protocols:
            console.print(_("One compound in real time behind real protocols (Modbus TCP, OCPP 1.6J, RTSP, MQTT), read by the gateway's own connectors"))
            feed = _ProtocolFeed(lives[0], service.url, settings.data_dir / "gateways")
        else:
            feed = _GatewayFeed(lives, mqtt, settings.data_dir / "gateways", speed, start)
        view = _View(f"{label} {service.url}", len(sites), devices, speed, settings.store_path)
        alerting = None
        if alerts:
            from .demo_alerts import DemoAlerts

            alerting = DemoAlerts(settings, records, current_language())
            alerting.prepare()
        analytics = None
        web_console = None
        if web:
            from .demo_console import DemoConsole

            web_console = DemoConsole(settings, records, feed.sim_now)
            web_console.prepare(imported=alerting is not None)
        began = time.monotonic()
        last = (began, 0)
        next_online = began
        ready = 0.0
        try:
            if alerting is not None:
                alerting.start()  # subscribed to the findings before analytics publishes any
            analytics = _start_analytics(settings, records, feed.sim_now)
            view.findings = []
            if web_console is not None:
                web_console.start()
                figures["console"] = web_console.url
                console.print(
                    _("Console: {url} (sign in with the token {token}, or open {login} to sign in at once); it shows these compounds live, by simulated time", url=web_console.url, token=web_console.token, login=web_console.login_url),
                    style="bold", soft_wrap=True,
                )  # fmt: skip
            feed.start()
            ready = time.monotonic() - t0
            with Live(view.render(), console=console, auto_refresh=False, transient=False) as live:
                while duration is None or time.monotonic() - began < duration:
                    left = None if duration is None else duration - (time.monotonic() - began)
                    feed.wait(min(1.0, left) if left is not None else 1.0)
                    if _stop_requested.is_set():
                        raise _Stop()
                    view.gateways = feed.counters()
                    snap = ingest.stats.snapshot()
                    now = time.monotonic()
                    view.rate = (snap.stored_readings - last[1]) / max(now - last[0], 1e-6)
                    last = (now, snap.stored_readings)
                    view.stored, view.events = snap.stored_readings, snap.stored_events
                    view.dead = snap.dead_lettered
                    view.sim_ms = feed.sim_now()
                    view.faults = sum(1 for lv in lives for lb in lv.labels if lb.start_ms <= view.sim_ms)
                    if alerting is not None:
                        view.alerts = alerting.counts()
                        view.last_alert = alerting.last[-1] if alerting.last else ""
                    view.findings = list(analytics.recent)[-FINDINGS_SHOWN:][::-1]
                    view.findings_published = analytics.stats.findings_published
                    if now >= next_online:  # a query over every device: not on every tick
                        next_online = now + ONLINE_REFRESH_S
                        view.online = sum(
                            1 for d in reader.latest() if d.last_seen_ms >= view.sim_ms - ONLINE_WINDOW_MS
                        )
                    live.update(view.render(), refresh=True)
            console.line()
            if until_present:
                console.print(_("Simulated time reached the present: stopping"))
        except (KeyboardInterrupt, _Stop):
            console.print(_("Stopping…"))
        finally:
            ran = time.monotonic() - began
            if web_console is not None:
                web_console.stop()
            feed.close()
            gateways = feed.counters()
            # let ingest store what the broker already holds before it stops
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                snap = ingest.stats.snapshot()
                if snap.in_flight == 0 and time.monotonic() - last[0] > 0.5:
                    break
                time.sleep(0.2)
            ingest.stop()
            if analytics is not None:
                analytics_stats = analytics.stats.snapshot()
                figures["findings"] = {
                    "published": analytics_stats["findings_published"],
                    "refused": analytics_stats["refused_total"],
                }
                analytics.stop()
            if liveness is not None:
                liveness.stop()
            store.close()
            if alerting is not None:
                figures["alerts"] = alerting.counts() | {"url": alerting.sink.url}
                alerting.stop()
            kinds = {s.kind for s in reader.series()}
            figures |= {
                "readings": reader.count_readings(),
                "events": ingest.stats.snapshot().stored_events,
                "kinds": sorted(k.value for k in kinds),
                "dead_letters": ingest.stats.snapshot().dead_lettered,
                "gaps": ingest.stats.snapshot().gaps,
                "missing_messages": ingest.stats.snapshot().missing_messages,
                "faults": view.faults,
                "compound": sites[0].compound,
                "gateways": gateways,
                "ready_s": ready,
                "rate": reader.count_readings() / max(ran, 1e-6),
            }
            reader.close()
    console.print(
        _("Stored {readings:,} readings and {events:,} events of {kinds} device kinds in {path}", readings=figures["readings"], events=figures["events"], kinds=len(figures["kinds"]), path=settings.store_path)
    )  # fmt: skip
    wall = time.monotonic() - t0  # the broker has stopped: its CPU time is in the children's
    figures["cpu_percent"] = 100 * (time.process_time() - cpu0 + _children_cpu() - broker_cpu0) / wall
    console.print(
        _("Ran {wall:.0f} s (ready after {ready:.1f} s): {rate:,.0f} readings/s stored on average, CPU {cpu:.0f}% of one core (demo process and broker)", wall=wall, ready=figures["ready_s"], rate=figures["rate"], cpu=figures["cpu_percent"])
    )
    if gateways is not None:
        console.print(
            _("Gateways: {sent:,} readings published, {acknowledged:,} acknowledged (PUBACK), {dropped:,} dropped, {queued:,} left in their queues ({path})", sent=gateways["sent"], acknowledged=gateways["acknowledged"], dropped=gateways["dropped"], queued=gateways["queue_readings"], path=settings.data_dir / "gateways")
        )  # fmt: skip
    console.print(_("Sequence numbers (bdseq/seq) checked by ingest: {gaps:,} gaps, {missing:,} messages missing", gaps=figures["gaps"], missing=figures["missing_messages"]))
    if "findings" in figures:
        console.print(_("Analytics: {published} findings published (rules on every reading and event), {refused} refused message parts", **figures["findings"]))
    if "alerts" in figures:
        console.print(_("Alerts: {open} open, {notifications} notifications, {delivered} delivered to the local webhook {url}; see them with: sitewatch alerts list", **figures["alerts"]))
    console.print(_("Look at them: sitewatch query latest --path {path} --compound {compound}", path=settings.store_path, compound=figures["compound"]))
    return figures


@click.command()
@click.option(
    "--compounds", type=click.IntRange(1, 50), default=3, show_default=True, help="Simulated compounds."
)
@click.option(
    "--speed", type=click.FloatRange(0.1, 10_000), default=60.0, show_default=True,
    help="Simulated seconds per second. Above 1, simulated time starts in the past and ends at the present.",
)  # fmt: skip
@click.option(
    "--duration", type=click.FloatRange(1, None),
    help="Stop after this many seconds (default: when simulated time reaches the present, or Ctrl-C).",
)  # fmt: skip
@click.option(
    "--broker", type=click.Choice(["auto", "mosquitto", "amqtt"]), default="auto", show_default=True,
    help="MQTT broker: Mosquitto if installed (auto), or the embedded amqtt broker (MQTT 3.1.1, which the "
    "gateways and ingest then speak). Each compound runs through a real site gateway either way.",
)  # fmt: skip
@click.option(
    "--fault-rate", type=click.FloatRange(0, 1e6), default=50.0, show_default=True,
    help="Multiplier of the yearly fault rates (a demo wants to see some).",
)  # fmt: skip
@click.option(
    "--protocols", is_flag=True,
    help="Run ONE compound in real time behind real device protocols (Modbus TCP servers, OCPP 1.6J charge "
    "points, RTSP cameras, MQTT streetlights), read by the gateway's own connectors. Needs Mosquitto.",
)  # fmt: skip
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed of the city.")
@click.option(
    "--console/--no-console", "web", default=True, show_default=True,
    help="Serve the web console (and the REST API) on a free local port; its address is printed at start-up.",
)  # fmt: skip
@click.option(
    "--alerts/--no-alerts", default=True, show_default=True,
    help="Run alerting too: the injected faults become alerts, notified to a local webhook sink.",
)  # fmt: skip
def demo(
    compounds: int,
    speed: float,
    duration: float | None,
    broker: str,
    fault_rate: float,
    protocols: bool,
    seed: int,
    alerts: bool,
    web: bool,
) -> None:
    """Run the whole chain on one machine: simulated compounds → site gateways → MQTT → ingest → embedded store.

    The data stays in SITEWATCH_DATA_DIR (default .sitewatch); query it afterwards with `sitewatch query`.
    """
    settings = load_settings()
    settings = settings.model_copy(
        update={"store": settings.store.model_copy(update={"backend": StoreBackend.EMBEDDED})}
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        _stop_requested.set()

    _stop_requested.clear()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # the live view says what ingest and the gateways do; their periodic log lines would scroll it away
    for name in ("sitewatch.ingest", "sitewatch.gateway", "sitewatch.alerts", "sitewatch.analytics", "websockets", "httpx",
                 "uvicorn"):
        logging.getLogger(name).setLevel(logging.WARNING)
    run_demo(
        settings, compounds=compounds, speed=speed, duration=duration, seed=seed, broker=broker,
        fault_rate=fault_rate, console=Console(), protocols=protocols, alerts=alerts, web=web,
    )  # fmt: skip


__all__ = ["demo", "run_demo"]
