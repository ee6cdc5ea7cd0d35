"""``sitewatch alerts run``: findings over MQTT in, alerts and notifications out.

paho's network thread queues each finding message (bounded by ``mqtt.max_inflight``); a processor
thread decodes it with the contract's ``decode_findings`` (a single finding, or a batch of them
that analytics publishes when it has several at once) and applies the findings of the messages
waiting in one transaction (or arriving within ``LINGER_S`` of the first: a transaction's fixed
cost, its commit above all, is shared by more findings), and only then acknowledges those
messages (persistent session, manual acks): a crash redelivers, and the (finding id, state) record makes the copy harmless. A refused
message goes to the dead-letter topic with its reason, and is acknowledged; so does a refused
element of a batch, alone, while the batch's other findings are applied. A ticker thread runs
the timers (woken at once after each transaction, so a critical alert is flushed without
waiting), and the delivery worker empties the outbox.

In one process with analytics, call :meth:`AlertService.submit` with each finding instead of (or
as well as) consuming MQTT.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..contract import (
    DEADLETTER_TOPIC,
    FINDING_SUBSCRIPTION,
    SCHEMA_VERSION,
    Decoded,
    Finding,
    Limits,
    Rejection,
    decode_findings,
    now_ms,
)
from ..mqtt_client import client_for, connect_options, message_topic
from ..settings import Settings
from .core import Alerting
from .decoder import Decoder
from .outbox import Delivery

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 7 * 86_400
MAX_ECHO = 64 * 1024
BATCH = 1000  # findings applied in one transaction (more only when one batch message holds more)
LINGER_S = 0.02  # a transaction waits this long after its first message for others to join it


@dataclass(frozen=True, slots=True)
class _Inbound:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    decoding: bool = False  # handed to the decoder process, whose result comes in the same order


def dead_letter(topic: str, payload: bytes, reason: str, detail: str, worker: str) -> bytes:
    """A dead letter for a refused finding: the reason, and the payload (text or base64, capped)."""
    head = payload[:MAX_ECHO]
    try:
        text, encoding = head.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(head).decode("ascii"), "base64"
    return orjson.dumps({
        "v": SCHEMA_VERSION, "reason": reason, "detail": detail, "topic": topic, "received": now_ms(),
        "worker": worker, "payload": text, "payload_encoding": encoding, "payload_bytes": len(payload),
        "payload_truncated": len(payload) > MAX_ECHO,
    })  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Failure:
    """Alerting's own failure on a finding, in the shape of a contract rejection."""

    detail: str
    reason: str = "alerting_error"


