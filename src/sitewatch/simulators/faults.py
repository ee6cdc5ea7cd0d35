"""Fault types per device kind, their sizes, the device's own alarms, and the ground-truth labels.

Every injected fault is a :class:`FaultLabel`: the labels table analytics is evaluated against.
Each fault type draws its size (``magnitude``, in the fault's own unit) from three bands,
``subtle``, ``moderate`` and ``clear`` (one third each, log-uniform inside the band), and says how
the device itself announces it (:class:`Alarm`): which contract event, on what condition, and how
often that alarm is missed or late. The catalogue is the table in docs/simulators.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson

from ..contract import DeviceKind
from ..i18n import N_


class Band(StrEnum):
    """How plainly a fault shows: its magnitude band."""

    SUBTLE = "subtle"
    MODERATE = "moderate"
    CLEAR = "clear"


BANDS: tuple[Band, ...] = (Band.SUBTLE, Band.MODERATE, Band.CLEAR)


class Trigger(StrEnum):
    """When a device raises its alarm for a fault."""

    START = "start"  # as the fault starts (a flag or a status the device sets)
    CONDITION = "condition"  # when a reading crosses the device's own limit (battery < 20%, ...)
    GATEWAY = "gateway"  # the gateway's health check: offline after three failed checks


@dataclass(frozen=True, slots=True)
class Magnitude:
    """A fault's size: unit and the [low, high] range of each band (log-uniform inside)."""

    unit: str
    subtle: tuple[float, float]
    moderate: tuple[float, float]
    clear: tuple[float, float]

    def range(self, band: Band) -> tuple[float, float]:
        """The magnitude range of ``band``."""
        return {Band.SUBTLE: self.subtle, Band.MODERATE: self.moderate, Band.CLEAR: self.clear}[band]

    def draw(self, band: Band, rng: np.random.Generator) -> float:
        """A magnitude inside ``band``, log-uniform."""
        lo, hi = self.range(band)
        return float(np.exp(rng.uniform(math.log(lo), math.log(hi)))) if hi > lo else float(lo)

    def band_of(self, value: float) -> Band:
        """The band a magnitude falls in (bands are contiguous or ordered)."""
        if value >= self.clear[0]:
            return Band.CLEAR
        return Band.MODERATE if value >= self.moderate[0] else Band.SUBTLE


@dataclass(frozen=True, slots=True)
class Alarm:
    """The device's own alarm for a fault: its contract event and how imperfect it is.

    ``detect`` is the chance, per band, that the device can sense the fault at all (a camera's
    tamper detection sees a covered lens, not a nudged one); then the alarm is ``missed`` with
    that probability, and otherwise ``late`` with that probability, by ``delay_s``.
    """

    event: str
    trigger: Trigger
    missed: float = 0.0
    late: float = 0.0
    delay_s: tuple[float, float] = (0.0, 0.0)
    detect: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def plan(self, band: Band, rng: np.random.Generator) -> int | None:
        """Delay in ms after the trigger with which the alarm goes out, or None if it never does."""
        if rng.random() >= self.detect[BANDS.index(band)] or rng.random() < self.missed:
            return None
        if rng.random() < self.late:
            return int(rng.uniform(*self.delay_s) * 1000)
        return 0


@dataclass(frozen=True, slots=True)
class FaultType:
    """One kind of fault: devices it hits, duration, yearly rate, sizes and the device's alarm."""

    name: str
    kind: DeviceKind
    description: str  # a catalog message: shown with _(fault.description)
    hours: tuple[float, float]  # duration range (log-uniform), unless the magnitude is the duration
    per_year: float  # expected occurrences per device and year in random mode
    magnitude: Magnitude
    alarm: Alarm | None = None
    building_magnitude: Magnitude | None = None  # building and compound water meters, where it differs
    band_hours: Mapping[Band, tuple[float, float]] | None = None  # durations per band, where they differ
    magnitude_is_duration: float = 0.0  # hours per unit of magnitude when the size is the duration
    household_only: bool = False  # water faults only household meters have
    onset: str = "instant"  # or "gradual" (see docs/simulators.md)
    evening_start: bool = False  # seen only with lamps lit or cars in: `--faults all` starts it at 18-23h

    @property
    def event(self) -> str | None:
        """The contract event the device raises for this fault, if any."""
        return self.alarm.event if self.alarm is not None else None

    def magnitude_for(self, building_meter: bool) -> Magnitude:
        """The magnitude spec for a device (building water meters may use their own)."""
        if building_meter and self.building_magnitude is not None:
            return self.building_magnitude
        return self.magnitude

    def hours_for(self, band: Band) -> tuple[float, float]:
        """The duration range of a fault of ``band``."""
        return (self.band_hours or {}).get(band, self.hours)


