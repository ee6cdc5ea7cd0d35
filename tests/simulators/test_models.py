"""Behaviour models: values within the contract's ranges, registers monotonic, daily patterns, seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sitewatch.contract import KINDS, DeviceKind
from sitewatch.simulators.backfill import BackfillResult
from sitewatch.simulators.clock import local_hour, solar_elevation
from sitewatch.simulators.engine import SiteEngine
from sitewatch.simulators.faults import Band, FaultLabel, make_label
from sitewatch.simulators.site import Site

from .conftest import START_MS

COUNTERS = {
    name
    for k, spec in KINDS.items()
    if k is not DeviceKind.GATEWAY
    for name, m in spec.metrics.items()
    if m.type == "counter"
}


def test_every_reading_is_within_its_contract_range(
    month: tuple[BackfillResult, pd.DataFrame, pd.DataFrame],
) -> None:
    _, readings, _ = month
    stats = readings.groupby(["kind", "metric"], observed=True)["value"].agg(["min", "max", "count"])
    for key, row in stats.iterrows():
        kind, metric = str(key[0]), str(key[1])  # type: ignore[index]
        spec = KINDS[DeviceKind(kind)].metrics[metric]
        assert spec.check(row["min"]) is None and spec.check(row["max"]) is None, (kind, metric, row)
    assert np.isfinite(readings["value"]).all()
    produced = {(k, m) for k, m in stats.index}
    for kind in ("elevator", "camera", "charger", "streetlight", "water_meter"):
        assert {m for k, m in produced if k == kind} == set(KINDS[DeviceKind(kind)].metrics), kind


def test_registers_never_go_down(month: tuple[BackfillResult, pd.DataFrame, pd.DataFrame]) -> None:
    _, readings, _ = month
    regs = readings[readings["metric"].isin(COUNTERS)]
    assert len(regs) > 0
    regs = regs.sort_values(["device", "metric", "ts_ms"])
    steps = regs.groupby(["device", "metric"], observed=True)["value"].diff().dropna()
    assert (steps >= 0).all()
    assert (steps > 0).any()


def test_each_device_reports_at_its_interval(
    month: tuple[BackfillResult, pd.DataFrame, pd.DataFrame],
) -> None:
    _, readings, _ = month
    expected = {"elevator": 60_000, "camera": 60_000, "charger": 60_000, "streetlight": 300_000}
    for kind, interval in expected.items():
        metric = next(iter(KINDS[DeviceKind(kind)].metrics))
        ts = readings[(readings["kind"] == kind) & (readings["metric"] == metric)]
        gaps = ts.sort_values(["device", "ts_ms"]).groupby("device", observed=True)["ts_ms"].diff().dropna()
        assert (gaps % interval == 0).all(), kind  # a missed report leaves a multiple of the interval
        assert (gaps == interval).mean() > 0.99, kind  # and reports are rarely missed
    water = readings[(readings["kind"] == "water_meter") & (readings["metric"] == "volume_register")]
    water_gaps = (
        water.sort_values(["device", "ts_ms"]).groupby("device", observed=True)["ts_ms"].diff().dropna()
    )
    assert set(water_gaps.value_counts().index[:2]) == {300_000, 900_000}  # building and household meters
    assert ((water_gaps % 300_000) == 0).all()


def test_daily_patterns(wide: pd.DataFrame) -> None:
    frame = wide.reset_index()
    frame["hour"] = local_hour(frame["ts_ms"].to_numpy())
    households = frame[frame["device"].str.contains("-WM") & frame["pressure"].isna()]
    flow_by_hour = households.groupby(households["hour"].astype(int))["flow"].mean()
    assert flow_by_hour.loc[[7, 19, 20]].mean() > 5 * flow_by_hour.loc[[2, 3]].mean()  # peaks vs night
    elevators = frame[frame["device"].str.contains("-EL")].sort_values(["device", "ts_ms"])
    elevators["trips"] = elevators.groupby("device")["trip_count"].diff()
    trips_by_hour = elevators.groupby(elevators["hour"].astype(int))["trips"].mean()
    assert trips_by_hour.loc[[7, 8, 18]].mean() > 4 * trips_by_hour.loc[[2, 3, 4]].mean()
    lights = frame[frame["device"].str.contains("-SL")]
    on_share = lights.groupby(lights["hour"].astype(int))["lamp_on"].mean()
    assert on_share.loc[[0, 1, 2, 22, 23]].min() > 0.9 and on_share.loc[[10, 11, 12, 13]].max() < 0.1
    chargers = frame[frame["device"].str.contains("-CH")]
    assert set(chargers["status"].unique()) >= {
        0.0,
        1.0,
        2.0,
        3.0,
        4.0,
        5.0,
    }  # sessions run through OCPP states


def test_physics_at_rest(
    wide: pd.DataFrame, month: tuple[BackfillResult, pd.DataFrame, pd.DataFrame]
) -> None:
    result, _, _ = month
    frame = wide.reset_index()
    elevators = frame[frame["device"].str.contains("-EL")].sort_values(["device", "ts_ms"])
    trips = elevators.groupby("device")["trip_count"].diff()
    assert elevators.loc[trips == 0, "vibration_rms"].quantile(0.99) < 0.06  # near zero at rest
    assert elevators.loc[trips >= 2, "vibration_rms"].median() > 0.08
    chargers = frame[frame["device"].str.contains("-CH")]
    for lab in result.labels:  # readings outside the chargers' faults
        if lab.kind is DeviceKind.CHARGER:
            inside = (chargers["device"] == lab.device) & chargers["ts_ms"].between(lab.start_ms, lab.end_ms)
            chargers = chargers[~inside]
    for h in result.harmless:  # and outside sensor glitches
        if h.anomaly == "spurious_over_temperature":
            chargers = chargers[
                ~((chargers["device"] == h.device) & chargers["ts_ms"].between(h.start_ms, h.end_ms))
            ]
    idle = chargers[chargers["power"] == 0]
    assert idle["temperature"].max() < chargers["temperature"].max() and idle["temperature"].max() < 60
    assert (chargers.loc[chargers["status"] == 2, "power"] > 0).mean() > 0.95  # Charging delivers energy


def test_building_meters_equal_their_flats_plus_losses(sites: list[Site]) -> None:
    site = sites[0]
    engine = SiteEngine(site, seed=2, start_ms=START_MS, anomalies=False)
    chunks, _ = engine.window(START_MS, START_MS + 2 * 86_400_000)
    net = engine.water
    assert net is not None
    used: dict[str, float] = {}
    for chunk in chunks:
        if chunk.block.kind is DeviceKind.WATER_METER:
            for pos, row in enumerate(chunk.rows):
                reg = chunk.values["volume_register"][pos]
                used[chunk.block.ids[int(row)]] = float(reg[-1] - reg[0])
    meters = {d.device: d for d in site.of_kind(DeviceKind.WATER_METER)}
    for device in net.building_index:
        building = meters[device].building_no
        flats = sum(used[d] for d in net.household_index if meters[d].building_no == building)
        assert flats < used[device] < flats * 1.08 + 0.05, device  # its own pipes lose 1-4% (plus timing)
    compound = next(d for d in net.compound_meters)
    buildings = sum(used[d] for d in net.building_index)
    assert buildings < used[compound] < buildings * 1.12 + 0.05


def test_lamps_switch_with_the_sun_of_the_season(sites: list[Site]) -> None:
    site = sites[0]
    summer = 1_781_971_200_000  # 2026-06-21 00:00 local
    winter = 1_797_782_400_000  # 2026-12-21 00:00 local
    hours = {}
    for day in (summer, winter):
        engine = SiteEngine(site, seed=1, start_ms=day, anomalies=False)
        chunks, _ = engine.window(day, day + 86_400_000)
        lights = next(c for c in chunks if c.block.kind is DeviceKind.STREETLIGHT)
        hours[day] = lights.values["lamp_on"].mean() * 24
        sun = solar_elevation(lights.times[0], site.latitude, site.longitude)
        assert (lights.values["lamp_on"][0][sun > 5]).max() == 0.0
        assert (lights.values["lamp_on"][0][sun < -7]).min() == 1.0
    assert hours[winter] - hours[summer] > 5.0  # long winter nights in north-east China


def test_same_seed_same_data_other_seed_other_data(sites: list[Site]) -> None:
    def run(seed: int) -> list[np.ndarray]:
        engine = SiteEngine(sites[1], seed=seed, start_ms=START_MS)
        engine.plan(START_MS, START_MS + 86_400_000, mode="all")
        chunks, events = engine.window(START_MS, START_MS + 86_400_000)
        return [np.nan_to_num(v, nan=-1.0) for c in chunks for v in c.values.values()] + [
            np.array([e.ts_ms for e in events])
        ]

    a, b, c = run(4), run(4), run(5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_elevators_are_maintained_every_fifteen_days(
    month: tuple[BackfillResult, pd.DataFrame, pd.DataFrame], wide: pd.DataFrame
) -> None:
    _, _, events = month
    maint = events[events["event"] == "maintenance_mode"].sort_values("ts_ms")
    elevators = {d for d in wide.index.get_level_values("device").unique() if "-EL" in d}
    assert set(maint["device"]) == elevators
    for device, rows in maint.groupby("device"):
        starts = rows[rows["active"] == True]["ts_ms"].to_numpy()  # noqa: E712
        ends = rows[rows["active"] == False]["ts_ms"].to_numpy()  # noqa: E712
        assert len(starts) == 2 and len(ends) == 2  # 30 days, one visit per 15 days
        assert np.diff(starts)[0] == 15 * 86_400_000
        assert ((ends - starts) == 3_600_000).all()  # an hour out of use
        during = wide.loc[device]
        inside = during[(during.index >= starts[0]) & (during.index < ends[0])]
        assert (inside["run_state"] == 5).all() and inside["trip_count"].nunique() == 1


def _run_with(
    site: Site, labels: list[FaultLabel], kind: DeviceKind, device: str, metric: str, days: int
) -> np.ndarray:
    """``metric`` of ``device`` over ``days`` with ``labels`` injected (same seed, no anomalies)."""
    engine = SiteEngine(site, seed=7, start_ms=START_MS, anomalies=False)
    engine.add_labels(labels)
    out = []
    for d in range(days):
        chunks, _ = engine.window(START_MS + d * 86_400_000, START_MS + (d + 1) * 86_400_000)
        for c in chunks:
            if c.block.kind is kind and device in c.block.ids:
                pos = np.flatnonzero(c.rows == c.block.ids.index(device))
                if pos.size:
                    out.append(c.values[metric][pos[0]])
    return np.concatenate(out)


@pytest.mark.parametrize(
    ("kind", "fault", "metric", "strong", "weak"),
    [
        (DeviceKind.STREETLIGHT, "day_burning", "lamp_on", 4.0, 0.6),  # two dirty photocells
        (DeviceKind.ELEVATOR, "bearing_wear", "vibration_rms", 4.0, 1.3),
        (DeviceKind.CHARGER, "over_temperature", "temperature", 40.0, 5.0),
    ],
)
def test_two_faults_of_one_mechanism_on_a_device_compose(
    sites: list[Site], kind: DeviceKind, fault: str, metric: str, strong: float, weak: float
) -> None:
    """A second fault of the same mechanism starting while one is open does not replace it: the worse
    shows (a lamp whose photocell is dirtier burns at least as long as with that dirt alone), so both
    labels' magnitudes are true of the readings."""
    site = sites[2]
    device = site.of_kind(kind)[0].device
    days = 6
    a = make_label(fault, device, site.compound, START_MS, START_MS + 4 * 86_400_000, np.random.default_rng(0),
                   band=Band.MODERATE, magnitude=strong)  # fmt: skip
    b = make_label(fault, device, site.compound, START_MS + 86_400_000, START_MS + 5 * 86_400_000,
                   np.random.default_rng(0), band=Band.SUBTLE, magnitude=weak)  # fmt: skip
    both = np.nan_to_num(_run_with(site, [a, b], kind, device, metric, days), nan=-1.0)
    alone = np.nan_to_num(_run_with(site, [a], kind, device, metric, days), nan=-1.0)
    later = np.nan_to_num(_run_with(site, [b], kind, device, metric, days), nan=-1.0)
    assert both.shape == alone.shape == later.shape
    assert (both >= alone).all() and (both >= later).all()
    assert (both > later).any()  # the stronger fault shows while the weaker one is open too