class AlertService:
    """The alerting process: MQTT consumer, timers, delivery."""

    def __init__(self, settings: Settings, engine: Engine, *, client_id: str | None = None,
                 tick_s: float = 0.5, deliver: bool = True, decode_apart: bool | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.engine = engine
        self.client_id = client_id or f"{settings.mqtt.client_id}-alerts"
        self.tick_s = tick_s
        self.delivery = Delivery(engine, settings) if deliver else None
        self.core = Alerting(engine, settings, on_notify=self.delivery.notify if self.delivery else None)
        self.limits = Limits(max_payload_bytes=settings.contract.max_payload_bytes)
        self.rejected: Counter[str] = Counter()
        self.received = 0  # findings (each element of a batch) and refused messages
        self.messages = 0  # MQTT messages
        self.applied = 0  # findings applied (committed)
        self.transactions = 0  # batches committed (findings per transaction: applied / transactions)
        self.last_commit_at: float | None = None  # time.monotonic() of the last batch committed
        self._queue: queue.Queue[_Inbound | None] = queue.Queue(maxsize=max(1, settings.mqtt.max_inflight))
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._generation = 0
        self._threads: list[threading.Thread] = []
        self._client: mqtt.Client | None = None
        # decode in a child process (settings.alerts.decode_process unless said here)
        self.decode_apart = settings.alerts.decode_process if decode_apart is None else decode_apart
        self._decoder: Decoder | None = None

    # --- MQTT ---------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = client_for(self.settings.mqtt, self.client_id, keep_session=True, manual_ack=True)
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:  # fmt: skip
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self._generation += 1
        client.subscribe(FINDING_SUBSCRIPTION, qos=1)  # connected once the broker confirms it
        log.info("alerts connected to %s:%s as %s, subscribed to %s", self.settings.mqtt.host,
                 self.settings.mqtt.port, self.client_id, FINDING_SUBSCRIPTION)  # fmt: skip

    def _on_subscribe(self, *args: object) -> None:
        self._connected.set()
        log.info("alerts subscribed to %s", FINDING_SUBSCRIPTION)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:  # fmt: skip
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("alerts lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        topic = message_topic(message)  # a non-UTF-8 topic is refused as a bad one
        decoder = self._decoder
        apart = decoder is not None and not decoder.failed
        item = _Inbound(self._generation, message.mid, message.qos, topic, bytes(message.payload), apart)
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                break
            except queue.Full:
                continue
        else:
            return
        if decoder is not None and apart and not decoder.send(topic, item.payload):
            log.warning("decoding findings in this process from now on")  # the item is decoded here

    def _ack(self, item: _Inbound) -> None:
        if self._client is not None and item.qos > 0 and item.generation == self._generation:
            self._client.ack(item.mid, item.qos)

    # --- work ---------------------------------------------------------------------------------

    def submit(self, finding: Finding) -> str:
        """Apply a finding handed over in-process (analytics in the same process); returns what it did."""
        applied = self.core.apply(finding)
        self._wake.set()
        return applied.value

    def _refuse(self, item: _Inbound, rejections: Any) -> None:
        """Dead-letter a refused message (its first rejection's reason), and acknowledge it."""
        reason = rejections[0] if rejections else None
        code = str(reason.reason) if reason else "bad_shape"
        detail = reason.detail if reason else "refused"
        self._dead_letter(item.topic, item.payload, code, detail)
        self._ack(item)

    def _dead_letter(self, topic: str, payload: bytes, code: str, detail: str) -> None:
        self.rejected[code] += 1
        log.warning("finding refused (%s): %s", code, detail)
        if self._client is not None:
            self._client.publish(
                DEADLETTER_TOPIC, dead_letter(topic, payload, code, detail, self.client_id), qos=1
            )

    def _refuse_element(self, item: _Inbound, rejection: Rejection) -> None:
        """Dead-letter one refused element of a batch (the element as its payload); the message is
        acknowledged with the batch's other findings."""
        self._dead_letter(item.topic, orjson.dumps(rejection.item), str(rejection.reason), rejection.detail)

    def _next_batch(self) -> tuple[list[_Inbound], list[Finding]] | None:
        """The messages waiting now or arriving within LINGER_S with findings to apply, and their
        findings in order: at least one message, and more while they hold fewer than BATCH findings
        (None when stopping). Refusals are dead-lettered on the way: a refused message is
        acknowledged at once, a refused element of a batch goes with its message."""
        kept: list[_Inbound] = []
        findings: list[Finding] = []
        item = self._queue.get()
        until = time.monotonic() + LINGER_S
        while True:
            if item is None:
                if kept:
                    self._queue.put(None)  # stop after applying what is in hand
                    return kept, findings
                return None
            self.messages += 1
            decoded = self._decode(item)
            if decoded.message is None:
                self.received += 1
                self._refuse(item, decoded.rejections)
            else:
                self.received += len(decoded.message) + len(decoded.rejections)
                for rejection in decoded.rejections:
                    self._refuse_element(item, rejection)
                if decoded.message:
                    kept.append(item)
                    findings.extend(decoded.message)
                else:  # every element refused: nothing to wait for
                    self._ack(item)
            if len(findings) >= BATCH:
                return kept, findings
            try:
                item = self._queue.get(timeout=max(0.0, until - time.monotonic())) if kept else self._queue.get()
            except queue.Empty:
                return kept, findings

    def _decode(self, item: _Inbound) -> Decoded[tuple[Finding, ...]]:
        """The decoded payload: from the decoder process when it was handed there, else decoded here."""
        if item.decoding and self._decoder is not None:
            decoded = self._decoder.receive()
            if decoded is not None:
                return decoded
        return decode_findings(item.topic, item.payload, limits=self.limits)

    def _process(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            accepted, findings = batch
            delay = 0.5
            while not self._stop.is_set():
                try:  # one transaction for what is waiting: the acknowledgements follow its commit
                    self.core.apply_batch(findings)
                    self.applied += len(findings)
                    self.transactions += 1
                    self.last_commit_at = time.monotonic()
                    break
                except SQLAlchemyError as exc:  # the database is away: keep the messages, try again
                    log.error("could not store findings (%s); retrying in %.1f s", exc, delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, 10.0)
                except Exception as exc:  # a fault of alerting's own: keep the messages for a person
                    log.exception("findings could not be applied; dead-lettering them")
                    for item in accepted:
                        self._refuse(item, [_Failure(f"alerting failed: {type(exc).__name__}: {exc}"[:300])])
                    accepted = []
                    break
            else:
                return  # stopping: the messages stay unacknowledged and come again
            for item in accepted:
                self._ack(item)
            self._wake.set()

    def _ticker(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.core.tick()
            except SQLAlchemyError as exc:
                log.error("alert timers failed (%s); trying again", exc)
            except Exception:
                log.exception("alert timers failed; trying again")
            self._wake.wait(self.tick_s)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, mqtt_enabled: bool = True) -> None:
        """Start the threads (and the MQTT consumer unless ``mqtt_enabled`` is false)."""
        self._threads = [threading.Thread(target=self._ticker, name="alerts-timers", daemon=True)]
        if mqtt_enabled:
            if self.decode_apart:
                self._decoder = Decoder(self.limits)
            self._client = self._make_client()
            self._client.connect_async(
                self.settings.mqtt.host, self.settings.mqtt.port, keepalive=self.settings.mqtt.keepalive_s,
                **connect_options(self.settings.mqtt, keep_session=True, session_expiry_s=SESSION_EXPIRY_S),
            )  # fmt: skip
            self._threads.append(threading.Thread(target=self._process, name="alerts-findings", daemon=True))
            self._client.loop_start()
        for thread in self._threads:
            thread.start()
        if self.delivery is not None:
            self.delivery.start()

    @property
    def decoder_pid(self) -> int | None:
        """The process id of the decoder process, when there is one."""
        return self._decoder.pid if self._decoder is not None else None

    def wait_connected(self, timeout: float) -> bool:
        """Whether the consumer is connected and subscribed within ``timeout`` seconds."""
        return self._connected.wait(timeout)

    def stop(self) -> None:
        """Stop consuming, finish the finding at hand, stop the timers and the delivery worker."""
        self._stop.set()
        self._wake.set()
        if self._decoder is not None:  # first: the MQTT thread may be waiting on its pipe
            self._decoder.stop()
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        for thread in self._threads:
            thread.join(timeout=30)
        if self._decoder is not None:
            self._decoder.close()
        if self.delivery is not None:
            self.delivery.stop()

    def snapshot(self) -> dict[str, Any]:
        """Counters for the status line and the benchmarks."""
        delivery = self.delivery.stats if self.delivery else None
        return {
            "received": self.received, "messages": self.messages, "committed": self.applied, "transactions": self.transactions, "applied": dict(self.core.stats.applied), "rejected": dict(self.rejected),
            "notifications": self.core.stats.notifications, "escalations": self.core.stats.escalations,
            "delivered": delivery.delivered if delivery else 0,
            "failed_attempts": delivery.failed_attempts if delivery else 0,
            "at": time.time(),
        }  # fmt: skip
