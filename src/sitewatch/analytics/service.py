"""The live analytics service: MQTT (persistent session, manual acks) → decode → engine → findings
(QoS 1) → checkpoint → ack.

Threads: paho's network thread receives and queues messages (the queue is bounded by
``analytics.max_inflight``: when it is full the network thread waits and TCP holds the broker back); one
worker thread owns the engine (which is not thread-safe): it decodes each message, feeds the
engine, publishes new findings at QoS 1 (what one message or tick made, in batches per compound:
``contract.finding_messages``), runs the engine's timer every ``analytics.tick_s``, and
every ``analytics.checkpoint_messages`` messages (or ``analytics.checkpoint_interval_s`` after the
first unacknowledged one) makes the batch safe:

1. waits until the broker confirmed (PUBACK) every finding published since the last checkpoint;
2. writes the engine's snapshot and the (id, state) pairs published to the checkpoint file,
   atomically (``checkpoint.py``);
3. only then acknowledges the batch's messages.

A crash before step 2 loses nothing: the messages were not acknowledged, the broker sends them
again, and the engine, restored from the previous checkpoint, processes them again; findings it
makes again carry the same ids (the engine's ids are deterministic), so a consumer sees at most
a copy of a message it already has (alerting treats (id, state) as a message's identity). A crash
between 2 and 3 replays messages whose effect the checkpoint already holds: findings they make
again are in the published set and are not published twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ..contract import Finding, Limits, finding_messages, finding_topic, now_ms
from ..mqtt_client import client_for, connect_options, message_topic
from ..settings import MqttProtocol, Settings
from ..store import Store
from . import checkpoint as ckpt
from .compounds import DevicePlace
from .partition import Partition, topic_filters
from .processor import EngineFactory, Processor
from .scoring import ChildScoring, Scorer
from .stats import AnalyticsStats, format_line

if TYPE_CHECKING:
    from .detectors.findings import DetectorRun

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86_400  # the broker keeps our subscriptions and queued messages this long
SUBSCRIBE_CHUNK = 96  # topic filters per SUBSCRIBE packet
RECENT_FINDINGS = 50
PR_SET_PDEATHSIG = 1
CHECKPOINT_REST = 2  # after a checkpoint that took t, the next starts no sooner than 2 t after it began
# a checkpoint is written by a forked child (copy on write) while the worker goes on; Linux only,
# as the child must die with the worker (PR_SET_PDEATHSIG); elsewhere the worker writes it itself
FORKED_CHECKPOINTS = sys.platform == "linux"


@dataclass(slots=True)
class _Saving:
    pid: int
    batch: list[_Inbound]
    began: float
    devices: int


@dataclass(slots=True)
class _Inbound:
    generation: int  # the connection it came on: acknowledgements go only to that one
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_ms: int
    dup: bool = False  # the broker's DUP flag: sent again, not acknowledged before


class AnalyticsService:
    """One worker of ``sitewatch analytics run`` (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        make_engine: EngineFactory,
        compounds: Callable[[], Iterable[str]],
        *,
        partition: Partition = Partition(),  # noqa: B008 (frozen)
        client_id: str | None = None,
        clock: Callable[[], int] = now_ms,
        log_interval_s: float = 10.0,
        open_store: Callable[[], Store] | None = None,
        places: Callable[[], Mapping[str, DevicePlace]] = dict,
        score_in_child: bool = False,
        score_runs: Iterable[DetectorRun] | None = None,
    ) -> None:
        self.settings = settings
        self.partition = partition
        base = client_id or f"{settings.mqtt.client_id}-analytics"
        self.client_id = base if partition.count == 1 else f"{base}-{partition.label}"
        self.clock = clock
        self.log_interval_s = log_interval_s
        self.compounds_source = compounds
        self.mqtt5 = settings.mqtt.protocol is MqttProtocol.V5
        self.stats = AnalyticsStats()
        self.recent: deque[Finding] = deque(maxlen=RECENT_FINDINGS)  # the latest published, for displays
        self.state_path = settings.analytics_state_dir / f"{self.client_id}.ckpt"
        c = settings.contract
        self._limits = Limits(c.max_payload_bytes, c.max_samples, int(c.max_future_s * 1000), int(c.max_age_s * 1000))
        restored = ckpt.load(self.state_path)  # CheckpointError: refused before anything starts
        if restored is not None and restored.meta.get("partition") not in (None, str(partition)):
            raise ckpt.CheckpointError(
                f"{self.state_path}: written by partition {restored.meta.get('partition')}, not {partition}"
            )
        try:
            self.engine = make_engine(restored.engine if restored else None)
        except ValueError as exc:  # the engine cannot read its snapshot (another version, damage)
            raise ckpt.CheckpointError(f"{self.state_path}: {exc}") from None
        published = restored.published if restored else ckpt.Published()
        self.processor = Processor(self.engine, self._limits, self.stats, published, partition.owns)
        if restored is not None:
            for item in restored.meta.get("births", []):
                self.processor.births[(str(item[0]), str(item[1]))] = (int(item[2]), bool(item[3]))
            for item in restored.meta.get("seqs", []):
                self.processor.seqs[(str(item[0]), str(item[1]))] = (int(item[2]), int(item[3]))
            log.info("restored %s (%d devices)", self.state_path, self.engine.device_count())
        self.compounds: set[str] = set()
        self._queue: queue.Queue[_Inbound | None] = queue.Queue(maxsize=settings.analytics.max_inflight)
        self._stopping = threading.Event()
        self.failed = threading.Event()
        self._connected = threading.Event()
        self._ack_lock = threading.Lock()
        self._generation = 0
        self._last_save = 0.0  # when the last checkpoint started (monotonic)
        self._saving: _Saving | None = None  # the checkpoint being written, and the messages it holds
        self._unconfirmed: list[mqtt.MQTTMessageInfo] = []  # findings the broker has not confirmed yet
        self._thread: threading.Thread | None = None
        self._client = self._make_client()
        # the detectors on the store, in a thread of their own (scoring.py), their work in a child
        # process with score_in_child; off without a store
        self.scorer: Scorer | None = None
        if open_store is not None and settings.analytics.score_interval_s > 0:
            self.scorer = Scorer(
                open_store, lambda: sorted(self.compounds), self._publish_scored,
                settings.analytics_state_dir / f"{self.client_id}.scores.ckpt",
                interval_s=settings.analytics.score_interval_s, models_dir=settings.analytics_models_dir,
                places=places, clock=clock, child=ChildScoring(settings) if score_in_child else None,
                runs=score_runs,
            )  # fmt: skip

    # --- MQTT -------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = client_for(self.settings.mqtt, self.client_id, keep_session=True, manual_ack=True)
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _subscribe(self, client: mqtt.Client, compounds: Iterable[str]) -> None:
        filters = topic_filters(compounds)
        for i in range(0, len(filters), SUBSCRIBE_CHUNK):
            chunk = filters[i : i + SUBSCRIBE_CHUNK]
            if self.mqtt5:
                client.subscribe([(f, SubscribeOptions(qos=1)) for f in chunk])
            else:
                client.subscribe([(f, 1) for f in chunk])

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, reason: ReasonCode,
        properties: Properties | None,
    ) -> None:  # fmt: skip
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        with self._ack_lock:
            self._generation += 1
        self._subscribe(client, self.compounds)
        self.stats.connected = True
        self._connected.set()
        log.info(
            "connected to %s:%s as %s (session %s), partition %s: %d compounds",
            self.settings.mqtt.host, self.settings.mqtt.port, self.client_id,
            "resumed" if flags.session_present else "new", self.partition, len(self.compounds),
        )  # fmt: skip

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags, reason: ReasonCode,
        properties: Properties | None,
    ) -> None:  # fmt: skip
        self.stats.connected = False
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("lost the broker (%s); reconnecting, unacknowledged messages will come again", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.stats.add(received=1, in_flight=1)
        topic_name = message_topic(message)  # a non-UTF-8 topic is refused as a bad one
        item = _Inbound(self._generation, message.mid, message.qos, topic_name, bytes(message.payload), now_ms(),
                        bool(message.dup))
        while not self._stopping.is_set():  # a full queue: wait, and so stop reading the socket
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        self.stats.add(in_flight=-1)

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Read the compound list, connect (retrying until the broker answers), start the worker."""
        self.compounds = set(self.partition.select(self.compounds_source()))
        self.stats.compounds = len(self.compounds)
        if not self.compounds:
            log.warning("partition %s holds no compound yet; waiting for the compound list to grow", self.partition)
        m = self.settings.mqtt
        options = connect_options(
            m, keep_session=True, session_expiry_s=SESSION_EXPIRY_S, receive_maximum=self.settings.analytics.max_inflight
        )
        self._client.connect_async(m.host, m.port, m.keepalive_s, **options)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._guard, name="analytics-worker", daemon=True)
        self._thread.start()
        if self.scorer is not None:
            self.scorer.start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected and subscribed (or ``timeout``)."""
        return self._connected.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading, make what was processed safe (checkpoint, acks), disconnect."""
        self._stopping.set()
        if self.scorer is not None:
            self.scorer.stop(timeout)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        log.info("analytics stopped: %s", format_line(self.stats.snapshot()))

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set, logging the counters every ``log_interval_s``."""
        self.start()
        next_log = time.monotonic() + self.log_interval_s
        while not stop.wait(0.2) and not self.failed.is_set():
            if time.monotonic() >= next_log:
                next_log += self.log_interval_s
                log.info("%s", format_line(self.stats.snapshot()))
        self.stop()

    def _guard(self) -> None:
        try:
            self._work()
        except Exception:
            log.exception("analytics worker failed; stopping (unacknowledged messages stay with the broker)")
            self.failed.set()
            self._stopping.set()

    # --- the worker ---------------------------------------------------------------------------

    def _work(self) -> None:
        a = self.settings.analytics
        batch_limit = min(a.checkpoint_messages, max(1, a.max_inflight // 2))
        pending: list[_Inbound] = []
        deadline = 0.0
        next_tick = time.monotonic() + a.tick_s
        next_refresh = time.monotonic() + a.sites_refresh_s if a.sites_refresh_s else float("inf")
        dirty = False  # state changed by a tick since the last checkpoint
        while True:
            now = time.monotonic()
            target = min(next_tick, deadline) if pending else next_tick
            if pending and self._saving is None:  # not before the rest after the last checkpoint ends
                target = max(target, self._last_save + CHECKPOINT_REST * self.stats.checkpoint_ms / 1000)
            wait = 0.02 if self._saving is not None else max(0.0, min(target - now, 0.5))
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is not None:
                findings = self.processor.handle(item.topic, item.payload, item.received_ms, item.dup)
                self._publish(findings, item.received_ms)
                if not pending:
                    deadline = time.monotonic() + a.checkpoint_interval_s
                pending.append(item)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + a.tick_s
                ticked = self.processor.tick(self.clock())
                self._publish(ticked, None)
                dirty = dirty or bool(ticked)
            if now >= next_refresh:
                next_refresh = now + a.sites_refresh_s
                self._refresh()
            stopping = self._stopping.is_set()
            if self._saving is not None:
                failed = self._poll_saving(block=stopping)
                if failed:  # not saved: its messages wait for the next checkpoint
                    pending = failed + pending
            # a whole city's checkpoint costs its child a second or two of CPU: leave the worker the
            # cores for the rest of the time, unless the broker's window is filling up
            rested = now - self._last_save >= CHECKPOINT_REST * self.stats.checkpoint_ms / 1000
            due = stopping or len(pending) >= a.max_inflight * 3 // 4 or (
                rested and (len(pending) >= batch_limit or now >= deadline)
            )
            if self._saving is None and (pending or dirty) and due:
                if self._start_saving(pending):
                    pending, dirty = [], False
                elif stopping:
                    return  # not confirmed while stopping: nothing acked, the broker sends it again
            if stopping and item is None and self._queue.empty() and self._saving is None and not pending:
                return

    def _publish(self, findings: list[Finding], received_ms: int | None) -> None:
        """Publish the findings a message or a tick made: several of one compound go as batches
        (an outage makes thousands at once), a lone one as itself."""
        if not findings:
            return
        limit = self._limits.max_payload_bytes
        for topic_name, payload, _count in finding_messages(findings, max_bytes=limit):
            self._unconfirmed.append(self._client.publish(topic_name, payload, qos=1))
        self.recent.extend(findings)
        self.stats.add(findings_published=len(findings))
        if received_ms is not None:
            latency = now_ms() - received_ms
            with self.stats.lock:
                self.stats.latencies_ms.extend(latency for _ in findings)

    def _publish_scored(self, finding: Finding) -> Callable[[], bool]:
        """Publish a finding of the scorer (its thread; paho's publish is thread-safe); returns
        whether the broker confirmed it."""
        info = self._client.publish(finding_topic(finding.compound), finding.encode(), qos=1)
        self.recent.append(finding)
        self.stats.add(findings_published=1)
        return lambda: _confirmed(info)

    def _start_saving(self, batch: list[_Inbound]) -> bool:
        """Wait for the findings' PUBACKs, then checkpoint the engine for ``batch`` (in a child process
        where the platform forks, while this one goes on); False if not confirmed while stopping."""
        while self._unconfirmed:  # paho marks each publish when its PUBACK came
            self._unconfirmed = [info for info in self._unconfirmed if not _confirmed(info)]
            if not self._unconfirmed:
                break
            if self._stopping.is_set() and not self._connected.is_set():
                log.warning("%d finding(s) not confirmed by the broker; their messages stay unacked",
                            len(self._unconfirmed))  # fmt: skip
                return False
            time.sleep(0.002)
        meta = {
            "partition": str(self.partition),
            "saved_ms": now_ms(),
            "births": [[c, g, b, o] for (c, g), (b, o) in self.processor.births.items()],
            "seqs": [[c, g, b, q] for (c, g), (b, q) in self.processor.seqs.items()],
        }
        began = time.perf_counter()
        devices = self.engine.device_count()
        self._last_save = time.monotonic()
        if not FORKED_CHECKPOINTS:
            ckpt.save(self.state_path, ckpt.Checkpoint(self.engine.snapshot(), self.processor.published, meta))
            self._saved(batch, began, devices)
            return True
        pid = os.fork()
        if pid == 0:  # the child: the engine as it is now (copy on write), to disk, and nothing else
            code = 1
            try:
                _die_with_parent()
                ckpt.save(self.state_path, ckpt.Checkpoint(self.engine.snapshot(), self.processor.published, meta))
                code = 0
            finally:
                os._exit(code)
        self._saving = _Saving(pid, batch, began, devices)
        self._last_save = time.monotonic()
        with self.stats.lock:
            self.stats.checkpoint_fork_ms = (time.perf_counter() - began) * 1000
        return True

    def _poll_saving(self, *, block: bool) -> list[_Inbound]:
        """Acknowledge the batch of a checkpoint that finished; returns the batch of one that failed."""
        saving = self._saving
        assert saving is not None
        pid, status = os.waitpid(saving.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return []  # still writing
        self._saving = None
        if os.waitstatus_to_exitcode(status) != 0:
            log.error("checkpoint to %s failed (exit status %s); its messages wait for the next one",
                      self.state_path, os.waitstatus_to_exitcode(status))  # fmt: skip
            return saving.batch
        self._saved(saving.batch, saving.began, saving.devices)
        return []

    def _saved(self, batch: list[_Inbound], began: float, devices: int) -> None:
        acked = 0
        with self._ack_lock:
            for item in batch:
                if item.generation != self._generation:
                    continue  # its connection is gone: the broker sends it again
                self._client.ack(item.mid, item.qos)
                acked += 1
        self.stats.add(acked=acked, in_flight=-len(batch), checkpoints=1)
        with self.stats.lock:
            self.stats.checkpoint_bytes = self.state_path.stat().st_size
            self.stats.checkpoint_ms = (time.perf_counter() - began) * 1000
            self.stats.devices = devices

    def _refresh(self) -> None:
        """Subscribe to compounds of this partition that appeared in the compound list."""
        try:
            current = set(self.partition.select(self.compounds_source()))
        except Exception as exc:  # the registry may be away for a while: keep what we have
            log.warning("cannot re-read the compound list (%s); keeping %d compounds", exc, len(self.compounds))
            return
        new = current - self.compounds
        if new:
            self.compounds |= new
            self.stats.compounds = len(self.compounds)
            log.info("subscribing to %d new compound(s) of partition %s", len(new), self.partition)
            if self._connected.is_set():
                self._subscribe(self._client, new)


def _die_with_parent() -> None:
    """In a checkpoint's child: be killed with the worker (Linux), so that a child of a worker killed
    mid-checkpoint cannot replace a newer checkpoint of the restarted worker with its older one."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() == 1:  # the worker died before the line above
        os._exit(1)


def _confirmed(info: mqtt.MQTTMessageInfo) -> bool:
    """Whether the broker acknowledged a publish. One made while disconnected carries an error code
    (paho's ``is_published`` then raises) but is queued and sent on reconnect, and paho marks the
    same object when its PUBACK comes: read that mark (paho is pinned, see mqtt_client)."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return bool(getattr(info, "_published", False))


def state_file(settings: Settings, client_id: str) -> Path:
    """Where the worker ``client_id`` keeps its checkpoint."""
    return settings.analytics_state_dir / f"{client_id}.ckpt"
