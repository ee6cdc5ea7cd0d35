"""The MQTT side of the gateway: one thread that keeps a broker session and drains the disk queue.

Each connection is a fresh paho client whose will is the death message with a new, persisted
``bdseq``; the birth (retained) follows the CONNACK. Rows leave the queue only in
:meth:`Publisher._ack`, on the PUBACK of every message that carried them (paho's ``on_publish``
with the message id), never when ``publish()`` returns. After a (re)connect, what was queued
before it is the backlog: it goes oldest-first in batches that alternate with batches of live
rows, so replay runs at full speed without holding live data back.
"""

from __future__ import annotations

import contextlib
import logging
import queue as stdqueue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from ..contract import HOST_STATE_TOPIC, Channel, DeviceInfo, Sample, decode_host_state, now_ms
from ..edge.sparkplug import EdgeSession
from ..mqtt_client import client_for, connect_options
from .config import GatewayConfig
from .counters import Counters
from .queue import DiskQueue, Kind, Row
from .streams import Streams

log = logging.getLogger(__name__)

_MIN_BACKOFF_S = 0.2


@dataclass(slots=True)
class _Batch:
    lo: int
    hi: int
    readings: int
    events: int
    replay: bool
    queued_ms: int = 0  # when its oldest row was queued
    pending: int = 0  # messages of this batch not yet acknowledged


@dataclass(slots=True)
class _Session:
    """State of one broker connection."""

    client: mqtt.Client
    edge: EdgeSession  # topics, bdseq, seq, birth and death
    sid: int
    connected: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    connack_reason: str = ""
    refused: bool = False  # the broker refused a publish of this session
    inflight: dict[int, _Batch | None] = field(default_factory=dict)  # mid -> batch (None: untracked)


def frame_payload(header: dict[str, Any], key: bytes, bodies: Sequence[bytes]) -> bytes:
    """A data/event payload from a header and already-encoded items, without re-encoding them."""
    head = orjson.dumps(header)
    return head[:-1] + b',"' + key + b'":[' + b",".join(bodies) + b"]}"


