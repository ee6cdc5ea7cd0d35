"""Ingest counters: updated by the service threads, read by the log line, the demo and the bench."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field, fields


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """A consistent copy of the counters at one instant."""

    at_s: float
    received: int  # MQTT messages received (redeliveries included)
    stored_readings: int  # metric values the store accepted
    stored_samples: int
    stored_events: int
    acked: int  # MQTT messages acknowledged after their batch was stored
    rejected: dict[str, int]  # rejections by reason (values, samples, events or whole messages)
    dead_lettered: int  # dead-letter messages published
    flagged_readings: int  # readings accepted although the registry does not know the device
    gaps: int  # sequence jumps seen
    missing_messages: int  # messages the jumps skipped
    store_retries: int  # failed store writes that were retried (store unavailable, or an unknown error)
    store_refusals: int  # store writes refused for good (their items found and dead-lettered)
    registry_errors: int  # registry lookups that failed (devices then accepted and flagged)
    batches: int
    in_flight: int  # messages received and not yet acknowledged
    window_overruns: int  # messages the broker sent beyond the Receive Maximum (reading then waits)
    connected: bool
    devices_seen: int  # distinct devices with a stored reading
    missing_by_gateway: dict[str, int]  # "<compound>/<gateway>" → messages missing in its sequence

    @property
    def rejected_total(self) -> int:
        """All rejections."""
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"rejected_total": self.rejected_total}


@dataclass
class IngestStats:
    """Thread-safe counters of one ingest service."""

    received: int = 0
    stored_readings: int = 0
    stored_samples: int = 0
    stored_events: int = 0
    acked: int = 0
    dead_lettered: int = 0
    flagged_readings: int = 0
    gaps: int = 0
    missing_messages: int = 0
    store_retries: int = 0
    store_refusals: int = 0
    registry_errors: int = 0
    batches: int = 0
    in_flight: int = 0
    window_overruns: int = 0
    connected: bool = False
    rejected: Counter[str] = field(default_factory=Counter)
    missing_by_gateway: Counter[str] = field(default_factory=Counter)
    devices: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: int) -> None:
        """Add to integer counters by name."""
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def reject(self, reason: str, count: int = 1) -> None:
        """Count a rejection."""
        with self.lock:
            self.rejected[reason] += count

    def gap(self, gateway: str, missing: int) -> None:
        """Count a sequence gap of ``gateway`` ("<compound>/<gateway>")."""
        with self.lock:
            self.gaps += 1
            self.missing_messages += missing
            self.missing_by_gateway[gateway] += missing

    def snapshot(self) -> StatsSnapshot:
        """Copy every counter under the lock."""
        with self.lock:
            return StatsSnapshot(
                at_s=time.monotonic(),
                received=self.received,
                stored_readings=self.stored_readings,
                stored_samples=self.stored_samples,
                stored_events=self.stored_events,
                acked=self.acked,
                rejected=dict(self.rejected),
                dead_lettered=self.dead_lettered,
                flagged_readings=self.flagged_readings,
                gaps=self.gaps,
                missing_messages=self.missing_messages,
                store_retries=self.store_retries,
                store_refusals=self.store_refusals,
                registry_errors=self.registry_errors,
                batches=self.batches,
                in_flight=self.in_flight,
                window_overruns=self.window_overruns,
                connected=self.connected,
                devices_seen=len(self.devices),
                missing_by_gateway=dict(self.missing_by_gateway),
            )


def format_line(now: StatsSnapshot, before: StatsSnapshot | None) -> str:
    """One log line: totals and the stored rate since ``before``."""
    rate = 0.0
    if before is not None and now.at_s > before.at_s:
        rate = (now.stored_readings - before.stored_readings) / (now.at_s - before.at_s)
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(now.rejected.items())) or "none"
    return (
        f"received={now.received} stored_readings={now.stored_readings} ({rate:.0f}/s) "
        f"acked={now.acked} in_flight={now.in_flight} dead_lettered={now.dead_lettered} "
        f"rejected[{reasons}] gaps={now.gaps} missing={now.missing_messages} "
        f"store_retries={now.store_retries} store_refusals={now.store_refusals} "
        f"registry_errors={now.registry_errors}"
    )


def latency_summary(values_ms: list[int]) -> dict[str, float | int]:
    """Count, p50, p99 and max of latencies in milliseconds (empty: count 0)."""
    if not values_ms:
        return {"count": 0}
    ordered = sorted(values_ms)

    def pick(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"count": len(ordered), "p50": pick(0.50), "p99": pick(0.99), "max": ordered[-1]}
