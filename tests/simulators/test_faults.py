"""Fault injection: every fault type is labelled and visible in the data or the events it leaves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sitewatch.contract import OCPP_ERROR_CODES, OCPP_STATUSES, DeviceKind
from sitewatch.simulators.backfill import BackfillResult
from sitewatch.simulators.clock import local_hour
from sitewatch.simulators.engine import SiteEngine
from sitewatch.simulators.faults import FAULT_TYPES, FAULTS_BY_KIND, FaultLabel, plan_faults
from sitewatch.simulators.site import Site

Month = tuple[BackfillResult, pd.DataFrame, pd.DataFrame]


def _during(wide: pd.DataFrame, label: FaultLabel) -> pd.DataFrame:
    rows: pd.DataFrame = wide.loc[label.device]  # type: ignore[assignment]
    return rows[(rows.index >= label.start_ms) & (rows.index < label.end_ms)]


def _outside(wide: pd.DataFrame, label: FaultLabel, labels: list[FaultLabel]) -> pd.DataFrame:
    """The device's rows outside every fault of that device."""
    rows: pd.DataFrame = wide.loc[label.device]  # type: ignore[assignment]
    keep = np.ones(len(rows), dtype=bool)
    for other in labels:
        if other.device == label.device:
            keep &= (rows.index < other.start_ms) | (rows.index >= other.end_ms)
    return rows[keep]


def _first(result: BackfillResult, fault: str) -> FaultLabel:
    return next(lab for lab in result.labels if lab.fault == fault and lab.end_ms - lab.start_ms >= 600_000)


def test_every_fault_type_is_labelled(month: Month) -> None:
    result, _, _ = month
    assert {lab.fault for lab in result.labels} == set(FAULT_TYPES)
    assert len(FAULT_TYPES) >= 15 and all(len(v) >= 3 for v in FAULTS_BY_KIND.values())
    labels = pd.read_parquet(result.out_dir / "labels.parquet")
    assert list(labels.columns) == ["device", "compound", "kind", "fault", "start_ms", "end_ms", "detail"]
    assert len(labels) == len(result.labels) and (labels["end_ms"] > labels["start_ms"]).all()
    assert (
        (result.out_dir / "labels.csv")
        .read_text(encoding="utf-8-sig")
        .startswith("device,compound,kind,fault")
    )


def test_faults_with_an_event_raise_and_clear_it(month: Month) -> None:
    result, _, events = month
    end_of_data = events["ts_ms"].max()
    for label in result.labels:
        spec = FAULT_TYPES[label.fault]
        if spec.event is None or label.start_ms < events["ts_ms"].min():
            continue
        mine = events[(events["device"] == label.device) & (events["event"] == spec.event)]
        if spec.event == "offline":
            assert (mine["ts_ms"] == label.start_ms).any(), label
            if label.end_ms < end_of_data:
                assert ((events["device"] == label.device) & (events["event"] == "online")
                        & (events["ts_ms"] == label.end_ms)).any(), label  # fmt: skip
            continue
        raised = mine[(mine["ts_ms"] == label.start_ms) & (mine["active"] == True)]  # noqa: E712
        assert len(raised) == 1, label
        if label.end_ms < end_of_data:
            assert ((mine["ts_ms"] == label.end_ms) & (mine["active"] == False)).any(), label  # noqa: E712


@pytest.mark.parametrize("fault", sorted(FAULT_TYPES))
def test_fault_is_visible_in_the_data(fault: str, month: Month, wide: pd.DataFrame) -> None:
    result, _, events = month
    label = _first(result, fault)
    during, outside = _during(wide, label), _outside(wide, label, result.labels)
    assert len(during) > 0
    in_span = events[(events["device"] == label.device) & (events["ts_ms"] >= label.start_ms)
                     & (events["ts_ms"] < label.end_ms)]  # fmt: skip
    if fault == "door_fault_burst":
        assert during["door_faults"].iloc[-1] - during["door_faults"].iloc[0] >= 2
        assert (in_span["event"] == "door_fault").sum() >= 2
    elif fault == "bearing_wear":
        late = during.iloc[int(len(during) * 0.9) :]["vibration_rms"].mean()
        assert late > 2.5 * outside["vibration_rms"].median()
    elif fault == "entrapment":
        assert (during["entrapment"] == 1).all() and (during["run_state"] == 4).all()
        assert (outside["entrapment"] == 0).all()
        assert "emergency_call" in set(in_span["event"])
    elif fault == "camera_offline":
        assert (during["online"] == 0).all() and during["bitrate"].isna().all()
        assert (outside["online"] == 1).all()
    elif fault == "video_loss":
        assert (during["frame_rate"] == 0).all() and (during["bitrate"] < 100).all()
        assert (outside["frame_rate"] > 0).all()
    elif fault == "storage_full":
        assert (during["storage_free"] == 0).all() and (outside["storage_free"] > 0).all()
    elif fault == "charger_faulted":
        assert (during["status"] == OCPP_STATUSES.index("Faulted")).all()
        assert (during["error_code"] == OCPP_ERROR_CODES.index(label.detail["error_code"])).all()
        assert (during["power"] == 0).all() and (outside["error_code"] == 0).all()
    elif fault == "over_temperature":
        assert during["temperature"].min() > 55 and outside["temperature"].max() < 55
    elif fault == "stuck_session":
        assert (during["status"] == 2).all() and (during["power"] == 0).all()
        assert during["energy_register"].nunique() == 1
    elif fault == "lamp_failure":
        lit = during[during["lamp_on"] == 1]
        assert len(lit) > 0 and (lit["lamp_current"] < 0.01).all()
        assert (outside[outside["lamp_on"] == 1]["lamp_current"] > 0.1).all()
    elif fault == "day_burning":
        bright = during[during["ambient_light"] > 1000]
        assert len(bright) > 0 and (bright["lamp_on"] == 1).all()
        assert (outside[outside["ambient_light"] > 1000]["lamp_on"] == 0).all()
    elif fault == "flicker":
        switches = np.abs(np.diff(during["lamp_on"].to_numpy())).sum()
        assert switches >= 3 and (in_span["event"] == "flicker").sum() >= 3
    elif fault == "leak":
        assert during["flow"].min() > 0.01  # the night flow never drops to zero
        assert outside["flow"].quantile(0.05) < during["flow"].min()
    elif fault == "burst":
        assert during["flow"].min() > 3 * outside["flow"].quantile(0.99)
    elif fault == "stuck_register":
        assert during["volume_register"].nunique() == 1 and (during["flow"] == 0).all()
    elif fault == "reverse_flow":
        assert (during["flow"] < 0).all() and (during["reverse_flow"] == 1).all()
        assert (outside["reverse_flow"] == 0).all() and (outside["flow"] >= 0).all()
    elif fault == "out_of_service":
        assert (during["run_state"] == 6).all() and during["trip_count"].nunique() == 1
        assert (outside["run_state"] != 6).all()
    elif fault == "camera_tamper":
        assert during["bitrate"].max() < 0.25 * outside["bitrate"].median()
    elif fault == "meter_tamper":
        assert (during["tamper"] == 1).all() and (outside["tamper"] == 0).all()
    elif fault == "battery_low":
        assert (during["battery"] < 10).all() and outside["battery"].min() > 10
    else:
        raise AssertionError(f"no visibility check for fault type {fault}")