_K, _T = DeviceKind, Trigger
_M = Magnitude
FAULT_TYPES: Mapping[str, FaultType] = MappingProxyType({
    f.name: f
    for f in (
        FaultType("door_fault_burst", _K.ELEVATOR, N_("door faults in quick succession"), (0.3, 120), 4,
                  _M("faults/day", (2, 6), (6, 40), (40, 300)),
                  band_hours={Band.SUBTLE: (24, 120), Band.MODERATE: (3, 24), Band.CLEAR: (0.3, 3)}),
        FaultType("bearing_wear", _K.ELEVATOR, N_("vibration rising before a bearing fails"),
                  (72, 720), 0.3, _M("×", (1.15, 1.5), (1.5, 2.5), (2.5, 5.0)), onset="gradual",
                  band_hours={Band.SUBTLE: (240, 720), Band.MODERATE: (120, 360), Band.CLEAR: (72, 240)}),
        FaultType("entrapment", _K.ELEVATOR, N_("passenger trapped in the car"), (0.05, 1.5), 1.0,
                  _M("min", (3, 10), (10, 30), (30, 90)),
                  Alarm("entrapment", _T.START, missed=0.05, late=0.15, delay_s=(60, 300)),
                  magnitude_is_duration=1 / 60),
        FaultType("out_of_service", _K.ELEVATOR, N_("elevator stopped, waiting for repair"), (1, 96), 0.5,
                  _M("h", (1, 4), (4, 24), (24, 96)),
                  Alarm("out_of_service", _T.START, missed=0.15, late=0.10, delay_s=(300, 3600)),
                  magnitude_is_duration=1.0),
        FaultType("camera_offline", _K.CAMERA, N_("camera stops answering, all the time or now and then"),
                  (0.5, 72), 4, _M("% checks failed", (5, 30), (30, 90), (100, 100)),
                  Alarm("offline", _T.GATEWAY),
                  band_hours={Band.SUBTLE: (6, 72), Band.MODERATE: (1, 24), Band.CLEAR: (0.5, 24)}),
        FaultType("video_loss", _K.CAMERA, N_("video frames lost, up to no signal at all"), (0.25, 12), 2,
                  _M("% frames lost", (10, 30), (30, 90), (100, 100)),
                  Alarm("video_loss", _T.START, missed=0.05, late=0.10, delay_s=(60, 600), detect=(0, 0, 1))),
        FaultType("storage_full", _K.CAMERA, N_("recorder stops freeing space and fills up"), (24, 240), 0.5,
                  _M("%/day", (0.5, 2), (2, 10), (10, 100)),
                  Alarm("storage_full", _T.CONDITION, missed=0.10, late=0.20, delay_s=(300, 3600)),
                  onset="gradual"),
        FaultType("camera_tamper", _K.CAMERA, N_("camera nudged, turned away or covered"), (1, 72), 0.3,
                  _M("% scene changed", (10, 25), (25, 60), (60, 100)),
                  Alarm("tamper", _T.START, late=0.20, delay_s=(60, 600), detect=(0, 0.4, 0.9))),
        FaultType("charger_faulted", _K.CHARGER, N_("OCPP Faulted with an error code"), (0.5, 48), 3,
                  _M("h", (0.5, 2), (2, 8), (8, 48)),
                  Alarm("faulted", _T.START, missed=0.05, late=0.25, delay_s=(60, 900)),
                  magnitude_is_duration=1.0),
        FaultType("over_temperature", _K.CHARGER, N_("cooling failing: the charger heats up under load"),
                  (6, 120), 1, _M("°C at full load", (4, 10), (10, 25), (25, 50)),
                  Alarm("over_temperature", _T.CONDITION, missed=0.05, late=0.10, delay_s=(60, 300)),
                  onset="gradual"),
        FaultType("stuck_session", _K.CHARGER, N_("session stays Charging without delivering its energy"),
                  (2, 24), 1, _M("% power not delivered", (40, 75), (75, 98), (100, 100)), evening_start=True),
        FaultType("lamp_failure", _K.STREETLIGHT, N_("lamp (or part of it) dark when switched on"),
                  (24, 240), 0.5, _M("% power lost", (15, 35), (35, 85), (95, 100)),
                  Alarm("lamp_failure", _T.CONDITION, missed=0.10, detect=(0, 0, 1)), evening_start=True),
        FaultType("day_burning", _K.STREETLIGHT, N_("lamp lit in daylight: a dirty photocell or a stuck relay"),
                  (24, 240), 0.5, _M("h/day", (0.5, 1.5), (1.5, 5), (6, 16)),
                  Alarm("day_burning", _T.CONDITION, missed=0.10, detect=(0, 0, 1)), onset="gradual"),
        FaultType("flicker", _K.STREETLIGHT, N_("lamp switching off and on by itself"), (1, 120), 0.5,
                  _M("switches/h", (1, 4), (4, 30), (30, 240)), Alarm("flicker", _T.CONDITION), evening_start=True,
                  band_hours={Band.SUBTLE: (24, 120), Band.MODERATE: (6, 48), Band.CLEAR: (1, 12)}),
        FaultType("leak", _K.WATER_METER, N_("leak behind the meter: the night flow rises"),
                  (48, 336), 0.05, _M("L/h", (1, 4), (4, 12), (12, 35)),
                  building_magnitude=_M("% of mean flow", (5, 8), (8, 14), (14, 20))),
        FaultType("burst", _K.WATER_METER, N_("pipe burst: high flow, pressure drops"), (0.5, 8), 0.01,
                  _M("m³/h", (0.1, 0.3), (0.3, 0.8), (0.8, 2.0)),
                  building_magnitude=_M("m³/h", (0.3, 1.0), (1.0, 3.0), (3.0, 8.0))),
        FaultType("stuck_register", _K.WATER_METER, N_("register slows or stops (worn mechanism)"),
                  (48, 336), 0.05, _M("% not registered", (10, 40), (40, 90), (100, 100))),
        FaultType("reverse_flow", _K.WATER_METER, N_("failed check valve: water flows back at low pressure"),
                  (6, 72), 0.05, _M("L/h", (1, 4), (4, 15), (15, 60)),
                  Alarm("reverse_flow", _T.CONDITION, missed=0.10), household_only=True),
        FaultType("battery_low", _K.WATER_METER, N_("battery draining fast"), (72, 720), 0.1,
                  _M("%/day", (0.3, 1), (1, 4), (4, 25)),
                  Alarm("battery_low", _T.CONDITION, missed=0.05, late=0.30, delay_s=(600, 86_400)),
                  onset="gradual"),
        FaultType("meter_tamper", _K.WATER_METER, N_("magnet on the meter or meter opened"), (1, 72),
                  0.02, _M("% not registered", (10, 40), (40, 90), (100, 100)),
                  Alarm("tamper", _T.START, late=0.10, delay_s=(60, 900), detect=(0.1, 0.5, 0.95))),
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

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class FaultLabel:
    """Ground truth of one injected fault: [start_ms, end_ms) on one device, its size and what shows.

    ``announced``/``announced_ms``: the device itself raised its alarm (first at that time);
    ``observable``: some of it can be seen in the data; ``hidden``: spans inside [start, end) where
    it cannot (the device silent, a failed lamp in daylight, a stuck register with no water drawn).
    """

    device: str
    compound: str
    kind: DeviceKind
    fault: str
    start_ms: int
    end_ms: int
    detail: Mapping[str, str] = field(default_factory=dict)  # e.g. {"error_code": "GroundFailure"}
    magnitude: float = float("nan")
    unit: str = ""
    band: str = ""
    announced: bool = False
    announced_ms: int | None = None
    observable: bool = True
    hidden: tuple[Span, ...] = ()

    def to_row(self) -> dict[str, Any]:
        """A row of the labels table."""
        detail = ";".join(f"{k}={v}" for k, v in sorted(self.detail.items()))
        return {"device": self.device, "compound": self.compound, "kind": self.kind.value, "fault": self.fault,
                "start_ms": self.start_ms, "end_ms": self.end_ms, "detail": detail, "magnitude": self.magnitude,
                "unit": self.unit, "band": self.band, "announced": self.announced,
                "announced_ms": self.announced_ms, "observable": self.observable,
                "hidden": orjson.dumps([list(s) for s in self.hidden]).decode()}  # fmt: skip


def make_label(
    fault: str, device: str, compound: str, start_ms: int, end_ms: int, rng: np.random.Generator, *,
    band: Band = Band.CLEAR, magnitude: float | None = None, building_meter: bool = False,
) -> FaultLabel:  # fmt: skip
    """A label for ``fault`` on ``device`` of ``band`` (magnitude drawn in it unless given), with the
    details the fault needs (an OCPP error code, how a camera was tampered with)."""
    spec = FAULT_TYPES[fault]
    scale = spec.magnitude_for(building_meter)
    value = scale.draw(band, rng) if magnitude is None else float(magnitude)
    detail: dict[str, str] = {}
    if fault == "charger_faulted":
        detail["error_code"] = CHARGER_ERROR_CODES[int(rng.integers(len(CHARGER_ERROR_CODES)))]
    elif fault == "camera_tamper":
        detail["mode"] = "covered" if value >= 80 else "turned" if value >= 25 else "nudged"
    elif fault in ("leak", "burst"):
        detail["scope"] = "building" if building_meter else "household"
    elif fault == "day_burning":
        detail["cause"] = "relay" if scale.band_of(value) is Band.CLEAR else "photocell"
    return FaultLabel(device, compound, spec.kind, fault, int(start_ms), int(end_ms), detail,
                      round(value, 4), scale.unit, scale.band_of(value).value)  # fmt: skip
