"""The water balance detector (building meter against its flats) on small seeded networks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sitewatch.analytics.detectors.balance import (
    BalanceEpisode,
    WaterBalance,
    _best_window,
    _shorth,
    water_balance_findings,
)
from sitewatch.contract import FindingState

START = int(pd.Timestamp("2026-04-06 00:00", tz="Asia/Shanghai").value // 1_000_000)
MIN = 60_000
HOUR = 3_600_000
DAYS = 12
FLATS = ("C-WM002", "C-WM003", "C-WM004", "C-WM005")


def _devices() -> pd.DataFrame:
    rows = [{"device": "C-WM001", "compound": "220103-0001", "kind": "water_meter", "building": "1",
             "scope": "building"}]  # fmt: skip
    rows += [{"device": d, "compound": "220103-0001", "kind": "water_meter", "building": "1", "scope": "household"}
             for d in FLATS]  # fmt: skip
    return pd.DataFrame(rows).set_index("device")


def _readings(*, lost: dict[str, tuple[int, int, float]] | None = None, burst: tuple[int, int, float] | None = None,
              seed: int = 3, leak: tuple[int, int, float] | None = None) -> pd.DataFrame:  # fmt: skip
    """Minute draws of 4 flats (by day; a quiet night), a building meter over them plus 12 L/h of its
    own pipes; ``lost``: a meter that misses a share of its water in [a, b) minutes; ``burst``:
    litres an hour in the building's pipes in [a, b) minutes; ``leak``: the same, ramped up over the
    first quarter of its span (as the simulator's building leaks)."""
    rng = np.random.default_rng(seed)
    n = DAYS * 1440
    minute = np.arange(n)
    hour = (minute // 60) % 24
    day_use = np.where((hour >= 6) & (hour < 23), 1.0, 0.0)
    draws = {d: rng.poisson(0.02 * day_use) * rng.gamma(2.0, 8.0, n) for d in FLATS}
    pipes = np.full(n, 12.0 / 60.0)
    if burst is not None:
        pipes[burst[0] : burst[1]] += burst[2] / 60.0
    if leak is not None:
        a, b, lph = leak
        ramp = max(1, (b - a) // 4)
        pipes[a:b] += lph / 60.0 * np.minimum(1.0, (np.arange(a, b) - a + 1) / ramp)
    true = {"C-WM001": sum(draws.values()) + pipes, **draws}
    rows = []
    for k, (device, litres) in enumerate(true.items()):
        counted = litres.copy()
        if lost and device in lost:
            a, b, share = lost[device]
            counted[a:b] *= 1.0 - share
        register = 100.0 + np.cumsum(counted) / 1000.0
        step = 5 if device == "C-WM001" else 15
        at = np.arange(3 + k, n, step)
        for i in at:
            rows.append((START + int(i + 1) * MIN, device, "volume_register", round(float(register[i]), 3)))
            rows.append((START + int(i + 1) * MIN, device, "tamper", 0.0))
    return pd.DataFrame(rows, columns=["ts_ms", "device", "metric", "value"])


DAY = 1440


def test_nodes_are_buildings_and_their_flats() -> None:
    nodes = WaterBalance.nodes(_devices())
    assert [(n.parent, n.children) for n in nodes] == [("C-WM001", FLATS)]


def test_a_normal_network_gives_no_finding() -> None:
    assert water_balance_findings(_readings(), _devices()) == []


def test_a_register_still_for_days_is_a_stuck_register() -> None:
    found = water_balance_findings(_readings(lost={"C-WM003": (5 * DAY, 9 * DAY, 1.0)}), _devices())
    assert [(f.device, f.fault) for f in found] == [("C-WM003", "stuck_register")]
    f = found[0]
    assert f.source == "detector:water_balance" and f.state is FindingState.CLEARED
    assert f.started_ms <= START + 5 * DAY * MIN + 24 * 3_600_000 and f.ended_ms >= START + 8 * DAY * MIN
    assert f.params["share"] == "100%" and f.evidence["days"] >= 3
    assert f.encode()  # plain floats: the finding is sent (and written by evaluate --findings) as JSON


def test_a_register_still_for_one_day_is_tampering() -> None:
    found = water_balance_findings(
        _readings(lost={"C-WM004": (5 * DAY + 60, 6 * DAY + 600, 1.0)}), _devices()
    )
    assert [(f.device, f.fault) for f in found] == [("C-WM004", "meter_tamper")]


def test_a_flat_away_is_no_fault() -> None:
    """The flat's register is still because nobody draws water: the balance misses nothing."""
    readings = _readings()
    flat = readings[(readings["device"] == "C-WM002") & (readings["metric"] == "volume_register")]
    window = (flat["ts_ms"] >= START + 5 * DAY * MIN) & (flat["ts_ms"] < START + 8 * DAY * MIN)
    before = flat[~window & (flat["ts_ms"] < START + 5 * DAY * MIN)]["value"].iloc[-1]
    after_jump = flat[window]["value"] - before
    readings.loc[after_jump.index, "value"] = before
    later = flat["ts_ms"] >= START + 8 * DAY * MIN
    readings.loc[flat[later].index, "value"] -= float(after_jump.iloc[-1])
    # the building meter does not see that water either: take it away there too
    building = readings[(readings["device"] == "C-WM001") & (readings["metric"] == "volume_register")]
    inside = building["ts_ms"].between(START + 5 * DAY * MIN, START + 8 * DAY * MIN)
    share = np.interp(building["ts_ms"], flat["ts_ms"], readings.loc[flat.index, "value"]) - np.interp(
        building["ts_ms"], flat["ts_ms"], _readings().loc[flat.index, "value"]
    )
    readings.loc[building.index, "value"] += share
    assert not inside.empty
    assert water_balance_findings(readings, _devices()) == []


def test_a_building_meter_registering_half_is_a_stuck_register() -> None:
    found = water_balance_findings(_readings(lost={"C-WM001": (4 * DAY, 10 * DAY, 0.5)}), _devices())
    assert [(f.device, f.fault) for f in found] == [("C-WM001", "stuck_register")]
    assert 0.4 <= found[0].evidence["share"] <= 0.6


@pytest.mark.parametrize(("litres_per_hour", "found"), [(1000.0, True), (100.0, False)])
def test_a_burst_behind_the_building_meter(litres_per_hour: float, found: bool) -> None:
    span = (6 * DAY + 14 * 60, 6 * DAY + 15 * 60 + 30)
    findings = water_balance_findings(_readings(burst=(*span, litres_per_hour)), _devices())
    bursts = [f for f in findings if f.fault == "burst"]
    assert bool(bursts) is found
    if found:
        assert bursts[0].device == "C-WM001"
        assert bursts[0].started_ms <= START + span[1] * MIN and bursts[0].ended_ms >= START + span[0] * MIN


def test_too_little_history_gives_nothing() -> None:
    readings = _readings()
    short = readings[readings["ts_ms"] < START + 2 * DAY * MIN]
    assert water_balance_findings(short, _devices()) == []
    assert water_balance_findings(readings.iloc[0:0], _devices()) == []


def test_a_register_missing_part_of_its_water_is_found_by_its_days() -> None:
    """60% missed for 6 days: the balance misses 1.5 x what the flat registers, day after day."""
    found = water_balance_findings(
        _readings(lost={"C-WM005": (3 * DAY + 300, 9 * DAY + 300, 0.6)}), _devices()
    )
    assert [(f.device, f.fault) for f in found] == [("C-WM005", "stuck_register")]
    assert 0.5 <= found[0].evidence["share"] <= 0.7


def test_a_partial_loss_of_two_days_is_named_by_its_hours() -> None:
    """Too few whole days for the daily fit (any flat's two days could fit the balance), but hour by
    hour the balance misses 1.5 x what the flat registers, its nights and its peaks: tampering."""
    found = water_balance_findings(
        _readings(lost={"C-WM005": (5 * DAY + 300, 7 * DAY + 100, 0.6)}), _devices()
    )
    assert [(f.device, f.fault) for f in found] == [("C-WM005", "meter_tamper")]
    assert 0.5 <= found[0].evidence["share"] <= 0.7
    # the fault's hours, not whole days
    assert abs(found[0].started_ms - (START + (5 * DAY + 300) * MIN)) <= 3 * 3_600_000
    assert abs(found[0].ended_ms - (START + (7 * DAY + 100) * MIN)) <= 3 * 3_600_000


def test_a_short_loss_of_a_few_hours_is_named_by_its_hours() -> None:
    found = water_balance_findings(
        _readings(lost={"C-WM003": (6 * DAY + 420, 6 * DAY + 1260, 0.8)}), _devices()
    )
    assert [(f.device, f.fault) for f in found] == [("C-WM003", "meter_tamper")]


def test_a_steady_loss_in_the_building_pipes_is_named_on_no_flat() -> None:
    """Water the building meter counts and no flat does, night and day alike: no flat's hours fit;
    it is the building's leak."""
    found = water_balance_findings(_readings(burst=(5 * DAY + 300, 8 * DAY + 300, 40.0)), _devices())
    assert [(f.device, f.fault) for f in found if f.fault != "burst"] == [("C-WM001", "leak")]


@pytest.mark.parametrize("lph", [15.0, 30.0])
def test_a_ramped_leak_in_the_building_pipes_is_the_building_s_from_its_start(lph: float) -> None:
    """The residual rises over a quarter of the span and stays, night and day: a leak on the
    building meter, started within a few hours of the leak's start."""
    span = (4 * DAY + 500, 9 * DAY + 500)
    found = water_balance_findings(_readings(leak=(*span, lph)), _devices())
    assert [(f.device, f.fault) for f in found] == [("C-WM001", "leak")]
    assert abs(found[0].started_ms - (START + span[0] * MIN)) <= 8 * 3_600_000
    assert found[0].ended_ms is not None and found[0].ended_ms >= START + (span[1] - 600) * MIN
    assert lph * 0.6 <= found[0].evidence["excess_lph"] <= lph * 1.3


def test_a_flat_missing_water_is_no_leak_even_when_not_named() -> None:
    """A flat's register that misses water raises the residual only while the flat draws (by day):
    the night hours stay at their level, so no leak, even with no register fault to leave out."""
    balance = WaterBalance()
    readings = _readings(lost={"C-WM004": (3 * DAY + 300, 9 * DAY + 300, 0.9)})
    hourly = balance.hourly_registers(readings)
    assert balance.leaks(hourly, _devices(), ()) == []
    found = water_balance_findings(readings, _devices())
    assert "leak" not in {f.fault for f in found}


def test_a_flat_with_no_readings_is_no_leak() -> None:
    """A flat's meter silent for three days: its hours are unknown, not water the building lost."""
    readings = _readings()
    silent = (readings["device"] == "C-WM003") & readings["ts_ms"].between(
        START + 4 * DAY * MIN, START + 7 * DAY * MIN
    )
    assert "leak" not in {f.fault for f in water_balance_findings(readings[~silent], _devices())}


@pytest.mark.parametrize(("hours", "found"), [(20, False), (60, True)])
def test_a_short_rise_is_no_leak(hours: int, found: bool) -> None:
    """A rise of under a day and a bit (a tap left running in the courtyard) is not a leak."""
    span = (5 * DAY + 120, 5 * DAY + 120 + hours * 60)
    leaks = [
        f for f in water_balance_findings(_readings(burst=(*span, 40.0)), _devices()) if f.fault == "leak"
    ]
    assert bool(leaks) is found


def test_a_burst_behind_a_still_register_is_the_flat_s() -> None:
    """The flat's register stands still; the building meter counts its burst: the burst is the flat's."""
    readings = _readings(lost={"C-WM002": (3 * DAY, 9 * DAY, 1.0)},
                         burst=(6 * DAY + 14 * 60, 6 * DAY + 16 * 60, 1200.0))  # fmt: skip
    found = water_balance_findings(readings, _devices())
    bursts = [(f.device, f.fault) for f in found if f.fault == "burst"]
    assert bursts == [("C-WM002", "burst")]
    assert ("C-WM002", "stuck_register") in [(f.device, f.fault) for f in found]


def test_the_hourly_fit_searches_start_and_end_within_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fit's closed form (prefix sums over the start and end hours) equals a direct least squares."""
    balance = WaterBalance()
    hours = 24 * 4 + 1
    ts = START + np.arange(hours, dtype=np.int64) * 3_600_000
    rng = np.random.default_rng(5)
    flat = np.cumsum(rng.gamma(0.5, 20.0, hours) * ((np.arange(hours) % 24) >= 6))
    other = np.cumsum(rng.gamma(0.5, 20.0, hours) * ((np.arange(hours) % 24) >= 6))
    x = flat - flat[30]
    x[:30] = 0.0
    x[70:] = flat[70] - flat[30]
    parent = flat + other + 0.5 * x + rng.normal(0.0, 1.0, hours)
    registers = pd.DataFrame({"P": parent, "A": flat, "B": other}, index=ts)
    normal = pd.Series(False, index=ts[::24][1:])
    sigma = np.full(24, 3.0)
    monkeypatch.setattr(WaterBalance, "_hourly_noise", lambda self, *args: sigma)
    hit = balance._hourly_fit(registers, "P", 0.0, normal, int(ts[24]), int(ts[-25]))
    assert hit is not None
    device, share, _hours, _fit, t0, t1, _at_start, _at_end = hit
    assert device == "A" and abs(share - 1.0 / 3.0) < 0.05
    assert abs(t0 - int(ts[30])) <= 3_600_000 and abs(t1 - int(ts[70])) <= 3_600_000


def test_the_hourly_fit_leaves_a_fault_of_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step of the balance in one hour, which a flat's draw in that hour fits, is no fault the
    hourly fit times (one hourly value's spike); with no least length it would be named."""
    hours = 24 * 4 + 1
    ts = START + np.arange(hours, dtype=np.int64) * 3_600_000
    rng = np.random.default_rng(5)
    flat = np.cumsum(rng.gamma(0.5, 20.0, hours) * ((np.arange(hours) % 24) >= 6))
    flat[41:] += 60.0  # a draw of 60 L in the hour 40-41
    draws = rng.gamma(0.5, 20.0, hours) * ((np.arange(hours) % 24) >= 6)
    draws[38:44] = 0.0  # the other flat draws nothing around it
    other = np.cumsum(draws)
    parent = flat + other + rng.normal(0.0, 1.0, hours)
    parent[41:] += 40.0  # the balance misses 40 L in that hour only
    registers = pd.DataFrame({"P": parent, "A": flat, "B": other}, index=ts)
    normal = pd.Series(False, index=ts[::24][1:])
    monkeypatch.setattr(WaterBalance, "_hourly_noise", lambda self, *args: np.full(24, 3.0))
    args = (registers, "P", 0.0, normal, int(ts[24]), int(ts[48]))  # a run of one day
    hit = WaterBalance(hour_fit_min_h=0.0)._hourly_fit(*args)
    assert hit is not None and hit[0] == "A" and hit[2] < WaterBalance().hour_fit_min_h
    assert WaterBalance()._hourly_fit(*args) is None


@pytest.mark.parametrize(("flat", "share", "seed"), [("C-WM005", 0.25, 3), ("C-WM003", 0.2, 4)])
def test_a_fifth_missed_for_a_day_is_found_at_the_exact_instants(flat: str, share: float, seed: int) -> None:
    """A day and a few hours at 20-25%: tens of litres, under the daily balance's level, but at the
    instants where every flat's register is known the balance is off by the rounding alone."""
    span = (5 * DAY + 400, 6 * DAY + 700)
    found = water_balance_findings(_readings(lost={flat: (*span, share)}, seed=seed), _devices())
    assert [(f.device, f.fault) for f in found] == [(flat, "meter_tamper")]
    assert abs(found[0].evidence["share"] - share) <= 0.05
    assert abs(found[0].started_ms - (START + span[0] * MIN)) <= 6 * 3_600_000
    assert found[0].ended_ms is not None and abs(found[0].ended_ms - (START + span[1] * MIN)) <= 6 * 3_600_000


def test_a_slight_loss_for_three_days_at_the_exact_instants_is_a_stuck_register() -> None:
    found = water_balance_findings(_readings(lost={"C-WM003": (4 * DAY + 400, 7 * DAY + 700, 0.15)}, seed=4),
                                   _devices())  # fmt: skip
    assert [(f.device, f.fault) for f in found] == [("C-WM003", "stuck_register")]
    assert abs(found[0].evidence["share"] - 0.15) <= 0.05


@pytest.mark.parametrize(("minutes", "share"), [(120, 0.3), (240, 0.1), (240, 0.15)])
def test_a_loss_of_a_few_litres_is_not_named(minutes: int, share: float) -> None:
    """30% of two hours, or 10-15% of four, of one flat's water: too few litres for any fit."""
    lost = {"C-WM004": (6 * DAY + 480, 6 * DAY + 480 + minutes, share)}
    assert water_balance_findings(_readings(lost=lost), _devices()) == []


def test_a_loss_of_some_twenty_litres_is_named_on_a_close_call() -> None:
    """30% of four hours (about 20 L): the flat's fit beats the next by 15 (under ``exact_margin``,
    over ``exact_close_margin``) and no other register stood still for most of it."""
    found = water_balance_findings(_readings(lost={"C-WM004": (6 * DAY + 480, 6 * DAY + 720, 0.3)}), _devices())
    assert [(f.device, f.fault) for f in found] == [("C-WM004", "meter_tamper")]
    assert found[0].evidence["share"] == pytest.approx(0.3, abs=0.03)
    assert WaterBalance().exact_close_margin <= found[0].evidence["fit"] < WaterBalance().exact_margin


def test_exact_registers_are_known_where_every_flat_is_still() -> None:
    """At the parent's reports: a flat with the same register on both sides is known exactly, one
    that drew d litres in between is unknown by d² u (1 - u), one with no report near is left out."""
    balance = WaterBalance()
    minute = np.arange(0, 121, 5, dtype=np.int64) * MIN
    series = {
        "P": (minute, np.arange(len(minute), dtype=np.float64)),
        "A": (np.array([0, 15, 30, 45, 60, 75, 90, 105, 120]) * MIN, np.array([5.0, 5, 5, 5, 5, 5, 5, 5, 5])),
        "B": (
            np.array([0, 15, 30, 45, 60, 75, 90, 105, 120]) * MIN,
            np.array([0.0, 0, 0, 0, 0, 0, 0, 0, 12]),
        ),
    }
    frame = balance.exact_registers(series, "P", ["A", "B"])
    assert frame is None  # fewer than 48 instants: too little to learn from
    long = np.arange(0, 24 * 60 + 1, 5, dtype=np.int64) * MIN
    reports = np.arange(0, 24 * 60 + 1, 15, dtype=np.int64) * MIN
    b = np.where(reports >= 120 * MIN, 12.0, 0.0)
    series = {"P": (long, np.zeros(len(long))), "A": (reports, np.full(len(reports), 5.0)), "B": (reports, b)}
    series["C"] = (reports[reports <= 600 * MIN], np.zeros(int((reports <= 600 * MIN).sum())))
    assert balance.exact_registers(series, "P", ["A", "B", "Z"]) is None  # a flat with no reports at all
    frame = balance.exact_registers(series, "P", ["A", "B", "C"])
    assert frame is not None
    rounding = 4 / 12.0
    assert frame.loc[60 * MIN, ""] == pytest.approx(rounding)
    assert frame.loc[110 * MIN, ""] == pytest.approx(rounding + 144.0 * (1 / 3) * (2 / 3))
    assert frame.loc[110 * MIN, "B"] == pytest.approx(4.0)
    assert frame.loc[120 * MIN, ""] == pytest.approx(rounding)  # B reports in that minute
    assert frame.index.max() <= 600 * MIN + 2 * balance.gap_minutes * MIN  # C stops reporting


def _exact_frame(still_b: bool, seed: int = 7) -> tuple[pd.DataFrame, int, int]:
    """Two days of 5-minute instants, every one exact: flat A misses 30% of its water in the middle
    day; flat B draws nothing from hour 20 to hour 40 (``still_b``: its register stands still)."""
    rng = np.random.default_rng(seed)
    n = 2 * 288 + 1
    ts = START + np.arange(n, dtype=np.int64) * 5 * MIN
    hour = (np.arange(n) // 12) % 24
    use = {d: np.cumsum(rng.poisson(0.15 * (hour >= 6), n) * rng.gamma(2.0, 6.0, n)) for d in ("A", "B", "C")}
    if still_b:  # nobody in: B's register stands still, and neither it nor the building counts its water
        drawn = np.diff(use["B"], prepend=0.0)
        drawn[240:480] = 0.0
        use["B"] = np.cumsum(drawn)
    t0, t1 = 240, 460
    missed = np.where(np.arange(n) < t0, 0.0, use["A"][np.minimum(np.arange(n), t1)] - use["A"][t0])
    registered = dict(use)
    registered["A"] = use["A"] - 0.3 * missed
    parent = sum(use.values()) + 5.0 * np.arange(n) / 12.0
    frame = pd.DataFrame({"P": np.round(parent), **{d: np.round(v) for d, v in registered.items()}}, index=ts)
    frame[""] = 4 / 12.0
    return frame, int(ts[t0]), int(ts[t1])


def test_the_exact_fit_names_the_flat_and_its_hours() -> None:
    frame, t0, t1 = _exact_frame(still_b=False)
    usual = {"A": 10.0, "B": 10.0, "C": 10.0}
    best, hit = WaterBalance()._exact_fit(frame, "P", ["A", "B", "C"], 5.0, usual, t0, t1)
    assert best == "A" and hit is not None
    _device, share, start, end, _gain, _lost = hit
    assert abs(share - 0.3) < 0.05
    assert abs(start - t0) <= 2 * 3_600_000 and abs(end - t1) <= 2 * 3_600_000


def test_no_flat_is_named_while_another_flat_s_register_stands_still() -> None:
    """B's register still for 20 hours, of a flat that draws 10 L/h: it could have missed the water
    (the balance cannot tell a flat away from a register that stopped)."""
    frame, t0, t1 = _exact_frame(still_b=True)
    balance = WaterBalance()
    _best, hit = balance._exact_fit(
        frame, "P", ["A", "B", "C"], 5.0, {"A": 10.0, "B": 10.0, "C": 10.0}, t0, t1
    )
    assert hit is None
    # a flat that hardly ever draws (under ``still_usual_lph``) stands still as it always does
    _best, hit = balance._exact_fit(
        frame, "P", ["A", "B", "C"], 5.0, {"A": 10.0, "B": 0.5, "C": 10.0}, t0, t1
    )
    assert hit is not None and hit[0] == "A"


def test_a_close_call_takes_the_still_test_of_a_clear_one() -> None:
    """A best flat that beats the next by under ``exact_margin`` (here every call, the margin set out
    of reach) but by ``exact_close_margin`` is named unless another flat's register stood still for
    ``exact_still_h``, as on a clear call: B idle for all of A's 18 h holds it back at 12 h, not at
    19 h (a flat idle for most of a fault of hours in the day is common: nobody in)."""
    usual = {"A": 10.0, "B": 10.0, "C": 10.0}
    frame, t0, t1 = _exact_frame(still_b=False)
    close = WaterBalance(exact_margin=1e9)
    _best, hit = close._exact_fit(frame, "P", ["A", "B", "C"], 5.0, usual, t0, t1)
    assert hit is not None and hit[0] == "A"
    assert WaterBalance(exact_margin=1e9, exact_close_margin=1e9)._exact_fit(
        frame, "P", ["A", "B", "C"], 5.0, usual, t0, t1
    )[1] is None  # under the close margin too: nothing
    frame, t0, t1 = _exact_frame(still_b=True)
    assert close._exact_fit(frame, "P", ["A", "B", "C"], 5.0, usual, t0, t1)[1] is None  # B still 18 h >= 12 h
    _best, hit = WaterBalance(exact_margin=1e9, exact_still_h=19.0)._exact_fit(
        frame, "P", ["A", "B", "C"], 5.0, usual, t0, t1
    )
    assert hit is not None and hit[0] == "A"  # B's 18 h under 19 h: a close call named
    # a clear call: only a register still for ``exact_still_h`` holds it back, as before
    _best, hit = WaterBalance(exact_still_h=19.0)._exact_fit(frame, "P", ["A", "B", "C"], 5.0, usual, t0, t1)
    assert hit is not None and hit[0] == "A"


def test_a_part_of_a_long_window_named_by_neither_neighbour_is_not_trusted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A window of 4 days is fitted in 48-hour parts every 24 hours; each instant lies in two of them."""
    balance = WaterBalance()
    index = START + np.arange(0, 6 * 288, dtype=np.int64) * 5 * MIN
    exact = pd.DataFrame({"P": 0.0, "A": 0.0, "B": 0.0, "": 1 / 4}, index=index)
    day = 24 * 3_600_000
    monkeypatch.setattr(WaterBalance, "_exact_windows", lambda self, *a: [(START + day, START + 5 * day)])
    monkeypatch.setattr(WaterBalance, "_exact_extent", lambda self, *a, **k: (a[-2], a[-1]))
    script = {
        0: ("A", None),
        1: ("B", ("B", 0.3, START + 2 * day, START + 3 * day, 50.0, 30.0)),
        2: ("A", None),
    }

    def fit(self: WaterBalance, exact: pd.DataFrame, parent: str, kids: list[str], centre: float,
            usual: dict[str, float], w0: int, w1: int) -> tuple[str, object]:  # fmt: skip
        return script.get(int((w0 - START - day) // day), ("", None))

    monkeypatch.setattr(WaterBalance, "_exact_fit", fit)
    assert balance._exact_episodes(exact, "P", 0.0, [], {}) == []
    script[2] = ("B", None)  # the next part's best is B too: trusted
    found = balance._exact_episodes(exact, "P", 0.0, [], {})
    assert [(e.device, e.fault) for e in found] == [("B", "meter_tamper")]


@pytest.mark.parametrize(("hours", "trusted"), [((0, 10), True), ((12, 36), False), ((30, 40), False)])
def test_a_fault_at_a_long_window_s_end_is_judged_by_the_part_that_holds_it(
    monkeypatch: pytest.MonkeyPatch, hours: tuple[int, int], trusted: bool
) -> None:
    """A fault in the first part's first hours (the magnet found where the window opens) lies in no
    other part: a neighbour that holds under half of it neither confirms it nor denies it; one that
    holds half of it or more and names another flat still denies it."""
    balance = WaterBalance()
    index = START + np.arange(0, 6 * 288, dtype=np.int64) * 5 * MIN
    exact = pd.DataFrame({"P": 0.0, "A": 0.0, "B": 0.0, "": 1 / 4}, index=index)
    day, hour = 24 * 3_600_000, 3_600_000
    w0 = START + day
    monkeypatch.setattr(WaterBalance, "_exact_windows", lambda self, *a: [(w0, w0 + 4 * day)])
    monkeypatch.setattr(WaterBalance, "_exact_extent", lambda self, *a, **k: (a[-2], a[-1]))
    hit = ("A", 0.6, w0 + hours[0] * hour, w0 + hours[1] * hour, 200.0, 60.0)
    script = {0: ("A", hit), 1: ("B", None), 2: ("B", None)}

    def fit(self: WaterBalance, exact: pd.DataFrame, parent: str, kids: list[str], centre: float,
            usual: dict[str, float], a: int, b: int) -> tuple[str, object]:  # fmt: skip
        return script.get(int((a - w0) // day), ("", None))

    monkeypatch.setattr(WaterBalance, "_exact_fit", fit)
    found = balance._exact_episodes(exact, "P", 0.0, [], {})
    assert [(e.device, e.fault) for e in found] == ([("A", "meter_tamper")] if trusted else [])


def _leaking_series(leak_lph: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A day of a building meter's 5-minute reports over two flats' 15-minute ones: A's register
    turned by a steady ``leak_lph`` and a 12-L draw at 14:05; B's still."""
    parent = np.arange(0, 24 * 60 + 1, 5, dtype=np.int64) * MIN
    reports = np.arange(0, 24 * 60 + 1, 15, dtype=np.int64) * MIN
    hours = reports / 3_600_000
    a = np.round(leak_lph * hours + np.where(hours >= 14 + 5 / 60, 12.0, 0.0))
    return {"P": (parent, np.zeros(len(parent))), "A": (reports, a), "B": (reports, np.full(len(reports), 3.0))}


def test_a_flat_s_steady_flow_leaves_its_register_known_between_its_reports() -> None:
    """A leak behind a flat's meter moves its register between any two reports; what it adds is
    known (the least the flat registered in an hour within 6 h either side), so the instants are
    as good as still ones, except around a draw beyond it and where the 6 h are not yet seen."""
    balance = WaterBalance()
    frame = balance.exact_registers(_leaking_series(6.0), "P", ["A", "B"])
    assert frame is not None
    rounding = 3 / 12.0
    assert frame.loc[10 * 60 * MIN + 5 * MIN, ""] == pytest.approx(rounding)  # 1.5 L a report, rounded
    assert frame.loc[14 * 60 * MIN + 5 * MIN, ""] > 10.0  # the draw: 13-14 L at an unknown minute
    assert frame.loc[60 * MIN + 5 * MIN, ""] > rounding  # the first 6 h: the steady flow not yet known
    steady = balance._steady_lph(*_leaking_series(6.0)["A"])
    assert steady[40] == pytest.approx(6.0)  # an hour of 1.5-L steps, rounded: 6 L
    # a flat with no leak: some hour of its day empty, so no steady flow, and the rule as before
    assert not balance._steady_lph(*_leaking_series(0.0)["A"]).any()
    frame = balance.exact_registers(_leaking_series(0.0), "P", ["A", "B"])
    assert frame is not None and frame.loc[10 * 60 * MIN + 5 * MIN, ""] == pytest.approx(rounding)


def _run(still: tuple[int, int], missing: float, days: int = 8) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Daily volumes (L/h) of two flats for a run of ``days`` off-balance days after 5 normal ones:
    flat A's register still over the run's days ``still`` (first, last), the balance missing
    ``missing`` L/h on every day of the run (A usually draws 10 L/h)."""
    rows = 5 + days
    a = np.full(rows, 10.0)
    a[5 + still[0] : 5 + still[1] + 1] = 0.0
    volumes = pd.DataFrame({"A": a, "B": np.full(rows, 8.0)})
    normal = pd.Series([True] * 5 + [False] * days)
    return volumes, normal, pd.Series(np.full(days, missing))


@pytest.mark.parametrize(
    ("days", "still", "missing", "named"),
    [
        (4, (1, 2), 3.0, True),  # the run is the still days and the day of the stop and of the restart
        (4, (1, 2), 2.0, False),  # a fifth of A's use: under ``still_together_share``
        (5, (1, 2), 3.0, False),  # a day more off balance after the restart: another cause is at work
        (5, (1, 3), 5.0, True),  # half of A's use: named whatever the run (``still_share``)
        (3, (1, 1), 3.0, False),  # one still day: a flat away for a day is common
    ],
)
def test_a_still_register_whose_days_are_the_run_s_is_named_at_a_quarter_of_its_use(
    days: int, still: tuple[int, int], missing: float, named: bool
) -> None:
    """A register that stops misses whatever the flat draws meanwhile, often less than its usual."""
    volumes, normal, lost = _run(still, missing, days)
    found = WaterBalance()._explain(volumes, normal, lost, 5, 5 + days - 1, parent=False)
    assert [d for d, *_ in found] == (["A"] if named else [])


@pytest.mark.parametrize(
    ("hours", "cut", "flags", "fault"),
    [
        (40.0, False, 0, "meter_tamper"),  # a loss of under 48 h, its own hours: a magnet
        (40.0, True, 0, "stuck_register"),  # its hours only a least (a still register's days cut them)
        (40.0, True, 2, "meter_tamper"),  # the tamper flag says it
        (60.0, False, 0, "meter_tamper"),  # 48-72 h missing under 40%, its own hours: a magnet
        (60.0, True, 0, "stuck_register"),
    ],
)
def test_a_loss_whose_hours_are_only_a_least_is_named_by_the_likelier_fault(
    hours: float, cut: bool, flags: int, fault: str
) -> None:
    start, end = START, START + int(hours * 3_600_000)
    flagged = {"A": np.array([start + k * 900_000 for k in range(flags)], dtype=np.int64)}
    ep = WaterBalance()._episode("A", 0.3, hours / 24.0, 5.0, 2.0, start, end, flagged, timed=True, cut=cut)
    assert ep.fault == fault


@pytest.mark.parametrize(("weights", "named"), [((1.0, 1.0), False), ((1.0, 0.5), True)])
def test_two_flats_are_not_named_for_a_steady_loss(weights: tuple[float, float], named: bool) -> None:
    """Two flats whose days add up to a steady level (their shares 1/2 each) fit a leak in the
    building's pipes as well as two registers missing water: no pair is named for it."""
    a, b = np.array([5.0, 7.0, 3.0, 6.0]), np.array([5.0, 3.0, 7.0, 4.0])
    seen = pd.DataFrame({"A": a, "B": b, "C": np.array([9.0, 11.0, 10.0, 12.0])})
    usual = pd.Series({"A": 10.0, "B": 10.0, "C": 10.0})
    inner = weights[0] * a + weights[1] * b
    found = WaterBalance(pair_min_days=4)._fit_days(inner, seen, usual, 0.5)
    assert sorted(d for d, *_ in found) == (["A", "B"] if named else [])


@pytest.mark.parametrize(("days", "named"), [(7, False), (8, True)])
def test_two_flats_are_named_only_on_enough_days(days: int, named: bool) -> None:
    """Two shares fitted to a few days' losses: among tens of pairs of flats, one whose days happen
    to follow the losses is found too often (one worn register beside a short magnet); a pair is
    fitted on ``pair_min_days`` whole days or more."""
    rng = np.random.default_rng(5)
    a, b = rng.uniform(4.0, 8.0, days), rng.uniform(4.0, 8.0, days)
    seen = pd.DataFrame({"A": a, "B": b, "C": rng.uniform(9.0, 12.0, days)})
    usual = pd.Series({"A": 10.0, "B": 10.0, "C": 10.0})
    inner = 0.6 * a + 0.3 * b  # shares 0.375 and 0.23: A at 0.6 of its usual, B at 0.6 too
    found = WaterBalance()._fit_days(inner, seen, usual, 0.5)
    assert sorted(d for d, *_ in found) == (["A", "B"] if named else [])


def _daily(still_days: range, days: int = 12, vacant: bool = False) -> tuple[pd.DataFrame, pd.Series]:
    """Daily L/h of three flats (the last one vacant when asked) and a residual, C-WM002 still on ``still_days``."""
    rng = np.random.default_rng(5)
    index = pd.Index(np.arange(days) * 86_400_000)
    frame = pd.DataFrame({d: rng.uniform(8.0, 14.0, days) for d in FLATS[:3]}, index=index)
    frame.iloc[list(still_days), 0] = 0.0
    if vacant:
        frame[FLATS[2]] = 0.0
    return frame, pd.Series(1.0, index=index)


@pytest.mark.parametrize(("still", "kept"), [(range(4, 12), 4), (range(3, 12), 12), (range(0, 0), 12),
                                             (range(4, 7), 9), (range(4, 6), 12)])  # fmt: skip
def test_the_level_leaves_out_the_days_a_drawing_flat_s_register_stood_still(still: range, kept: int) -> None:
    """A quarter of the days or more on which a flat that draws on others registered nothing are no
    level, while ``level_min_days`` are left; fewer (a flat away for a few days) change nothing."""
    frame, residual = _daily(still)
    level = WaterBalance(level_min_days=4)._level_days(frame, residual)
    assert int(level.sum()) == kept
    if kept < 12:
        assert not level.iloc[list(still)].any()


def test_a_vacant_flat_leaves_every_day_to_the_level() -> None:
    frame, residual = _daily(range(0, 0), vacant=True)
    assert bool(WaterBalance()._level_days(frame, residual).all())


def test_a_register_stopped_for_most_of_the_history_does_not_set_the_level() -> None:
    """Stopped on days 7-15 (the residual up by its steady use), a worn register on days 3-6: the
    level is the first three days', not the stopped days' (the commonest, tightest residual)."""
    frame, _ = _daily(range(7, 16), days=16)
    residual = pd.Series([0.0, 0.1, -0.1, 10.0, 12.0, 8.0, 11.0, 8.0, 8.1, 7.9, 8.0, 8.05, 7.95, 8.0, 8.1, 7.9],
                         index=frame.index)  # fmt: skip
    level = WaterBalance()._level_days(frame, residual)
    assert abs(_shorth(residual.to_numpy())[0] - 8.0) < 0.2
    assert abs(_shorth(residual[level].to_numpy())[0]) < 0.2


def _beside(worn: float, extra: float) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Daily volumes (L/h) of three flats, 5 normal days and a run of 8: A's register still on the
    run's days 1-6 (A usually draws 10 L/h), B's register missing ``worn`` of its water over the
    whole run; the balance misses A's use on its still days (times ``extra``) and B's lost water."""
    rng = np.random.default_rng(3)
    use_b = np.clip(rng.normal(12.0, 4.0, 13), 4.0, None)
    use_c = np.clip(rng.normal(9.0, 3.0, 13), 3.0, None)
    a = np.full(13, 10.0)
    a[6:12] = 0.0
    b = use_b.copy()
    b[5:] *= 1.0 - worn
    volumes = pd.DataFrame({"A": a, "B": b, "C": use_c})
    normal = pd.Series([True] * 5 + [False] * 8)
    lost = use_b[5:] * worn + np.where(a[5:] == 0.0, 10.0 * extra, 0.0)
    return volumes, normal, pd.Series(lost)


@pytest.mark.parametrize(
    ("worn", "extra", "named"),
    [
        (0.6, 1.0, ["B"]),  # the balance misses 1.72 times A's use on its still days: B named beside A
        (0.45, 1.0, ["B"]),  # 1.54 times
        (0.4, 1.0, []),  # 1.48 times: under ``still_beside_missed``, only A is named
        (0.0, 1.6, []),  # A's flat drew 1.6 times its usual: no other flat's days follow the rest
    ],
)
def test_a_worn_register_beside_a_still_one_is_named_from_the_rest(
    worn: float, extra: float, named: list[str]
) -> None:
    """A still register hides about its flat's usual use; the balance missing far more on its
    still days is another meter's: the rest is fitted as a worn register among the other flats."""
    volumes, normal, lost = _beside(worn, extra)
    balance = WaterBalance()
    still = balance._explain(volumes, normal, lost, 5, 12, parent=False)
    assert [d for d, *_ in still] == ["A"]
    found = balance._beside_still(volumes, normal, lost, 5, 12, 0.3, still)
    assert [d for d, *_ in found] == named
    if named:
        assert found[0][1] == pytest.approx(worn, abs=0.05)


@pytest.mark.parametrize(
    ("flags_h", "span_h", "tampered"),
    [
        ((1, 20), (0, 30), True),  # a magnet: flagged while the water went missing
        ((1, 20), (0, 60), True),  # the water missing 40 h past the flag: still the magnet's
        ((1, 20), (0, 80), False),  # missing 60 h after the flag cleared: a worn register too
        ((60, 70), (0, 72), False),  # missing 60 h before the flag was set
        ((5,), (0, 20), False),  # one flagged report is a switch's bounce
    ],
)
def test_the_tamper_flag_names_an_episode_only_where_it_covers_the_loss(
    flags_h: tuple[int, ...], span_h: tuple[int, int], tampered: bool
) -> None:
    """A worn register right after a magnet on the same meter: the flag set for the magnet's hours
    alone does not name two days and more of water missing once it has cleared."""
    times = np.array([START + h * HOUR for h in range(flags_h[0], flags_h[-1] + 1)], dtype=np.int64)
    balance = WaterBalance()
    hours = span_h[1] - span_h[0]
    assert balance._tampered(times, START + span_h[0] * HOUR, START + span_h[1] * HOUR, hours) is tampered
    # a daily run's bounds hold other faults' days: the episode's own hours are what count
    longer = START + span_h[1] * HOUR + 200 * HOUR
    assert balance._tampered(times, START + span_h[0] * HOUR, longer, hours) is tampered
    fault = balance._episode("A", 0.8, (span_h[1] - span_h[0]) / 24.0, 1.0, 5.0, START + span_h[0] * HOUR,
                             START + span_h[1] * HOUR, {"A": times}).fault  # fmt: skip
    assert fault == ("meter_tamper" if tampered or hours < 48 else "stuck_register")

@pytest.mark.parametrize(
    ("episode_h", "flags", "dropped"),
    [
        ((91, 106), {"B": (92, 105)}, True),  # a neighbour's magnet over the same hours: its flat's water
        ((91, 106), {"B": (92, 96)}, False),  # the neighbour flagged for under half of them
        ((91, 106), {"B": (92, 96), "C": (98, 104)}, True),  # two neighbours' spells together
        ((0, 240), {"B": (92, 105)}, False),  # a worn register of ten days beside a magnet of hours
        ((91, 106), {"A": (95, 96), "B": (92, 105)}, False),  # the meter's own flag: its own magnet
        ((91, 106), {"B": (92,)}, False),  # one flagged report is a switch's bounce
        ((91, 106), {"B": (92, 97, 103)}, False),  # single reports hours apart: bounces, no spell
    ],
)
def test_an_episode_under_a_neighbour_s_tamper_flag_is_the_neighbour_s(
    episode_h: tuple[int, int], flags: dict[str, tuple[int, ...]], dropped: bool
) -> None:
    """A flagged magnet stops its flat's register: the balance rises by that flat's unseen draws, and
    a fit may follow another flat's draws over the same hours; the rules name the flagged meter."""
    def times(hours: tuple[int, ...]) -> np.ndarray:
        if len(hours) == 2:
            hours = tuple(range(hours[0], hours[1] + 1))
        return np.array([START + h * HOUR for h in hours], dtype=np.int64)

    flagged = {d: times(h) for d, h in flags.items()}
    episode = BalanceEpisode("A", "meter_tamper", START + episode_h[0] * HOUR, START + episode_h[1] * HOUR, 1.0,
                             {"share": 0.7})  # fmt: skip
    assert WaterBalance()._beside_flagged(episode, ["A", "B", "C"], flagged) is dropped
    # a register that stood still through them is named by its own spell: kept
    still = BalanceEpisode("A", "stuck_register", episode.start_ms, episode.end_ms, 1.0, {"share": 1.0})
    assert not WaterBalance()._beside_flagged(still, ["A", "B", "C"], flagged)


def test_a_still_register_s_episode_holds_its_still_spell_only() -> None:
    """The daily balance names a still register over its whole run of off days; the exact balance
    leaves to it only the spell in which the register did not move, ``exact_pad_h`` either side."""
    balance = WaterBalance()
    hour = 3_600_000
    index = START + np.arange(0, 100 * 12, dtype=np.int64) * 5 * MIN
    register = np.minimum(np.arange(len(index)), 30 * 12).astype(float)  # moves until hour 30
    register[60 * 12 :] += np.arange(len(index) - 60 * 12)  # ... and again from hour 60
    exact = pd.DataFrame({"P": 0.0, "A": register, "B": 0.0, "": 1 / 4}, index=index)
    still = BalanceEpisode("A", "meter_tamper", START, START + 99 * hour, 1.0, {"share": 1.0})
    # from its last move less 12 h to its next move and 12 h
    assert balance._held_span(exact, still) == (START + 18 * hour - 5 * MIN, START + 72 * hour + 5 * MIN)
    worn = BalanceEpisode("A", "stuck_register", START, START + 99 * hour, 1.0, {"share": 0.4})
    assert balance._held_span(exact, worn) == (START, START + 99 * hour)  # a worn register: its whole run
    short = BalanceEpisode("A", "meter_tamper", START + 20 * hour, START + 35 * hour, 1.0, {"share": 1.0})
    assert balance._held_span(exact, short) == (START + 20 * hour, START + 35 * hour)  # still under 12 h
    # a run whose days begin after the register stopped: the spell from its stop
    late = BalanceEpisode("A", "meter_tamper", START + 40 * hour, START + 99 * hour, 1.0, {"share": 1.0})
    assert balance._held_span(exact, late) == (START + 18 * hour - 5 * MIN, START + 72 * hour + 5 * MIN)


@pytest.mark.parametrize(
    ("held", "left"),
    [
        ([], (0, 48)),
        ([(30, 80)], (0, 30)),  # held from the part's 30th hour: the part up to it
        ([(-10, 20)], (20, 48)),  # held up to its 20th hour: the part from it
        ([(-10, 40)], None),  # 8 h left: too short to read
        ([(10, 20)], None),  # held inside the part: left to the daily balance
        ([(-10, 10), (40, 60)], (10, 40)),
    ],
)
def test_a_part_is_cut_at_the_hours_the_daily_balance_holds(
    held: list[tuple[int, int]], left: tuple[int, int] | None
) -> None:
    hour = 3_600_000
    a, b = WaterBalance()._part_left(0, 48 * hour, [(s * hour, t * hour) for s, t in held])
    assert (a // hour, b // hour) == left if left is not None else b <= a
    short = WaterBalance()._part_left(0, 8 * hour, [])
    assert short == (0, 8 * hour)  # a short window with nothing held stays whole


@pytest.mark.parametrize(("gain", "named"), [(200.0, True), (20.0, False)])
def test_a_fault_before_a_still_register_s_spell_is_fitted_in_what_is_left(
    monkeypatch: pytest.MonkeyPatch, gain: float, named: bool
) -> None:
    """A still register named by the daily balance over days from the window's start, though its
    register stopped only at hour 40: the window's first part is fitted up to the spell (less
    ``exact_pad_h``, from its last move), and a flat found there by a clear call is named; a close call is not (another
    fault's water lies next to it)."""
    balance = WaterBalance()
    hour = 3_600_000
    index = START + np.arange(0, 120 * 12, dtype=np.int64) * 5 * MIN
    register = np.minimum(np.arange(len(index)), 40 * 12).astype(float)  # B still from hour 40
    exact = pd.DataFrame({"P": 0.0, "A": 0.0, "B": register, "": 1 / 4}, index=index)
    w0 = START + 2 * hour
    monkeypatch.setattr(WaterBalance, "_exact_windows", lambda self, *a: [(w0, w0 + 40 * hour)])
    monkeypatch.setattr(WaterBalance, "_exact_extent", lambda self, *a, **k: (a[-2], a[-1]))
    read: list[tuple[int, int]] = []

    def fit(self: WaterBalance, exact: pd.DataFrame, parent: str, kids: list[str], centre: float,
            usual: dict[str, float], a: int, b: int) -> tuple[str, object]:  # fmt: skip
        read.append((a, b))
        return "A", ("A", 0.7, w0 + 4 * hour, w0 + 20 * hour, gain, 80.0)

    monkeypatch.setattr(WaterBalance, "_exact_fit", fit)
    daily = [BalanceEpisode("B", "meter_tamper", START, START + 110 * hour, 1.0, {"share": 1.0})]
    found = balance._exact_episodes(exact, "P", 0.0, daily, {})
    assert read == [(w0, START + 28 * hour - 5 * MIN)]
    assert [(e.device, e.fault) for e in found] == ([("A", "meter_tamper")] if named else [])


def _best_window_on_the_grid(y: np.ndarray, c: np.ndarray, w: np.ndarray, i0: np.ndarray,
                             i1: np.ndarray) -> tuple[float, float, int, int]:  # fmt: skip
    """``_best_window`` over the whole grid of pairs at once (as it was before it went by blocks)."""
    n = len(y)
    c = c - c[0]
    pw = np.r_[0.0, np.cumsum(w)]
    py, pc = np.r_[0.0, np.cumsum(w * y)], np.r_[0.0, np.cumsum(w * c)]
    pcc, pcy = np.r_[0.0, np.cumsum(w * c * c)], np.r_[0.0, np.cumsum(w * c * y)]
    a, b = i0 + 1, i1 + 1
    c0, c1 = c[i0], c[i1]
    xy = (pcy[b] - pcy[a]) - c0 * (py[b] - py[a]) + (c1 - c0) * (py[n] - py[b])
    xx = ((pcc[b] - pcc[a]) - 2.0 * c0 * (pc[b] - pc[a]) + c0 * c0 * (pw[b] - pw[a])
          + (c1 - c0) ** 2 * (pw[n] - pw[b]))  # fmt: skip
    ok = (i1 > i0) & (xx > 1e-9) & (xy > 0.0)
    yy = float(np.sum(w * y * y))
    sse = np.where(ok, yy - np.where(ok, xy, 0.0) ** 2 / np.where(ok, xx, 1.0), np.inf)
    r, q = np.unravel_index(int(np.argmin(sse)), sse.shape)
    if not np.isfinite(sse[r, q]):
        return float("inf"), 0.0, 0, 0
    lo0, hi1 = int(i0[r, 0]), int(i1[0, q])
    hi0 = min(int(np.searchsorted(c, c[lo0], side="right")) - 1, hi1)
    lo1 = max(int(np.searchsorted(c, c[hi1], side="left")), lo0)
    return float(sse[r, q]), float(xy[r, q] / xx[r, q]), (lo0 + hi0) // 2, (lo1 + hi1 + 1) // 2


@pytest.mark.parametrize("block", [1 << 15, 64, 7, 1])
def test_best_window_by_blocks_is_the_whole_grids_answer(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact fit's search by blocks of starts, each on the ends after its first start: the same
    error, coefficient and ends to the bit as over the whole grid, ties (whole litres, a register
    that never moves, equal errors) resolved the same way, for the fit's square grid and the
    extent's (starts before a window, ends after it)."""
    from sitewatch.analytics.detectors import balance

    monkeypatch.setattr(balance, "_BLOCK", block)
    rng = np.random.default_rng(11)
    for t in range(300):
        n = int(rng.integers(2, 90))
        y = np.cumsum(rng.normal(0.0, 1.0, n)) * float(rng.choice([1.0, 1e-3, 1e3]))
        c = np.cumsum(rng.integers(0, 3, n).astype(float) * rng.choice([0.0, 1.0], n))
        if t % 5 == 0:
            y = np.round(y)
        if t % 7 == 0:
            c = np.zeros(n)  # no pair: an infinite error
        if t % 11 == 0:
            y, c = np.zeros(n), np.arange(n, dtype=float)  # every pair fits as well: the first wins
        w = rng.uniform(0.1, 2.0, n)
        if t % 2:
            i0, i1 = np.arange(n)[:, None], np.arange(n)[None, :]
        else:
            a = int(rng.integers(1, n))
            i0, i1 = np.arange(a)[:, None], np.arange(int(rng.integers(a, n)), n)[None, :]
        assert _best_window(y, c, w, i0, i1) == _best_window_on_the_grid(y, c, w, i0, i1)


@pytest.mark.parametrize(
    ("held", "span"),
    [
        ([], (-70, 86)),  # nothing held beside it: followed out as the fit says
        ([(-100, 2)], (0, 86)),  # a still register's hours up to the fault's own: not before them
        ([(-50, -30)], (-30, 86)),  # held 30 h before it: followed back to there
        ([(-200, -100)], (-70, 86)),  # held beyond what the fit reaches: no matter
        ([(36, 90)], (-70, 36)),  # held from 20 h after its end: followed up to there
        ([(-100, 2), (20, 90)], (0, 20)),
    ],
)
def test_a_fault_is_followed_out_no_further_than_into_another_episode_s_hours(
    monkeypatch: pytest.MonkeyPatch, held: list[tuple[int, int]], span: tuple[int, int]
) -> None:
    """A flagged magnet of 16 h found in what a still register's daily episode leaves (seed 25) was
    followed back 70 h at the same share over the still register's hours, and its 86 h then named it
    a worn register: the fit over another fault's hours may take that fault's loss for its own."""
    hour = 3_600_000
    monkeypatch.setattr(WaterBalance, "_exact_extent_fit", lambda self, *a: (a[-2] - 70 * hour, a[-1] + 70 * hour))
    t0, t1 = WaterBalance()._exact_extent(pd.DataFrame(), "P", ["A"], 0.0, "A", 0.5, 0, 16 * hour,
                                          held=[(s * hour, t * hour) for s, t in held])  # fmt: skip
    assert (t0 // hour, t1 // hour) == span


def _steady_by_pandas(balance: WaterBalance, ts: np.ndarray, register: np.ndarray) -> np.ndarray:
    """``_steady_lph`` as it was, every step in pandas."""
    rise, span = pd.Series(np.diff(register)), pd.Series(np.diff(ts) / HOUR)
    per = max(1, round(1.0 / max(float(span.median()), 1e-9)))
    hourly = rise.rolling(per).sum() / span.rolling(per).sum()
    hourly[span.rolling(per).max() > 2 * balance.gap_minutes / 60.0] = np.nan
    reach = round(balance.steady_window_h * per)
    least = hourly.shift(-(per // 2)).rolling(2 * reach + 1, center=True, min_periods=2 * reach + 1).min()
    return np.nan_to_num(np.maximum(least.to_numpy(dtype=np.float64), 0.0))


@pytest.mark.parametrize("minutes", [15, 20, 60, 90])
def test_steady_flow_in_numpy_is_the_pandas_one(minutes: int) -> None:
    """A register's steady flow (the rolling minimum and maximum in NumPy): pandas' to the bit, with
    gaps, a leak that never stops, whole litres, and series shorter than the window."""
    from sitewatch.analytics.detectors.balance import _rolling

    balance = WaterBalance()
    rng = np.random.default_rng(minutes)
    for n in (2, 3, 5, 30, 600):
        ts = START + np.cumsum(rng.choice([minutes, minutes, minutes, 7 * minutes], n)) * MIN
        register = np.round(np.cumsum(rng.exponential(3.0, n) * (rng.random(n) < 0.4) + 0.5))
        np.testing.assert_array_equal(
            balance._steady_lph(ts, register), _steady_by_pandas(balance, ts, register)
        )
    values = rng.normal(0, 1, 200)
    values[rng.integers(0, 200, 20)] = np.nan
    for window in (1, 2, 4, 7, 49, 250):
        for center in (False, True):
            rolled = pd.Series(values).rolling(window, center=center)
            np.testing.assert_array_equal(
                _rolling(values, window, np.min, center=center), rolled.min().to_numpy()
            )
            np.testing.assert_array_equal(
                _rolling(values, window, np.max, center=center), rolled.max().to_numpy()
            )


def test_registers_by_device_are_what_groupby_gives() -> None:
    """The registers and tamper flags read by device (rows out of order, equal instants, other
    metrics between them): the rows and order of pandas' groupby, after ``sort_values`` for the exact
    balance's series."""
    from sitewatch.analytics.detectors.balance import _metric_rows

    rng = np.random.default_rng(8)
    n = 2000
    readings = pd.DataFrame({
        "ts_ms": START + rng.integers(0, 500, n) * MIN, "device": rng.choice(["C-W3", "C-W1", "C-W10", "C-W2"], n),
        "metric": rng.choice(["volume_register", "tamper", "flow"], n), "value": rng.normal(5, 1, n),
    })  # fmt: skip
    for metric in ("volume_register", "tamper"):
        for by_time in (False, True):
            rows = readings[readings["metric"] == metric]
            if by_time:
                rows = rows.sort_values("ts_ms")
            expected = [(str(d), g["ts_ms"].to_numpy(), g["value"].to_numpy())
                        for d, g in rows.groupby(rows["device"].astype(str), sort=True)]  # fmt: skip
            got = _metric_rows(readings, metric, by_time=by_time)
            assert [d for d, _, _ in got] == [d for d, _, _ in expected]
            for (_, ts, values), (_, ts0, values0) in zip(got, expected, strict=True):
                np.testing.assert_array_equal(ts, ts0)
                np.testing.assert_array_equal(values, values0)
    assert _metric_rows(readings, "pressure") == []


@pytest.mark.parametrize(("rise", "named"), [(0.0, True), (0.15, True), (0.25, False)])
def test_a_flat_whose_volume_shows_no_drop_is_not_named(rise: float, named: bool) -> None:
    """The one flat whose days follow the missing water (a share of 0.2) is named only if its volume
    is down by about that share: at its usual x 0.8 plus at most ``usual_rise``. A flat drawing its
    usual water or more while a neighbour's worn register misses a share is not that register."""
    shape = np.array([0.9, 1.1, 1.0])
    a = 40.0 * (0.8 + rise) * shape
    seen = pd.DataFrame({"A": a, "B": 40.0 * np.array([1.2, 0.8, 1.0]), "C": 40.0 * np.array([1.0, 1.0, 1.3])})
    usual = pd.Series({"A": 40.0, "B": 40.0, "C": 40.0})
    found = WaterBalance()._fit_days(0.25 * a, seen, usual, 0.5)
    assert [d for d, *_ in found] == (["A"] if named else [])


def test_a_flat_whose_volume_shows_no_drop_leaves_the_other_fit_unnamed() -> None:
    """Two flats whose days follow the missing water: the one without a drop does not make the other
    the only one; neither is named (the fit cannot tell them apart, and the right one may be either)."""
    shape = np.array([0.9, 1.1, 1.0])
    seen = pd.DataFrame({"A": 42.0 * shape, "B": 32.0 * shape, "C": 40.0 * np.array([1.0, 1.0, 1.3])})
    usual = pd.Series({"A": 40.0, "B": 40.0, "C": 40.0})
    assert WaterBalance()._fit_days(0.25 * seen["B"].to_numpy(), seen, usual, 0.5) == []
    # without the flat drawing its usual water, the flat whose volume is down is named
    assert [d for d, *_ in WaterBalance()._fit_days(0.25 * seen["B"].to_numpy(), seen.drop(columns="A"), usual,
                                                    0.5)] == ["B"]  # fmt: skip