def test_fault_modes(sites: list[Site]) -> None:
    rng = np.random.default_rng(1)
    devices: dict[DeviceKind, list[str]] = {}
    for d in sites[0].devices:
        devices.setdefault(d.kind, []).append(d.device)
    assert plan_faults(devices, sites[0].compound, 0, 86_400_000, rng, mode="none") == []
    every = plan_faults(devices, sites[0].compound, 0, 86_400_000, rng, mode="all")
    assert {lab.fault for lab in every} == set(FAULT_TYPES)
    inside = {lab.fault for lab in every if 0 <= lab.start_ms < lab.end_ms <= 86_400_000}
    assert inside == set(FAULT_TYPES)  # each type at least once inside the window
    many = plan_faults(devices, sites[0].compound, 0, 30 * 86_400_000, rng, mode="random", rate=50.0)
    few = plan_faults(devices, sites[0].compound, 0, 30 * 86_400_000, rng, mode="random", rate=0.0)
    assert len(many) > 20 and few == []
    with pytest.raises(ValueError, match="unknown fault mode"):
        plan_faults(devices, sites[0].compound, 0, 1, rng, mode="some")


def test_a_household_leak_raises_the_night_flow_of_the_meters_upstream(sites: list[Site]) -> None:
    site = sites[0]
    meters = [d for d in site.devices if d.kind is DeviceKind.WATER_METER]
    household = next(d for d in meters if d.attrs.get("meter_scope") == "household")
    building = next(
        d
        for d in meters
        if d.attrs.get("meter_scope") == "building" and d.building_no == household.building_no
    )
    compound = next(d for d in meters if d.attrs.get("meter_scope") == "building" and d.building_no is None)
    start = 1_789_920_000_000  # a local midnight
    days = 6

    def night_flow(with_leak: bool) -> dict[str, float]:
        engine = SiteEngine(site, seed=4, start_ms=start)
        if with_leak:
            label = FaultLabel(household.device, site.compound, DeviceKind.WATER_METER, "leak",
                               start + 3 * 86_400_000, start + days * 86_400_000)  # fmt: skip
            engine.add_labels([label])
        flows: dict[str, list[float]] = {}
        for day in range(3, days):
            chunks, _ = engine.window(start + day * 86_400_000, start + (day + 1) * 86_400_000)
            for chunk in chunks:
                night = (local_hour(chunk.times) >= 2) & (local_hour(chunk.times) < 4)
                for pos, row in enumerate(chunk.rows):
                    device = chunk.block.ids[int(row)]
                    flows.setdefault(device, []).extend(chunk.values["flow"][pos][night[pos]].tolist()
                                                        if "flow" in chunk.values else [])  # fmt: skip
        return {d: float(np.mean(v)) for d, v in flows.items() if v}

    base, leaking = night_flow(False), night_flow(True)
    assert engine_labels_only_the_injected_one(site, household.device)
    for meter in (household, building, compound):
        assert leaking[meter.device] - base[meter.device] > 0.02, meter.device  # the 0.025–0.045 m³/h leak
    other = next(
        d for d in meters if d.attrs.get("meter_scope") == "household" and d.device != household.device
    )
    assert leaking[other.device] == base[other.device]  # a neighbour's meter sees nothing


def engine_labels_only_the_injected_one(site: Site, device: str) -> bool:
    """Derived upstream effects are not labels: the labels table lists only what was injected."""
    engine = SiteEngine(site, seed=4, start_ms=0)
    engine.add_labels([FaultLabel(device, site.compound, DeviceKind.WATER_METER, "leak", 0, 1)])
    return [lab.device for lab in engine.labels] == [device]