class Publisher:
    """Keeps the broker session and moves queued rows to the broker; see the module docstring."""

    def __init__(
        self,
        config: GatewayConfig,
        queue: DiskQueue,
        counters: Counters,
        devices: Callable[[], Sequence[DeviceInfo]],
        on_command: Callable[[bytes], None] = lambda payload: None,
    ) -> None:
        self.config = config
        self.queue = queue
        self.counters = counters
        self.devices = devices
        self.on_command = on_command
        self.bdseq = -1
        self.birth_devices: frozenset[DeviceInfo] = frozenset()  # as listed in the last birth
        self.host_online: bool | None = None  # the central host's state (wait_for_host); None: unknown
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._drain_deadline = 0.0
        self._rebirth = threading.Event()
        self._acks: stdqueue.SimpleQueue[tuple[int, int, bool, str]] = stdqueue.SimpleQueue()
        self._direct: deque[list[Sample]] = deque(maxlen=16)
        # queued -> acknowledged, ms, of the oldest row of each recent live batch
        self.live_latency_ms: deque[int] = deque(maxlen=10_000)
        self._raw: deque[tuple[Channel, bytes, bool]] = deque(maxlen=16)
        self._session: _Session | None = None
        self._session_id = 0
        self._refusals = 0
        self._thread: threading.Thread | None = None

    # ---- control -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the publishing thread."""
        self._thread = threading.Thread(target=self._run, name="gateway-publisher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Tell the thread that rows were queued (called by the sink)."""
        self._wake.set()

    def rebirth(self) -> None:
        """Publish the birth message again (same bdseq; seq restarts at 0)."""
        self._rebirth.set()
        self._wake.set()

    def send_direct(self, samples: list[Sample]) -> None:
        """Publish samples without queueing them (the gateway's own counters); lost when offline."""
        self._direct.append(samples)
        self._wake.set()

    def send_message(self, channel: Channel, payload: bytes, retain: bool = False) -> None:
        """Publish a ready payload on one of this gateway's topics (QoS 1, not queued; lost offline)."""
        self._raw.append((channel, payload, retain))
        self._wake.set()

    @property
    def connected(self) -> bool:
        """Whether a broker session is up."""
        session = self._session
        return session is not None and session.connected.is_set() and not session.lost.is_set()

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Flush the queue for up to ``drain_timeout`` s, publish the death, disconnect, join."""
        self._drain_deadline = time.monotonic() + drain_timeout
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(drain_timeout + self.config.connect_timeout_s + 10)

    # ---- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = _MIN_BACKOFF_S
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                ok = self._serve_one_session()
            except Exception:  # never let the publisher die: log, back off, try again
                log.exception("gateway publisher error; reconnecting")
                ok = False
            if self._stopping.is_set():
                break
            # a session that lasted a while earns an immediate reconnect; a flapping one backs off
            if ok and not self._refusals and time.monotonic() - started > 5 * _MIN_BACKOFF_S:
                backoff = _MIN_BACKOFF_S
                continue
            wait = backoff * (2 ** min(self._refusals, 8))
            self._stopping.wait(min(wait, self.config.reconnect_max_s))
            backoff = min(backoff * 2, self.config.reconnect_max_s)

    def _new_client(self, bdseq: int) -> _Session:
        cfg = self.config.mqtt
        # the disk queue is the gateway's memory: every connection starts without a broker session
        client = client_for(cfg, self.config.client_id, keep_session=False, reconnect_on_failure=False)
        self._session_id += 1
        sid = self._session_id
        session = _Session(client, EdgeSession(self.config.compound, self.config.gateway, bdseq), sid)
        client.max_inflight_messages_set(cfg.max_inflight)
        client.connect_timeout = self.config.connect_timeout_s
        session.edge.set_will(client)

        def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
            session.connack_reason = str(reason)
            if reason.is_failure:
                session.lost.set()
            else:
                session.connected.set()
            self._wake.set()

        def on_disconnect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
            session.lost.set()
            self._wake.set()

        def on_publish(c: mqtt.Client, u: Any, mid: int, reason: Any, props: Any) -> None:
            self._acks.put((sid, mid, bool(reason.is_failure), str(reason)))
            self._wake.set()

        def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
            try:
                if message.topic == HOST_STATE_TOPIC:
                    self._host_state(bytes(message.payload))
                else:
                    self.on_command(bytes(message.payload))
            except Exception:
                log.exception("handling a message on %s failed", message.topic)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_message = on_message
        return session

    def _serve_one_session(self) -> bool:
        """Connect, publish until the connection drops or we stop; False when connecting failed."""
        bdseq = self.queue.next_bdseq()
        session = self._new_client(bdseq)
        cfg = self.config.mqtt
        try:
            options = connect_options(cfg, keep_session=False)
            session.client.connect(cfg.host, cfg.port, cfg.keepalive_s, **options)
        except (OSError, ValueError) as exc:
            self.counters.add("connect_failures")
            log.warning("broker %s:%s unreachable: %s", cfg.host, cfg.port, exc)
            return False
        session.client.loop_start()
        deadline = time.monotonic() + self.config.connect_timeout_s
        while not (session.connected.is_set() or session.lost.is_set() or self._stopping.is_set()):
            if time.monotonic() > deadline:
                break
            self._wake.wait(0.1)
            self._wake.clear()
        if not session.connected.is_set():
            self.counters.add("connect_failures")
            log.warning(
                "broker %s:%s did not accept the connection (%s)",
                cfg.host,
                cfg.port,
                session.connack_reason or "no CONNACK",
            )
            self._close(session)
            return False
        self.bdseq = bdseq
        self._session = session
        self.counters.add("connects")
        log.info(
            "connected to %s:%s as %s, bdseq %s", cfg.host, cfg.port, self.config.client_id, bdseq
        )
        try:
            self._publish_session(session)
        finally:
            self._session = None
            self._close(session)
        return True

    def _close(self, session: _Session) -> None:
        session.client.loop_stop()
        self._process_acks(session)  # PUBACKs that arrived before the connection went still count
        self.queue.release_all()
        session.inflight.clear()

    def _publish_session(self, session: _Session) -> None:
        client = session.client
        client.subscribe(session.edge.topics[Channel.CMD], qos=1)
        wait_for_host = self.config.wait_for_host
        if wait_for_host:
            self.host_online = None  # the broker hands over the retained state on subscription
            client.subscribe(HOST_STATE_TOPIC, qos=1)
        held = wait_for_host
        self._publish_birth(session)
        qcfg = self.config.queue
        streams = Streams.start(
            self.queue, qcfg.batch_rows, qcfg.max_message_bytes, qcfg.replay_readings_per_s
        )
        window = self.config.mqtt.max_inflight
        while True:
            self._wake.clear()
            self._process_acks(session)
            if session.lost.is_set():
                self.counters.add("disconnects")
                log.warning(
                    "connection to the broker lost; queueing on disk"
                )
                return
            if session.refused:
                log.error("disconnecting after the broker refused a publish")
                client.disconnect()
                return
            if self._stopping.is_set() and self._finish(session):
                return
            if self._rebirth.is_set():
                self._rebirth.clear()
                self._publish_birth(session)
            progressed = False
            hold = wait_for_host and not self.host_online
            if held and not hold:
                streams.restart_backlog()  # what was held goes out as replay
            held = hold
            while self._direct and len(session.inflight) < window:
                self._publish_rows(session, None, self._direct.popleft(), replay=False)
                progressed = True
            while self._raw and len(session.inflight) < window:
                channel, payload, retain = self._raw.popleft()
                info = client.publish(session.edge.topics[channel], payload, qos=1, retain=retain)
                session.inflight[info.mid] = None
                progressed = True
            # one live batch, then one backlog batch: neither stream waits for the other
            if not hold and len(session.inflight) < window and (rows := streams.next_live()):
                self._publish_rows(session, rows, None, replay=False)
                progressed = True
            if not hold and len(session.inflight) < window and (rows := streams.next_backlog()):
                self._publish_rows(session, rows, None, replay=True)
                progressed = True
            if not progressed:
                self._wake.wait(streams.pause_s())

    def _host_state(self, payload: bytes) -> None:
        decoded = decode_host_state(HOST_STATE_TOPIC, payload)
        if decoded.message is None:
            self.counters.add("host_state_rejected")
            detail = decoded.rejections[0].detail if decoded.rejections else "?"
            log.warning("central host state refused: %s", detail)
            return
        online = decoded.message.online
        if online != self.host_online:
            if online:
                log.info("central host online: sending")
            else:
                self.counters.add("host_offline")
                log.warning("central host offline: holding readings on disk")
        self.host_online = online
        self._wake.set()

    def _finish(self, session: _Session) -> bool:
        """While stopping: True once drained (or out of time), after publishing the death."""
        drained = self.queue.rows == 0 and not any(session.inflight.values())
        if not drained and time.monotonic() < self._drain_deadline:
            return False
        info = session.edge.publish_death(session.client)
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(timeout=2.0)
        session.client.disconnect()
        log.info(
            "gateway stopped; %s rows left in the disk queue",
            self.queue.rows,
        )
        return True

    def _publish_birth(self, session: _Session) -> None:
        devices = tuple(self.devices())
        self.birth_devices = frozenset(devices)
        info = session.edge.publish_birth(session.client, devices)
        session.inflight[info.mid] = None
        self.counters.add("births")
        log.info("birth published: bdseq %s, %s devices", session.edge.bdseq, len(devices))

    def _envelope(self, session: _Session, replay: bool) -> dict[str, Any]:
        return session.edge.envelope(replay).to_json()

    def _publish_rows(
        self, session: _Session, rows: list[Row] | None, direct: list[Sample] | None, replay: bool
    ) -> None:
        if direct is not None:  # the gateway's own samples: tracked as untracked mids only
            bodies = [orjson.dumps(s.to_json()) for s in direct]
            payload = frame_payload(self._envelope(session, False), b"samples", bodies)
            info = session.client.publish(session.edge.topics[Channel.DATA], payload, qos=1)
            session.inflight[info.mid] = None
            return
        assert rows
        batch = _Batch(
            rows[0].id,
            rows[-1].id,
            sum(r.readings for r in rows),
            sum(1 for r in rows if r.kind is Kind.EVENT),
            replay,
            rows[0].queued_ms,
        )
        start = 0
        for i in range(1, len(rows) + 1):  # one message per run of same-kind rows, in queue order
            if i < len(rows) and rows[i].kind is rows[start].kind:
                continue
            run = rows[start:i]
            start = i
            events = run[0].kind is Kind.EVENT
            payload = frame_payload(
                self._envelope(session, replay), b"events" if events else b"samples", [r.body for r in run]
            )
            channel = Channel.EVENT if events else Channel.DATA
            info = session.client.publish(session.edge.topics[channel], payload, qos=1)
            session.inflight[info.mid] = batch
            batch.pending += 1
            self.counters.add("messages_sent")
        self.counters.add("sent", batch.readings)
        if replay:
            self.counters.add("replayed", batch.readings)

    def _process_acks(self, session: _Session) -> None:
        while True:
            try:
                sid, mid, failed, reason = self._acks.get_nowait()
            except stdqueue.Empty:
                return
            if sid != session.sid:
                continue
            batch = session.inflight.pop(mid, None)
            if failed:
                self._refusals += 1
                session.refused = True
                self.counters.add("refused_by_broker")
                log.error(
                    "broker refused a publish (%s): check this gateway's ACL",
                    reason,
                )
                continue
            if batch is None:
                continue
            self._refusals = 0
            self.counters.add("messages_acknowledged")
            batch.pending -= 1
            if batch.pending == 0:
                if not batch.replay and batch.queued_ms:
                    self.live_latency_ms.append(now_ms() - batch.queued_ms)
                removed = self.queue.delete_range(batch.lo, batch.hi)
                self.counters.add("acknowledged", removed.readings)
                self.counters.add("events_acknowledged", removed.events)
