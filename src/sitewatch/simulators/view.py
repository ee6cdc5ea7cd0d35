"""What is going on with one block of devices: injected faults, harmless anomalies and outages, as
masks over (rows, times) grids, and what each fault leaves to be seen.

The engine registers every span (a fault, a harmless anomaly, an outage) with the view of the
block its device is in. Before a block generates a grid the engine calls :meth:`FaultView.begin`,
which finds, in one pass over all spans, those that touch the grid; the model then asks for masks
by name, tells the view where a fault can be seen (:meth:`visible`) and when the device's alarm
condition first held (:meth:`condition`); :meth:`end` turns that into the label's hidden spans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..contract import DeviceKind
from .faults import FaultLabel

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

SILENT = ("data_gap", "dropout", "power_cut")  # the device reports nothing
SILENT_IF_NOT_CAMERA = ("building_power_cut",)  # cameras answer "offline" instead (the gateway is up)
MIN_HIDDEN_MS = 30 * 60_000  # hidden spans shorter than this are not listed


@dataclass(slots=True, eq=False)
class Injected:
    """A fault as the simulator runs it: the planned label, the device's alarm plan, what was seen."""

    label: FaultLabel
    alarm_delay_ms: int | None = None  # planned delay of the device's alarm; None: it never goes out
    announce_ms: int | None = None  # start-triggered alarms: when the device raises it (start + delay)
    condition_ms: int | None = None  # condition-triggered alarms: when the condition first held
    announced_ms: int | None = None  # when the alarm actually went out
    hidden: list[list[int]] = field(default_factory=list)
    seen: bool = False
    state: dict[str, Any] = field(default_factory=dict)  # the model's own bookkeeping for this fault

    @property
    def name(self) -> str:
        """The fault type."""
        return self.label.fault

    @property
    def detail(self) -> Mapping[str, str]:
        """The label's details."""
        return self.label.detail

    @property
    def start_ms(self) -> int:
        """Start of the fault."""
        return self.label.start_ms

    @property
    def end_ms(self) -> int:
        """End of the fault."""
        return self.label.end_ms

    def final(self) -> FaultLabel:
        """The label with what the run showed: announced, observable, hidden spans."""
        from dataclasses import replace

        hidden = tuple((a, b) for a, b in self.hidden if b - a >= MIN_HIDDEN_MS)
        return replace(self.label, announced=self.announced_ms is not None, announced_ms=self.announced_ms,
                       observable=self.seen, hidden=hidden)  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class Marked:
    """A harmless anomaly or an outage as a span on one device."""

    name: str
    start_ms: int
    end_ms: int
    detail: Mapping[str, str] = field(default_factory=dict)


Span = Injected | Marked
Hit = tuple[int, Span]  # (position in the grid's rows, span)


