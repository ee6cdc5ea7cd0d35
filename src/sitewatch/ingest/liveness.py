"""Gateway liveness stored: each gateway's births, deaths and counters, from its state and stats.

A small consumer beside ingest subscribes to every gateway's retained ``state`` (birth/death) and
``stats`` topics and writes to the store what changed:

- an ``online`` or ``offline`` event on the gateway's own device (kind ``gateway``) when its state
  changes, with attributes ``bdseq`` and ``sent_ms`` (the payload's time). The event's time is when
  the centre learnt it: the birth's own time, a graceful death's own time, or, for the broker's
  will (whose time is when that session began), the time it arrived. ``Store.gateways()`` reads
  the newest of these per gateway.
- a death whose ``bdseq`` is older than the current birth's is **stale** (the will of an earlier
  session delivered late) and changes nothing; it is counted (``stale_deaths``). A birth always
  makes the gateway online (a gateway whose queue file was lost starts again at bdseq 0).
- each ``stats`` message as a sample of the gateway's device at its own time: every counter a
  metric (names made storable: ``modbus.reads`` becomes ``modbus_reads``), so counters can be
  charted and their ``increase`` taken over time like any register.

The state machine starts from what the store already holds, so a restart (which receives the
retained messages again) writes nothing new. Several ingest workers may each run one: they write
the same births, deaths and counters (deaths they each saw arrive may differ by milliseconds).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from ..contract import (
    Channel,
    DeviceKind,
    Event,
    Limits,
    Sample,
    StateMessage,
    StatsMessage,
    decode_state,
    decode_stats,
    gateway_device,
    now_ms,
    subscription,
)
from ..contract.checker import metric_name_problem
from ..mqtt_client import client_for, connect_options
from ..settings import Settings
from ..store.base import GatewayStatus, InvalidPoint, Store, StoredEvent, StoredSample, StoreUnavailable
from ..store.checks import RESERVED_METRICS
from ..store.derived import BDSEQ_ATTR, GATEWAY_OFFLINE, GATEWAY_ONLINE

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
RETRY_S = (0.5, 10.0)  # first and longest wait before writing again after the store failed


def counter_metric(name: str) -> str | None:
    """The metric name a stats counter is stored under, or None when it cannot be stored."""
    metric = _UNSAFE.sub("_", name)
    return None if metric_name_problem(metric, RESERVED_METRICS) else metric


@dataclass(slots=True)
class _Known:
    online: bool
    bdseq: int
    since_ms: int


@dataclass(slots=True)
class LivenessTracker:
    """Births, deaths and stats in; what to store out (pure: no I/O)."""

    known: dict[str, _Known] = field(default_factory=dict)  # gateway device -> state
    stale_deaths: int = 0

    @classmethod
    def from_statuses(cls, statuses: Iterable[GatewayStatus]) -> LivenessTracker:
        """A tracker that starts from what the store holds."""
        return cls({s.device: _Known(s.online, s.bdseq, s.since_ms) for s in statuses})

    def on_state(self, message: StateMessage, received_ms: int) -> StoredEvent | None:
        """The event to store for a birth or death, or None when it changes nothing."""
        device = gateway_device(message.compound, message.gateway)
        known = self.known.get(device)
        if message.online:
            if known is not None and known.online and known.bdseq == message.bdseq:
                return None  # the same session announced again (a rebirth, a retained copy)
            ts = min(message.ts_ms, received_ms)
        else:
            if known is not None and known.online and message.bdseq < known.bdseq:
                self.stale_deaths += 1
                log.info(
                    "stale death of %s ignored: bdseq %s, the current birth has %s",
                    device, message.bdseq, known.bdseq,
                )  # fmt: skip
                return None
            if known is not None and not known.online:
                return None
            # a graceful death carries its own time; the broker's will, when its session began
            graceful = known is None or message.ts_ms >= known.since_ms
            ts = min(message.ts_ms, received_ms) if graceful else received_ms
        if known is not None:
            ts = max(ts, known.since_ms + 1)  # one gateway's events stay in the order they happened
        self.known[device] = _Known(message.online, message.bdseq, ts)
        attrs = {BDSEQ_ATTR: str(message.bdseq), "sent_ms": str(message.ts_ms)}
        name = GATEWAY_ONLINE if message.online else GATEWAY_OFFLINE
        return StoredEvent(Event(device, DeviceKind.GATEWAY, ts, name, None, attrs), message.compound)

    @staticmethod
    def on_stats(message: StatsMessage) -> StoredSample | None:
        """The gateway's counters as one sample of its device, or None when none can be stored."""
        values = {
            metric: float(value)
            for name, value in sorted(message.counters.items())
            if (metric := counter_metric(name)) is not None
        }
        if not values:
            return None
        device = gateway_device(message.compound, message.gateway)
        return StoredSample(Sample(device, DeviceKind.GATEWAY, message.ts_ms, values), message.compound)


