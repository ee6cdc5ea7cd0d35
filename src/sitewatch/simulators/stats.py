"""The realism report: normal-behaviour statistics of a backfill beside published reference ranges.

``realism(history_dir)`` computes, per device kind, the figures a domain engineer checks (runs per
resident, energy per charging session, lamp hours against the night, litres per person a day,
the peak-hour factor, night flow, pressure, bitrate...) and, per fault type, the magnitude bands
drawn. Each statistic carries its reference range and where the range comes from; ranges that
are this simulator's own assumptions say so. ``sitewatch simulate stats`` prints it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq

from ..i18n import N_
from .clock import MS_PER_DAY, MS_PER_H, local_hour, solar_elevation
from .faults import BANDS, FAULT_TYPES

BURSTY = N_("about 6% of residents are active at night: night flow is bursty (flushes of 6-10 L)")
GB50015 = N_("GB 50015: 130-300 L a person a day, peak-hour factor 2.3-2.8 (design values)")
SURVEY = N_("Chinese water-supply survey: about 130 L a person a day")
NIGHT = N_("minimum night flow 02:00-04:00 about 10-15% of the mean in a metered area")
CJJ58 = N_("CJJ 58: at least 0.14 MPa at network ends; service 0.15-0.4 MPa")
CJJ92 = N_("CJJ 92-2016: leakage grade 1 at most 10%, grade 2 at most 12%")
RUNS = N_("about two runs per resident a day (a manufacturer's planning rule)")
PEAKS = N_("morning and evening peaks (assumption: 40-75% of runs in 06-09 and 17-21)")
REST = N_("vibration at rest is near zero; running 0.1-0.3 m/s² (assumption)")
HOME_EV = N_("home charging about 13 kWh a day at about 7 kW")
EV_PATHS = N_("sessions include pauses and failed authorisations (assumption: 1-10% and 5-30%)")
LAMPS = N_("photocells switch within about 15-20 minutes of sunset and sunrise")
H264 = N_("1080p H.264 at 2-4 Mbit/s, H.265 lower and more variable; infrared changes the night bitrate")
NVR = N_("recorders in overwrite mode keep storage near full")
INTACT = N_("camera intact rate target 98% (provincial); blips and outages below that are harmless")
OWN = N_("assumption of this simulator: rare gaps and dropouts")


@dataclass(frozen=True, slots=True)
class Stat:
    """One statistic with its reference range and the range's source."""

    kind: str
    key: str
    value: float
    low: float
    high: float
    unit: str
    source: str

    @property
    def ok(self) -> bool:
        """Whether the value lies in the reference range."""
        return not math.isnan(self.value) and self.low <= self.value <= self.high


DESCRIPTIONS = {
    "runs_per_resident": N_("runs per resident served a day"),
    "peak_share": N_("share of runs in the morning and evening peaks"),
    "rest_vibration": N_("vibration at rest (median)"),
    "run_vibration": N_("vibration while running (median)"),
    "energy_per_session": N_("energy per charging session (mean)"),
    "sessions_per_day": N_("sessions per charger a day"),
    "failed_authorisation": N_("plug-ins refused before charging"),
    "paused_sessions": N_("sessions paused by the site (SuspendedEVSE)"),
    "lamp_hours_vs_night": N_("lamp on-hours minus night length (median)"),
    "litres_per_person": N_("litres per person a day"),
    "peak_hour_factor": N_("peak-hour factor at building meters"),
    "night_to_mean": N_("night (02-04) to mean flow at building meters"),
    "night_silent_share": N_("household reports with no flow at night"),
    "pressure_p1": N_("pressure, 1st percentile"),
    "pressure_p99": N_("pressure, 99th percentile"),
    "water_loss": N_("compound meter minus households, share"),
    "bitrate_median": N_("camera bitrate (median of cameras)"),
    "night_day_bitrate": N_("night to day bitrate (median of cameras)"),
    "online_share": N_("health checks answered"),
    "overwrite_storage_free": N_("free storage of overwriting recorders (median)"),
    "completeness": N_("readings received of those due"),
}


