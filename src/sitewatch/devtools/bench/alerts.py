"""``sitewatch bench alerts``: how fast a critical event reaches a crew, how a storm is kept to one
notification, and how many findings per second dedup holds.

- latency: an entrapment raised at a simulated elevator behind a real Modbus TCP server, polled
  by the real site gateway, published to a private Mosquitto, turned into a finding by analytics
  (``sitewatch analytics run`` when the analytics package is installed; otherwise the bench's own
  entrapment rule, a flag edge on the gateway's data, says so in its output), alerted and delivered
  to a local webhook receiver. Latency runs from the sample's timestamp at the gateway to receipt.
- storm: a gateway with 1,000 devices dies (its offline finding and its devices' no-data findings
  over MQTT), then comes back; prints the notifications made while it was down (one: the
  gateway's) and the device alerts notified after it came back (none).
- dedup, on each ``--database`` (SQLite, a private PostgreSQL, or a URL): producer processes
  publish findings over MQTT over a fixed set of fingerprints for a while and one alerting process
  consumes and applies them; then the same kind of findings are applied straight through
  ``Alerting.apply_batch`` (the apply path alone, no MQTT). Prints both rates (the median of
  ``--dedup-runs`` runs, and each run's) beside the target, the open alerts against the distinct
  fingerprints, and whether a notification lists an alert twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from ...alerts.core import Alerting
from ...alerts.db import alerts_engine, migrate, transaction
from ...alerts.models import Alert, AlertState, Channel, ChannelScope, ChannelType, Notification, utcnow
from ...alerts.service import BATCH, AlertService
from ...alerts.sink import Received, WebhookSink
from ...assets.importer import import_ledger
from ...assets.workbook import HeaderStyle, write_csv_dir
from ...contract import (
    Channel as TopicChannel,
)
from ...contract import (
    DeviceKind,
    Finding,
    FindingState,
    Severity,
    decode_data,
    finding_messages,
    finding_topic,
    subscription,
)
from ...mqtt_client import client_for
from ...settings import AlertsSettings, MqttSettings, Settings, load_settings
from ..services import MosquittoService, PostgresService, ServiceError, free_port, wait_until

CITY_SEED = 1  # the simulators' city: its first compound, 220106-0001
COMPOUND = "220106-0001"
ELEVATOR = f"{COMPOUND}-EL0001"
GATEWAY = f"{COMPOUND}-GW01"
TARGET_P99_S = 2.0


@dataclass(frozen=True, slots=True)
class City:
    """What the bench needs of the simulators' one-compound city."""

    devices: list[tuple[str, str]]  # (device id, kind) of every non-gateway asset
    crews: dict[str, str]  # kind → crew code of the compound's contracts
    manager: str  # the compound's managing organisation


def _registry(engine: Engine, workdir: Path) -> City:
    """The simulators' city of one compound in the registry."""
    from ...simulators.city import generate_city

    migrate(engine)
    records = generate_city(1, CITY_SEED)
    if records["compounds"][0]["code"] != COMPOUND:
        raise click.ClickException(f"the simulators' city no longer starts with compound {COMPOUND}")
    folder = workdir / f"ledger-{time.monotonic_ns()}"
    write_csv_dir(records, folder, HeaderStyle.EN)
    if not import_ledger(engine, folder).ok:
        raise click.ClickException("the bench's registry did not import")
    crews = {c["kinds"]: c["crew_code"] for c in records["contracts"]}
    devices = [
        (a["device_id"], a["kind"])
        for a in records["assets"]
        if a["kind"] != "gateway" and a.get("device_id")
    ]
    return City(devices, crews, records["compounds"][0]["manager_org"])


def _channel(engine: Engine, name: str, url: str, scope: ChannelScope, target: str) -> None:
    with transaction(engine) as session:
        session.add(Channel(name=name, type=ChannelType.WEBHOOK.value, url=url, scope=scope.value, target=target,
                            min_severity="info", escalation_only=False, enabled=True, created_at=utcnow(),
                            failures=0, format="text"))  # fmt: skip


def _settings(workdir: Path, broker: str, **alerts: Any) -> Settings:
    return load_settings(
        data_dir=workdir, mqtt=MqttSettings(url=broker, client_id=f"bench-{os.getpid()}"),
        alerts=AlertsSettings(escalation_minutes={}, **alerts),
    )  # fmt: skip


