"""Live mode: a stateful simulated compound that reports, step by step, what its devices send.

Usage (the API the demo, the gateway's protocol front-ends and the ingest benchmarks build on)::

    site = load_sites("ledger.xlsx")[0]
    live = LiveSite(site, seed=1)
    births = live.device_infos()                 # for the gateway's birth message
    samples, events = live.step(now_ms())        # call again and again with a later now_ms
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..contract import DeviceInfo, Event, Sample, now_ms
from .clock import MS_PER_DAY
from .engine import Chunk, SiteEngine, iter_events
from .faults import FAULT_TYPES, Band, FaultLabel, make_label
from .harmless import HarmlessLabel, OutageLabel
from .planning import FAULT_MODES, is_building_meter, outage
from .site import Site

MAX_CATCH_UP_MS = 3_600_000  # a step never generates more than the last hour (a paused process skips ahead)
KEEP_HARMLESS_MS = MS_PER_DAY  # live mode keeps the harmless anomalies and outages of the last day


class LiveSite:
    """One compound in real time: ``step(now_ms)`` returns what its devices reported since the last step.

    - The first step reports one sample of every device at ``now_ms`` (their current values).
    - Later steps report each device at its own reporting interval and phase, timestamps in
      (previous now_ms, now_ms], and the events raised in that span, both in time order (an event a
      device reports with a sample, such as a door fault, carries the time it happened, which may
      lie up to one reporting interval before that sample).
    - Faults are drawn at ``fault_rate`` times the yearly rates of each fault type (``faults="random"``),
      or not at all (``"none"``); :meth:`inject` adds one on purpose. :attr:`labels` lists them all.
    - Harmless anomalies and outages (``anomalies=True``, the default) come at their own yearly
      rates: readings that do not arrive, blips, spurious alarms, power cuts (see docs/simulators.md).
    """

    def __init__(
        self, site: Site, *, seed: int = 0, faults: str = "random", fault_rate: float = 1.0,
        site_index: int | None = None, start_ms: int | None = None, anomalies: bool = True,
    ) -> None:  # fmt: skip
        if faults not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {faults!r} ({', '.join(FAULT_MODES)})")
        self.site = site
        self.compound = site.compound
        self.gateway = site.gateway
        self.fault_mode = faults
        self.fault_rate = fault_rate
        self._start = now_ms() if start_ms is None else start_ms
        self._engine = SiteEngine(
            site, seed=seed, start_ms=self._start, site_index=site_index, anomalies=anomalies
        )
        self._last: int | None = None
        self._planned_until = 0

    @property
    def labels(self) -> list[FaultLabel]:
        """Every fault injected so far (ground truth), with what has been seen of it so far."""
        return self._engine.labels

    @property
    def harmless(self) -> list[HarmlessLabel]:
        """Harmless anomalies planned so far (those of the last day once they are over)."""
        return list(self._engine.harmless)

    @property
    def outages(self) -> list[OutageLabel]:
        """Outages planned so far (those of the last day once they are over)."""
        return list(self._engine.outages)

    def dark(self, ts_ms: int) -> bool:
        """Whether the compound's gateway is down (a power cut) at ``ts_ms``."""
        return self._engine.dark(ts_ms)

    def device_infos(self) -> tuple[DeviceInfo, ...]:
        """The devices of this compound as the gateway's birth message declares them."""
        return tuple(d.info() for d in self.site.devices)

    def inject(
        self, device: str, fault: str, start_ms: int, end_ms: int, *, band: Band | str = Band.CLEAR,
        magnitude: float | None = None,
    ) -> FaultLabel:  # fmt: skip
        """Inject fault ``fault`` (a name of FAULT_TYPES) on ``device`` for [start_ms, end_ms).

        The fault is of ``band`` (clear by default; its magnitude drawn in it unless given), and the
        device announces it at once if it has an alarm for it.
        """
        if fault not in FAULT_TYPES:
            raise ValueError(f"unknown fault type {fault!r}; known: {', '.join(FAULT_TYPES)}")
        if end_ms <= start_ms:
            raise ValueError("a fault must end after it starts")
        devices = {d.device: d for d in self.site.devices}
        if device not in devices:
            raise ValueError(f"{device!r} is not a device of compound {self.compound}")
        if devices[device].kind is not FAULT_TYPES[fault].kind:
            raise ValueError(f"fault {fault!r} is for {FAULT_TYPES[fault].kind}, not {devices[device].kind}")
        label = make_label(fault, device, self.compound, start_ms, end_ms, self._engine.rng, band=Band(band),
                           magnitude=magnitude, building_meter=is_building_meter(devices[device]))  # fmt: skip
        self._engine.add_labels([label])
        return label

    def outage(self, start_ms: int, end_ms: int, building: str | None = None) -> OutageLabel:
        """Cut the power on purpose: the whole compound with its gateway, or one building's supply."""
        if end_ms <= start_ms:
            raise ValueError("an outage must end after it starts")
        label = outage(self.site.devices, self.compound, start_ms, end_ms, building)
        if label is None:
            raise ValueError(f"building {building!r} of {self.compound} has no elevator or camera")
        self._engine.add_outages([label])
        return label

    def step(self, now_ms: int) -> tuple[list[Sample], list[Event]]:
        """Samples and events reported since the previous step, up to and including ``now_ms``."""
        if self._last is None:
            self._last = now_ms
            self._plan(now_ms)
            return _samples(self._engine.snapshot(now_ms)), []
        if now_ms <= self._last:
            return [], []
        a = max(self._last + 1, now_ms + 1 - MAX_CATCH_UP_MS)
        b = now_ms + 1
        self._last = now_ms
        self._plan(now_ms)
        chunks, site_events = self._engine.window(a, b)
        samples = _samples(chunks)
        # A device's own events may carry an earlier time: a door fault is timed when it happened, since
        # the device's previous report, and reported with this one.
        events = [Event(e.device, e.kind, e.ts_ms, e.name, e.active, e.attrs) for e in site_events]
        events += [Event(e.device, e.kind, e.ts_ms, e.name, e.active, e.attrs) for e in iter_events(chunks)]
        samples.sort(key=lambda s: s.ts_ms)
        events.sort(key=lambda e: e.ts_ms)
        self._engine.prune(a)
        return samples, events

    def _plan(self, now_ms: int) -> None:
        """Draw random faults, harmless anomalies and outages one day ahead."""
        if now_ms + MS_PER_DAY // 2 < self._planned_until:
            return
        start = max(now_ms, self._planned_until)
        end = start + MS_PER_DAY
        mode = self.fault_mode if not self._planned_until or self.fault_mode == "none" else "random"
        self._engine.plan(start, end, mode=mode, rate=self.fault_rate, open_start=False)
        self._planned_until = end
        engine = self._engine
        engine.harmless = [h for h in engine.harmless if h.end_ms >= now_ms - KEEP_HARMLESS_MS]
        engine.outages = [o for o in engine.outages if o.end_ms >= now_ms - KEEP_HARMLESS_MS]


def _samples(chunks: Sequence[Chunk]) -> list[Sample]:
    """Contract samples from generated chunks (one per device and timestamp, NaN values left out)."""
    out: list[Sample] = []
    for chunk in chunks:
        ids, kind = chunk.block.ids, chunk.block.kind
        names = list(chunk.values)
        stacked = np.stack([chunk.values[m] for m in names], axis=-1)  # rows x n x metrics
        rows = chunk.rows.tolist()
        times = chunk.times.tolist()
        for i, row in enumerate(rows):
            device = ids[row]
            for j, ts in enumerate(times[i]):
                values = {
                    name: v
                    for name, v in zip(names, stacked[i, j].tolist(), strict=True)
                    if not math.isnan(v)
                }
                if values:
                    out.append(Sample(device, kind, ts, values))
    return out