class LivenessConsumer:
    """Subscribes to every gateway's ``state`` and ``stats`` and stores what ``LivenessTracker`` says."""

    def __init__(self, settings: Settings, store: Store, *, client_id: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self.client_id = client_id or f"{settings.mqtt.client_id}-liveness"
        self.tracker: LivenessTracker | None = None
        self.rejected = 0  # state/stats payloads the contract refused
        self.written = 0  # events and samples stored
        self._limits = Limits(max_payload_bytes=settings.contract.max_payload_bytes)
        self._inbox: queue.Queue[tuple[str, bytes, int] | None] = queue.Queue(maxsize=10_000)
        self._client = client_for(settings.mqtt, self.client_id, keep_session=False)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._writer = threading.Thread(target=self._write_loop, name="liveness-writer", daemon=True)
        self._stopping = threading.Event()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        client.subscribe([(subscription(Channel.STATE), 1), (subscription(Channel.STATS), 1)])

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self._inbox.put((message.topic, bytes(message.payload), now_ms()))

    def start(self) -> None:
        """Connect and start storing (the writer thread and paho's network thread)."""
        self._writer.start()
        mqtt = self.settings.mqtt
        self._client.connect_async(
            mqtt.host, mqtt.port, mqtt.keepalive_s, **connect_options(mqtt, keep_session=False)
        )
        self._client.loop_start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Disconnect, store what arrived, stop."""
        self._client.disconnect()
        self._client.loop_stop()
        self._stopping.set()
        self._inbox.put(None)
        self._writer.join(timeout_s)

    def drained(self) -> bool:
        """True when everything received so far is stored."""
        return self._inbox.unfinished_tasks == 0

    def _write_loop(self) -> None:
        delay = RETRY_S[0]
        while self.tracker is None:  # the state the store holds, before any message is judged
            try:
                self.tracker = LivenessTracker.from_statuses(self.store.gateways())
            except StoreUnavailable as exc:
                log.warning("liveness: cannot read the gateways' state yet: %s", exc)
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, RETRY_S[1])
        while True:
            item = self._inbox.get()
            batch = [item]
            while not self._inbox.empty() and len(batch) < 1000:
                batch.append(self._inbox.get_nowait())
            done = None in batch
            self._store(self.tracker, [b for b in batch if b is not None])
            for _ in batch:
                self._inbox.task_done()
            if done:
                return

    def _store(self, tracker: LivenessTracker, items: list[tuple[str, bytes, int]]) -> None:
        events: list[StoredEvent] = []
        samples: list[StoredSample] = []
        for topic, payload, received_ms in items:
            if topic.endswith("/" + Channel.STATE.value):
                state = decode_state(topic, payload, limits=self._limits)
                if state.message is None:
                    self.rejected += 1
                    log.warning("liveness: refused state on %s: %s", topic, state.rejections)
                elif (event := tracker.on_state(state.message, received_ms)) is not None:
                    events.append(event)
            else:
                stats = decode_stats(topic, payload, limits=self._limits)
                if stats.message is None:
                    self.rejected += 1
                    log.warning("liveness: refused stats on %s: %s", topic, stats.rejections)
                elif (sample := tracker.on_stats(stats.message)) is not None:
                    samples.append(sample)
        delay = RETRY_S[0]
        while samples or events:
            try:
                self.store.write(samples, events)
                self.written += len(samples) + len(events)
                return
            except InvalidPoint as exc:  # cannot be stored ever: leave it out, keep the rest
                log.warning("liveness: the store refused %s: %s", exc.device, exc.reason)
                if exc.index < len(samples):
                    samples.pop(exc.index)
                else:
                    events.pop(exc.index - len(samples))
            except StoreUnavailable as exc:  # keep them and try again: births and deaths matter
                if self._stopping.is_set():
                    log.error(
                        "liveness: stopping with %s items unstored: %s", len(samples) + len(events), exc
                    )
                    return
                log.warning("liveness: store unavailable, retrying in %.1f s: %s", delay, exc)
                self._stopping.wait(delay)
                delay = min(delay * 2, RETRY_S[1])