def _wait_subscribed(stats: Path, worker: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until the analytics worker's stats file says it is connected (it subscribes on connect)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            if json.loads(stats.read_text()).get("connected"):
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return False


def _log_tail(workdir: Path, lines: int = 20) -> str:
    """The end of the analytics worker's log, for an error message (empty when there is none)."""
    log, stats = workdir / "analytics.log", workdir / "analytics.json"
    tail = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
    if stats.exists():
        tail.append(stats.read_text(errors="replace"))
    return "\n" + "\n".join(tail) if tail else ""


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --- latency ----------------------------------------------------------------------------------


class EntrapmentRule:
    """Stand-in for analytics' entrapment rule: a finding on each edge of the elevator's flag."""

    def __init__(self, broker: MqttSettings) -> None:
        self.client = client_for(broker, f"bench-rule-{os.getpid()}", keep_session=False)
        self.client.on_message = self._on_message
        self.state = 0.0
        self.started = 0
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(subscription(TopicChannel.DATA, COMPOUND), qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        decoded = decode_data(message.topic, bytes(message.payload))
        if decoded.message is None:
            return
        for sample in decoded.message.samples:
            value = sample.values.get("entrapment")
            if sample.device != ELEVATOR or value is None or value == self.state:
                continue
            self.state = value
            if value:
                self.started = sample.ts_ms
            state = FindingState.ACTIVE if value else FindingState.CLEARED
            finding = Finding(
                id=f"rule:bench.entrapment:{ELEVATOR}:{self.started}", compound=COMPOUND, device=ELEVATOR,
                kind=DeviceKind.ELEVATOR, source="rule:bench.entrapment", fault="entrapment",
                severity=Severity.CRITICAL, state=state, started_ms=self.started, ts_ms=sample.ts_ms,
                ended_ms=None if value else sample.ts_ms, message="Passenger trapped in {device}",
                params={"device": ELEVATOR},
            )  # fmt: skip
            client.publish(finding_topic(COMPOUND), finding.encode(), qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class LoopThread:
    """An asyncio loop in a thread (for the Modbus server)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def _gateway(workdir: Path, broker: str, modbus_port: int) -> Any:
    from ...gateway.config import parse_config
    from ...gateway.runtime import Gateway, GatewayThread
    from ...simulators.frontends.modbus_devices import register_map_config

    config = parse_config({
        "compound": COMPOUND, "gateway": GATEWAY, "mqtt": {"url": broker}, "queue": {"path": str(workdir / "gw.db")},
        "connectors": [{
            "type": "modbus", "name": "modbus", "poll_interval_s": 0.1, "timeout_s": 1.0,
            "flag_events": {"elevator": {"entrapment": "entrapment"}},
            "register_maps": {"elevator": register_map_config(DeviceKind.ELEVATOR)},
            "devices": [{"device": "EL0001", "kind": "elevator", "host": "127.0.0.1", "port": modbus_port,
                         "unit": 1, "map": "elevator"}],
        }],
    })  # fmt: skip
    return GatewayThread(Gateway(config))


def _got(received: list[Received], status: str, since: int) -> Callable[[], bool]:
    return lambda: any(r.body.get("status") == status for r in received[since:])


def latency(
    workdir: Path, broker: MosquittoService, episodes: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """Entrapments end to end; returns the latencies (s) and what made the findings."""
    from ...simulators.frontends.modbus_devices import REGISTER_MAPS, ModbusDeviceServer, ModbusUnit

    engine = alerts_engine(f"sqlite:///{workdir / 'latency.db'}")
    city = _registry(engine, workdir)
    received: list[Received] = []
    arrived = threading.Condition()

    def on_receive(item: Received) -> None:
        with arrived:
            received.append(item)
            arrived.notify_all()

    sink = WebhookSink(on_receive=on_receive).start()
    _channel(engine, "crew", sink.url, ChannelScope.CREW, city.crews["elevator"])
    # a local webhook has no rate limit: the channel's per-minute cap (WeCom's 20) would hold episodes back
    settings = _settings(workdir, broker.url, group_wait_critical_s=0.0, group_interval_s=1.0,
                         channel_rate_per_min=10_000)
    service = AlertService(settings, engine, tick_s=0.5)
    service.start()
    if not service.wait_connected(20):
        raise click.ClickException("alerting did not connect to the bench broker")
    values = {"trip_count": 100.0, "door_cycles": 200.0, "door_faults": 0.0, "vibration_rms": 0.02,
              "motor_current": 0.0, "levelling_error": 0.0, "car_load": 0.0, "run_state": 0.0, "entrapment": 0.0}  # fmt: skip
    loop = LoopThread()
    modbus = ModbusDeviceServer(
        [ModbusUnit(1, REGISTER_MAPS[DeviceKind.ELEVATOR], lambda: dict(values))], port=free_port()
    )
    loop.run(modbus.start())
    analytics: Any = None
    if importlib.util.find_spec("sitewatch.analytics") is not None:
        made_by = "sitewatch analytics run"
        env = {**os.environ, "SITEWATCH_MQTT__URL": broker.url, "SITEWATCH_DATA_DIR": str(workdir),
               "SITEWATCH_DATABASE__URL": f"sqlite:///{workdir / 'latency.db'}"}  # the registry: its compounds
        with (workdir / "analytics.log").open("ab") as log:
            analytics = subprocess.Popen([sys.executable, "-m", "sitewatch", "analytics", "run", "--stats-file",
                                          str(workdir / "analytics.json"), "--stats-interval", "0.2"], env=env,
                                         stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
        # subscribed before the gateway starts: a flag already set at its first read raises the event once
        if not _wait_subscribed(workdir / "analytics.json", analytics, 60):
            analytics.terminate()
            raise click.ClickException("sitewatch analytics run did not connect to the bench broker" + _log_tail(workdir))
    else:
        made_by = "the bench's entrapment rule (the analytics package is not installed)"
        analytics = EntrapmentRule(settings.mqtt)
        analytics.subscribed.wait(10)
    gateway = _gateway(workdir, broker.url, modbus.port)
    latencies: list[float] = []
    try:
        for episode in range(episodes):
            seen = len(received)
            set_at = time.time()
            values["entrapment"] = 1.0
            with arrived:
                ok = arrived.wait_for(_got(received, "firing", seen), 30)
            if not ok:
                raise click.ClickException(f"entrapment {episode + 1} was not notified within 30 s" + _log_tail(workdir))
            item = next(r for r in received[seen:] if r.body.get("status") == "firing")
            alert = item.body["alerts"][0]
            started = dt.datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00")).timestamp()
            # from the gateway's sample; a re-fire that reopens the alert of an earlier episode keeps that
            # episode's start, so then from when the flag was raised (which adds up to one poll)
            latencies.append(item.at - (started if started >= set_at else set_at))
            seen = len(received)
            values["entrapment"] = 0.0
            with arrived:
                arrived.wait_for(_got(received, "resolved", seen), 30)
            say(f"  entrapment {episode + 1}/{episodes}: {latencies[-1] * 1000:.0f} ms")
    finally:
        gateway.stop()
        if isinstance(analytics, EntrapmentRule):
            analytics.close()
        elif analytics is not None:
            analytics.terminate()
            analytics.wait(30)
        loop.run(modbus.stop())
        loop.close()
        service.stop()
        sink.stop()
        engine.dispose()
    return {"latencies": latencies, "made_by": made_by}


# --- storm ------------------------------------------------------------------------------------


def storm(
    workdir: Path, broker: MosquittoService, devices: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """A gateway with ``devices`` devices dies and comes back; counts the notifications."""
    engine = alerts_engine(f"sqlite:///{workdir / 'storm.db'}")
    city = _registry(engine, workdir)
    sink = WebhookSink().start()
    for crew in city.crews.values():
        _channel(engine, f"crew {crew}", f"{sink.url}/{crew}", ChannelScope.CREW, crew)
    _channel(engine, "manager", sink.url + "/manager", ChannelScope.ORGANISATION, city.manager)
    settings = _settings(workdir, broker.url, group_wait_s=5.0, group_interval_s=5.0)
    service = AlertService(settings, engine, tick_s=0.5)
    service.start()
    service.wait_connected(20)
    # the compound's devices in the registry, and as many more water meters behind the same gateway
    # as the storm asks for (devices the registry does not know yet still raise alerts)
    ids = city.devices[:devices] + [
        (f"{COMPOUND}-WM9{n:04d}", "water_meter") for n in range(devices - len(city.devices))
    ]
    publisher = client_for(settings.mqtt, f"bench-storm-{os.getpid()}", keep_session=False)
    publisher.connect(settings.mqtt.host, settings.mqtt.port)
    publisher.loop_start()
    start = int(time.time() * 1000) - 60_000

    def send(device: str, kind: str, fault: str, cleared: bool) -> None:
        source = "rule:gateway.offline" if kind == "gateway" else "rule:no_data"
        finding = Finding(
            id=f"{source}:{device}:{start}", compound=COMPOUND, device=device, kind=DeviceKind(kind), source=source,
            fault=fault, severity=Severity.WARNING, state=FindingState.CLEARED if cleared else FindingState.ACTIVE,
            started_ms=start, ended_ms=int(time.time() * 1000) if cleared else None, ts_ms=int(time.time() * 1000),
            message="No data from {device}", params={"device": device},
        )  # fmt: skip
        publisher.publish(finding_topic(COMPOUND), finding.encode(), qos=1)

    def settled(expected: int) -> None:
        wait_until(lambda: service.received >= expected, 120, "alerting to receive the storm")
        time.sleep(settings.alerts.group_wait_s + 2 * settings.alerts.group_interval_s)  # the timers run out

    try:
        send(GATEWAY, "gateway", "offline", cleared=False)  # its death certificate comes at once
        for code, kind in ids:  # then every device's no-data finding
            send(code, kind, "no_data", cleared=False)
        settled(1 + len(ids))
        during = list(sink.received)
        say(f"  gateway down: {service.received} findings, {len(during)} notification(s)")
        send(GATEWAY, "gateway", "offline", cleared=True)
        for code, kind in ids:
            send(code, kind, "no_data", cleared=True)
        settled(2 * (1 + len(ids)))
        after = sink.received[len(during) :]
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        service.stop()
        sink.stop()
    with transaction(engine) as session:
        open_alerts = session.scalar(
            select(func.count()).select_from(Alert).where(Alert.state.in_(("firing", "acknowledged")))
        )
    engine.dispose()
    late = [a for r in after for a in r.body.get("alerts", []) if a["labels"].get("kind") != "gateway"]
    return {
        "devices": len(ids), "during": len(during),
        "during_gateway_only": all(a["labels"].get("kind") == "gateway" for r in during for a in r.body["alerts"]),
        "after": len(after), "late_device_alerts": len(late), "open_after": open_alerts,
    }  # fmt: skip


# --- dedup ------------------------------------------------------------------------------------

DEDUP_SOURCE = "rule:bench.dedup"


def _dedup_finding(producer: int, n: int, fingerprints: int, source: str, first: int = 0) -> Finding:
    """The ``n``-th finding of a producer: a camera's video loss, over ``fingerprints`` cameras from
    number ``first`` on. Each part of a run has cameras of its own: alerting makes one alert per
    camera and fault, whatever the source, so the source alone would not keep the parts apart."""
    device = f"{COMPOUND}-CA{first + (n * 7 + producer) % fingerprints:05d}"
    return Finding(
        id=f"{source}:p{producer}-{n}", compound=COMPOUND, device=device, kind=DeviceKind.CAMERA, source=source,
        fault="video_loss", severity=Severity.WARNING, state=FindingState.ACTIVE, started_ms=1_790_000_000_000,
        ts_ms=1_790_000_000_000, message="x",
    )  # fmt: skip


def _produce(broker: str, producer: int, fingerprints: int, rate: float, seconds: float, source: str,
             linger_s: float, barrier: Any, results: Any, first: int = 0) -> None:  # fmt: skip
    """One analytics-like producer at its share of the rate: every ``linger_s`` it publishes the
    findings of that interval as analytics does (``contract.finding_messages``: batches of a
    compound's findings, a lone one as itself), over MQTT at QoS 1; ``linger_s`` 0 publishes each
    finding as its own message (100 findings every 100/rate s). The payloads are made before the
    start, so that the producers' own CPU goes to publishing; each interval's publish is held to
    its time on the schedule. Reports how long its schedule took from the start (to the end of the
    last interval: slower when the publishes fell behind), not counting the wait for the broker's
    last acknowledgements nor the process's exit."""
    settings = MqttSettings(url=broker, max_inflight=1000)
    client = client_for(settings, f"bench-producer-{producer}-{os.getpid()}", keep_session=False)
    client.max_inflight_messages_set(1000)
    client.connect(settings.host, settings.port)
    client.loop_start()
    step = 100 if linger_s <= 0 else max(1, round(rate * linger_s))
    intervals = max(1, round(seconds * rate / step))
    topic = finding_topic(COMPOUND)
    schedule: list[list[bytes]] = []
    for i in range(intervals):
        made = [_dedup_finding(producer, i * step + n, fingerprints, source, first) for n in range(step)]
        if linger_s <= 0:
            schedule.append([finding.encode() for finding in made])
        else:
            schedule.append([payload for _topic, payload, _count in finding_messages(made)])
    sent, messages = intervals * step, sum(len(payloads) for payloads in schedule)
    barrier.wait(120)
    info = None
    began = time.monotonic()
    for i, payloads in enumerate(schedule):
        ahead = i * step / rate - (time.monotonic() - began)  # hold the producer to its share of the rate
        if ahead > 0:
            time.sleep(ahead)
        for payload in payloads:
            info = client.publish(topic, payload, qos=1)
    ahead = intervals * step / rate - (time.monotonic() - began)  # the last interval's end
    if ahead > 0:
        time.sleep(ahead)
    elapsed = time.monotonic() - began
    if info is not None:
        info.wait_for_publish(120)
    results.put((sent, messages, elapsed, time.process_time()))
    client.loop_stop()
    client.disconnect()


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _dedup_settings(workdir: Path, broker: str) -> Settings:
    settings = _settings(workdir, broker, group_wait_s=0.0)
    return settings.model_copy(update={"mqtt": settings.mqtt.model_copy(update={"max_inflight": 1000})})


def dedup_mqtt(engine: Engine, workdir: Path, broker: MosquittoService, producers: int, rate: float,
               seconds: float, fingerprints: int, source: str, linger_s: float,
               say: Callable[[str], None], *, first: int = 0) -> dict[str, Any]:  # fmt: skip
    """``producers`` processes publishing findings of ``source`` at ``rate`` in total over
    ``fingerprints`` cameras from number ``first`` (batched within ``linger_s``), one alerting
    process (``AlertService``) consuming and applying them; with the CPU each side used."""
    service = AlertService(_dedup_settings(workdir, broker.url), engine, tick_s=1.0, deliver=False)
    service.start()
    service.wait_connected(20)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(producers + 1), context.Queue()
    processes = [
        context.Process(
            target=_produce,
            args=(broker.url, p, fingerprints, rate / producers, seconds, source, linger_s, barrier, results, first),
        )
        for p in range(producers)
    ]
    for process in processes:
        process.start()
    barrier.wait(300)
    began = time.monotonic()
    cpu_began, broker_began = time.process_time(), _cpu_s(broker.proc.pid) if broker.proc else 0.0
    decoder = service.decoder_pid
    decoder_began = _cpu_s(decoder) if decoder else 0.0
    produced = [results.get(timeout=seconds + 600) for _ in processes]
    for process in processes:
        process.join(60)
    offered_s = max(r[2] for r in produced)  # from the start to the end of the slowest producer's schedule
    sent, messages = sum(r[0] for r in produced), sum(r[1] for r in produced)
    say(f"  producers sent {sent:,} findings in {messages:,} messages in {offered_s:.1f} s "
        f"({sent / offered_s:,.0f}/s); waiting for alerting")  # fmt: skip
    deadline = time.monotonic() + 600
    while service.applied < sent and time.monotonic() < deadline:  # committed, not only received
        time.sleep(0.01)
    # from the start to the commit of the last finding (not to the producer processes' exit)
    wall = (service.last_commit_at or time.monotonic()) - began
    applied, transactions = service.applied, service.transactions
    cpu = {"alerting": time.process_time() - cpu_began,
           "decoder": (_cpu_s(decoder) if decoder else 0.0) - decoder_began, "producers": sum(r[3] for r in produced),
           "broker": (_cpu_s(broker.proc.pid) if broker.proc else 0.0) - broker_began}  # fmt: skip
    service.core.tick()
    service.stop()
    with transaction(engine) as session:
        mine = Alert.source == source
        open_alerts = session.scalar(
            select(func.count()).select_from(Alert).where(mine, Alert.state != AlertState.CLOSED)
        )
        distinct = session.scalar(select(func.count(func.distinct(Alert.fingerprint))).where(mine))
        fed = session.scalar(select(func.sum(Alert.findings_count)).where(mine))
        ids = set(session.execute(select(Alert.id).where(mine)).scalars())
        notes = [n for n in session.execute(select(Notification.alert_ids)).scalars() if ids.intersection(n)]
    listed = [i for n in notes for i in n]
    return {"sent": sent, "messages": messages, "offered": sent / offered_s, "applied": applied, "wall": wall,
            "rate": applied / wall, "per_transaction": applied / max(transactions, 1), "open": open_alerts, "distinct": distinct, "fed": fed,
            "fingerprints": fingerprints, "notifications": len(notes), "doubled": len(listed) - len(set(listed)),
            "cpu": cpu}  # fmt: skip


def dedup_store(engine: Engine, workdir: Path, broker: str, findings: int, fingerprints: int, source: str,
                batch: int = BATCH, *, first: int = 0) -> dict[str, Any]:  # fmt: skip
    """The finding-apply path alone: ``findings`` findings (made beforehand, as eight producers
    would interleave them) applied through ``Alerting.apply_batch`` in batches of ``batch``, the
    most ``alerts run`` applies in one transaction; no MQTT, no decoding."""
    core = Alerting(engine, _dedup_settings(workdir, broker))
    made = [_dedup_finding(n % 8, n // 8, fingerprints, source, first) for n in range(findings)]
    began = time.perf_counter()
    for start in range(0, len(made), batch):
        core.apply_batch(made[start : start + batch])
    seconds = time.perf_counter() - began
    with transaction(engine) as session:
        mine = Alert.source == source
        open_alerts = session.scalar(
            select(func.count()).select_from(Alert).where(mine, Alert.state != AlertState.CLOSED)
        )
        fed = session.scalar(select(func.sum(Alert.findings_count)).where(mine))
    return {"findings": findings, "seconds": seconds, "rate": findings / seconds, "open": open_alerts,
            "fed": fed, "applied": dict(core.stats.applied)}  # fmt: skip


def _database(choice: str, workdir: Path, postgres: list[PostgresService]) -> tuple[str, str]:
    """(label, URL) of a ``--database`` choice: sqlite, postgres (a private server) or a URL."""
    if choice == "sqlite":
        return "SQLite", f"sqlite:///{workdir / f'dedup-{time.monotonic_ns()}.db'}"
    if choice == "postgres":
        if not postgres:
            postgres.append(PostgresService(workdir / "postgres"))
            postgres[0].start()
        return "PostgreSQL (private, fsync off)", postgres[0].create_database(
            f"bench_alerts_{time.monotonic_ns()}"
        )
    url = make_url(choice)
    return f"{url.get_backend_name()} at {url.render_as_string(hide_password=True)}", choice


def median(values: list[float]) -> float:
    """The median (the mean of the middle two of an even count)."""
    return float(statistics.median(values))


# --- command ----------------------------------------------------------------------------------


@click.command("alerts")
@click.option(
    "--episodes", type=click.IntRange(3, 1000), default=40, show_default=True, help="Entrapments to time."
)
@click.option("--storm-devices", type=click.IntRange(10, 5000), default=1000, show_default=True)
@click.option("--dedup-producers", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option(
    "--dedup-rate", type=float, default=10_000, show_default=True, help="Findings/s offered in total."
)
@click.option("--dedup-seconds", type=float, default=30, show_default=True)
@click.option("--dedup-linger-ms", type=click.FloatRange(0, 50), default=50, show_default=True,
              help="Each producer publishes the findings it made within this long as analytics does (batches "
                   "per compound); 0: one message per finding.")  # fmt: skip
@click.option("--dedup-fingerprints", type=int, default=2000, show_default=True)
@click.option("--dedup-store-findings", type=click.IntRange(1000, 10_000_000), default=100_000, show_default=True,
              help="Findings applied straight to the store (the apply path alone) per run.")  # fmt: skip
@click.option("--dedup-runs", type=click.IntRange(1, 20), default=1, show_default=True,
              help="Runs of each dedup measurement per database; the median is printed.")  # fmt: skip
@click.option("--dedup-over-mqtt/--no-dedup-over-mqtt", default=True, show_default=True,
              help="Also measure dedup end to end over MQTT (else the apply path alone).")  # fmt: skip
@click.option("--database", "databases", multiple=True, default=("sqlite", "postgres"), show_default=True,
              help="Where the dedup part stores alerts (repeatable): sqlite (a new file), postgres (a private "
                   "server), or a SQLAlchemy URL of an empty database of its own.")  # fmt: skip
@click.option(
    "--only", type=click.Choice(["latency", "storm", "dedup"]), multiple=True, help="Run only these parts."
)
def bench_alerts(episodes: int, storm_devices: int, dedup_producers: int, dedup_rate: float, dedup_seconds: float,
                 dedup_linger_ms: float, dedup_fingerprints: int, dedup_store_findings: int, dedup_runs: int, dedup_over_mqtt: bool,
                 databases: tuple[str, ...], only: tuple[str, ...]) -> None:  # fmt: skip
    """Alerting's figures: entrapment latency end to end, a gateway storm, dedup under load."""
    console = Console()
    parts = set(only or ("latency", "storm", "dedup"))
    workdir = Path(tempfile.mkdtemp(prefix="sitewatch-bench-alerts-"))
    broker = MosquittoService(workdir / "mosquitto")
    postgres: list[PostgresService] = []
    table = Table(title="sitewatch bench alerts")
    for header in ("what", "figure", "limit / target"):
        table.add_column(header)
    try:
        broker.start()
        if "latency" in parts:
            console.print(
                f"latency: {episodes} entrapments, Modbus → gateway → Mosquitto → analytics → alerts → webhook"
            )
            result = latency(workdir, broker, episodes, console.print)
            lat = result["latencies"]
            p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
            console.print(f"  findings made by {result['made_by']}")
            table.add_row("entrapment, gateway sample → webhook receipt",
                          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (max {max(lat) * 1000:.0f} ms, n={len(lat)})",
                          f"p99 < {TARGET_P99_S:.0f} s: {'met' if p99 < TARGET_P99_S else 'NOT met'}")  # fmt: skip
        if "storm" in parts:
            console.print(f"storm: a gateway with {storm_devices} devices dies, then comes back")
            s = storm(workdir, broker, storm_devices, console.print)
            ok = s["during"] == 1 and s["during_gateway_only"]
            table.add_row(f"storm: notifications while the gateway of {s['devices']} devices was down",
                          str(s["during"]), f"exactly 1, the gateway's: {'met' if ok else 'NOT met'}")  # fmt: skip
            table.add_row("storm: device alerts notified after it came back", str(s["late_device_alerts"]),
                          f"0: {'met' if s['late_device_alerts'] == 0 else 'NOT met'} "
                          f"({s['after']} notification(s) after, the gateway's resolution)")  # fmt: skip
        if "dedup" in parts:
            for choice in databases:
                _dedup_rows(table, choice, workdir, broker, postgres, dedup_producers, dedup_rate, dedup_seconds,
                            dedup_linger_ms / 1000, dedup_fingerprints, dedup_store_findings, dedup_runs, dedup_over_mqtt,
                            console.print)  # fmt: skip
    finally:
        broker.kill() if broker.running else None
        for server in postgres:
            server.kill() if server.running else None
        shutil.rmtree(workdir, ignore_errors=True)
    console.print(table)
    console.print(f"machine: {os.cpu_count()} cores, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
                  f"(figures on a shared machine are noisy)")  # fmt: skip


def _dedup_rows(table: Table, choice: str, workdir: Path, broker: MosquittoService, postgres: list[PostgresService],
                producers: int, rate: float, seconds: float, linger_s: float, fingerprints: int, store_findings: int,
                runs: int, over_mqtt: bool, say: Callable[[str], None]) -> None:  # fmt: skip
    """Measure dedup on one database ``runs`` times (over MQTT, then the apply path alone); add its rows."""
    try:
        label, url = _database(choice, workdir, postgres)
    except ServiceError as exc:  # PostgreSQL not installed here: say so, measure the others
        table.add_row(f"dedup ({choice})", "not measured", str(exc))
        return
    how = (f"each publishing what it made within {linger_s * 1000:g} ms as analytics does (batches per compound)"
           if linger_s > 0 else "one message per finding")  # fmt: skip
    mqtt_part = (
        f"{producers} producers ({how}), {rate:,.0f} findings/s offered for {seconds:g} s, then "
        if over_mqtt
        else ""
    )
    say(f"dedup on {label} over {fingerprints} fingerprints: {mqtt_part}{store_findings:,} findings straight "
        f"to the store; {runs} run(s)")  # fmt: skip
    engine = alerts_engine(url)
    mqtt_runs: list[dict[str, Any]] = []
    store_runs: list[dict[str, Any]] = []
    try:
        city = _registry(engine, workdir)
        _channel(engine, f"crew-{time.monotonic_ns()}", "http://127.0.0.1:9/unused", ChannelScope.CREW,
                 city.crews["camera"])  # fmt: skip
        for run in range(runs):
            tag = f"{DEDUP_SOURCE}.{time.monotonic_ns()}"
            if over_mqtt:
                m = dedup_mqtt(engine, workdir, broker, producers, rate, seconds, fingerprints, tag, linger_s, say,
                               first=2 * run * fingerprints)  # fmt: skip
                mqtt_runs.append(m)
                cpu = m["cpu"]
                say(f"  run {run + 1}/{runs}: over MQTT {m['rate']:,.0f}/s applied ({m['offered']:,.0f}/s "
                    f"offered, {m['sent'] / m['messages']:.0f} findings a message, {m['per_transaction']:.0f} a transaction), "
                    f"{m['open']} open alerts; "
                    f"CPU s: alerting {cpu['alerting']:.1f} (its decoder process {cpu['decoder']:.1f}), producers {cpu['producers']:.1f}, broker "
                    f"{cpu['broker']:.1f} in {m['wall']:.1f} s; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
            st = dedup_store(engine, workdir, broker.url, store_findings, fingerprints, f"{tag}.store",
                             first=(2 * run + 1) * fingerprints)  # fmt: skip
            store_runs.append(st)
            say(f"  run {run + 1}/{runs}: apply path alone {st['rate']:,.0f}/s, {st['open']} open alerts")
    finally:
        engine.dispose()
    limit = f"{rate:,.0f}/s"
    if mqtt_runs:
        applied = median([m["rate"] for m in mqtt_runs])
        each = ", ".join(f"{m['rate']:,.0f}" for m in mqtt_runs)
        table.add_row(f"dedup ({label}): findings offered over MQTT, median",
                      f"{median([m['offered'] for m in mqtt_runs]):,.0f}/s", "")  # fmt: skip
        per = median([m["sent"] / m["messages"] for m in mqtt_runs])
        table.add_row(f"dedup ({label}): findings applied by one alerting process over MQTT "
                      f"({per:.0f} findings a message), median of {runs}",
                      f"{applied:,.0f}/s ({each})", f"{limit}: {'met' if applied >= 0.95 * rate else 'NOT met'}")  # fmt: skip
    store = median([st["rate"] for st in store_runs])
    each = ", ".join(f"{st['rate']:,.0f}" for st in store_runs)
    table.add_row(f"dedup ({label}): apply path alone (Alerting.apply_batch, {BATCH} per transaction), "
                  f"median of {runs}", f"{store:,.0f}/s ({each})",
                  f"{limit}: {'met' if store >= rate else 'NOT met'}")  # fmt: skip
    ok = all(r["open"] == r["distinct"] == fingerprints and r["fed"] == r["sent"] for r in mqtt_runs) and all(
        st["open"] == fingerprints and st["fed"] == st["findings"] for st in store_runs
    )
    counts = [f"{r['open']}/{r['distinct']}" for r in mqtt_runs] + [f"{st['open']}/{fingerprints}" for st in store_runs]
    table.add_row(f"dedup ({label}): open alerts / distinct fingerprints, every run", " ".join(counts),
                  f"= {fingerprints}: {'met' if ok else 'NOT met'}")  # fmt: skip
    if mqtt_runs:
        doubled = sum(r["doubled"] for r in mqtt_runs)
        table.add_row(f"dedup ({label}): alerts listed twice in notifications", str(doubled),
                      f"0: {'met' if doubled == 0 else 'NOT met'}")  # fmt: skip


__all__ = ["bench_alerts", "median", "percentile"]
