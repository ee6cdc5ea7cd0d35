"""A built-in load generator: N devices of one kind, one sample per device per interval.

For commissioning a gateway without hardware, for the benchmark and for the fault tests. Values
are deterministic: sample ``k`` of a device carries ``k`` in every counter metric, so a gap or a
duplicate is visible downstream. With ``journal`` set, every sample the gateway has accepted (the
sink returned, so it is on disk) is appended to that file as ``device<TAB>k<TAB>ts``: the ground
truth the fault tests compare the broker's side against.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...contract import KINDS, DeviceInfo, DeviceKind, MetricType, Sample, device_id
from .base import ConnectorConfigError, ConnectorContext, Sink, parse_config


class SyntheticConfig(BaseModel):
    """Options of a ``type: synthetic`` connector."""

    model_config = ConfigDict(extra="forbid")

    type: str = "synthetic"
    name: str = "synthetic"
    kind: DeviceKind = DeviceKind.WATER_METER
    devices: int = Field(10, ge=1, le=100_000)
    prefix: str | None = None  # local device names are <prefix><4 digits>; default SYN<kind code>
    interval_s: float = Field(1.0, ge=0.001, le=86_400)
    count: int | None = Field(None, ge=1)  # samples per device, then stop producing
    journal: Path | None = None


def _values(kind: DeviceKind, k: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for spec in KINDS[kind].metrics.values():
        if spec.type is MetricType.COUNTER:
            out[spec.name] = float(k % int(spec.maximum))
        elif spec.type is MetricType.FLAG:
            out[spec.name] = 0.0
        elif spec.type is MetricType.STATE:
            out[spec.name] = float(k % (int(spec.maximum) + 1))
        else:
            span = spec.maximum - spec.minimum
            out[spec.name] = round(max(spec.minimum, 0.0) + (k * 7919 % 1000) / 1000 * span / 10, 3)
    return out


class SyntheticConnector:
    """See the module docstring."""

    def __init__(self, config: SyntheticConfig, context: ConnectorContext) -> None:
        if config.kind is DeviceKind.GATEWAY:
            raise ConnectorConfigError("kind: 'gateway' is the gateway itself; pick a device kind")
        self.config = config
        self.name = config.name
        prefix = config.prefix if config.prefix is not None else f"SYN{KINDS[config.kind].code}"
        try:
            self._ids = [
                device_id(context.compound, f"{prefix}{i:04d}") for i in range(1, config.devices + 1)
            ]
        except ValueError as exc:
            raise ConnectorConfigError(f"prefix: {exc}") from None
        self._produced = 0

    @classmethod
    def from_config(cls, spec: Mapping[str, Any], context: ConnectorContext) -> SyntheticConnector:
        """Build from one ``connectors:`` entry."""
        config = parse_config(SyntheticConfig, spec)
        return cls(config, context)

    def devices(self) -> list[DeviceInfo]:
        """The simulated devices."""
        return [DeviceInfo(d, self.config.kind, "synthetic") for d in self._ids]

    def counters(self) -> Mapping[str, int]:
        """Samples produced so far."""
        return {"reads": self._produced, "errors": 0}

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Produce on schedule (catching up after a stall) until ``stop`` or ``count`` is reached."""
        cfg = self.config
        start_ms = time.time_ns() // 1_000_000
        start = time.monotonic()
        interval_ms = cfg.interval_s * 1000
        k = 0
        journal = cfg.journal.open("a", encoding="utf-8") if cfg.journal else None
        try:
            while not stop.is_set() and (cfg.count is None or k < cfg.count):
                due = int((time.monotonic() - start) / cfg.interval_s) + 1
                if cfg.count is not None:
                    due = min(due, cfg.count)
                due = min(due, k + max(1, 5000 // len(self._ids)))  # bounded work per step
                if due > k:
                    samples = [
                        Sample(device, cfg.kind, start_ms + round(j * interval_ms), _values(cfg.kind, j))
                        for j in range(k, due)
                        for device in self._ids
                    ]
                    await asyncio.to_thread(sink.samples, samples)
                    self._produced += len(samples)
                    if journal is not None:
                        journal.write(
                            "".join(f"{s.device}\t{j}\t{s.ts_ms}\n" for s, j in _numbered(samples, k))
                        )
                        journal.flush()
                    k = due
                    await asyncio.sleep(0)
                    continue
                next_at = start + k * cfg.interval_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
        finally:
            if journal is not None:
                journal.close()


def _numbered(samples: list[Sample], first: int) -> list[tuple[Sample, int]]:
    """Pair each sample with its per-device index (samples are grouped by index, then device)."""
    per = len({s.device for s in samples})
    return [(s, first + i // per) for i, s in enumerate(samples)]
