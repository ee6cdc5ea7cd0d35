"""Faults: every type in every band, labelled with its size, what the device announced and what can be seen."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from sitewatch.contract import KINDS, OCPP_ERROR_CODES, OCPP_STATUSES, DeviceKind
from sitewatch.simulators.backfill import LABELS_SCHEMA, BackfillResult
from sitewatch.simulators.clock import local_hour, people_activity, solar_elevation
from sitewatch.simulators.engine import SiteEngine
from sitewatch.simulators.faults import BANDS, FAULT_TYPES, FAULTS_BY_KIND, Band, FaultLabel, Trigger
from sitewatch.simulators.planning import plan_faults
from sitewatch.simulators.site import Site
from sitewatch.simulators.view import Injected

from .conftest import fits_a_day

Month = tuple[BackfillResult, pd.DataFrame, pd.DataFrame]


def _label(result: BackfillResult, fault: str, band: str = "clear") -> FaultLabel:
    """The longest label of a type and band inside the month (the 'all' plan puts one of each there)."""
    found = [lab for lab in result.labels if lab.fault == fault and lab.band == band]
    return max(found, key=lambda lab: (lab.observable, lab.end_ms - lab.start_ms))


def _rows(wide: pd.DataFrame, device: str) -> pd.DataFrame:
    return wide.loc[device]  # type: ignore[no-any-return]


def _during(wide: pd.DataFrame, label: FaultLabel) -> pd.DataFrame:
    rows = _rows(wide, label.device)
    return rows[(rows.index >= label.start_ms) & (rows.index < label.end_ms)]


def _outside(wide: pd.DataFrame, label: FaultLabel, labels: list[FaultLabel]) -> pd.DataFrame:
    """The device's rows outside every fault of that device."""
    rows = _rows(wide, label.device)
    keep = np.ones(len(rows), dtype=bool)
    for other in labels:
        if other.device == label.device:
            keep &= (rows.index < other.start_ms) | (rows.index >= other.end_ms)
    return rows[keep]


