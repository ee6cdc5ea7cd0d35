"""Fault types per device kind, fault plans and the ground-truth labels they leave behind.

Every injected fault is a :class:`FaultLabel` (device, kind, fault type, start, end): the labels
table that analytics is evaluated against. The models read active faults through
:class:`FaultView` masks and change the device's readings and events accordingly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from ..contract import DeviceKind
from ..i18n import N_
from .clock import MS_PER_H, local_hour

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class FaultType:
    """One kind of fault: which devices it hits, how long it lasts, how often, and its contract event."""

    name: str
    kind: DeviceKind
    description: str  # a catalog message: shown with _(fault.description)
    hours: tuple[float, float]  # duration range
    per_year: float  # expected occurrences per device and year in random mode
    event: str | None = None  # stateful contract event raised at start and cleared at end
    daytime: bool = False  # starts in daylight (so that it is visible, e.g. day burning)


_K = DeviceKind
FAULT_TYPES: Mapping[str, FaultType] = MappingProxyType({
    f.name: f
    for f in (
        FaultType("door_fault_burst", _K.ELEVATOR, N_("door faults in quick succession"), (0.3, 3), 4),
        FaultType("bearing_wear", _K.ELEVATOR, N_("vibration rising before a bearing fails"),
                  (72, 240), 0.3),
        FaultType("entrapment", _K.ELEVATOR, N_("passenger trapped in the car"), (0.15, 1.0), 1.0,
                  "entrapment"),
        FaultType("out_of_service", _K.ELEVATOR, N_("elevator stopped, waiting for repair"), (4, 72), 0.5,
                  "out_of_service"),
        FaultType("camera_offline", _K.CAMERA, N_("camera stops answering"), (0.5, 24), 4, "offline"),
        FaultType("video_loss", _K.CAMERA, N_("no video signal"), (0.25, 12), 2, "video_loss"),
        FaultType("storage_full", _K.CAMERA, N_("recording storage full"), (24, 120), 0.5, "storage_full"),
        FaultType("camera_tamper", _K.CAMERA, N_("camera covered or turned away"), (1, 48), 0.3, "tamper"),
        FaultType("charger_faulted", _K.CHARGER, N_("OCPP Faulted with an error code"), (1, 48), 3,
                  "faulted"),
        FaultType("over_temperature", _K.CHARGER, N_("internal temperature above limit"), (0.3, 2), 1,
                  "over_temperature"),
        FaultType("stuck_session", _K.CHARGER, N_("session stays Charging without delivering energy"),
                  (6, 48), 1),
        FaultType("lamp_failure", _K.STREETLIGHT, N_("lamp on but drawing no current"), (24, 120), 0.5,
                  "lamp_failure"),
        FaultType("day_burning", _K.STREETLIGHT, N_("lamp lit in daylight"), (6, 72), 0.5,
                  "day_burning", daytime=True),
        FaultType("flicker", _K.STREETLIGHT, N_("lamp switching on and off"), (1, 12), 0.5),
        FaultType("leak", _K.WATER_METER, N_("leak: raised minimum night flow"), (48, 240), 0.05),
        FaultType("burst", _K.WATER_METER, N_("pipe burst: very high flow"), (1, 6), 0.01),
        FaultType("stuck_register", _K.WATER_METER, N_("register stops advancing"), (48, 240), 0.05),
        FaultType("reverse_flow", _K.WATER_METER, N_("water flowing backwards"), (0.5, 6), 0.05,
                  "reverse_flow"),
        FaultType("battery_low", _K.WATER_METER, N_("battery nearly empty"), (72, 336), 0.1,
                  "battery_low"),
        FaultType("meter_tamper", _K.WATER_METER, N_("meter opened or removed"), (1, 72), 0.02, "tamper"),
    )
})  # fmt: skip

FAULTS_BY_KIND: Mapping[DeviceKind, tuple[str, ...]] = MappingProxyType(
    {
        k: tuple(n for n, f in FAULT_TYPES.items() if f.kind is k)
        for k in {f.kind for f in FAULT_TYPES.values()}
    }
)
CHARGER_ERROR_CODES = ("GroundFailure", "OverCurrentFailure", "PowerMeterFailure", "InternalError",
                       "ConnectorLockFailure", "OverVoltage", "UnderVoltage", "EVCommunicationError")  # fmt: skip


@dataclass(frozen=True, slots=True)
class FaultLabel:
    """Ground truth of one injected fault: [start_ms, end_ms) on one device."""

    device: str
    compound: str
    kind: DeviceKind
    fault: str
    start_ms: int
    end_ms: int
    detail: Mapping[str, str] = field(default_factory=dict)  # e.g. {"error_code": "GroundFailure"}

    def to_row(self) -> dict[str, Any]:
        """A row of the labels table."""
        detail = ";".join(f"{k}={v}" for k, v in sorted(self.detail.items()))
        return {"device": self.device, "compound": self.compound, "kind": self.kind.value, "fault": self.fault,
                "start_ms": self.start_ms, "end_ms": self.end_ms, "detail": detail}  # fmt: skip


def make_label(
    fault: str, device: str, compound: str, start_ms: int, end_ms: int, rng: np.random.Generator
) -> FaultLabel:
    """A label for ``fault`` on ``device``, with the details the fault needs (e.g. an OCPP error code)."""
    spec = FAULT_TYPES[fault]
    detail: dict[str, str] = {}
    if fault == "charger_faulted":
        detail["error_code"] = CHARGER_ERROR_CODES[int(rng.integers(len(CHARGER_ERROR_CODES)))]
    return FaultLabel(device, compound, spec.kind, fault, int(start_ms), int(end_ms), detail)


def _duration_ms(spec: FaultType, rng: np.random.Generator, limit_ms: int) -> int:
    lo, hi = spec.hours
    hours = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return max(60_000, min(int(hours * MS_PER_H), limit_ms))


def _start_ms(spec: FaultType, rng: np.random.Generator, a: int, latest: int) -> int:
    if latest <= a:
        return a
    for _ in range(50):
        t = int(rng.integers(a, latest))
        if not spec.daytime or 9.0 <= float(local_hour(np.array([t], dtype=np.int64))[0]) < 15.0:
            return t
    return int(rng.integers(a, latest))


def plan_faults(
    devices: Mapping[DeviceKind, Sequence[str]], compound: str, start_ms: int, end_ms: int,
    rng: np.random.Generator, *, mode: str = "random", rate: float = 1.0, open_start: bool = True,
) -> list[FaultLabel]:  # fmt: skip
    """Faults for the devices of one compound in [start_ms, end_ms).

    ``mode`` is ``none``, ``random`` (each device draws faults at ``rate`` times the yearly rates)
    or ``all`` (random, plus at least one fault of every type of every kind present, on distinct
    devices where the compound has enough of them, else in disjoint time slots of a device).
    With ``open_start`` a random fault may already be running at ``start_ms`` (as in any history);
    live mode plans without it, so that every fault starts, with its events, while it is watched.
    """
    if mode not in ("none", "random", "all"):
        raise ValueError(f"unknown fault mode {mode!r} (none, random, all)")
    span = end_ms - start_ms
    if mode == "none" or span <= 0:
        return []
    labels: list[FaultLabel] = []
    years = span / (365.0 * 24 * MS_PER_H)
    for kind, ids in devices.items():
        for fault in FAULTS_BY_KIND.get(kind, ()):
            spec = FAULT_TYPES[fault]
            counts = rng.poisson(spec.per_year * rate * years, size=len(ids))
            for i in np.flatnonzero(counts):
                for _ in range(int(counts[i])):
                    dur = _duration_ms(spec, rng, span)
                    t0 = _start_ms(spec, rng, start_ms - dur // 2 if open_start else start_ms, end_ms)
                    labels.append(make_label(fault, ids[int(i)], compound, t0, t0 + dur, rng))
        if mode == "all" and ids:
            order = rng.permutation(len(ids))
            names = FAULTS_BY_KIND.get(kind, ())
            # When a kind has fewer devices than fault types, a device takes several, in disjoint slots.
            slots = -(-len(names) // len(ids))
            slot_ms = span // slots
            for j, fault in enumerate(names):
                spec = FAULT_TYPES[fault]
                a = start_ms + (j // len(ids)) * slot_ms
                dur = _duration_ms(spec, rng, max(slot_ms // 2, 60_000))
                t0 = _start_ms(spec, rng, a, a + slot_ms - dur)
                labels.append(make_label(fault, ids[int(order[j % len(ids)])], compound, t0, t0 + dur, rng))
    labels.sort(key=lambda lab: (lab.start_ms, lab.device))
    return labels


class FaultView:
    """Active faults of one block of devices, asked for as masks over (rows, times) grids."""

    def __init__(self, row_of: Mapping[str, int]) -> None:
        self.row_of = row_of
        self._spans: dict[str, list[tuple[int, int, int, FaultLabel]]] = {}

    def add(self, label: FaultLabel) -> bool:
        """Track ``label`` if its device is in this block."""
        row = self.row_of.get(label.device)
        if row is None:
            return False
        self._spans.setdefault(label.fault, []).append((row, label.start_ms, label.end_ms, label))
        return True

    def prune(self, before_ms: int) -> None:
        """Forget faults that ended before ``before_ms`` (live mode keeps memory bounded)."""
        for name, spans in self._spans.items():
            self._spans[name] = [s for s in spans if s[2] >= before_ms]

    def has(self, fault: str) -> bool:
        """Whether any fault of this type is tracked."""
        return bool(self._spans.get(fault))

    def spans(self, fault: str, rows: I64, times: I64) -> list[tuple[int, B, FaultLabel]]:
        """(position in ``rows``, mask over that row's times, label) for each overlapping fault."""
        out: list[tuple[int, B, FaultLabel]] = []
        if not self._spans.get(fault):
            return out
        pos = {int(r): i for i, r in enumerate(rows)}
        for row, t0, t1, label in self._spans[fault]:
            i = pos.get(row)
            if i is None:
                continue
            m = (times[i] >= t0) & (times[i] < t1)
            if m.any():
                out.append((i, m, label))
        return out

    def mask(self, fault: str, rows: I64, times: I64) -> B:
        """True where a fault of this type is active."""
        out = np.zeros(times.shape, dtype=bool)
        for i, m, _ in self.spans(fault, rows, times):
            out[i] |= m
        return out

    def progress(self, fault: str, rows: I64, times: I64) -> F64:
        """How far through its fault each point is (0..1), 0 where none is active."""
        out = np.zeros(times.shape, dtype=np.float64)
        for i, m, label in self.spans(fault, rows, times):
            frac = (times[i] - label.start_ms) / max(1, label.end_ms - label.start_ms)
            out[i] = np.where(m, frac, out[i])
        return out
