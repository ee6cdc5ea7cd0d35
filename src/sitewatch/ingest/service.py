"""The ingest service: MQTT (persistent session, manual acks) → decode → enrich → store → ack.

Threads: paho's network thread receives and queues messages; a decoder thread decodes, enriches
and cuts batches (by size and by time); ``ingest.store_writers`` store threads (no more than the
store's ``concurrent_writes``) each write a batch with retry and backoff, publish its dead letters,
and only then acknowledge its messages, while the decoder cuts the next batch. Several writes in
flight keep InfluxDB busy on every core, and each device's points still reach it in about the order
they were measured, which several workers on one shared subscription do not give it.

The broker should have no more than ``mqtt.max_inflight`` unacknowledged messages out to this
client (MQTT 5 Receive Maximum), so a store outage stops reading instead of filling memory. Not
every broker keeps to it (Mosquitto before 2.0.13 sends more once acknowledgements flow, and MQTT
3.1.1 has no such limit), so the queue to the decoder holds at most that many messages: when it is
full the network thread waits, stops reading the socket, and TCP holds the broker back.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ..contract import DEADLETTER_TOPIC, HOST_STATE_TOPIC, Channel, HostState, now_ms, shared, subscription
from ..contract.checker import Checker
from ..mqtt_client import client_for, connect_options, message_topic
from ..settings import MqttProtocol, Settings
from ..store.base import Store
from ..store.checks import InvalidPoint
from .deadletter import dead_letter_payload
from .gaps import SequenceTracker
from .pipeline import Batch, Inbound, Processed, build_batch, decode, drop_item, limits_from
from .registry import RegistryClient
from .stats import IngestStats, StatsSnapshot, format_line
from .writer import BatchWriter

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86_400  # the broker keeps our subscriptions and queued messages this long
DEADLETTER_CONFIRM_S = 10.0  # a dead letter not confirmed by the broker in time: its message is not acked
LATENCY_SAMPLES = 50_000
HOST_REFRESH_S = 10.0  # "online" is published again this often: one worker's will must not silence the rest


class IngestService:
    """Subscribe, validate, enrich, store in batches, dead-letter, acknowledge after storing."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        client_id: str | None = None,
        registry: RegistryClient | None = None,
        retry_max_s: float = 5.0,
        log_interval_s: float = 10.0,
        on_batch: Callable[[StatsSnapshot], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.client_id = client_id or f"{settings.mqtt.client_id}-ingest"
        self.registry = registry
        self.retry_max_s = retry_max_s
        self.log_interval_s = log_interval_s
        self.on_batch = on_batch
        self.mqtt5 = settings.mqtt.protocol is MqttProtocol.V5  # 3.1.1: no Receive Maximum, no $share
        if not self.mqtt5 and settings.ingest.shared_group:
            raise ValueError(
                "shared subscriptions need MQTT 5; ingest.shared_group cannot be used with MQTT 3.1.1"
            )
        self.topic_filters()  # an invalid shared group is refused here, not in the network thread
        self.stats = IngestStats()
        self.tracker = SequenceTracker() if not settings.ingest.shared_group else None
        self.latencies_ms: deque[int] = deque(maxlen=LATENCY_SAMPLES)  # sent → stored, per message
        self._limits = limits_from(settings.contract)
        self._checker = Checker()  # the decoder's: remembers the device ids it found valid
        # bounded whatever the broker does: see the module docstring
        self._queue: queue.Queue[Inbound | None] = queue.Queue(maxsize=max(1, settings.mqtt.max_inflight))
        self._overrun_logged = False
        self._stopping = threading.Event()
        self.failed = threading.Event()  # set when a worker thread died of an unexpected error
        self._connected = threading.Event()
        self._ack_lock = threading.Lock()  # an ack and a reconnect never interleave
        self._generation = 0
        self._confirm = threading.Condition()
        self._confirmed: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._host_published = 0.0
        self.store_writers = min(settings.ingest.store_writers, store.concurrent_writes)
        # batches cut and not yet stored: one per store thread being written, up to two waiting
        self._batches: queue.Queue[tuple[list[Processed], Batch] | None] = queue.Queue(maxsize=2)
        self._finish_lock = threading.Lock()  # one batch at a time dead-letters and acknowledges
        self._writer = BatchWriter(
            store,
            wait=self._stopping.wait,
            count=lambda name: self.stats.add(**{name: 1}),
            retry_max_s=retry_max_s,
        )
        self._client = self._make_client()

    # --- MQTT -------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = client_for(self.settings.mqtt, self.client_id, keep_session=True, manual_ack=True)
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.max_queued_messages_set(0)
        # Sparkplug primary host: gateways that wait for the host hold readings while it is offline
        client.will_set(HOST_STATE_TOPIC, HostState(False, now_ms()).encode(), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def topic_filters(self) -> list[str]:
        """What this worker subscribes to (shared when ingest.shared_group is set)."""
        filters = [subscription(Channel.DATA), subscription(Channel.EVENT)]
        group = self.settings.ingest.shared_group
        return [shared(group, f) for f in filters] if group else filters

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        with self._ack_lock:
            self._generation += 1
        if self.mqtt5:
            client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.topic_filters()])
        else:
            client.subscribe([(f, 1) for f in self.topic_filters()])
        self._publish_host_state(True)
        self.stats.connected = True
        self._connected.set()
        log.info(
            "connected to %s:%s as %s (session %s), subscribed to %s",
            self.settings.mqtt.host, self.settings.mqtt.port, self.client_id,
            "resumed" if flags.session_present else "new", ", ".join(self.topic_filters()),
        )  # fmt: skip

    def _publish_host_state(self, online: bool) -> mqtt.MQTTMessageInfo:
        self._host_published = time.monotonic()
        return self._client.publish(
            HOST_STATE_TOPIC, HostState(online, now_ms()).encode(), qos=1, retain=True
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.stats.connected = False
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("lost the broker (%s); reconnecting, unacknowledged messages will come again", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.stats.add(received=1, in_flight=1)
        topic_name = message_topic(message)  # a non-UTF-8 topic is refused as a bad one
        inbound = Inbound(
            self._generation, message.mid, message.qos, topic_name, bytes(message.payload), now_ms()
        )
        try:
            self._queue.put_nowait(inbound)
        except queue.Full:
            self._hold_back(inbound)

    def _hold_back(self, inbound: Inbound) -> None:
        """The broker sent more unacknowledged messages than the Receive Maximum allows: wait (and
        so stop reading the socket) until the decoder makes room. Stopping meanwhile drops the
        message unacknowledged; the broker sends it again."""
        self.stats.add(window_overruns=1)
        if not self._overrun_logged:
            self._overrun_logged = True
            log.warning(
                "the broker sent more than %d unacknowledged messages (mqtt.max_inflight, MQTT 5 "
                "Receive Maximum); ingest stops reading until it has room (Mosquitto before 2.0.13 "
                "does this: upgrade it to keep the window exact)",
                self.settings.mqtt.max_inflight,
            )
        while not self._stopping.is_set():
            try:
                self._queue.put(inbound, timeout=0.5)
                return
            except queue.Full:
                continue
        self.stats.add(in_flight=-1)

    def _wake_decoder(self) -> None:
        """Wake the decoder to see that the service is stopping (it drains a full queue first)."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._confirm:
            self._confirmed.add(mid)
            self._confirm.notify_all()

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (retrying until the broker answers) and start the decoder and store threads."""
        m = self.settings.mqtt
        options = connect_options(
            m, keep_session=True, session_expiry_s=SESSION_EXPIRY_S, receive_maximum=m.max_inflight
        )
        self._client.connect_async(m.host, m.port, m.keepalive_s, **options)
        self._client.loop_start()
        self._threads = [
            threading.Thread(
                target=self._guard, args=(self._decode_loop,), name="ingest-decoder", daemon=True
            ),
        ] + [
            threading.Thread(
                target=self._guard, args=(self._store_loop,), name=f"ingest-store-{i}", daemon=True
            )
            for i in range(self.store_writers)
        ]
        for thread in self._threads:
            thread.start()

    def _guard(self, loop: Callable[[], None]) -> None:
        """Run a worker loop; a bug in it stops the service (nothing unstored is acknowledged)."""
        try:
            loop()
        except Exception:
            log.exception(
                "ingest %s failed; stopping (unacknowledged messages stay with the broker)", loop.__name__
            )
            self.failed.set()
            self._stopping.set()
            self._wake_decoder()
            with contextlib.suppress(queue.Full):
                self._batches.put_nowait(None)

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected and subscribed (or ``timeout``)."""
        return self._connected.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading, store and acknowledge what is pending if the store allows, disconnect."""
        self._stopping.set()
        self._wake_decoder()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._connected.is_set():  # a clean disconnect does not fire the will: say it ourselves
            info = self._publish_host_state(False)
            deadline = time.monotonic() + 2.0
            with contextlib.suppress(RuntimeError, ValueError):  # the connection went meanwhile
                while not info.is_published() and time.monotonic() < deadline:
                    time.sleep(0.02)
        self._client.disconnect()
        self._client.loop_stop()
        if self.registry is not None:
            self.registry.close()
        log.info("ingest stopped: %s", format_line(self.stats.snapshot(), None))

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set, logging the counters every ``log_interval_s``."""
        self.start()
        before: StatsSnapshot | None = None
        next_log = time.monotonic() + self.log_interval_s
        while not stop.wait(0.2) and not self.failed.is_set():
            if time.monotonic() >= next_log:
                next_log += self.log_interval_s
                now = self.stats.snapshot()
                log.info("%s", format_line(now, before))
                before = now
        self.stop()

    # --- writer -----------------------------------------------------------------------------

    def _flush_limits(self) -> tuple[int, int, float]:
        ingest = self.settings.ingest
        # with few readings per message, the in-flight window fills before the reading budget:
        # write when half of it waits, so the broker keeps sending while we write
        return ingest.batch_readings, max(1, self.settings.mqtt.max_inflight // 2), ingest.batch_interval_s

    def _decode_loop(self) -> None:
        """Decode messages and cut batches; store threads write earlier batches while the next is cut."""
        max_readings, max_messages, interval = self._flush_limits()
        pending: list[Processed] = []
        readings = 0
        deadline = 0.0
        try:
            while True:
                timeout = max(0.0, deadline - time.monotonic()) if pending else 0.5
                if self._connected.is_set() and time.monotonic() - self._host_published > HOST_REFRESH_S:
                    self._publish_host_state(True)
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = None
                    if self._stopping.is_set() and not pending:
                        return
                if item is not None:
                    processed = decode(item, self._limits, self._checker)
                    if not pending:
                        deadline = time.monotonic() + interval
                    pending.append(processed)
                    readings += processed.readings
                stopping = self._stopping.is_set()
                if pending and (
                    readings >= max_readings
                    or len(pending) >= max_messages
                    or time.monotonic() >= deadline
                    or stopping
                ):
                    self._cut(pending)
                    pending, readings = [], 0
                if stopping and item is None and not pending:
                    return
        finally:
            for _ in range(self.store_writers):
                self._batches.put(None)

    def _cut(self, pending: list[Processed]) -> None:
        """Track gaps, enrich, let the store check and encode the batch, and hand it to the store
        threads (waits while two are queued and every store thread writes): the next batch is encoded
        while others are being written.

        The samples come from the contract's validator: the store skips the checks it made."""
        self._track_gaps(pending)
        batch = build_batch(pending, self.registry, self.settings.ingest.unknown_devices)
        if batch.registry_error:
            self.stats.add(registry_errors=1)
        while True:
            try:
                batch.prepared = self.store.prepare(batch.samples, batch.events, validated=True)
                break
            except InvalidPoint as exc:  # one item the store refuses must not block the rest
                log.warning("store refused %s; dead-lettering it", exc)
                self.stats.add(store_refusals=1)
                drop_item(batch, exc.index, exc.reason)
        self._batches.put((pending, batch))

    def _store_loop(self) -> None:
        """Write the next batch cut (others may be written meanwhile by the other store threads);
        dead-letter and acknowledge each once it is stored."""
        while True:
            item = self._batches.get()
            if item is None:
                return
            pending, batch = item
            if not self._write(batch):
                continue  # stopping while the store is down: nothing acked, the broker redelivers later
            with self._finish_lock:
                self._finish(pending, batch)

    def _finish(self, pending: list[Processed], batch: Batch) -> None:
        dead_mids = self._dead_letter(pending)
        unconfirmed = self._wait_confirmed(dead_mids)
        stored_at = now_ms()
        self.stats.add(in_flight=-len(pending))  # before the acks: the broker refills the window at once
        acked = 0
        with self._ack_lock:
            for p in pending:
                inbound = p.inbound
                if inbound.generation != self._generation or id(p) in unconfirmed:
                    continue  # its connection is gone: the broker sends it again, the store dedups
                self._client.ack(inbound.mid, inbound.qos)
                acked += 1
                if p.envelope is not None and p.readings:
                    self.latencies_ms.append(stored_at - p.envelope.sent_ms)
        with self.stats.lock:
            self.stats.devices.update(s.sample.device for s in batch.samples)
        self.stats.add(
            stored_readings=batch.readings,
            stored_samples=len(batch.samples),
            stored_events=len(batch.events),
            flagged_readings=batch.flagged_readings,
            acked=acked,
            batches=1,
        )
        if self.on_batch is not None:
            self.on_batch(self.stats.snapshot())

    def _write(self, batch: Batch) -> bool:
        """Store the batch (see writer.py: retried while the store is unavailable, the items it
        refuses for good taken out to be dead-lettered); False only when asked to stop meanwhile."""
        prepared = batch.prepared
        if prepared is None or prepared.empty:
            return True
        refused = self._writer.write(batch.samples, batch.events, prepared)
        if refused is None:
            return False
        for index in sorted(refused, reverse=True):
            drop_item(batch, index, refused[index])
        return True

    def _track_gaps(self, pending: list[Processed]) -> None:
        if self.tracker is None:
            return
        for p in pending:
            if p.envelope is None:
                continue
            gap = self.tracker.see(p.envelope)
            if gap is not None:
                self.stats.gap(f"{gap.compound}/{gap.gateway}", gap.missing)
                log.warning(
                    "gateway %s/%s: %d message(s) missing between seq %d and %d (bdseq %d)",
                    gap.compound, gap.gateway, gap.missing, gap.after_seq, gap.next_seq, gap.bdseq,
                )  # fmt: skip

    def _dead_letter(self, pending: list[Processed]) -> dict[int, int]:
        """Publish one dead letter per message with rejections; returns {mqtt mid: id(processed)}."""
        mids: dict[int, int] = {}
        if any(p.rejections for p in pending):
            # forget confirmations of other publishes (host state, dead letters that timed out):
            # packet ids are reused, and an old one must not pass for a new dead letter's
            with self._confirm:
                self._confirmed.clear()
        for p in pending:
            if not p.rejections:
                continue
            for rejection in p.rejections:
                self.stats.reject(str(rejection.reason))
            body = dead_letter_payload(
                p.inbound.topic,
                p.inbound.payload,
                p.rejections,
                received_ms=p.inbound.received_ms,
                worker=self.client_id,
            )
            info = self._client.publish(DEADLETTER_TOPIC, body, qos=1)
            mids[info.mid] = id(p)
            self.stats.add(dead_lettered=1)
        return mids

    def _wait_confirmed(self, mids: dict[int, int]) -> set[int]:
        """Wait for the broker to confirm the dead letters; the ids of the unconfirmed messages."""
        if not mids:
            return set()
        deadline = time.monotonic() + DEADLETTER_CONFIRM_S
        with self._confirm:
            while not mids.keys() <= self._confirmed and time.monotonic() < deadline:
                if self._stopping.is_set() and not self._connected.is_set():
                    break
                self._confirm.wait(0.1)
            missing = {pid for mid, pid in mids.items() if mid not in self._confirmed}
            self._confirmed.difference_update(mids)
        if missing:
            log.warning(
                "%d dead letter(s) not confirmed by the broker; their messages stay unacked", len(missing)
            )
        return missing
