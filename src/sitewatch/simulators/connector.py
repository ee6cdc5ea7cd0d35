"""The ``simulated`` connector: a simulator ``LiveSite`` feeding a site gateway's sink.

For the demo and for commissioning without hardware: every ``step_s`` seconds of wall time the
connector asks the LiveSite what its devices reported up to the simulated clock's present and hands
the samples and events to the sink, so they take the gateway's real path (contract checks, durable
queue, birth with every device, bdseq/seq, deletion on PUBACK). The simulated clock runs ``speed``
times faster than wall time from ``start_ms``; several connectors (one per compound) can share one
:class:`SimClock` so that a whole simulated city keeps one time.

Embedded use (the demo)::

    clock = SimClock(start_ms=now_ms() - 3_600_000, speed=60)
    connector = SimulatedConnector(LiveSite(site, start_ms=clock.start_ms), clock)
    gateway = Gateway(config, connectors=[connector])

From gateway.yaml (``type: simulated``) the compound is taken from a ledger file (``ledger:``) or
from the built-in synthetic city (``city_compounds``/``city_seed``), matched by the gateway's
compound code; see docs/gateway.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..contract import DeviceInfo, now_ms
from ..edge.connector import ConnectorConfigError, ConnectorContext, Sink, parse_config

log = logging.getLogger(__name__)


class SimClock:
    """Simulated time: ``start_ms`` plus the wall time since ``begin()`` times ``speed``, at most now."""

    def __init__(self, start_ms: int | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start_ms = now_ms() if start_ms is None else start_ms
        self.speed = speed
        self._wall0: float | None = None
        self._lock = threading.Lock()

    def begin(self) -> None:
        """Start the clock now (the first call wins; ``now()`` also starts it)."""
        with self._lock:
            if self._wall0 is None:
                self._wall0 = time.monotonic()

    def now(self) -> int:
        """Current simulated time, epoch ms; never past the present (from there on it runs in real time)."""
        self.begin()
        assert self._wall0 is not None
        return min(self.start_ms + int((time.monotonic() - self._wall0) * 1000 * self.speed), now_ms())


class SimulatedConfig(BaseModel):
    """Options of a ``type: simulated`` connector."""

    model_config = ConfigDict(extra="forbid")

    type: str = "simulated"
    name: str = "simulated"
    ledger: Path | None = None  # a ledger (xlsx/csv) holding the gateway's compound
    city_compounds: int = Field(1, ge=1, le=2000)  # else the synthetic city of this size ...
    city_seed: int = 1  # ... and seed
    seed: int = 0  # behaviour and random faults
    faults: Literal["none", "random", "all"] = "random"
    fault_rate: float = Field(1.0, ge=0, le=1e6)  # multiplier of the yearly fault rates
    speed: float = Field(1.0, gt=0, le=10_000)  # simulated seconds per wall second
    start_behind_s: float = Field(0.0, ge=0, le=80 * 86_400)  # simulated time starts this far back
    step_s: float = Field(1.0, ge=0.05, le=3600)  # wall seconds between steps


class SimulatedConnector:
    """See the module docstring."""

    def __init__(
        self,
        live: Any,
        clock: SimClock,
        *,
        name: str = "simulated",
        step_s: float = 1.0,
        phase_s: float = 0.0,
    ) -> None:
        """``live`` is a :class:`sitewatch.simulators.LiveSite`; ``phase_s`` delays the first step."""
        self.live = live
        self.clock = clock
        self.name = name
        self.step_s = step_s
        self.phase_s = phase_s
        self._counts = {"steps": 0, "samples": 0, "reads": 0, "events": 0, "errors": 0}

    @classmethod
    def from_config(cls, spec: Mapping[str, Any], context: ConnectorContext) -> SimulatedConnector:
        """Build from one ``connectors:`` entry: the site whose code is the gateway's compound."""
        config = parse_config(SimulatedConfig, spec)
        from . import LedgerError, LiveSite, load_sites, sites_from_records
        from .city import generate_city

        try:
            if config.ledger is not None:
                sites = load_sites(config.ledger)
            else:
                sites = sites_from_records(generate_city(config.city_compounds, config.city_seed))
        except (LedgerError, OSError) as exc:
            raise ConnectorConfigError(f"ledger: {exc}") from None
        site = next((s for s in sites if s.compound == context.compound), None)
        if site is None:
            known = ", ".join(s.compound for s in sites[:10]) + (" ..." if len(sites) > 10 else "")
            source = str(config.ledger) if config.ledger else f"the synthetic city ({config.city_compounds})"
            raise ConnectorConfigError(f"compound {context.compound!r} is not in {source}; it holds: {known}")
        clock = SimClock(now_ms() - int(config.start_behind_s * 1000), config.speed)
        live = LiveSite(
            site,
            seed=config.seed,
            faults=config.faults,
            fault_rate=config.fault_rate,
            start_ms=clock.start_ms,
        )
        return cls(live, clock, name=config.name, step_s=config.step_s)

    def devices(self) -> list[DeviceInfo]:
        """The compound's simulated devices."""
        return list(self.live.device_infos())

    def counters(self) -> Mapping[str, int]:
        """Steps, samples, readings ("reads") and events handed to the gateway; failed steps."""
        return dict(self._counts)

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Step the LiveSite every ``step_s`` on the shared clock until ``stop`` is set."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.phase_s)
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                # generating and queueing take a few ms per compound: off the event loop
                await asyncio.to_thread(self._step, sink)
            except Exception:  # a failed step is counted and logged; the next one goes on
                self._counts["errors"] += 1
                log.exception("simulated compound %s: step failed", self.live.compound)
            next_at = max(next_at + self.step_s, time.monotonic() - self.step_s)  # no burst after a stall
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))

    def _step(self, sink: Sink) -> None:
        samples, events = self.live.step(self.clock.now())
        if samples:
            sink.samples(samples)
        if events:
            sink.events(events)
        self._counts["steps"] += 1
        self._counts["samples"] += len(samples)
        self._counts["reads"] += sum(len(s.values) for s in samples)
        self._counts["events"] += len(events)