@dataclass(slots=True)
class Realism:
    """The report: the period, the statistics, and the faults, harmless anomalies and outages drawn."""

    start_ms: int
    end_ms: int
    stats: list[Stat] = field(default_factory=list)
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    harmless: dict[str, int] = field(default_factory=dict)
    outages: dict[str, int] = field(default_factory=dict)

    @property
    def days(self) -> float:
        """Length of the history in days."""
        return (self.end_ms - self.start_ms) / MS_PER_DAY

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON types."""
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, "days": round(self.days, 2),
                "stats": [asdict(s) | {"ok": s.ok, "value": _num(s.value)} for s in self.stats],
                "faults": self.faults, "harmless": self.harmless, "outages": self.outages}  # fmt: skip


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def _readings(out: Path, metrics: Sequence[str]) -> pd.DataFrame:
    """Long-form readings of some metrics (device and metric as categories)."""
    table = pq.read_table(out / "readings.parquet", columns=["ts_ms", "device", "metric", "value"],
                          filters=[("metric", "in", list(metrics))])  # fmt: skip
    return table.to_pandas()


def _wide(frame: pd.DataFrame) -> pd.DataFrame:
    """One column per metric, one row per device and time (a pivot done with sorted integer keys)."""
    device = frame["device"].astype("category")
    key = (device.cat.codes.to_numpy(np.int64) << 42) | frame["ts_ms"].to_numpy(np.int64)
    keys = np.unique(key)
    out = pd.DataFrame({"device": np.asarray(device.cat.categories.astype(str))[keys >> 42],
                        "ts_ms": keys & ((1 << 42) - 1)})  # fmt: skip
    metric = frame["metric"].to_numpy()
    values = frame["value"].to_numpy(np.float64)
    for name in pd.unique(metric):
        mine = metric == name
        column = np.full(len(keys), np.nan)
        column[np.searchsorted(keys, key[mine])] = values[mine]
        out[str(name)] = column
    return out


def realism(history: Path | str) -> Realism:
    """The realism report of the backfill in ``history``."""
    out = Path(history)
    devices = pd.read_parquet(out / "devices.parquet")
    events = pd.read_parquet(out / "events.parquet", columns=["ts_ms", "device", "kind", "event", "attrs"])
    labels = pd.read_parquet(out / "labels.parquet")
    ts = pq.read_table(out / "readings.parquet", columns=["ts_ms"]).column("ts_ms").to_numpy()
    report = Realism(int(ts.min()), int(ts.max()) + 1)
    days = max(report.days, 1e-9)
    kinds = set(devices["kind"])
    if "elevator" in kinds:
        report.stats += _elevators(out, devices[devices["kind"] == "elevator"], days)
    if "charger" in kinds:
        report.stats += _chargers(
            events[events["kind"] == "charger"], int((devices["kind"] == "charger").sum()), days
        )
    if "streetlight" in kinds:
        report.stats += _streetlights(out, devices[devices["kind"] == "streetlight"], labels)
    if "water_meter" in kinds:
        report.stats += _water(out, devices[devices["kind"] == "water_meter"], days)
    if "camera" in kinds:
        report.stats += _cameras(out, devices[devices["kind"] == "camera"])
    report.stats.append(_completeness(out, devices, report))
    report.faults = _faults(labels)
    for name in ("harmless", "outages"):
        path = out / f"{name}.parquet"
        if path.exists():
            frame = pd.read_parquet(path)
            column = "anomaly" if name == "harmless" else "cause"
            setattr(
                report, name, {str(k): int(v) for k, v in frame[column].value_counts().sort_index().items()}
            )
    return report


def _elevators(out: Path, devices: pd.DataFrame, days: float) -> list[Stat]:
    frame = _wide(_readings(out, ["trip_count", "vibration_rms"])).sort_values(["device", "ts_ms"])
    frame["trips"] = frame.groupby("device")["trip_count"].diff()
    per_day = frame.groupby("device")["trips"].sum() / days
    residents = devices.set_index("device")["residents"]
    runs = float((per_day / residents.reindex(per_day.index)).median())
    hour = local_hour(frame["ts_ms"].to_numpy())
    peak = ((hour >= 6) & (hour < 9)) | ((hour >= 17) & (hour < 21))
    peak_share = float(frame.loc[peak, "trips"].sum() / max(frame["trips"].sum(), 1.0))
    rest = float(frame.loc[frame["trips"] == 0, "vibration_rms"].median())
    running = float(frame.loc[frame["trips"] >= 2, "vibration_rms"].median())
    return [
        Stat("elevator", "runs_per_resident", runs, 1.0, 3.0, "", RUNS),
        Stat("elevator", "peak_share", peak_share, 0.40, 0.75, "", PEAKS),
        Stat("elevator", "rest_vibration", rest, 0.0, 0.05, "m/s²", REST),
        Stat("elevator", "run_vibration", running, 0.08, 0.35, "m/s²", REST),
    ]


def _chargers(events: pd.DataFrame, chargers: int, days: float) -> list[Stat]:
    stopped = events[events["event"] == "session_stopped"]
    energy = np.array([float(orjson.loads(a).get("energy_kwh", "nan")) for a in stopped["attrs"] if a])
    energy = energy[energy > 0.5]
    started = int((events["event"] == "session_started").sum())
    status = (
        events[events["event"] == "status_changed"]["attrs"].dropna().map(lambda a: orjson.loads(a)["status"])
    )
    preparing = int((status == "Preparing").sum())
    paused = int((status == "SuspendedEVSE").sum())
    return [
        Stat("charger", "energy_per_session", float(energy.mean()) if energy.size else math.nan, 6.0, 25.0, "kWh",
             HOME_EV),
        Stat("charger", "sessions_per_day", started / max(chargers, 1) / days, 0.3, 2.0, "", HOME_EV),
        Stat("charger", "failed_authorisation", 1.0 - started / preparing if preparing else math.nan, 0.01, 0.10,
             "", EV_PATHS),
        Stat("charger", "paused_sessions", paused / started if started else math.nan, 0.05, 0.30, "", EV_PATHS),
    ]  # fmt: skip


def _streetlights(out: Path, devices: pd.DataFrame, labels: pd.DataFrame) -> list[Stat]:
    frame = _readings(out, ["lamp_on"])
    faulty = set(labels.loc[labels["kind"] == "streetlight", "device"])
    frame = frame[~frame["device"].isin(faulty)]
    lat, lon = float(devices["latitude"].iloc[0]), float(devices["longitude"].iloc[0])
    # A "night" runs from local noon to local noon.
    night_no = (frame["ts_ms"].to_numpy() + 8 * MS_PER_H - 12 * MS_PER_H) // MS_PER_DAY
    frame = frame.assign(night=night_no)
    per = frame.groupby(["device", "night"])["value"].agg(["sum", "count"])
    per = per[per["count"] >= 0.95 * 288]  # nights with (almost) every report
    on_hours = per["sum"] * 5.0 / 60.0
    nights = np.unique(per.index.get_level_values("night"))
    grid = np.arange(288, dtype=np.int64) * 300_000 + 150_000
    length = {int(n): float((solar_elevation(int(n) * MS_PER_DAY + 4 * MS_PER_H + grid, lat, lon) < -0.833).sum())
              * 5.0 / 60.0 for n in nights}  # fmt: skip
    diff = on_hours.to_numpy() - np.array([length[int(n)] for n in per.index.get_level_values("night")])
    value = float(np.median(diff)) if diff.size else math.nan
    return [Stat("streetlight", "lamp_hours_vs_night", value, -0.75, 0.75, "h", LAMPS)]


def _metric(out: Path, name: str) -> pd.DataFrame:
    """One metric's readings: device (str), ts_ms, value."""
    table = pq.read_table(out / "readings.parquet", columns=["ts_ms", "device", "value"],
                          filters=[("metric", "=", name)])  # fmt: skip
    device = table.column("device").combine_chunks()
    names = np.asarray(device.dictionary.to_pylist(), dtype=object)
    return pd.DataFrame({"device": names[device.indices.to_numpy()], "ts_ms": table.column("ts_ms").to_numpy(),
                         "value": table.column("value").to_numpy()})  # fmt: skip


