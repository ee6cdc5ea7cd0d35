"""One compound's devices, grouped into blocks (one model per kind and reporting interval), stepped
over time windows. Live mode and backfill both run on this engine, so they behave the same.

Besides the models' readings and events, the engine plays the parts around the devices: it
silences devices that are not read (gaps, dropouts, outages), raises the gateway's ``offline``
after three missed reports and ``online`` at the next one, sends each device's own alarms when
their plan says (missed, late) and the spurious ones, and keeps every fault's ground truth.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..contract import KINDS, DeviceKind
from .faults import FAULT_TYPES, FaultLabel, Trigger
from .harmless import HARMLESS_TYPES, HarmlessLabel, OutageLabel
from .models import MODELS, KindModel
from .models.base import F64, I64, RawEvent, SiteContext
from .models.network import WaterNetwork
from .planning import Reporting, is_building_meter, plan_faults, plan_harmless, plan_outages, planned
from .site import SIMULATED_KINDS, Device, Site
from .view import FaultView, Injected, Marked

KIND_INDEX = {k: i for i, k in enumerate(SIMULATED_KINDS)}
OFFLINE_AFTER = 3  # the gateway declares a device offline after this many missed reports
EMERGENCY_CALL_SHARE = 0.7  # trapped passengers who press the alarm button


@dataclass(slots=True)
class Block:
    """Devices of one kind sharing a reporting interval, with their model and fault view."""

    kind: DeviceKind
    interval_ms: int
    devices: list[Device]
    ids: list[str]
    phase_ms: I64  # each device reports at phase + k * interval
    model: KindModel
    faults: FaultView
    phase_order: I64  # rows sorted by phase
    sorted_phase: I64
    missed: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # consecutive missed reports
    declared: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # declared offline


@dataclass(slots=True)
class Chunk:
    """What devices ``rows`` of ``block`` reported at ``times`` (rows x n); NaN values were not reported."""

    block: Block
    rows: I64
    times: I64
    values: dict[str, F64]
    events: list[RawEvent]


@dataclass(frozen=True, slots=True)
class SiteEvent:
    """An event of one device (by id), before it becomes a contract Event."""

    device: str
    kind: DeviceKind
    ts_ms: int
    name: str
    active: bool | None
    attrs: dict[str, str]


@dataclass(order=True, slots=True)
class _Outgoing:
    """An event waiting for its time: a device alarm, its clearing, or a plain event."""

    ts_ms: int
    seq: int
    event: SiteEvent = field(compare=False)
    fault: Injected | None = field(default=None, compare=False)
    role: str = field(default="plain", compare=False)  # raise, clear or plain


class SiteEngine:
    """Blocks of one site, its faults, harmless anomalies and outages, and window-by-window generation."""

    def __init__(
        self,
        site: Site,
        *,
        seed: int = 0,
        start_ms: int,
        site_index: int | None = None,
        anomalies: bool = True,
    ) -> None:
        self.site = site
        index = site_index if site_index is not None else _stable(site.compound)
        self.rng = np.random.default_rng([seed, index, 0])
        self.ctx = SiteContext.draw(site, (seed, index))
        self.anomalies = anomalies
        self.injected: list[Injected] = []  # every fault injected: the ground truth
        self.harmless: list[HarmlessLabel] = []
        self.outages: list[OutageLabel] = []
        self._ending: list[tuple[int, int, Injected]] = []  # faults not over yet, by end
        self._outbox: list[_Outgoing] = []
        self._seq = 0
        self._dark: list[tuple[int, int]] = []  # compound power cuts: the gateway is down
        self.blocks: list[Block] = []
        for kind in SIMULATED_KINDS:
            model_cls = MODELS[kind]
            by_interval: dict[int, list[Device]] = {}
            for d in site.of_kind(kind):
                by_interval.setdefault(model_cls.interval_for(d), []).append(d)
            for interval_s, group in sorted(by_interval.items()):
                rng = np.random.default_rng([seed, index, KIND_INDEX[kind] + 1, interval_s])
                model = model_cls(self.ctx, group, interval_s, rng, start_ms)
                ids = [d.device for d in group]
                phase = rng.integers(0, interval_s * 1000, len(group)).astype(np.int64)
                view = FaultView({d: i for i, d in enumerate(ids)}, kind, interval_s * 1000)
                order = np.argsort(phase, kind="stable").astype(np.int64)
                self.blocks.append(Block(kind, interval_s * 1000, group, ids, phase, model, view, order, phase[order],
                                         np.zeros(len(group), np.int64), np.zeros(len(group), bool)))  # fmt: skip
        self._block_of = {d: (b, i) for b in self.blocks for i, d in enumerate(b.ids)}

    @property
    def labels(self) -> list[FaultLabel]:
        """Every injected fault, with what the run showed of it so far (announced, hidden)."""
        return [f.final() for f in self.injected]

    @property
    def water(self) -> WaterNetwork | None:
        """The compound's water network, if it has water meters."""
        net = self.ctx.shared.get("water")
        return net if isinstance(net, WaterNetwork) else None

    def devices_by_kind(self) -> dict[DeviceKind, list[Device]]:
        """Devices per kind."""
        out: dict[DeviceKind, list[Device]] = {}
        for b in self.blocks:
            out.setdefault(b.kind, []).extend(b.devices)
        return out

    def reporting(self) -> list[Reporting]:
        """How every device reports (interval and phase)."""
        return [
            Reporting(d, b.interval_ms, int(b.phase_ms[i]))
            for b in self.blocks
            for i, d in enumerate(b.devices)
        ]

    def add_labels(self, labels: Sequence[FaultLabel]) -> None:
        """Inject faults given as labels; the device announces each at once if it has an alarm for it."""
        self.add_faults([planned(label, self.rng, sure=True) for label in labels])

    def add_faults(self, faults: Sequence[Injected]) -> None:
        """Inject planned faults (they take effect in the windows they overlap)."""
        for f in faults:
            found = self._block_of.get(f.label.device)
            if found is None:
                raise ValueError(
                    f"device {f.label.device!r} is not a simulated device of {self.site.compound}"
                )
            block, _ = found
            block.faults.add(f.label.device, f)
            self.injected.append(f)
            heapq.heappush(self._ending, (f.end_ms, len(self.injected), f))
            self._water_fault(f)
            alarm = FAULT_TYPES[f.name].alarm
            if f.announce_ms is not None and f.announce_ms >= f.end_ms:
                f.announce_ms = None  # the alarm would come after the fault: as good as missed
            if alarm is not None and alarm.trigger is Trigger.START and f.announce_ms is not None:
                self._alarm(f, f.announce_ms)
            if f.name == "entrapment" and self.rng.random() < EMERGENCY_CALL_SHARE:
                ts = f.start_ms + int(self.rng.uniform(20, 180) * 1000)
                if ts < f.end_ms:
                    self._push(SiteEvent(f.label.device, block.kind, ts, "emergency_call", None, {}))

    def _water_fault(self, f: Injected) -> None:
        """Leaks and bursts are water drawn in the network; bursts also drop the pressure."""
        net = self.water
        if net is None or f.name not in ("leak", "burst"):
            return
        col = net.column(f.label.device)
        lph = f.label.magnitude * 1000.0 if f.name == "burst" else f.label.magnitude
        if f.name == "leak" and f.label.detail.get("scope") == "building":
            lph = f.label.magnitude / 100.0 * float(net.mean_lph[col])
        ramp = (
            (f.end_ms - f.start_ms) // 4 if f.name == "leak" and col >= net.h else 0
        )  # pipes corrode slowly
        net.add_flow(f.label.device, f.start_ms, f.end_ms, lph, ramp)
        if f.name == "burst":
            share = lph / max(float(net.mean_lph[col]), 1.0)
            net.add_dip(f.label.device, f.start_ms, f.end_ms, min(0.15, 0.01 + 0.03 * share))

    def add_harmless(self, labels: Sequence[HarmlessLabel]) -> None:
        """Harmless anomalies: silences, blips, spurious alarms, pressure transients, night water use."""
        net = self.water
        for h in labels:
            self.harmless.append(h)
            if h.anomaly == "pressure_transient" and net is not None:
                net.add_dip(None, h.start_ms, h.end_ms, float(h.detail.get("drop_mpa", "0.05")))
            if not h.device:
                continue
            found = self._block_of.get(h.device)
            if found is None:
                continue
            block, _ = found
            block.faults.add(h.device, Marked(h.anomaly, h.start_ms, h.end_ms, h.detail))
            if h.anomaly == "night_use" and net is not None:
                hours = max((h.end_ms - h.start_ms) / 3_600_000, 1e-3)
                net.add_flow(h.device, h.start_ms, h.end_ms, float(h.detail.get("litres", "80")) / hours)
            spec = HARMLESS_TYPES[h.anomaly]
            if h.anomaly == "charger_self_clear":
                self._raise_and_clear(h, block.kind, "faulted", 1)
            elif spec.event is not None:
                self._raise_and_clear(h, block.kind, spec.event, int(h.detail.get("chatter", "1")))

    def _raise_and_clear(self, h: HarmlessLabel, kind: DeviceKind, event: str, times: int) -> None:
        attrs = {"error_code": h.detail["error_code"]} if "error_code" in h.detail else {}
        step = max(1, (h.end_ms - h.start_ms) // (2 * times))
        for k in range(times):
            t = h.start_ms + 2 * k * step
            self._push(SiteEvent(h.device, kind, t, event, True, attrs))
            self._push(SiteEvent(h.device, kind, min(t + step, h.end_ms), event, False, attrs))

    def add_outages(self, outages: Sequence[OutageLabel]) -> None:
        """Outages: a compound power cut silences every device and the gateway; a building's, its own."""
        for o in outages:
            self.outages.append(o)
            if o.gateway_dark:
                self._dark.append((o.start_ms, o.end_ms))
            for device in o.devices:
                found = self._block_of.get(device)
                if found is not None:
                    found[0].faults.add(device, Marked(o.cause, o.start_ms, o.end_ms))

    def plan(
        self, start_ms: int, end_ms: int, *, mode: str, rate: float = 1.0, open_start: bool = True
    ) -> list[FaultLabel]:
        """Plan faults (and, with anomalies on, harmless anomalies and outages) for [start_ms, end_ms)."""
        faults = plan_faults(self.devices_by_kind(), self.site.compound, start_ms, end_ms, self.rng,
                             mode=mode, rate=rate, open_start=open_start)  # fmt: skip
        self.add_faults(faults)
        if self.anomalies:
            self.add_harmless(plan_harmless(self.reporting(), self.site.compound, start_ms, end_ms, self.rng,
                                            salt=self.ctx.salt, open_start=open_start))  # fmt: skip
            self.add_outages(plan_outages(self.site.devices, self.site.compound, start_ms, end_ms, self.rng))
        return [f.label for f in faults]

    def dark(self, ts_ms: int) -> bool:
        """Whether the compound's gateway is down (a power cut) at ``ts_ms``."""
        return any(a <= ts_ms < b for a, b in self._dark)

    def window(self, a: int, b: int) -> tuple[list[Chunk], list[SiteEvent]]:
        """Everything reported in [a, b): chunks of readings, and the events that are not the models'
        own (alarms, the gateway's offline/online, spurious alarms); the models' are in the chunks."""
        chunks: list[Chunk] = []
        gateway: list[SiteEvent] = []
        for block in self.blocks:
            block.model.window(a, b)
            for rows, times in _grids(block, a, b):
                chunks.append(self._generate(block, rows, times, gateway))
        self._end_faults(b)
        events = gateway + self._due(b)
        return chunks, events

    def _generate(self, block: Block, rows: I64, times: I64, out: list[SiteEvent]) -> Chunk:
        view = block.faults
        view.begin(rows, times)
        result = block.model.generate(rows, times, view)
        for f in view.end():
            if f.condition_ms is not None and not f.state.get("alarm_planned"):
                f.state["alarm_planned"] = True
                self._condition_met(f, block.kind)
        values = result.values
        missing = view.silent
        if missing is not None:
            for v in values.values():
                v[missing] = np.nan
        if block.kind is DeviceKind.CAMERA:
            offline = values["online"] == 0.0
            missing = offline if missing is None else missing | offline
        events = result.events
        if self._dark:
            events = [e for e in events if not self.dark(e[1])]
        self._gateway_view(block, rows, times, missing, out)
        return Chunk(block, rows, times, values, events)

    def snapshot(self, now_ms: int) -> list[Chunk]:
        """One reading of every device at ``now_ms`` (their current values, whatever silences them)."""
        chunks = []
        for block in self.blocks:
            block.model.window(now_ms, now_ms + 1)
            rows = np.arange(len(block.ids), dtype=np.int64)
            times = np.full((len(rows), 1), now_ms, dtype=np.int64)
            block.faults.begin(rows, times)
            out = block.model.generate(rows, times, block.faults)
            block.faults.end()
            chunks.append(Chunk(block, rows, times, out.values, []))
        return chunks

    def _condition_met(self, f: Injected, kind: DeviceKind) -> None:
        """A condition-triggered alarm: goes out after its planned delay (or not at all)."""
        assert f.condition_ms is not None
        event = FAULT_TYPES[f.name].event
        if event is None or f.alarm_delay_ms is None:
            return
        if not KINDS[kind].events[event].stateful:  # the model's own events are the alarm (flicker)
            f.announced_ms = f.condition_ms
            return
        ts = f.condition_ms + f.alarm_delay_ms
        if ts < f.end_ms:
            self._alarm(f, ts)

    def _alarm(self, f: Injected, ts: int) -> None:
        event = FAULT_TYPES[f.name].event
        assert event is not None
        attrs = dict(f.label.detail) if f.name == "charger_faulted" else {}
        kind = f.label.kind
        self._push(SiteEvent(f.label.device, kind, ts, event, True, attrs), f, "raise")
        self._push(SiteEvent(f.label.device, kind, f.end_ms, event, False, attrs), f, "clear")

    def _push(self, event: SiteEvent, fault: Injected | None = None, role: str = "plain") -> None:
        self._seq += 1
        heapq.heappush(self._outbox, _Outgoing(event.ts_ms, self._seq, event, fault, role))

    def _due(self, b: int) -> list[SiteEvent]:
        """Events of the outbox before ``b``; those inside a power cut are lost with the gateway."""
        out = []
        while self._outbox and self._outbox[0].ts_ms < b:
            item = heapq.heappop(self._outbox)
            f = item.fault
            if self.dark(item.ts_ms) or (item.role == "clear" and f is not None and f.announced_ms is None):
                continue
            if item.role == "raise" and f is not None and f.announced_ms is None:
                f.announced_ms = item.ts_ms
            out.append(item.event)
        return out

    def _gateway_view(
        self, block: Block, rows: I64, times: I64, missing: np.ndarray | None, out: list[SiteEvent]
    ) -> None:
        """The gateway's liveness events: offline after OFFLINE_AFTER missed reports, online at the next."""
        busy = block.declared[rows] | (block.missed[rows] > 0)
        if missing is not None:
            busy |= missing.any(axis=1)
        if not busy.any():
            return
        dark = block.faults.mask("power_cut") if self._dark else np.zeros(times.shape, dtype=bool)
        offline_faults = {i: f for i, _, f in block.faults.faults("camera_offline")}
        for i in np.flatnonzero(busy).tolist():
            row = int(rows[i])
            run, declared = int(block.missed[row]), bool(block.declared[row])
            for j in range(times.shape[1]):
                t = int(times[i, j])
                if dark[i, j]:  # the gateway is down: it says nothing, and starts afresh
                    run, declared = 0, False
                elif missing is not None and missing[i, j]:
                    run += 1
                    if run == OFFLINE_AFTER and not declared:
                        declared = True
                        out.append(SiteEvent(block.ids[row], block.kind, t, "offline", None, {}))
                        f = offline_faults.get(i)
                        if f is not None and f.start_ms <= t < f.end_ms and f.announced_ms is None:
                            f.announced_ms = t
                else:
                    if declared:
                        out.append(SiteEvent(block.ids[row], block.kind, t, "online", None, {}))
                    run, declared = 0, False
            block.missed[row], block.declared[row] = run, declared

    def _end_faults(self, b: int) -> None:
        """Tell the models about faults that are over (a replaced battery is full again)."""
        while self._ending and self._ending[0][0] < b:
            _, _, f = heapq.heappop(self._ending)
            block, row = self._block_of[f.label.device]
            block.model.fault_ended(row, f)

    def prune(self, before_ms: int) -> None:
        """Forget spans that ended before ``before_ms``, keeping live memory bounded."""
        for block in self.blocks:
            block.faults.prune(before_ms)
        self._dark = [(a, b) for a, b in self._dark if b >= before_ms]

    def describe(self) -> list[dict[str, object]]:
        """One row per device: what the models drew for it (residents served, daily water, ...)."""
        rows: list[dict[str, object]] = []
        for block in self.blocks:
            traits = block.model.describe()
            for i, d in enumerate(block.devices):
                row: dict[str, object] = {"device": d.device, "compound": self.site.compound, "kind": d.kind.value,
                                          "building": d.building_no or "", "interval_s": block.interval_ms // 1000,
                                          "latitude": self.site.latitude, "longitude": self.site.longitude,
                                          "scope": ("building" if is_building_meter(d) else "household")
                                          if d.kind is DeviceKind.WATER_METER else ""}  # fmt: skip
                for name in ("residents", "expected_daily", "rated_kw", "h265", "overwrite"):
                    value = traits.get(name)
                    row[name] = float(value[i]) if value is not None else float("nan")
                rows.append(row)
        return rows


def _grids(block: Block, a: int, b: int) -> Iterator[tuple[I64, I64]]:
    """(rows, times) grids of the reports in [a, b): one rectangular grid per distinct report count.

    Every device reports ``(b - a) // interval`` times, and once more when its phase falls in the
    remainder; the phases are kept sorted, so a short live window costs in proportion to the few
    devices due in it, not to the whole block.
    """
    interval = block.interval_ms
    full, rem = divmod(b - a, interval)
    lo = a % interval
    order, phases = block.phase_order, block.sorted_phase
    i, j = np.searchsorted(phases, [lo, lo + rem])  # phases in [lo, lo + rem) get one more report
    extra = order[i:j]
    if lo + rem > interval:  # the remainder wraps past the end of the interval
        extra = np.concatenate([extra, order[: np.searchsorted(phases, lo + rem - interval)]])
    for count, rows in ((full + 1, extra), (full, None)):
        if count <= 0:
            continue
        if rows is None:
            if full == 0:
                continue
            rows = np.setdiff1d(order, extra, assume_unique=True) if extra.size else order
        if rows.size == 0:
            continue
        rows = np.sort(rows)
        first = a + np.mod(block.phase_ms[rows] - a, interval)
        yield rows, first[:, None] + np.arange(count, dtype=np.int64)[None, :] * interval


def _stable(text: str) -> int:
    return sum((i + 1) * ord(ch) for i, ch in enumerate(text)) % 1_000_003


def iter_events(chunks: Sequence[Chunk]) -> Iterator[SiteEvent]:
    """The model events of ``chunks`` as site events."""
    for chunk in chunks:
        ids, kind = chunk.block.ids, chunk.block.kind
        for pos, ts, name, active, attrs in chunk.events:
            yield SiteEvent(ids[int(chunk.rows[pos])], kind, ts, name, active, attrs)
