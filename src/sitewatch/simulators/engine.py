"""One compound's devices, grouped into blocks (one model per kind and reporting interval), stepped
over time windows. Live mode and backfill both run on this engine, so they behave the same."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..contract import DeviceKind
from .faults import FAULT_TYPES, FaultLabel, FaultView, plan_faults
from .models import MODELS, KindModel, WaterMeterModel
from .models.base import F64, I64, RawEvent
from .site import SIMULATED_KINDS, Device, Site

KIND_INDEX = {k: i for i, k in enumerate(SIMULATED_KINDS)}


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


def fault_events(label: FaultLabel) -> list[tuple[int, str, bool | None, dict[str, str]]]:
    """Events a fault raises on its own: (ts, name, active, attrs) at its start and at its end."""
    spec = FAULT_TYPES[label.fault]
    out: list[tuple[int, str, bool | None, dict[str, str]]] = []
    if spec.event == "offline":  # liveness events are not stateful in the contract
        out += [(label.start_ms, "offline", None, {}), (label.end_ms, "online", None, {})]
    elif spec.event is not None:
        attrs = dict(label.detail)
        out += [(label.start_ms, spec.event, True, attrs), (label.end_ms, spec.event, False, attrs)]
    if label.fault == "entrapment":
        out.append((label.start_ms + 45_000, "emergency_call", None, {}))
    return out


class SiteEngine:
    """Blocks of one site, its fault labels, and window-by-window generation."""

    def __init__(self, site: Site, *, seed: int = 0, start_ms: int, site_index: int | None = None) -> None:
        self.site = site
        index = site_index if site_index is not None else _stable(site.compound)
        self.rng = np.random.default_rng([seed, index, 0])
        self.labels: list[FaultLabel] = []  # every fault injected: the ground truth
        self._pending: list[FaultLabel] = []  # faults whose events are not all emitted yet
        self.blocks: list[Block] = []
        for kind in SIMULATED_KINDS:
            devices = site.of_kind(kind)
            model_cls = MODELS[kind]
            by_interval: dict[int, list[Device]] = {}
            for d in devices:
                by_interval.setdefault(model_cls.interval_for(d), []).append(d)
            for interval_s, group in sorted(by_interval.items()):
                rng = np.random.default_rng([seed, index, KIND_INDEX[kind] + 1, interval_s])
                model = model_cls(site, group, interval_s, rng, start_ms)
                ids = [d.device for d in group]
                phase = rng.integers(0, interval_s * 1000, len(group)).astype(np.int64)
                view = FaultView({d: i for i, d in enumerate(ids)})
                order = np.argsort(phase, kind="stable").astype(np.int64)
                self.blocks.append(
                    Block(kind, interval_s * 1000, group, ids, phase, model, view, order, phase[order])
                )
        self._upstream = _upstream_meters(site)

    def _block_of(self, device: str) -> tuple[Block, int] | None:
        for block in self.blocks:
            row = block.faults.row_of.get(device)
            if row is not None:
                return block, row
        return None

    def devices_by_kind(self) -> dict[DeviceKind, list[str]]:
        """Device ids per kind."""
        out: dict[DeviceKind, list[str]] = {}
        for b in self.blocks:
            out.setdefault(b.kind, []).extend(b.ids)
        return out

    def add_labels(self, labels: Sequence[FaultLabel]) -> None:
        """Inject faults (they take effect in the windows they overlap)."""
        for label in labels:
            found = self._block_of(label.device)
            if found is None:
                raise ValueError(f"device {label.device!r} is not a simulated device of {self.site.compound}")
            block, row = found
            block.faults.add(label)
            self.labels.append(label)
            self._pending.append(label)
            if label.fault in ("leak", "burst") and isinstance(block.model, WaterMeterModel):
                # Water lost behind a meter also passes the building and compound meters upstream of it.
                rate = (block.model.leak_rate if label.fault == "leak" else block.model.burst_rate)[row]
                for meter in self._upstream.get(label.device, ()):
                    up = self._block_of(meter)
                    if up is not None:
                        up[0].faults.add(FaultLabel(meter, label.compound, label.kind, f"upstream_{label.fault}",
                                                    label.start_ms, label.end_ms, {"rate_m3h": f"{rate:.5f}"}))  # fmt: skip

    def plan(
        self, start_ms: int, end_ms: int, *, mode: str, rate: float = 1.0, open_start: bool = True
    ) -> list[FaultLabel]:
        """Plan and inject faults for [start_ms, end_ms); returns the new labels."""
        labels = plan_faults(self.devices_by_kind(), self.site.compound, start_ms, end_ms, self.rng,
                             mode=mode, rate=rate, open_start=open_start)  # fmt: skip
        self.add_labels(labels)
        return labels

    def window(self, a: int, b: int) -> tuple[list[Chunk], list[SiteEvent]]:
        """Everything reported in [a, b): chunks of readings and the fault events (not the model events)."""
        chunks: list[Chunk] = []
        for block in self.blocks:
            for rows, times in _grids(block, a, b):
                out = block.model.generate(rows, times, block.faults)
                chunks.append(Chunk(block, rows, times, out.values, out.events))
        events: list[SiteEvent] = []
        for label in self._pending:
            if label.end_ms < a or label.start_ms >= b:
                continue
            for ts, name, active, attrs in fault_events(label):
                if a <= ts < b:
                    events.append(SiteEvent(label.device, label.kind, ts, name, active, attrs))
            if a <= label.end_ms < b:
                for block in self.blocks:
                    row = block.faults.row_of.get(label.device)
                    if row is not None:
                        block.model.fault_ended(row, label)
        return chunks, events

    def prune(self, before_ms: int) -> None:
        """Forget faults that ended before ``before_ms``, keeping live memory bounded."""
        self._pending = [lab for lab in self._pending if lab.end_ms >= before_ms]
        for block in self.blocks:
            block.faults.prune(before_ms)


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


def _upstream_meters(site: Site) -> dict[str, list[str]]:
    """For each water meter, the meters its water passes first: its building's meter, the compound's."""
    meters = site.of_kind(DeviceKind.WATER_METER)
    scope = {m.device: m.attrs.get("meter_scope") for m in meters}
    compound_meter = [m.device for m in meters if scope[m.device] == "building" and m.building_no is None]
    building_meter = {
        m.building_no: m.device for m in meters if scope[m.device] == "building" and m.building_no
    }
    out: dict[str, list[str]] = {}
    for m in meters:
        if scope[m.device] == "household":
            first = [building_meter[m.building_no]] if m.building_no in building_meter else []
            out[m.device] = first + compound_meter
        elif m.building_no is not None:
            out[m.device] = list(compound_meter)
    return out


def _stable(text: str) -> int:
    return sum((i + 1) * ord(ch) for i, ch in enumerate(text)) % 1_000_003


def iter_events(chunks: Sequence[Chunk]) -> Iterator[SiteEvent]:
    """The model events of ``chunks`` as site events."""
    for chunk in chunks:
        ids, kind = chunk.block.ids, chunk.block.kind
        for pos, ts, name, active, attrs in chunk.events:
            yield SiteEvent(ids[int(chunk.rows[pos])], kind, ts, name, active, attrs)