def _water(out: Path, devices: pd.DataFrame, days: float) -> list[Stat]:
    info = devices.set_index("device")
    homes = info[info["scope"] == "household"]
    buildings = info[(info["scope"] == "building") & (info["building"] != "")].index
    compound = info[(info["scope"] == "building") & (info["building"] == "")].index
    register = _metric(out, "volume_register")
    used = register.groupby("device")["value"].max() - register.groupby("device")["value"].min()
    litres = float(used.reindex(homes.index).sum() * 1000.0 / max(homes["residents"].sum(), 1.0) / days)
    flow = _metric(out, "flow")
    flow["hour"] = local_hour(flow["ts_ms"].to_numpy()).astype(int)
    meters = flow[flow["device"].isin(buildings)]
    profile = meters.groupby(["device", "hour"])["value"].mean().unstack()
    peak = float((profile.max(axis=1) / profile.mean(axis=1)).median()) if len(profile) else math.nan
    night = meters[(meters["hour"] >= 2) & (meters["hour"] < 4)].groupby("device")["value"].mean()
    ratio = float((night / meters.groupby("device")["value"].mean()).median()) if len(night) else math.nan
    at_night = flow[flow["device"].isin(homes.index) & (flow["hour"] >= 2) & (flow["hour"] < 4)]
    silent = float((at_night["value"] == 0).mean()) if len(at_night) else math.nan
    pressure = _metric(out, "pressure")["value"]
    loss = math.nan
    if len(compound) and len(homes):
        total = float(used.reindex(compound).sum())
        loss = 1.0 - float(used.reindex(homes.index).sum()) / total if total > 0 else math.nan
    return [
        Stat("water_meter", "litres_per_person", litres, 100.0, 300.0, "L", SURVEY),
        Stat("water_meter", "peak_hour_factor", peak, 2.0, 3.0, "", GB50015),
        Stat("water_meter", "night_to_mean", ratio, 0.08, 0.20, "", NIGHT),
        Stat("water_meter", "night_silent_share", silent, 0.85, 0.99, "", BURSTY),
        Stat("water_meter", "pressure_p1", float(pressure.quantile(0.01)), 0.14, 0.40, "MPa", CJJ58),
        Stat("water_meter", "pressure_p99", float(pressure.quantile(0.99)), 0.15, 0.45, "MPa", CJJ58),
        Stat("water_meter", "water_loss", loss, 0.03, 0.12, "", CJJ92),
    ]


