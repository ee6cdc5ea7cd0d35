"""Counters of one analytics worker: updated by its threads, read by the log line, the stats file,
the demo and the benchmark."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

LATENCY_SAMPLES = 50_000


@dataclass
class AnalyticsStats:
    """Thread-safe counters (see docs/analytics-service.md#counters)."""

    received: int = 0  # MQTT messages received (redeliveries included)
    processed: int = 0  # messages decoded and given to the engine
    acked: int = 0  # messages acknowledged after the checkpoint that holds their effect
    in_flight: int = 0  # received and not yet acknowledged
    samples: int = 0  # valid samples given to the engine
    events: int = 0  # valid events given to the engine
    states: int = 0  # gateway births and deaths given to the engine
    refused_messages: int = 0  # messages with at least one refused part
    repeated_messages: int = 0  # messages the state already held (redelivered after a restart): skipped
    findings_published: int = 0  # finding messages published (active and cleared)
    findings_repeated: int = 0  # findings the engine produced again that were already published (skipped)
    engine_errors: int = 0  # engine calls that raised (the message is counted and skipped)
    checkpoints: int = 0
    checkpoint_bytes: int = 0  # size of the last checkpoint
    checkpoint_ms: float = 0.0  # how long the last checkpoint took (snapshot + write, in its child process)
    checkpoint_fork_ms: float = 0.0  # how long the worker stopped for the last one (the fork)
    ticks: int = 0
    devices: int = 0  # devices the engine holds state for (at the last checkpoint)
    compounds: int = 0  # compounds subscribed to
    connected: bool = False
    refused: Counter[str] = field(default_factory=Counter)  # refusals by reason
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: int) -> None:
        """Add to integer counters by name."""
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def refuse(self, reason: str) -> None:
        """Count one refused part of a message."""
        with self.lock:
            self.refused[reason] += 1

    def snapshot(self) -> dict[str, Any]:
        """A consistent JSON-ready copy of every counter, with latency percentiles."""
        with self.lock:
            out: dict[str, Any] = {
                name: getattr(self, name)
                for name in (
                    "received", "processed", "acked", "in_flight", "samples", "events", "states",
                    "refused_messages", "repeated_messages", "findings_published", "findings_repeated", "engine_errors",
                    "checkpoints", "checkpoint_bytes", "checkpoint_ms", "checkpoint_fork_ms", "ticks", "devices", "compounds",
                    "connected",
                )
            }  # fmt: skip
            out["refused"] = dict(self.refused)
            latencies = sorted(self.latencies_ms)
        out["refused_total"] = sum(out["refused"].values())
        out["latency_ms"] = percentiles(latencies)
        out["at_s"] = time.monotonic()
        return out


def percentiles(ordered: list[float]) -> dict[str, float | int]:
    """Count, p50, p99 and max of sorted values (count 0 when empty)."""
    if not ordered:
        return {"count": 0}

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"count": len(ordered), "p50": pick(0.5), "p99": pick(0.99), "max": ordered[-1]}


def format_line(now: dict[str, Any]) -> str:
    """One log line of the counters."""
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(now["refused"].items())) or "none"
    return (
        f"received={now['received']} processed={now['processed']} acked={now['acked']} "
        f"in_flight={now['in_flight']} findings_published={now['findings_published']} "
        f"repeated={now['findings_repeated']} refused[{reasons}] engine_errors={now['engine_errors']} "
        f"checkpoints={now['checkpoints']} ({now['checkpoint_bytes']} B, {now['checkpoint_ms']:.0f} ms) "
        f"devices={now['devices']} compounds={now['compounds']}"
    )