def test_every_type_in_every_band_is_labelled_with_its_size(month: Month) -> None:
    result, _, _ = month
    assert {(lab.fault, lab.band) for lab in result.labels} == {(f, b.value) for f in FAULT_TYPES for b in BANDS}
    assert len(FAULT_TYPES) >= 20 and all(len(v) >= 3 for v in FAULTS_BY_KIND.values())
    for lab in result.labels:
        spec = FAULT_TYPES[lab.fault]
        scale = spec.building_magnitude if lab.unit != spec.magnitude.unit else spec.magnitude
        assert scale is not None and lab.unit == scale.unit, lab
        lo, hi = scale.range(Band(lab.band))
        assert lo - 1e-3 <= lab.magnitude <= hi + 1e-3, lab
        assert lab.announced == (lab.announced_ms is not None), lab
        assert all(lab.start_ms <= a < b <= lab.end_ms for a, b in lab.hidden), lab
    labels = pd.read_parquet(result.out_dir / "labels.parquet")
    assert list(labels.columns) == LABELS_SCHEMA.names == [
        "device", "compound", "kind", "fault", "start_ms", "end_ms", "detail", "magnitude", "unit", "band",
        "announced", "announced_ms", "observable", "hidden",
    ]  # fmt: skip
    assert len(labels) == len(result.labels) and (labels["end_ms"] > labels["start_ms"]).all()
    assert all(isinstance(orjson.loads(h), list) for h in labels["hidden"])
    header = (result.out_dir / "labels.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header == ",".join(LABELS_SCHEMA.names)


def test_device_alarms_go_out_as_the_labels_say(month: Month) -> None:
    result, _, events = month
    first, last = events["ts_ms"].min(), events["ts_ms"].max()
    harmless = pd.read_parquet(result.out_dir / "harmless.parquet")
    for lab in result.labels:
        spec = FAULT_TYPES[lab.fault]
        if spec.alarm is None or lab.start_ms < first:
            continue
        mine = events[(events["device"] == lab.device) & (events["event"] == spec.alarm.event)]
        if lab.announced:
            raised = mine[mine["ts_ms"] == lab.announced_ms]
            assert len(raised) >= 1, lab
            stateful = KINDS[lab.kind].events[spec.alarm.event].stateful
            if stateful:
                assert (raised["active"] == True).any(), lab  # noqa: E712
                if lab.end_ms < last:
                    assert ((mine["ts_ms"] == lab.end_ms) & (mine["active"] == False)).any(), lab  # noqa: E712
        else:
            inside = mine[(mine["ts_ms"] >= lab.start_ms) & (mine["ts_ms"] < lab.end_ms)]
            if spec.alarm.event == "offline":
                continue  # an unannounced intermittent fault may still meet a harmless blip's offline
            spurious = harmless[(harmless["device"] == lab.device) & harmless["anomaly"].str.startswith("spurious")]
            assert inside.empty or not spurious.empty, lab
    announced = {(lab.fault, lab.band): lab.announced for lab in result.labels}
    assert announced[("video_loss", "subtle")] is False  # the device cannot see a few lost frames
    assert announced[("lamp_failure", "moderate")] is False  # nor a lamp at half power


def test_alarm_plans_follow_the_documented_rates() -> None:
    rng = np.random.default_rng(9)
    for name, spec in FAULT_TYPES.items():
        alarm = spec.alarm
        if alarm is None:
            continue
        for b, band in enumerate(BANDS):
            plans = [alarm.plan(band, rng) for _ in range(4000)]
            sent = [p for p in plans if p is not None]
            expected = alarm.detect[b] * (1 - alarm.missed)
            assert abs(len(sent) / len(plans) - expected) < 0.03, (name, band)
            if sent and alarm.late:
                late = sum(1 for p in sent if p > 0) / len(sent)
                assert abs(late - alarm.late) < 0.05, (name, band)
                assert all(alarm.delay_s[0] * 1000 <= p <= alarm.delay_s[1] * 1000 for p in sent if p > 0)


@pytest.mark.parametrize("fault", sorted(FAULT_TYPES))
def test_a_clear_fault_shows_in_the_data(fault: str, month: Month, wide: pd.DataFrame) -> None:
    result, _, events = month
    label = _label(result, fault)
    during, outside = _during(wide, label), _outside(wide, label, result.labels)
    assert (label.observable or fault == "stuck_session") and len(during) > 0, label
    mine = events[(events["device"] == label.device) & (events["ts_ms"] >= label.start_ms)
                  & (events["ts_ms"] < label.end_ms)]  # fmt: skip
    after = during[during.index >= (label.announced_ms or label.end_ms)]
    if fault == "door_fault_burst":
        assert during["door_faults"].max() - during["door_faults"].min() >= 2
        assert (mine["event"] == "door_fault").sum() >= 2
    elif fault == "bearing_wear":
        running = during[during["trip_count"].diff() > 0]
        tenth = max(1, len(running) // 10)
        assert running["vibration_rms"].iloc[-tenth:].mean() > 2.0 * running["vibration_rms"].iloc[:tenth].mean()
    elif fault in ("entrapment", "out_of_service"):
        assert during["trip_count"].nunique() == 1
        state = 4 if fault == "entrapment" else 6
        assert (after["run_state"] == state).all() and (outside["run_state"] != 6).all()
        if fault == "entrapment":
            assert (during["car_load"] > 0).all() and (after["entrapment"] == 1).all()
    elif fault == "camera_offline":
        assert (during["online"].dropna() == 0).all() and during["bitrate"].isna().all()
    elif fault == "video_loss":
        assert (during["frame_rate"] == 0).all() and (during["bitrate"] < 100).all()
        assert (outside["frame_rate"].dropna() > 0).all()
    elif fault == "storage_full":
        assert during["storage_free"].iloc[-1] < during["storage_free"].iloc[0]
        assert label.announced == (label.announced_ms is not None and during.loc[:label.announced_ms, "storage_free"].iloc[-1] == 0)
    elif fault == "camera_tamper":
        assert during["scene_match"].median() < 40 < outside["scene_match"].median()
    elif fault == "charger_faulted":
        assert (after["status"] == OCPP_STATUSES.index("Faulted")).all()
        assert (after["error_code"] == OCPP_ERROR_CODES.index(label.detail["error_code"])).all()
        assert (during["power"] == 0).all()
    elif fault == "over_temperature":
        loaded = during[during["power"] > 0]
        assert loaded["temperature"].iloc[len(loaded) // 2 :].mean() > outside[outside["power"] > 0]["temperature"].mean() + 10
    elif fault == "stuck_session":  # seen only while a car charges: take the plainest one that was seen
        seen = max((lab for lab in result.labels if lab.fault == fault and lab.observable), key=lambda x: x.magnitude)
        charging = _during(wide, seen)
        charging = charging[charging["status"] == OCPP_STATUSES.index("Charging")]
        full = _outside(wide, seen, result.labels)["power"].max()  # the charger's (or a car's) full power
        assert len(charging) > 0 and (charging["power"] <= full * (1.02 - seen.magnitude / 100)).all()
    elif fault == "lamp_failure":
        lit = during[during["lamp_on"] == 1]
        assert len(lit) > 0 and (lit["lamp_current"] < 0.02).all() and (lit["power"] < 5).all()
        assert (outside[outside["lamp_on"] == 1]["lamp_current"] > 0.05).all()
    elif fault == "day_burning":
        bright = during[during["ambient_light"] > 1000]
        assert len(bright) > 0 and (bright["lamp_on"] == 1).all()
        assert (outside[outside["ambient_light"] > 1000]["lamp_on"] == 0).all()
    elif fault == "flicker":
        assert (mine["event"] == "flicker").sum() >= 3
        lit = during[during["lamp_on"] == 1]
        assert (lit["lamp_current"] < 0.02).sum() >= 3
    elif fault == "leak":
        night = during[(local_hour(during.index.to_numpy()) >= 2) & (local_hour(during.index.to_numpy()) < 4)]
        assert night["flow"].min() > label.magnitude / 1000 * 0.9 if label.unit == "L/h" else night["flow"].min() > 0
    elif fault == "burst":
        assert during["flow"].median() > 3 * outside["flow"].quantile(0.99)
    elif fault == "stuck_register":
        assert during["volume_register"].nunique() == 1 and (during["flow"] == 0).all()
    elif fault == "reverse_flow":
        assert (during["flow"] < 0).any() and (outside["flow"] >= 0).all() and (outside["reverse_flow"] == 0).all()
        if label.announced:
            assert during.loc[label.announced_ms, "reverse_flow"] == 1
    elif fault == "battery_low":
        days = (during.index[-1] - during.index[0]) / 86_400_000
        assert during["battery"].iloc[-1] < during["battery"].iloc[0] - 0.8 * label.magnitude * days
    elif fault == "meter_tamper":
        assert during["volume_register"].nunique() == 1 and (during["flow"] == 0).all()
        assert (after["tamper"] == 1).all()
    else:
        raise AssertionError(f"no visibility check for fault type {fault}")


def test_subtle_faults_are_smaller_than_clear_ones(month: Month, wide: pd.DataFrame) -> None:
    result, _, _ = month
    for fault in FAULT_TYPES:
        sizes = {band: _label(result, fault, band).magnitude for band in ("subtle", "moderate", "clear")}
        assert sizes["subtle"] <= sizes["moderate"] <= sizes["clear"], fault
    lamp = _label(result, "lamp_failure", "subtle")
    lit = _during(wide, lamp)
    lit = lit[lit["lamp_on"] == 1]
    normal = _outside(wide, lamp, result.labels)
    normal = normal[normal["lamp_on"] == 1]["power"].median()
    assert len(lit) and 0.5 * normal < lit["power"].median() < 0.9 * normal  # dimmer, not dark
    tamper = _label(result, "camera_tamper", "subtle")
    during, outside = _during(wide, tamper), _outside(wide, tamper, result.labels)
    assert during["bitrate"].median() > 0.6 * outside["bitrate"].median()  # the stream looks the same
    assert during["scene_match"].median() < outside["scene_match"].median() - 5  # the scene does not


def test_gradual_onsets(month: Month, wide: pd.DataFrame) -> None:
    result, _, _ = month
    storage = _during(wide, _label(result, "storage_full", "subtle"))["storage_free"]
    assert storage.is_monotonic_decreasing or storage.diff().dropna().median() <= 0
    battery = _label(result, "battery_low", "moderate")
    during = _during(wide, battery)["battery"]
    halves = np.array_split(during.to_numpy(), 2)
    assert halves[0].mean() > halves[1].mean() and during.diff().abs().max() < 5  # a drain, not a drop


def test_hidden_spans_mark_what_the_data_cannot_show(month: Month, sites: list[Site]) -> None:
    result, _, _ = month
    site = sites[2]
    lamp = _label(result, "lamp_failure", "subtle")
    for a, b in lamp.hidden:  # hidden while the lamp is switched off: in daylight
        middle = np.array([(a + b) // 2], np.int64)
        assert solar_elevation(middle, site.latitude, site.longitude)[0] > -1.0, (a, b)
    # A stuck register on a vacant flat: nothing to see at all.
    start = 1_789_920_000_000
    engine = SiteEngine(site, seed=4, start_ms=start, anomalies=False)
    net = engine.water
    assert net is not None
    vacant = next(d for d, i in net.household_index.items() if net.persons[i] == 0)
    occupied = next(d for d, i in net.household_index.items() if net.persons[i] > 0)
    for device in (vacant, occupied):
        engine.add_labels([FaultLabel(device, site.compound, DeviceKind.WATER_METER, "stuck_register", start,
                                      start + 2 * 86_400_000, magnitude=100.0, unit="%", band="clear")])  # fmt: skip
    for day in range(2):
        engine.window(start + day * 86_400_000, start + (day + 1) * 86_400_000)
    final = {lab.device: lab for lab in engine.labels}
    assert not final[vacant].observable
    assert sum(b - a for a, b in final[vacant].hidden) > 0.98 * 2 * 86_400_000
    assert final[occupied].observable


def test_fault_modes(sites: list[Site]) -> None:
    rng = np.random.default_rng(1)
    engine = SiteEngine(sites[0], seed=1, start_ms=0)
    devices = engine.devices_by_kind()
    assert plan_faults(devices, sites[0].compound, 0, 86_400_000, rng, mode="none") == []
    every = plan_faults(devices, sites[0].compound, 0, 86_400_000, rng, mode="all")
    inside = {(f.name, f.label.band) for f in every if 0 <= f.start_ms < f.end_ms <= 86_400_000}
    assert {name for name, _ in inside} == set(FAULT_TYPES)  # every type inside the window
    assert inside >= {(f, b.value) for f in FAULT_TYPES for b in BANDS if fits_a_day(f, b)}  # every band that fits
    for f in every:  # a size that is a duration is the duration
        spec = FAULT_TYPES[f.name]
        if spec.magnitude_is_duration:
            assert f.label.magnitude * spec.magnitude_is_duration * 3_600_000 == pytest.approx(f.end_ms - f.start_ms, abs=400)
    many = plan_faults(devices, sites[0].compound, 0, 30 * 86_400_000, rng, mode="random", rate=50.0)
    few = plan_faults(devices, sites[0].compound, 0, 30 * 86_400_000, rng, mode="random", rate=0.0)
    assert len(many) > 20 and few == []
    assert {f.label.band for f in many} == {"subtle", "moderate", "clear"}
    reverse = [f for f in many if f.name == "reverse_flow"]
    assert reverse and all(d.attrs.get("meter_scope") != "building"
                           for f in reverse for d in sites[0].devices if d.device == f.label.device)  # fmt: skip
    starts = [f.announce_ms for f in many if f.announce_ms is not None]
    assert all(FAULT_TYPES[f.name].alarm.trigger is Trigger.START for f in many if f.announce_ms is not None)  # type: ignore[union-attr]
    assert starts
    with pytest.raises(ValueError, match="unknown fault mode"):
        plan_faults(devices, sites[0].compound, 0, 1, rng, mode="some")


def test_a_household_leak_shows_on_the_meters_upstream_only(sites: list[Site]) -> None:
    site = sites[0]
    meters = site.of_kind(DeviceKind.WATER_METER)
    household = next(d for d in meters if d.attrs.get("meter_scope") == "household")
    building = next(d for d in meters if d.attrs.get("meter_scope") == "building"
                    and d.building_no == household.building_no)  # fmt: skip
    compound = next(d for d in meters if d.attrs.get("meter_scope") == "building" and d.building_no is None)
    start = 1_789_920_000_000  # a local midnight
    days = 6

    def night_flow(with_leak: bool) -> dict[str, float]:
        engine = SiteEngine(site, seed=4, start_ms=start, anomalies=False)
        if with_leak:
            engine.add_labels([FaultLabel(household.device, site.compound, DeviceKind.WATER_METER, "leak",
                                          start + 3 * 86_400_000, start + days * 86_400_000, {"scope": "household"},
                                          30.0, "L/h", "clear")])  # fmt: skip
            assert [lab.device for lab in engine.labels] == [household.device]  # upstream effects are not labels
        flows: dict[str, list[float]] = {}
        for day in range(days):
            chunks, _ = engine.window(start + day * 86_400_000, start + (day + 1) * 86_400_000)
            if day < 3:
                continue
            for chunk in chunks:
                if "flow" not in chunk.values:
                    continue
                night = (local_hour(chunk.times) >= 2) & (local_hour(chunk.times) < 4)
                for pos, row in enumerate(chunk.rows):
                    flows.setdefault(chunk.block.ids[int(row)], []).extend(chunk.values["flow"][pos][night[pos]])
        return {d: float(np.mean(v)) for d, v in flows.items() if v}

    base, leaking = night_flow(False), night_flow(True)
    for meter in (household, building, compound):
        assert leaking[meter.device] - base[meter.device] == pytest.approx(0.030, abs=0.002), meter.device
    other = next(d for d in meters if d.attrs.get("meter_scope") == "household" and d.device != household.device)
    assert leaking[other.device] == base[other.device]  # a neighbour's meter sees nothing


def test_a_door_fault_burst_shows_from_its_second_door_fault(sites: list[Site]) -> None:
    site = sites[2]
    start, hour = 1_789_920_000_000, 3_600_000
    engine = SiteEngine(site, seed=4, start_ms=start, anomalies=False)
    elevators = [d.device for d in engine.devices_by_kind()[DeviceKind.ELEVATOR]]
    # bursts of 12 faults a day for 2 h: one fault expected in each, so none, one or a few
    labels = [FaultLabel(e, site.compound, DeviceKind.ELEVATOR, "door_fault_burst", start + (3 * k + 1) * hour,
                         start + (3 * k + 3) * hour, magnitude=12.0, unit="faults/day", band="moderate")
              for e in elevators for k in range(7)]  # fmt: skip
    clear = FaultLabel(elevators[0], site.compound, DeviceKind.ELEVATOR, "door_fault_burst", start + 22 * hour,
                       start + 22 * hour + 360_000, magnitude=40.0, unit="faults/day", band="clear")  # fmt: skip
    engine.add_labels([*labels, clear])
    counters: dict[str, list[tuple[int, float]]] = {}
    for half in range(2):  # two windows: a burst's count carries over
        chunks, _ = engine.window(start + half * 12 * hour, start + (half + 1) * 12 * hour)
        for chunk in chunks:
            if chunk.block.kind is DeviceKind.ELEVATOR:
                for r, row in enumerate(chunk.rows):
                    counters.setdefault(chunk.block.ids[row], []).extend(
                        zip(chunk.times[r].tolist(), chunk.values["door_faults"][r].tolist(), strict=True))
    final = {(lab.device, lab.start_ms): lab for lab in engine.labels}
    seen = []
    for lab in labels:
        series = sorted(counters[lab.device])
        before = max(v for t, v in series if t < lab.start_ms)
        inside = max(v for t, v in series if t < lab.end_ms) - before
        seen.append(inside >= 2)
        assert final[(lab.device, lab.start_ms)].observable == (inside >= 2), (lab, inside)
    assert any(seen) and not all(seen)
    assert final[(clear.device, clear.start_ms)].observable  # its door sticks open, faults or not


def test_a_clear_bursts_stuck_door_is_not_seen_while_the_controller_reports_out_of_service(
        sites: list[Site]) -> None:  # fmt: skip
    site = sites[2]
    start, hour = 1_789_920_000_000, 3_600_000
    engine = SiteEngine(site, seed=4, start_ms=start, anomalies=False)
    cars = [d.device for d in engine.devices_by_kind()[DeviceKind.ELEVATOR]][:2]
    stop = FaultLabel(cars[0], site.compound, DeviceKind.ELEVATOR, "out_of_service", start + hour, start + 5 * hour,
                      magnitude=4.0, unit="h", band="moderate")  # fmt: skip
    # a clear burst's stuck door at a rate low enough to bring no door fault in its 12 min (0.08 expected)
    bursts = [FaultLabel(car, site.compound, DeviceKind.ELEVATOR, "door_fault_burst", start + 2 * hour,
                         start + 2 * hour + 720_000, magnitude=10.0, unit="faults/day", band="clear")
              for car in cars]  # fmt: skip
    engine.add_labels([stop, *bursts])  # the stop announced at once: run_state out of service
    engine.window(start, start + 6 * hour)
    final = {(lab.device, lab.fault): lab for lab in engine.labels}
    assert not final[(cars[0], "door_fault_burst")].observable
    assert final[(cars[1], "door_fault_burst")].observable


def test_an_unannounced_stop_shows_only_where_trips_were_due(sites: list[Site]) -> None:
    site = sites[2]
    start, hour = 1_789_920_000_000, 3_600_000  # local midnight (UTC+8)
    engine = SiteEngine(site, seed=4, start_ms=start, anomalies=False)
    car = engine.devices_by_kind()[DeviceKind.ELEVATOR][0].device
    stops = {local: start + local * hour for local in (3, 19)}  # 03:00-04:00, 19:00-20:00 local
    injected = []
    for t0 in stops.values():
        label = FaultLabel(car, site.compound, DeviceKind.ELEVATOR, "out_of_service", t0, t0 + hour,
                           magnitude=1.0, unit="h", band="subtle")  # fmt: skip
        injected.append(Injected(label, alarm_delay_ms=None))  # the controller never says so
    engine.add_faults(injected)
    engine.window(start, start + 24 * hour)
    block = next(b for b in engine.blocks if car in b.ids)
    daily = float(block.model.describe()["expected_daily"][block.ids.index(car)])
    due = {local: daily / 24.0 * float(people_activity(np.array([t0 + hour // 2], np.int64))[0])
           for local, t0 in stops.items()}  # fmt: skip
    assert due[3] < 1.0 <= due[19], due  # the occupancy factor is near 1 on an ordinary day
    final = {lab.start_ms: lab for lab in engine.labels}
    assert not final[stops[3]].observable  # a night hour: no trip was due, nothing to miss
    assert final[stops[19]].observable


def _charger_trace(site: Site, start: int, days: int, faults: list[Injected] | None = None) -> tuple[
    SiteEngine, dict[str, pd.DataFrame]]:  # fmt: skip
    """A site's chargers run for ``days`` (no harmless anomalies): status and power per device."""
    engine = SiteEngine(site, seed=5, start_ms=start, anomalies=False)
    if faults:
        engine.add_faults(faults)
    parts: dict[str, list[pd.DataFrame]] = {}
    for day in range(days):
        chunks, _ = engine.window(start + day * 86_400_000, start + (day + 1) * 86_400_000)
        for chunk in chunks:
            if chunk.block.kind is not DeviceKind.CHARGER:
                continue
            for r, row in enumerate(chunk.rows.tolist()):
                parts.setdefault(chunk.block.ids[row], []).append(pd.DataFrame(
                    {"status": chunk.values["status"][r], "power": chunk.values["power"][r]},
                    index=chunk.times[r]))  # fmt: skip
    return engine, {d: pd.concat(p).sort_index() for d, p in parts.items()}


def _broken(device: str, site: Site, start: int, end: int) -> Injected:
    """A charger_faulted whose Faulted status never goes out."""
    label = FaultLabel(device, site.compound, DeviceKind.CHARGER, "charger_faulted", start, end,
                       {"error_code": "InternalError"}, 1.0, "h", "subtle")  # fmt: skip
    return Injected(label, alarm_delay_ms=None)


def test_an_unannounced_faulted_charger_is_seen_by_its_sessions_not_a_full_car_leaving(sites: list[Site]) -> None:
    site = next(s for s in sites if s.of_kind(DeviceKind.CHARGER))
    start = 1_789_920_000_000
    _, healthy = _charger_trace(site, start, 3)
    full_leaving: tuple[str, int, int] | None = None  # a full car leaving, nobody plugging in after
    charging: tuple[str, int] | None = None  # a car charging for 5 min, then 40 min more
    for device, trace in healthy.items():
        status, t = trace["status"].to_numpy(), trace.index.to_numpy()
        for k in range(5, len(status) - 60):
            idle_after = (status[k + 1 : k + 60] == 0).all()
            if full_leaving is None and status[k - 1] == 4 and status[k] == 5 and idle_after:
                parked = k - 1
                while parked > 0 and status[parked - 1] == 4:
                    parked -= 1
                if k - parked >= 30:
                    full_leaving = (device, int(t[parked + 10]), int(t[k + 30]))
            delivering = (trace["power"].to_numpy()[k : k + 40] > 0).all()
            if charging is None and (status[k - 5 : k + 40] == 2).all() and delivering:
                charging = (device, int(t[k]))
    assert full_leaving is not None and charging is not None
    device, a, b = full_leaving
    engine, broken = _charger_trace(site, start, 3, [_broken(device, site, a, b)])
    during = broken[device][(broken[device].index >= a) & (broken[device].index < b)]
    assert set(during["status"]) == {4.0, 5.0, 0.0} and (during["power"] == 0).all()  # any full car leaving
    assert not engine.labels[0].observable
    device, a = charging
    engine, broken = _charger_trace(site, start, 3, [_broken(device, site, a, a + 30 * 60_000)])
    during = broken[device][(broken[device].index >= a) & (broken[device].index < a + 30 * 60_000)]
    assert (during["status"] == 2).all() and (during["power"] == 0).all()  # Charging at nothing: seen
    assert engine.labels[0].observable


def test_a_failing_battery_shows_only_where_its_reading_leaves_a_healthy_one_s(sites: list[Site]) -> None:
    """A battery reads to 0.1%: a fault that begins 45 min before the history's end sends the readings a
    healthy battery would (not observable); one of 4%/day for 12 h shows within an hour or so."""
    site = sites[2]
    start = 1_789_920_000_000
    end = start + 86_400_000
    engine = SiteEngine(site, seed=4, start_ms=start, anomalies=False)
    net = engine.water
    assert net is not None
    late, long = list(net.household_index)[:2]
    engine.add_labels([
        FaultLabel(late, site.compound, DeviceKind.WATER_METER, "battery_low", end - 45 * 60_000, end + 86_400_000,
                   magnitude=0.5, unit="%/day", band="subtle"),
        FaultLabel(long, site.compound, DeviceKind.WATER_METER, "battery_low", end - 12 * 3_600_000,
                   end + 86_400_000, magnitude=4.0, unit="%/day", band="clear"),
    ])  # fmt: skip
    engine.window(start, end)
    final = {lab.device: lab for lab in engine.labels}
    assert not final[late].observable
    assert final[long].observable
    hidden = sum(b - a for a, b in final[long].hidden)
    assert hidden <= 3 * 3_600_000  # hidden until its extra fall (4%/day) passes a step of the reading