def _cameras(out: Path, devices: pd.DataFrame) -> list[Stat]:
    bitrate = _metric(out, "bitrate")
    lat, lon = float(devices["latitude"].iloc[0]), float(devices["longitude"].iloc[0])
    bitrate["night"] = solar_elevation(bitrate["ts_ms"].to_numpy(), lat, lon) < -3.0
    by_cam = bitrate.groupby(["device", "night"])["value"].median().unstack()
    ratio = float((by_cam[True] / by_cam[False]).median()) if True in by_cam and False in by_cam else math.nan
    free = _metric(out, "storage_free")
    storage = free.loc[
        free["device"].isin(devices.loc[devices["overwrite"] == 1.0, "device"]), "value"
    ].to_numpy()
    return [
        Stat("camera", "bitrate_median", float(np.median(bitrate.groupby("device")["value"].median().to_numpy())),
             800.0, 4500.0, "kbit/s", H264),
        Stat("camera", "night_day_bitrate", ratio, 0.7, 2.2, "", H264),
        Stat("camera", "online_share", float(_metric(out, "online")["value"].mean()), 0.97, 0.9999, "", INTACT),
        Stat("camera", "overwrite_storage_free", float(np.median(storage)) if len(storage) else math.nan, 0.0,
             5.0, "%", NVR),
    ]  # fmt: skip


FIRST_METRIC = {"elevator": "trip_count", "camera": "online", "charger": "status", "streetlight": "lamp_on",
                "water_meter": "volume_register"}  # fmt: skip


def _completeness(out: Path, devices: pd.DataFrame, report: Realism) -> Stat:
    got = pq.read_table(out / "readings.parquet", columns=["ts_ms"],
                        filters=[("metric", "in", list(FIRST_METRIC.values()))]).num_rows  # fmt: skip
    due = float(((report.end_ms - report.start_ms) / (devices["interval_s"] * 1000.0)).sum())
    return Stat("all", "completeness", got / due if due else math.nan, 0.97, 0.9995, "", OWN)


def _faults(labels: pd.DataFrame) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for fault in FAULT_TYPES:
        rows = labels[labels["fault"] == fault]
        entry: dict[str, Any] = {band.value: int((rows["band"] == band.value).sum()) for band in BANDS}
        if len(rows):
            entry |= {"unit": ", ".join(sorted(set(rows["unit"]))), "min": _num(rows["magnitude"].min()),
                      "max": _num(rows["magnitude"].max()), "announced": _num(rows["announced"].mean()),
                      "observable": _num(rows["observable"].mean())}  # fmt: skip
        out[fault] = entry
    return out