class FaultView:
    """Spans on the devices of one block, asked for as masks over the grid being generated."""

    def __init__(self, row_of: Mapping[str, int], kind: DeviceKind, interval_ms: int) -> None:
        self.row_of = row_of
        self.kind = kind
        self.interval_ms = interval_ms
        self._rows: list[int] = []
        self._t0: list[int] = []
        self._t1: list[int] = []
        self._spans: list[Span] = []
        self._arrays: tuple[I64, I64, I64] | None = None
        self._hits: dict[str, list[Hit]] = {}
        self._grid: tuple[I64, I64] | None = None
        self._visible: dict[int, tuple[int, B]] = {}  # id(injected) -> (position, visible mask)
        self.silent: B | None = None

    def add(self, device: str, span: Span) -> bool:
        """Track ``span`` if ``device`` is in this block."""
        row = self.row_of.get(device)
        if row is None:
            return False
        self._rows.append(row)
        self._t0.append(span.start_ms)
        self._t1.append(span.end_ms)
        self._spans.append(span)
        self._arrays = None
        return True

    def prune(self, before_ms: int) -> None:
        """Forget spans that ended before ``before_ms`` (live mode keeps memory bounded)."""
        keep = [i for i, t1 in enumerate(self._t1) if t1 >= before_ms]
        if len(keep) == len(self._t1):
            return
        self._rows = [self._rows[i] for i in keep]
        self._t0 = [self._t0[i] for i in keep]
        self._t1 = [self._t1[i] for i in keep]
        self._spans = [self._spans[i] for i in keep]
        self._arrays = None

    def begin(self, rows: I64, times: I64) -> None:
        """Find the spans touching this grid (call before the model generates it)."""
        self._grid = (rows, times)
        self._hits = {}
        self._visible = {}
        self.silent = None
        if not self._spans or times.size == 0:
            return
        if self._arrays is None:
            self._arrays = (np.array(self._rows, np.int64), np.array(self._t0, np.int64),
                            np.array(self._t1, np.int64))  # fmt: skip
        r, t0, t1 = self._arrays
        hit = np.flatnonzero((t0 <= times[:, -1].max()) & (t1 > times[:, 0].min()))
        if hit.size == 0:
            return
        pos = np.searchsorted(rows, r[hit])
        ok = (pos < rows.size) & (rows[np.minimum(pos, rows.size - 1)] == r[hit])
        for k, p in zip(hit[ok].tolist(), pos[ok].tolist(), strict=True):
            span = self._spans[k]
            self._hits.setdefault(span.name, []).append((p, span))
        silent_names = SILENT if self.kind is DeviceKind.CAMERA else SILENT + SILENT_IF_NOT_CAMERA
        if any(name in self._hits for name in silent_names):
            self.silent = self.mask(*silent_names)

    def spans(self, name: str) -> list[tuple[int, B, Span]]:
        """(position in the grid's rows, mask over that row's times, span) for each span of ``name``."""
        hits = self._hits.get(name)
        if not hits or self._grid is None:
            return []
        times = self._grid[1]
        out = []
        for i, span in hits:
            m = (times[i] >= span.start_ms) & (times[i] < span.end_ms)
            if m.any():
                out.append((i, m, span))
        return out

    def faults(self, name: str) -> list[tuple[int, B, Injected]]:
        """Like :meth:`spans`, for an injected fault type."""
        return [(i, m, s) for i, m, s in self.spans(name) if isinstance(s, Injected)]

    def mask(self, *names: str) -> B:
        """True where a span of any of ``names`` is active."""
        assert self._grid is not None
        out = np.zeros(self._grid[1].shape, dtype=bool)
        for name in names:
            for i, m, _ in self.spans(name):
                out[i] |= m
        return out

    def visible(self, fault: Injected, i: int, mask: B) -> None:
        """Where (over row ``i``'s times) ``fault`` can be seen in the data, silence aside."""
        known = self._visible.get(id(fault))
        self._visible[id(fault)] = (i, mask if known is None else (known[1] | mask))

    def condition(self, fault: Injected, ts_ms: int) -> None:
        """The device's alarm condition for ``fault`` held at ``ts_ms`` (the first such time counts)."""
        if fault.condition_ms is None or ts_ms < fault.condition_ms:
            fault.condition_ms = int(ts_ms)

    def end(self) -> list[Injected]:
        """Record what of each fault in the grid could be seen; returns the faults it touched."""
        if self._grid is None or not self._hits:
            return []
        times = self._grid[1]
        touched = []
        for hits in self._hits.values():
            for i, span in hits:
                if not isinstance(span, Injected):
                    continue
                inside = (times[i] >= span.start_ms) & (times[i] < span.end_ms)
                if not inside.any():
                    continue
                touched.append(span)
                known = self._visible.get(id(span))
                visible = inside if known is None or known[0] != i else inside & known[1]
                if self.silent is not None:
                    visible = visible & ~self.silent[i]
                if visible.any():
                    span.seen = True
                self._hide(span, times[i], inside & ~visible)
        return touched

    def _hide(self, fault: Injected, times: I64, hidden: B) -> None:
        """Add the runs of ``hidden`` reports to the fault's hidden spans (merged with the last one)."""
        if not hidden.any():
            return
        edges = np.flatnonzero(np.diff(np.concatenate([[0], hidden.astype(np.int8), [0]])))
        for a, b in zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True):
            start = max(int(times[a]), fault.start_ms)
            stop = min(int(times[b - 1]) + self.interval_ms, fault.end_ms)
            if fault.hidden and fault.hidden[-1][1] >= start - self.interval_ms:
                fault.hidden[-1][1] = max(fault.hidden[-1][1], stop)
            else:
                fault.hidden.append([start, stop])
