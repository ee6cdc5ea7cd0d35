"""The connectors' ``Sink``: check each sample and event against the contract, then queue it on disk."""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence

import orjson

from ..contract import KINDS, DeviceKind, Event, Limits, MetricType, Sample, device_belongs_to
from .counters import Counters
from .queue import DiskQueue, Dropped, Item, Kind

log = logging.getLogger(__name__)

_WARN_EVERY_S = 10.0
_LIMITS = Limits()  # the contract's default bounds
# metric -> (min, max) of the metrics whose only rule is the range (gauges and counters)
_RANGES = {
    kind: {
        name: (spec.minimum, spec.maximum)
        for name, spec in kspec.metrics.items()
        if spec.type in (MetricType.GAUGE, MetricType.COUNTER)
    }
    for kind, kspec in KINDS.items()
}
_FLAGS = {
    (kind, name)
    for kind, kspec in KINDS.items()
    for name, spec in kspec.metrics.items()
    if spec.type is MetricType.FLAG
}


class QueueSink:
    """Writes what connectors read into the disk queue; refuses what the centre would refuse."""

    def __init__(
        self,
        queue: DiskQueue,
        counters: Counters,
        compound: str,
        wake: Callable[[], None] = lambda: None,
        limits: Limits = _LIMITS,
    ) -> None:
        self.queue = queue
        self.limits = limits  # the centre's own bounds: what it would refuse is refused here
        self.counters = counters
        self.compound = compound
        self.wake = wake
        self.offline: set[str] = set()  # devices whose last liveness event was "offline"
        self._warned: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def samples(self, samples: Sequence[Sample]) -> None:
        """Check and queue ``samples``; returns once they are on disk."""
        items: list[Item] = []
        read = rejected = 0
        for sample in samples:
            read += len(sample.values)
            problem = self._identity(sample.device, sample.kind, sample.ts_ms)
            if problem:
                rejected += len(sample.values)
                self._warn(problem, f"sample refused: {problem}")
                continue
            values: dict[str, float] = {}
            kind = sample.kind if type(sample.kind) is DeviceKind else DeviceKind(sample.kind)
            ranges = _RANGES[kind]
            specs = KINDS[kind].metrics
            for metric, value in sample.values.items():
                bounds = ranges.get(metric)  # fast path: a float gauge/counter inside its range
                if bounds is not None and type(value) is float and bounds[0] <= value <= bounds[1]:
                    values[metric] = value
                    continue
                if (value == 0.0 or value == 1.0) and (kind, metric) in _FLAGS and type(value) is float:
                    values[metric] = value
                    continue
                spec = specs.get(metric)
                why = (
                    f"{sample.kind} has no metric {metric!r}"
                    if spec is None
                    else f"{metric}={value!r} is not a finite number"
                    if isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                    else spec.check(float(value))
                )
                if why:
                    rejected += 1
                    self._warn(f"{sample.device}:{metric}", f"{sample.device}: value refused: {why}")
                else:
                    values[metric] = float(value)
            if values:
                body = orjson.dumps(
                    {"device": sample.device, "kind": kind.value, "ts": sample.ts_ms, "values": values}
                )
                items.append(Item(Kind.SAMPLE, sample.device, len(values), body))
        self.counters.add("read", read)
        self.counters.add("rejected", rejected)
        if items and self._put(items):
            self.counters.add("buffered", sum(i.readings for i in items))
            self.wake()

    def events(self, events: Sequence[Event]) -> None:
        """Check and queue ``events``; returns once they are on disk."""
        items: list[Item] = []
        rejected = 0
        for event in events:
            problem = self._identity(event.device, event.kind, event.ts_ms)
            if not problem and event.name not in KINDS[DeviceKind(event.kind)].events:
                problem = f"{event.kind} has no event {event.name!r}"
            if problem:
                rejected += 1
                self._warn(problem, f"event refused: {problem}")
                continue
            if event.name in ("online", "offline"):
                with self._lock:
                    (self.offline.add if event.name == "offline" else self.offline.discard)(event.device)
            items.append(Item(Kind.EVENT, event.device, 0, orjson.dumps(event.to_json())))
        self.counters.add("events_read", len(events))
        self.counters.add("events_rejected", rejected)
        if items and self._put(items):
            self.wake()

    def _identity(self, device: str, kind: object, ts: object) -> str | None:
        if not isinstance(device, str) or not device_belongs_to(device, self.compound):
            return f"device {device!r} is not a device of compound {self.compound!r}"
        if type(kind) is not DeviceKind:
            try:
                DeviceKind(str(kind))
            except ValueError:
                return f"{device}: unknown device kind {kind!r}"
        if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
            return f"{device}: timestamp {ts!r} is not integer epoch milliseconds"
        now = time.time_ns() // 1_000_000
        if ts > now + self.limits.max_future_ms:
            return f"{device}: timestamp {ts} is {(ts - now) / 1000:.0f} s in the future (device clock?)"
        if ts < now - self.limits.max_age_ms:
            return f"{device}: timestamp {ts} is {(now - ts) / 86_400_000:.1f} days old"
        return None

    def _put(self, items: list[Item]) -> bool:
        """Queue ``items``; a failed disk write (disk full, I/O error) loses them, counted and logged."""
        try:
            dropped = self.queue.put(items)
        except sqlite3.Error as exc:
            readings = sum(i.readings for i in items)
            events = sum(1 for i in items if i.kind is Kind.EVENT)
            self.counters.add("queue_errors")
            self._account(Dropped(len(items), readings, events))
            log.error(
                "disk queue write failed (%s): %s readings and %s events lost",
                exc,
                readings,
                events,
            )
            return False
        self._account(dropped)
        return True

    def _account(self, dropped: Dropped) -> None:
        self.counters.add("dropped", dropped.readings)
        self.counters.add("events_dropped", dropped.events)

    def _warn(self, key: str, message: str) -> None:
        """Log a refusal, at most once per 10 s for the same cause (with how many were hidden)."""
        now = time.monotonic()
        with self._lock:
            last, hidden = self._warned.get(key, (-math.inf, 0))
            if now - last < _WARN_EVERY_S:
                self._warned[key] = (last, hidden + 1)
                return
            self._warned[key] = (now, 0)
            if len(self._warned) > 10_000:
                self._warned.clear()
        suffix = f" ({hidden} more like it in the last {_WARN_EVERY_S:.0f} s)" if hidden else ""
        log.warning("%s%s", message, suffix)
