"""Fault plans, harmless anomalies and outages for one compound over a time window.

Random faults arrive per device as a Poisson process at the yearly rates of the catalogue; each
draws its band (one third each), its magnitude inside the band, its duration and the device's
alarm plan (missed, late). ``--faults all`` adds one fault of every type in every band per
compound. Harmless anomalies and outages arrive at their own yearly rates (docs/simulators.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..contract import DeviceKind
from .calendar import holidays_between
from .clock import MS_PER_DAY, MS_PER_H, dark_afternoon, heat_day, local_day, local_hour
from .faults import BANDS, FAULT_TYPES, FAULTS_BY_KIND, Band, FaultLabel, FaultType, Trigger, make_label
from .harmless import DROPOUT_SHARE, HARMLESS_TYPES, OUTAGE_TYPES, HarmlessLabel, OutageLabel
from .site import Device
from .view import Injected

MS_PER_YEAR = 365.0 * 24 * MS_PER_H
FAULT_MODES = ("none", "random", "all")


def is_building_meter(device: Device) -> bool:
    """Building and compound meters (总表), as opposed to household meters (户表)."""
    return device.attrs.get("meter_scope") == "building"


def _eligible(spec: FaultType, devices: Sequence[Device]) -> list[Device]:
    if spec.household_only:
        return [d for d in devices if not is_building_meter(d)] or list(devices)
    return list(devices)


def _duration_ms(
    spec: FaultType, band: Band, magnitude: float, rng: np.random.Generator, limit_ms: int
) -> int:
    if spec.magnitude_is_duration:
        hours = magnitude * spec.magnitude_is_duration
    else:
        lo, hi = spec.hours_for(band)
        hours = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return max(60_000, min(int(hours * MS_PER_H), limit_ms))


def new_fault(
    spec: FaultType, device: Device, compound: str, band: Band, rng: np.random.Generator, *, start_ms: int,
    latest_ms: int, limit_ms: int, fit: bool = False, open_start: bool = False, evening: bool = False,
) -> Injected:  # fmt: skip
    """One fault of ``band`` on ``device`` starting in [start_ms, latest_ms), with its alarm plan.

    ``fit``: it also ends by ``latest_ms``; ``open_start``: it may start up to half its length
    before ``start_ms`` (already running, as in any history); ``evening``: it starts between 18:00
    and 23:00 where that fits.
    """
    building = is_building_meter(device)
    magnitude = spec.magnitude_for(building).draw(band, rng)
    duration = _duration_ms(spec, band, magnitude, rng, limit_ms)
    if spec.magnitude_is_duration:  # a duration cut to fit the window is the fault's size
        magnitude = min(magnitude, duration / MS_PER_H / spec.magnitude_is_duration)
    earliest = start_ms - duration // 2 if open_start else start_ms
    latest = latest_ms - duration if fit else latest_ms
    t0 = int(rng.integers(earliest, max(earliest + 1, latest)))
    if evening:  # a fault seen only at night starts in the evening (18:00-23:00) of its day, if it fits
        midnight = t0 - int(local_hour(np.array([t0], np.int64))[0] * MS_PER_H)
        for candidate in (
            midnight + int(rng.uniform(18, 23) * MS_PER_H),
            midnight - int(rng.uniform(1, 6) * MS_PER_H),
        ):
            if earliest <= candidate < max(earliest + 1, latest):
                t0 = candidate
                break
    label = make_label(spec.name, device.device, compound, t0, t0 + duration, rng, band=band,
                       magnitude=magnitude, building_meter=building)  # fmt: skip
    return planned(label, rng)


def planned(label: FaultLabel, rng: np.random.Generator, *, sure: bool = False) -> Injected:
    """An Injected fault with its device-alarm plan drawn (``sure``: the device announces it at once)."""
    alarm = FAULT_TYPES[label.fault].alarm
    delay = None if alarm is None else (0 if sure else alarm.plan(Band(label.band), rng))
    rec = Injected(label, alarm_delay_ms=delay)
    if alarm is not None and alarm.trigger is Trigger.START and delay is not None:
        rec.announce_ms = label.start_ms + delay
    return rec


def plan_faults(
    devices: Mapping[DeviceKind, Sequence[Device]], compound: str, start_ms: int, end_ms: int,
    rng: np.random.Generator, *, mode: str = "random", rate: float = 1.0, open_start: bool = True,
) -> list[Injected]:  # fmt: skip
    """Faults for the devices of one compound in [start_ms, end_ms).

    ``mode`` is ``none``, ``random`` (each device draws faults at ``rate`` times the yearly rates)
    or ``all`` (random, plus one fault of every type in every band for every kind present, on
    distinct devices where the compound has enough of them, else in disjoint time slots of a
    device; a fault whose size is its duration and does not fit its slot is cut, and labelled with
    the size and band it then has). With ``open_start`` a random fault may already be running at ``start_ms`` (as in any
    history); live mode plans without it, so that every fault starts while it is watched.
    """
    if mode not in FAULT_MODES:
        raise ValueError(f"unknown fault mode {mode!r} ({', '.join(FAULT_MODES)})")
    span = end_ms - start_ms
    if mode == "none" or span <= 0:
        return []
    out: list[Injected] = []
    years = span / MS_PER_YEAR
    for kind, all_devices in devices.items():
        for fault in FAULTS_BY_KIND.get(kind, ()):
            spec = FAULT_TYPES[fault]
            candidates = _eligible(spec, all_devices)
            counts = rng.poisson(spec.per_year * rate * years, size=len(candidates))
            for i in np.flatnonzero(counts):
                for _ in range(int(counts[i])):
                    band = BANDS[int(rng.integers(3))]
                    out.append(new_fault(spec, candidates[int(i)], compound, band, rng, start_ms=start_ms,
                                         latest_ms=end_ms, limit_ms=span, open_start=open_start))  # fmt: skip
        if mode == "all" and all_devices:
            out += _every_type_and_band(kind, all_devices, compound, start_ms, span, rng)
    out.sort(key=lambda f: (f.start_ms, f.label.device))
    return out


def _every_type_and_band(
    kind: DeviceKind,
    devices: Sequence[Device],
    compound: str,
    start_ms: int,
    span: int,
    rng: np.random.Generator,
) -> list[Injected]:
    """One fault of every type of ``kind`` in every band, on distinct devices or in disjoint slots."""
    wanted = [(fault, band) for fault in FAULTS_BY_KIND.get(kind, ()) for band in BANDS]
    out = []
    taken: dict[str, int] = {}  # device -> slots used
    order = [devices[int(i)] for i in rng.permutation(len(devices))]
    slots = -(-len(wanted) // len(devices))  # a device takes several when the kind has few devices
    slot_ms = span // slots
    for fault, band in wanted:
        spec = FAULT_TYPES[fault]
        pool = _eligible(spec, order)
        device = min(pool, key=lambda d: taken.get(d.device, 0))  # the least used eligible device
        slot = taken.get(device.device, 0)
        taken[device.device] = slot + 1
        a = start_ms + (slot % slots) * slot_ms
        out.append(new_fault(spec, device, compound, band, rng, start_ms=a, latest_ms=a + slot_ms,
                             limit_ms=max(slot_ms // 2, 60_000), fit=True, evening=spec.evening_start))  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class Reporting:
    """How a device reports: its kind, interval and phase (the planner needs them for dropouts)."""

    device: Device
    interval_ms: int
    phase_ms: int


def plan_harmless(
    reporting: Sequence[Reporting], compound: str, start_ms: int, end_ms: int, rng: np.random.Generator, *,
    salt: float, open_start: bool = True,
) -> list[HarmlessLabel]:  # fmt: skip
    """Harmless anomalies of one compound in [start_ms, end_ms), device-level and compound-wide."""
    span = end_ms - start_ms
    if span <= 0:
        return []
    years = span / MS_PER_YEAR
    out: list[HarmlessLabel] = []
    for h in HARMLESS_TYPES.values():
        if not h.kinds or h.name == "dropout":
            continue
        for rep in reporting:
            device = rep.device
            if device.kind not in h.kinds or (h.name == "night_use" and is_building_meter(device)):
                continue
            for _ in range(int(rng.poisson(h.per_year * years))):
                minutes = float(np.exp(rng.uniform(np.log(h.minutes[0]), np.log(h.minutes[1]))))
                t0 = int(rng.integers(start_ms - (int(minutes * 60_000) if open_start else 0), end_ms))
                if h.night_only or h.name == "ir_surge":
                    t0 = _at_night(t0, rng, late=h.name == "ir_surge")
                if h.name == "spurious_lamp_failure":
                    minutes = rep.interval_ms / 60_000  # one report
                out.append(HarmlessLabel(device.device, compound, device.kind.value, h.name, t0,
                                         t0 + max(60_000, int(minutes * 60_000)), _detail(h.name, rng)))  # fmt: skip
        if h.name == "pressure_transient":
            for _ in range(int(rng.poisson(h.per_year * years))):
                minutes = float(np.exp(rng.uniform(np.log(h.minutes[0]), np.log(h.minutes[1]))))
                t0 = int(rng.integers(start_ms, end_ms))
                out.append(HarmlessLabel("", compound, "", h.name, t0, t0 + int(minutes * 60_000),
                                         {"drop_mpa": f"{rng.uniform(0.02, 0.06):.3f}"}))  # fmt: skip
    out += _dropouts(reporting, compound, start_ms, end_ms, rng)
    out += _calendar_and_weather(compound, start_ms, end_ms, salt)
    out.sort(key=lambda h: (h.start_ms, h.device))
    return out


def _at_night(t: int, rng: np.random.Generator, *, late: bool) -> int:
    """``t`` moved to a night hour of its local day (00:00-05:00; with ``late``, 20:00-04:00)."""
    midnight = t - int(local_hour(np.array([t], np.int64))[0] * MS_PER_H)
    hour = rng.uniform(-4.0, 4.0) if late else rng.uniform(0.0, 5.0)
    return midnight + int(hour * MS_PER_H)


def _detail(name: str, rng: np.random.Generator) -> dict[str, str]:
    if name == "charger_self_clear":
        return {"error_code": str(rng.choice(["EVCommunicationError", "GroundFailure", "OverVoltage",
                                              "UnderVoltage", "OtherError"]))}  # fmt: skip
    if name == "ir_surge":
        return {"factor": f"{rng.uniform(1.6, 3.0):.2f}"}
    if name == "night_use":
        return {"litres": f"{rng.uniform(30, 120):.0f}"}
    if name == "spurious_tamper":
        return {"chatter": str(int(rng.integers(2, 7)))}
    return {}


def _dropouts(
    reporting: Sequence[Reporting], compound: str, start_ms: int, end_ms: int, rng: np.random.Generator
) -> list[HarmlessLabel]:
    """Single readings that do not arrive: each report is lost with its interval's share."""
    out = []
    for rep in reporting:
        interval = rep.interval_ms
        first = start_ms + (rep.phase_ms - start_ms) % interval
        reports = max(0, -(-(end_ms - first) // interval))
        share = DROPOUT_SHARE.get(interval // 1000, 1e-4)
        for k in rng.choice(reports, size=min(reports, int(rng.poisson(share * reports))), replace=False):
            t = first + int(k) * interval
            out.append(HarmlessLabel(rep.device.device, compound, rep.device.kind.value, "dropout", t, t + 1))
    return out


def _calendar_and_weather(compound: str, start_ms: int, end_ms: int, salt: float) -> list[HarmlessLabel]:
    """Holidays, dark winter afternoons and hot summer days: compound-wide, from the calendar and weather."""
    out = [HarmlessLabel("", compound, "", "holiday", max(a, start_ms), min(b, end_ms), {"holiday": h.name})
           for h, a, b in holidays_between(start_ms, end_ms)]  # fmt: skip
    first = int(local_day(np.array([start_ms], np.int64))[0])
    last = int(local_day(np.array([end_ms - 1], np.int64))[0])
    days = np.arange(first, last + 1, dtype=np.int64)
    midnight = days * MS_PER_DAY - 8 * MS_PER_H
    for day_ms in midnight[dark_afternoon(days, salt)].tolist():
        a, b = day_ms + 13 * MS_PER_H, day_ms + 18 * MS_PER_H
        if a < end_ms and b > start_ms:
            out.append(HarmlessLabel("", compound, "", "dark_afternoon", max(a, start_ms), min(b, end_ms)))
    for day_ms in midnight[heat_day(days, salt)].tolist():
        a, b = day_ms, day_ms + MS_PER_DAY
        out.append(HarmlessLabel("", compound, "", "heat_wave", max(a, start_ms), min(b, end_ms)))
    return out


def outage(devices: Sequence[Device], compound: str, start_ms: int, end_ms: int, building: str | None = None
           ) -> OutageLabel | None:  # fmt: skip
    """A compound's power cut (every device, the gateway dark), or a building's (its elevators and
    cameras; None when it has neither)."""
    if building is None:
        return OutageLabel(
            compound, "power_cut", start_ms, end_ms, "", tuple(d.device for d in devices), True
        )
    hit = tuple(d.device for d in devices
                if d.building_no == building and d.kind in (DeviceKind.ELEVATOR, DeviceKind.CAMERA))  # fmt: skip
    return (
        OutageLabel(compound, "building_power_cut", start_ms, end_ms, building, hit, False) if hit else None
    )


def plan_outages(
    devices: Sequence[Device], compound: str, start_ms: int, end_ms: int, rng: np.random.Generator
) -> list[OutageLabel]:
    """Compound power cuts (the gateway dark too) and single buildings' supply failures."""
    span = end_ms - start_ms
    if span <= 0:
        return []
    years = span / MS_PER_YEAR
    out: list[OutageLabel | None] = []
    for cause, buildings in (("power_cut", [None]),
                             ("building_power_cut", sorted({d.building_no for d in devices if d.building_no}))):  # fmt: skip
        spec = OUTAGE_TYPES[cause]
        for building in buildings:
            for _ in range(int(rng.poisson(spec.per_year * years))):
                t0 = int(rng.integers(start_ms, end_ms))
                hours = float(np.exp(rng.uniform(np.log(spec.hours[0]), np.log(spec.hours[1]))))
                out.append(outage(devices, compound, t0, t0 + int(hours * MS_PER_H), building))
    return sorted((o for o in out if o is not None), key=lambda o: o.start_ms)
