"""Harmless anomalies and outages: the oddities normal data has, labelled apart from faults.

A harmless anomaly looks abnormal but needs no crew (a reading that did not arrive, a camera that
missed a health check, a charger fault that cleared itself, a lamp lit early on a dark winter
afternoon, Spring Festival emptying a compound, a device alarm with no fault behind it). An outage
is a shared cause that takes many devices down at once (a compound's power cut, with its gateway;
one building's supply). Both are on by default; each has a yearly rate. Their labels go to
``harmless.parquet`` and ``outages.parquet``, so that an evaluation can tell a false alarm on a
harmless anomaly from one on clean data, and group what an outage explains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..contract import DeviceKind
from ..i18n import N_

_K = DeviceKind
ALL_KINDS = (_K.ELEVATOR, _K.CAMERA, _K.CHARGER, _K.STREETLIGHT, _K.WATER_METER)


@dataclass(frozen=True, slots=True)
class HarmlessType:
    """One harmless anomaly: the kinds it hits (none: the whole compound), rate and duration."""

    name: str
    kinds: tuple[DeviceKind, ...]  # () for compound-wide anomalies
    description: str  # a catalog message
    per_year: float  # per device and year (per compound and year when compound-wide); 0: from the calendar
    minutes: tuple[float, float]  # duration range (log-uniform)
    event: str | None = None  # a device alarm raised with no fault behind it (spurious)
    night_only: bool = False  # starts between 00:00 and 05:00 local time


HARMLESS_TYPES: Mapping[str, HarmlessType] = MappingProxyType({
    h.name: h
    for h in (
        HarmlessType("data_gap", ALL_KINDS, N_("device not read for a while (polling, radio coverage)"), 6,
                     (10, 180)),
        HarmlessType("dropout", ALL_KINDS, N_("one reading that did not arrive"), 0, (0, 0)),
        HarmlessType("camera_blip", (_K.CAMERA,), N_("camera misses a few health checks"), 48, (1, 10)),
        HarmlessType("charger_self_clear", (_K.CHARGER,), N_("charger fault that clears itself within minutes"),
                     6, (1, 10)),
        HarmlessType("ir_surge", (_K.CAMERA,),
                     N_("night bitrate surge: rain, snow or insects in the infrared light"), 20, (30, 240)),
        HarmlessType("night_use", (_K.WATER_METER,), N_("a flat draws water at night (washing machine, bath)"),
                     4, (20, 60), night_only=True),
        HarmlessType("spurious_entrapment", (_K.ELEVATOR,), N_("entrapment flag set with nobody trapped"),
                     0.1, (1, 4), event="entrapment"),
        HarmlessType("spurious_tamper", (_K.CAMERA,), N_("camera tamper contact chattering"), 1.0, (2, 10),
                     event="tamper"),
        HarmlessType("spurious_over_temperature", (_K.CHARGER,), N_("temperature sensor glitch"), 0.3, (1, 3),
                     event="over_temperature"),
        HarmlessType("spurious_lamp_failure", (_K.STREETLIGHT,), N_("lamp driver restarts once"), 0.5, (5, 5),
                     event="lamp_failure"),
        HarmlessType("spurious_meter_tamper", (_K.WATER_METER,), N_("meter tamper switch bounces"), 0.3,
                     (1, 10), event="tamper"),
        HarmlessType("spurious_battery_low", (_K.WATER_METER,), N_("battery voltage dips in the cold"), 0.3,
                     (60, 480), event="battery_low"),
        HarmlessType("holiday", (), N_("public holiday (China's calendar): fewer residents, later mornings"), 0,
                     (0, 0)),
        HarmlessType("dark_afternoon", (), N_("overcast winter afternoon: lamps switch on early"), 0, (0, 0)),
        HarmlessType("heat_wave", (), N_("hot summer day: chargers run warm"), 0, (0, 0)),
        HarmlessType("pressure_transient", (), N_("network pressure dip felt by every building meter"), 12,
                     (1, 20)),
    )
})  # fmt: skip

# Readings that do not arrive, per reading, by reporting interval (seconds): about 50 a year each.
DROPOUT_SHARE: Mapping[int, float] = MappingProxyType({60: 1e-4, 300: 4e-4, 900: 1e-3})


@dataclass(frozen=True, slots=True)
class OutageType:
    """A shared cause that takes many devices down at once."""

    name: str
    description: str  # a catalog message
    per_year: float  # per compound (power_cut) or per building (building_power_cut)
    hours: tuple[float, float]
    gateway_dark: bool  # the gateway goes down too (no data, no events, its death message)


OUTAGE_TYPES: Mapping[str, OutageType] = MappingProxyType({
    o.name: o
    for o in (
        OutageType("power_cut", N_("compound power cut: every mains-powered device and the gateway go dark"),
                   1.5, (0.5, 6), True),
        OutageType("building_power_cut", N_("one building's supply fails: its elevators and cameras go offline"),
                   1.0, (0.5, 4), False),
    )
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class HarmlessLabel:
    """One harmless anomaly: on a device, or compound-wide (``device`` empty)."""

    device: str
    compound: str
    kind: str  # device kind, empty when compound-wide
    anomaly: str
    start_ms: int
    end_ms: int
    detail: Mapping[str, str] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """A row of the harmless table."""
        detail = ";".join(f"{k}={v}" for k, v in sorted(self.detail.items()))
        return {"device": self.device, "compound": self.compound, "kind": self.kind, "anomaly": self.anomaly,
                "start_ms": self.start_ms, "end_ms": self.end_ms, "detail": detail}  # fmt: skip


@dataclass(frozen=True, slots=True)
class OutageLabel:
    """One outage: a compound or one of its buildings, the devices it took down."""

    compound: str
    cause: str
    start_ms: int
    end_ms: int
    building: str  # empty for a whole compound
    devices: tuple[str, ...]
    gateway_dark: bool

    def to_row(self) -> dict[str, Any]:
        """A row of the outages table."""
        return {"compound": self.compound, "cause": self.cause, "start_ms": self.start_ms, "end_ms": self.end_ms,
                "building": self.building, "gateway_dark": self.gateway_dark, "devices": len(self.devices),
                "device_ids": ",".join(self.devices)}  # fmt: skip
