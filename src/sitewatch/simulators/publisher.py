"""Publish live simulated compounds over MQTT, each as its own site gateway, from one thread.

Every compound gets its own MQTT connection and speaks the site gateway's Sparkplug-style protocol
through the same :class:`~sitewatch.edge.sparkplug.EdgeSession` (its will is its death message, a
retained birth with its devices on connect, ``bdseq``/``seq`` per the contract's Envelope), readings
batched on the data channel and events on the event channel, all at QoS 1. One ``select`` loop
serves all connections, so a whole city runs on one core.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ..contract import Channel, DataMessage, DeviceInfo, DeviceKind, Event, EventMessage, Sample, now_ms
from ..edge.sparkplug import EdgeSession
from ..mqtt_client import Client, apply_credentials
from ..settings import MqttSettings
from .live import LiveSite

log = logging.getLogger(__name__)
MAX_SAMPLES_PER_MESSAGE = 500  # keeps payloads far below the contract's 1 MiB and 10,000-sample limits
GATEWAY_REPORT_MS = 60_000  # the gateway's own metrics, once a simulated minute


@dataclass(slots=True)
class PublishStats:
    """Counters of a run (all gateways together)."""

    samples: int = 0
    readings: int = 0
    events: int = 0
    messages: int = 0  # data and event messages
    state_messages: int = 0  # births and deaths
    acked: int = 0  # PUBACKs received (for every kind of message)
    dropped: int = 0  # messages refused because a gateway's bounded queue was full
    connects: int = 0
    disconnects: int = 0


class SimulatedGateway:
    """One compound's gateway: an MQTT client publishing what its LiveSite reports."""

    def __init__(
        self, live: LiveSite, settings: MqttSettings, stats: PublishStats, *, max_queued: int = 20_000
    ) -> None:
        self.live = live
        self.settings = settings
        self.stats = stats
        bdseq = now_ms() // 1000 % 2**31  # increases from run to run as well as on every reconnect
        self.session = EdgeSession(live.compound, live.gateway, bdseq)
        self.connected = False
        self.closing = False
        self.next_attempt = 0.0
        # The gateway's own metrics (contract kind "gateway"), reported every GATEWAY_REPORT_MS.
        self.started_ms: int | None = None
        self.next_report_ms = 0
        self.read_total = self.sent_total = self.acked_total = self.dropped_total = 0
        self.unacked: dict[int, int] = {}  # message id -> device readings it carries
        self.offline: set[str] = set()
        self.client = Client(
            CallbackAPIVersion.VERSION2, client_id=f"sitewatch-sim-{live.gateway}", clean_session=True
        )
        self.client.max_inflight_messages_set(settings.max_inflight)
        self.client.max_queued_messages_set(max_queued)
        apply_credentials(self.client, settings)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    def connect(self) -> None:
        """Open the connection (non-blocking after the TCP handshake); the will carries its new bdseq."""
        self.next_attempt = time.monotonic() + 2.0
        self.session = EdgeSession(self.live.compound, self.live.gateway, self.session.bdseq + 1)
        self.session.set_will(self.client)
        try:
            self.client.connect(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        except OSError as exc:
            log.warning("gateway %s cannot connect to %s: %s", self.live.gateway, self.settings.url, exc)

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("gateway %s refused by the broker: %s", self.live.gateway, reason)
            return
        self.connected = True
        self.stats.connects += 1
        devices = (*self.live.device_infos(), DeviceInfo(self.live.gateway, DeviceKind.GATEWAY, "internal"))
        self.session.publish_birth(client, devices)
        self.stats.state_messages += 1

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if self.connected and not self.closing:
            self.stats.disconnects += 1
            log.warning("gateway %s lost its broker connection: %s", self.live.gateway, reason)
        self.connected = False

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, _r: object, _p: object) -> None:
        self.stats.acked += 1
        self.acked_total += self.unacked.pop(mid, 0)

    def _send(self, channel_topic: str, payload: bytes, device_readings: int = 0) -> bool:
        info = self.client.publish(channel_topic, payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self.stats.dropped += 1
            self.dropped_total += device_readings
            return False
        self.stats.messages += 1
        self.sent_total += device_readings
        if device_readings:
            self.unacked[info.mid] = device_readings
        return True

    def _own_sample(self, ts_ms: int) -> Sample:
        """The gateway's own metrics at ``ts_ms``."""
        started = self.started_ms if self.started_ms is not None else ts_ms
        values = {
            "uptime": max(0, ts_ms - started) // 1000, "queue_depth": sum(self.unacked.values()),
            "read_total": self.read_total, "sent_total": self.sent_total, "acked_total": self.acked_total,
            "dropped_total": self.dropped_total, "devices_online": len(self.live.site.devices) - len(self.offline),
        }  # fmt: skip
        return Sample(self.live.gateway, DeviceKind.GATEWAY, ts_ms, {k: float(v) for k, v in values.items()})

    def publish(
        self, samples: Sequence[Sample], events: Sequence[Event], sim_now_ms: int | None = None
    ) -> None:
        """Publish samples (batched) and events; while offline paho keeps them queued, up to a bound.

        With ``sim_now_ms`` the gateway adds its own metrics once every GATEWAY_REPORT_MS.
        """
        self.read_total += sum(len(s.values) for s in samples)
        for e in events:
            if e.name == "offline":
                self.offline.add(e.device)
            elif e.name == "online":
                self.offline.discard(e.device)
        batch = list(samples)
        if sim_now_ms is not None:
            if self.started_ms is None:
                self.started_ms = sim_now_ms
                self.next_report_ms = sim_now_ms
            if sim_now_ms >= self.next_report_ms:
                batch.append(self._own_sample(sim_now_ms))
                self.next_report_ms = sim_now_ms - sim_now_ms % GATEWAY_REPORT_MS + GATEWAY_REPORT_MS
        for start in range(0, len(batch), MAX_SAMPLES_PER_MESSAGE):
            part = tuple(batch[start : start + MAX_SAMPLES_PER_MESSAGE])
            readings = sum(len(s.values) for s in part)
            own = sum(len(s.values) for s in part if s.kind is DeviceKind.GATEWAY)
            payload = DataMessage(self.session.envelope(), part).encode()
            if self._send(self.session.topics[Channel.DATA], payload, readings - own):
                self.stats.samples += len(part)
                self.stats.readings += readings
        if events and self._send(
            self.session.topics[Channel.EVENT], EventMessage(self.session.envelope(), tuple(events)).encode()
        ):
            self.stats.events += len(events)

    def close(self) -> None:
        """Publish the death message (a clean disconnect does not fire the will) before disconnecting."""
        self.closing = True
        if self.connected:
            self.session.publish_death(self.client)
            self.stats.state_messages += 1


class CityRunner:
    """Step every LiveSite on a shared clock and publish through its gateway, in one select loop."""

    def __init__(
        self, lives: Sequence[LiveSite], settings: MqttSettings, *, speed: float = 1.0, step_s: float = 1.0,
        sim_start_ms: int | None = None,
    ) -> None:  # fmt: skip
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.stats = PublishStats()
        self.gateways = [SimulatedGateway(live, settings, self.stats) for live in lives]
        self.speed = speed
        self.step_s = step_s
        self.sim_start_ms = now_ms() if sim_start_ms is None else sim_start_ms
        self._wall0 = time.monotonic()
        self._due: list[float] | None = None
        self._cursor = 0
        self._next_misc = 0.0  # keep-alives and reconnects, once a second across run() calls

    def sim_now(self) -> int:
        """Simulated time: the start plus wall time since the start times the speed."""
        return self.sim_start_ms + int((time.monotonic() - self._wall0) * 1000 * self.speed)

    def connect(self, timeout: float = 30.0) -> None:
        """Connect every gateway and wait until all have their CONNACK (or ``timeout`` passes)."""
        for gw in self.gateways:
            gw.connect()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(gw.connected for gw in self.gateways):
            self._poll(0.05)
        missing = [gw.live.gateway for gw in self.gateways if not gw.connected]
        if missing:
            log.warning(
                "%d gateways not connected yet (e.g. %s); they keep retrying", len(missing), missing[0]
            )

    def run(
        self, duration_s: float | None, on_tick: Callable[[PublishStats], None] | None = None
    ) -> PublishStats:
        """Publish until ``duration_s`` of wall time has passed (forever when None)."""
        began = time.monotonic()
        n = len(self.gateways)
        if self._due is None:  # first run: the simulated clock starts now
            self._wall0 = began
            # Stagger the compounds over one step so the broker sees a steady flow, not a burst per second.
            self._due = [began + self.step_s * i / max(n, 1) for i in range(n)]
        due = self._due
        end = None if duration_s is None else began + duration_s
        next_misc = self._next_misc or began + 1.0
        cursor = self._cursor
        while end is None or time.monotonic() < end:
            now = time.monotonic()
            for _ in range(n):
                i = cursor
                if due[i] > now:
                    break
                gw = self.gateways[i]
                sim_now = self.sim_now()
                samples, events = gw.live.step(sim_now)
                gw.publish(samples, events, sim_now)
                due[i] += self.step_s
                cursor = (cursor + 1) % n
            if now >= next_misc:
                self._misc()
                next_misc = now + 1.0
                if on_tick is not None:
                    on_tick(self.stats)
            wait = max(
                0.0, min(due[cursor], next_misc, end if end is not None else next_misc) - time.monotonic()
            )
            self._poll(min(wait, 0.2))
        self._cursor = cursor
        self._next_misc = next_misc
        return self.stats

    def close(self, timeout: float = 10.0) -> None:
        """Publish every gateway's death, wait for outstanding acknowledgements, disconnect."""
        for gw in self.gateways:
            gw.close()
        deadline = time.monotonic() + timeout
        while (
            time.monotonic() < deadline and self.stats.acked < self.stats.messages + self.stats.state_messages
        ):
            self._poll(0.05)
        for gw in self.gateways:
            gw.client.disconnect()
            gw.client.loop_write()

    def _misc(self) -> None:
        now = time.monotonic()
        for gw in self.gateways:
            if gw.connected:
                gw.client.loop_misc()
            elif now >= gw.next_attempt and not gw.closing:
                gw.connect()

    def _poll(self, timeout: float) -> None:
        socks = {}
        for gw in self.gateways:
            sock = gw.client.socket()
            if sock is not None:
                socks[sock] = gw.client
        if not socks:
            time.sleep(timeout)
            return
        writers = [s for s, c in socks.items() if c.want_write()]
        try:
            readable, writable, _ = select.select(list(socks), writers, [], timeout)
        except (OSError, ValueError):
            return
        for s in readable:
            socks[s].loop_read()
        for s in writable:
            if socks[s].socket() is s:
                socks[s].loop_write()
