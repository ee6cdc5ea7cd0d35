"""Harmless anomalies, outages and the calendar: what normal data holds that looks abnormal."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sitewatch.contract import DeviceKind
from sitewatch.simulators.backfill import BackfillResult
from sitewatch.simulators.calendar import occupancy, rest_day
from sitewatch.simulators.engine import Chunk, SiteEngine, SiteEvent, iter_events
from sitewatch.simulators.harmless import DROPOUT_SHARE, HARMLESS_TYPES, HarmlessLabel
from sitewatch.simulators.planning import outage, plan_harmless, plan_outages
from sitewatch.simulators.site import Site

from .conftest import START_MS

DAY = 86_400_000
H = 3_600_000


def _ms(day: str, hour: float = 12.0) -> int:
    midnight = dt.datetime.fromisoformat(day + "T00:00:00+08:00").timestamp() * 1000
    return int(midnight + hour * H)


def _run(engine: SiteEngine, start: int, hours: float) -> tuple[pd.DataFrame, list[SiteEvent]]:
    """Readings (device, ts_ms, metric columns) and every event of [start, start + hours)."""
    chunks, events = engine.window(start, start + int(hours * H))
    return _frame(chunks), events + list(iter_events(chunks))


def _frame(chunks: list[Chunk]) -> pd.DataFrame:
    parts = []
    for c in chunks:
        for pos, row in enumerate(c.rows):
            part = pd.DataFrame({m: v[pos] for m, v in c.values.items()})
            part.insert(0, "ts_ms", c.times[pos])
            part.insert(0, "device", c.block.ids[int(row)])
            parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    return frame[frame.drop(columns=["device", "ts_ms"]).notna().any(axis=1)]  # a silenced report is no report


def _first(site: Site, kind: DeviceKind, building: bool | None = None) -> str:
    for d in site.of_kind(kind):
        if building is None or (d.building_no is not None) == building:
            return d.device
    raise AssertionError(kind)


def test_harmless_anomalies_leave_their_marks(sites: list[Site]) -> None:
    site = sites[0]
    start = _ms("2026-10-12", 0.0)
    camera, charger = _first(site, DeviceKind.CAMERA), _first(site, DeviceKind.CHARGER)
    elevator, light = _first(site, DeviceKind.ELEVATOR), _first(site, DeviceKind.STREETLIGHT)
    meters = site.of_kind(DeviceKind.WATER_METER)
    flat = next(d.device for d in meters if d.attrs.get("meter_scope") == "household")
    c = site.compound
    marks = [
        HarmlessLabel(elevator, c, "elevator", "data_gap", start + 2 * H, start + 3 * H),
        HarmlessLabel(camera, c, "camera", "camera_blip", start + 10 * H, start + 10 * H + 4 * 60_000),
        HarmlessLabel(camera, c, "camera", "spurious_tamper", start + 11 * H, start + 11 * H + 6 * 60_000,
                      {"chatter": "3"}),
        HarmlessLabel(charger, c, "charger", "charger_self_clear", start + 5 * H, start + 5 * H + 5 * 60_000,
                      {"error_code": "GroundFailure"}),
        HarmlessLabel(elevator, c, "elevator", "spurious_entrapment", start + 8 * H, start + 8 * H + 3 * 60_000),
        HarmlessLabel(flat, c, "water_meter", "night_use", start + 1 * H, start + 2 * H, {"litres": "100"}),
        HarmlessLabel("", c, "", "pressure_transient", start + 15 * H, start + 15 * H + 15 * 60_000,
                      {"drop_mpa": "0.05"}),
        HarmlessLabel(camera, c, "camera", "ir_surge", start + 22 * H, start + 24 * H, {"factor": "2.5"}),
    ]  # fmt: skip

    def run(with_marks: bool) -> tuple[pd.DataFrame, list[SiteEvent]]:
        engine = SiteEngine(site, seed=7, start_ms=start, anomalies=False)
        if with_marks:
            engine.add_harmless(marks)
        return _run(engine, start, 24)

    base, _ = run(False)
    frame, events = run(True)
    assert frame.columns.tolist() == base.columns.tolist()
    labels_of = {(e.device, e.name, e.active) for e in events}
    gap = frame[(frame["device"] == elevator) & frame["ts_ms"].between(start + 2 * H, start + 3 * H - 1)]
    assert gap.empty and (elevator, "offline", None) in labels_of and (elevator, "online", None) in labels_of
    blip = frame[(frame["device"] == camera) & frame["ts_ms"].between(start + 10 * H, start + 10 * H + 4 * 60_000 - 1)]
    assert len(blip) == 4 and (blip["online"] == 0).all() and blip["bitrate"].isna().all()
    assert (camera, "offline", None) in labels_of  # four missed checks: the gateway says so
    chatter = [e for e in events if e.device == camera and e.name == "tamper"]
    assert [e.active for e in sorted(chatter, key=lambda e: e.ts_ms)] == [True, False] * 3
    faulted = frame[(frame["device"] == charger) & frame["ts_ms"].between(start + 5 * H, start + 5 * H + 5 * 60_000 - 1)]
    assert (faulted["status"] == 8).all() and (faulted["error_code"] == 3).all()  # GroundFailure
    assert {(e.name, e.active) for e in events if e.device == charger} >= {("faulted", True), ("faulted", False)}
    latched = frame[(frame["device"] == elevator) & frame["ts_ms"].between(start + 8 * H, start + 8 * H + 3 * 60_000 - 1)]
    assert (latched["entrapment"] == 1).all() and (elevator, "entrapment", True) in labels_of

    def used(frame: pd.DataFrame, device: str, a: int, b: int) -> float:
        rows = frame[(frame["device"] == device) & frame["ts_ms"].between(a, b)]["volume_register"]
        return float(rows.max() - rows.min())

    extra = used(frame, flat, start + H, start + 3 * H) - used(base, flat, start + H, start + 3 * H)
    assert extra == pytest.approx(0.1, abs=0.012)  # 100 litres at night
    buildings = frame["pressure"].notna()
    dip = (frame[buildings].set_index(["device", "ts_ms"])["pressure"]
           - base[base["pressure"].notna()].set_index(["device", "ts_ms"])["pressure"]).reset_index()  # fmt: skip
    inside = dip["ts_ms"].between(start + 15 * H + 60_000, start + 15 * H + 15 * 60_000 - 1)
    assert dip.loc[inside, "pressure"].mean() == pytest.approx(-0.05, abs=0.012)  # every building meter at once
    assert dip.loc[~inside, "pressure"].abs().max() < 0.03
    night = (frame["device"] == camera) & frame["ts_ms"].between(start + 22 * H, start + 24 * H - 1)
    ratio = frame.loc[night, "bitrate"].to_numpy() / base.loc[(base["device"] == camera)
                                                             & base["ts_ms"].between(start + 22 * H, start + 24 * H - 1),
                                                             "bitrate"].to_numpy()  # fmt: skip
    assert np.median(ratio) == pytest.approx(2.5, rel=0.2)
    untouched = frame[frame["device"] == light]
    assert untouched.equals(base[base["device"] == light])  # nothing else changed


def test_outages_take_devices_down_together(sites: list[Site]) -> None:
    site = sites[0]
    start = _ms("2026-10-13", 0.0)
    building = next(d.building_no for d in site.of_kind(DeviceKind.ELEVATOR))
    assert building is not None
    engine = SiteEngine(site, seed=8, start_ms=start, anomalies=False)
    cut = outage(site.devices, site.compound, start + 20 * H, start + 22 * H)
    local = outage(site.devices, site.compound, start + 3 * H, start + 5 * H, building)
    assert cut is not None and local is not None and local.devices
    assert {d.kind for d in site.devices if d.device in local.devices} == {DeviceKind.ELEVATOR, DeviceKind.CAMERA}
    engine.add_outages([cut, local])
    frame, events = _run(engine, start, 24)
    dark = frame["ts_ms"].between(cut.start_ms, cut.end_ms - 1)
    assert not dark.any() and not any(cut.start_ms <= e.ts_ms < cut.end_ms for e in events)
    assert engine.dark(cut.start_ms) and not engine.dark(cut.end_ms)
    after = frame[frame["ts_ms"] >= cut.end_ms]
    assert set(after["device"]) == {d.device for d in site.devices}  # every device is back
    hit = frame["device"].isin(local.devices) & frame["ts_ms"].between(local.start_ms, local.end_ms - 1)
    kinds = {d.device: d.kind for d in site.devices}
    assert all(kinds[d] is DeviceKind.CAMERA for d in frame.loc[hit, "device"])  # elevators silent
    assert (frame.loc[hit, "online"] == 0).all()  # cameras answer nothing
    offline = {e.device for e in events if e.name == "offline" and local.start_ms <= e.ts_ms < local.end_ms}
    assert offline == set(local.devices)  # the gateway reports each of them: alert grouping has work to do
    others = frame[~frame["device"].isin(local.devices) & frame["ts_ms"].between(local.start_ms, local.end_ms - 1)]
    assert set(others["device"]) == {d.device for d in site.devices} - set(local.devices)


def test_planned_rates(sites: list[Site]) -> None:
    site = sites[0]
    engine = SiteEngine(site, seed=9, start_ms=START_MS)
    year = 365 * DAY
    rng = np.random.default_rng(3)
    planned = plan_harmless(engine.reporting(), site.compound, START_MS, START_MS + year, rng, salt=1.0)
    counts = pd.Series([h.anomaly for h in planned]).value_counts()
    for name, spec in HARMLESS_TYPES.items():
        if spec.per_year and spec.kinds:
            devices = sum(1 for d in site.devices if d.kind in spec.kinds
                          and not (name == "night_use" and d.attrs.get("meter_scope") == "building"))  # fmt: skip
            expected = spec.per_year * devices
            assert abs(counts.get(name, 0) - expected) < 4 * np.sqrt(expected) + 2, name
    reports = sum(year / r.interval_ms * DROPOUT_SHARE[r.interval_ms // 1000] for r in engine.reporting())
    assert abs(counts["dropout"] - reports) < 4 * np.sqrt(reports)
    # Mid-Autumn and National Day 2026, New Year, Spring Festival, Qingming, Labour Day, Dragon Boat, Mid-Autumn 2027
    assert counts["holiday"] == 8 and 5 <= counts["heat_wave"] <= 12 and 5 <= counts["dark_afternoon"] <= 20
    cuts = plan_outages(site.devices, site.compound, START_MS, START_MS + 20 * year, rng)
    assert abs(sum(o.cause == "power_cut" for o in cuts) - 30) < 20 and all(o.gateway_dark == (o.cause == "power_cut")
                                                                          for o in cuts)  # fmt: skip


def test_the_calendar() -> None:
    def at(day: str) -> np.ndarray:
        return np.array([_ms(day)], np.int64)

    assert rest_day(at("2026-02-15"))[0] and rest_day(at("2026-02-23"))[0]  # Spring Festival
    assert not rest_day(at("2026-02-14"))[0] and not rest_day(at("2026-02-28"))[0]  # Saturdays worked
    assert not rest_day(at("2026-03-02"))[0] and rest_day(at("2026-03-01"))[0]  # an ordinary Monday, Sunday
    assert rest_day(at("2026-10-05"))[0] and not rest_day(at("2026-10-10"))[0]  # National Day, its make-up day
    assert rest_day(at("2031-10-03"))[0]  # outside the table: the fixed-date holidays still hold
    assert occupancy(at("2026-02-19"), 0.4)[0] == pytest.approx(0.6)
    assert occupancy(at("2026-02-12"), 0.4)[0] == pytest.approx(0.84)  # leaving before the holiday
    assert occupancy(at("2026-03-10"), 0.4)[0] == 1.0


def test_spring_festival_empties_the_compound(sites: list[Site]) -> None:
    site = sites[0]

    def daily_use(day: str) -> tuple[float, float]:
        start = _ms(day, 0.0)
        engine = SiteEngine(site, seed=3, start_ms=start, anomalies=False)
        frame, _ = _run(engine, start, 72)
        flats = frame[frame["pressure"].isna() & frame["volume_register"].notna()]
        water = flats.groupby("device")["volume_register"].agg(lambda v: v.max() - v.min()).sum()
        trips = frame.groupby("device")["trip_count"].agg(lambda v: v.max() - v.min()).sum()
        return float(water), float(trips)

    holiday, ordinary = daily_use("2026-02-18"), daily_use("2026-03-11")  # Wednesdays, both in winter
    assert holiday[0] < 0.85 * ordinary[0] and holiday[1] < 0.85 * ordinary[1]


def test_the_month_has_its_harmless_anomalies_and_labels_them_apart(
    month: tuple[BackfillResult, pd.DataFrame, pd.DataFrame],
) -> None:
    result, readings, _ = month
    harmless = pd.read_parquet(result.out_dir / "harmless.parquet")
    assert list(harmless.columns) == ["device", "compound", "kind", "anomaly", "start_ms", "end_ms", "detail"]
    assert {"dropout", "data_gap", "camera_blip", "ir_surge"} <= set(harmless["anomaly"])
    assert set(harmless["anomaly"]) <= set(HARMLESS_TYPES)
    outages = pd.read_parquet(result.out_dir / "outages.parquet")
    assert list(outages.columns) == ["compound", "cause", "start_ms", "end_ms", "building", "gateway_dark",
                                     "devices", "device_ids"]  # fmt: skip
    drop = harmless[harmless["anomaly"] == "dropout"].iloc[0]
    assert readings[(readings["device"] == drop["device"]) & (readings["ts_ms"] == drop["start_ms"])].empty
    assert not set(harmless["anomaly"]) & {lab.fault for lab in result.labels}
