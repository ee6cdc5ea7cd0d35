"""The load_temperature rule type: a charger hotter than its own load explains (analytics/thermal.py)."""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

import pytest
import yaml

from sitewatch.analytics import Engine, RulesError, Site, parse_rules, thermal
from sitewatch.analytics.sun import solar_elevation
from sitewatch.analytics.thermal import HOLD, _sun_change, _sun_unknown, step
from sitewatch.contract import DeviceKind, Finding, Sample

C = "220104-0003"
GW = f"{C}-GW01"
CH = f"{C}-CH0001"
PEERS = [f"{C}-CH000{i}" for i in (2, 3, 4)]
T0 = 1_790_000_000_000
MIN = 60_000
SITES = {C: Site(43.88, 125.32)}
RULES = """rules:
  - {name: hot, kind: charger, type: load_temperature, metric: temperature, load: power,
     above: 4, clear: 2, for: 30m, fault: over_temperature, flap: 12h}
"""
LAG = 1.0 - math.exp(-60.0 / 900.0)  # the cabinet's 15-minute lag, one minute a step


def engine() -> Engine:
    return Engine(parse_rules(RULES, "test.yaml"), SITES)


def day(
    extra: float = 0.0, air0: float = 10.0, drift: float = -1.0
) -> list[tuple[int, dict[str, Any], float]]:
    """24 h of one charger, a minute a step: idle 18 h then 6 h at 6.6 kW of 7 kW rated; the air
    drifts ``drift`` °C an hour; a cooling fault adds ``extra`` °C at full load. Returns
    (minute, values, air) rows; the peers sit idle at the air + 3."""
    rows = []
    temp = air0 + 3.0
    for m in range(24 * 60):
        air = air0 + drift * m / 60.0
        p = 6.6 if m >= 18 * 60 else 0.0
        load = p / 7.0
        temp += (air + 3.0 + 14.0 * load**2 + extra * load - temp) * LAG
        rows.append((m, {"temperature": round(temp, 1), "power": p}, air))
    return rows


def run(e: Engine, days: list[list[tuple[int, dict[str, Any], float]]], start_day: int = 0) -> list[Finding]:
    out: list[Finding] = []
    for d, rows in enumerate(days, start=start_day):
        for m, values, air in rows:
            ts = T0 + d * 86_400_000 + m * MIN
            batch = [Sample(device=CH, kind=DeviceKind.CHARGER, ts_ms=ts, values=values)]
            batch += [Sample(device=p, kind=DeviceKind.CHARGER, ts_ms=ts,
                             values={"temperature": round(air + 3.0, 1), "power": 0.0}) for p in PEERS]  # fmt: skip
            out += e.on_samples(C, GW, batch)
            out += e.tick(ts)
    return out


def test_a_healthy_charger_in_cooling_air_raises_nothing() -> None:
    e = engine()
    assert run(e, [day(drift=d) for d in (-1.0, -0.5, -1.3, 0.5)]) == []


def test_a_cooling_fault_raises_after_learning_and_not_before_its_duration() -> None:
    e = engine()
    out = run(e, [day(), day(), day(extra=12.0)])
    assert [(f.fault, f.state.value) for f in out] == [("over_temperature", "active")]
    started = out[0].started_ms
    assert out[0].ts_ms - started >= 30 * MIN  # held for ``for``
    assert started >= T0 + 2 * 86_400_000 + 18 * 60 * MIN  # under load only
    assert out[0].evidence["temperature"] > 5.0  # the residual in °C


def test_a_fault_below_the_level_raises_nothing() -> None:
    e = engine()
    # 3 °C at full load is 2.8 °C at 6.6 kW: under the 4 °C level
    assert run(e, [day(), day(), day(extra=3.0), day(extra=3.0)]) == []


def test_nothing_is_raised_before_the_device_is_learnt() -> None:
    e = engine()
    assert run(e, [day(extra=30.0)]) == []  # its first session only teaches it


def test_checkpoint_and_restore_continue_the_same_episode() -> None:
    days = [day(), day(), day(extra=12.0)]
    whole = run(engine(), days)
    e = engine()
    run(e, days[:2])
    restored = Engine.restore(e.snapshot(), e.rules, SITES)
    assert restored.memory == e.memory and restored.memory  # the compound's idle peers came back
    again = run(restored, days[2:], start_day=2)
    assert [f.id for f in again] == [f.id for f in whole]


@pytest.mark.parametrize(
    "values",
    [
        {"temperature": float("nan"), "power": 6.6},
        {"temperature": 90.0},  # no power in the sample
        {"temperature": 90.0, "power": float("inf")},
        {"temperature": "hot", "power": 6.6},
        {"power": 6.6},
    ],
)
def test_hostile_samples_are_skipped(values: dict[str, Any]) -> None:
    e = engine()
    run(e, [day(), day()])
    bad = e.bad_values
    hostile = [(m, values, 10.0) for m in range(18 * 60, 24 * 60)]
    assert run(e, [hostile], start_day=2) == []
    assert e.bad_values >= bad + ("temperature" in values and "power" in values)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("above: 5, clear: 6", "clear must not be above"),
        ("above: 5, load: volts", "not a charger metric"),
        ("above: 0", "greater than 0"),
        ("above: 5, tau: 0s", "tau must be positive"),
        ("above: 4, night_above: 4.5", "night_above must not be above"),
        ("above: 4, night_above: 2, night_for: 0s", "night_for must be positive"),
        ("above: 4, night_above: 0", "greater than 0"),
        ("above: 4, day_above: 4.5", "day_above must not be above"),
        ("above: 4, day_above: 0", "greater than 0"),
        ("above: 4, max_rise: 0", "greater than 0"),
    ],
)
def test_rule_validation(extra: str, problem: str) -> None:
    text = (
        "rules: [{name: hot, kind: charger, type: load_temperature, metric: temperature, "
        + (extra if "load:" in extra else "load: power, " + extra)
        + "}]"
    )
    with pytest.raises(RulesError, match=problem):
        parse_rules(text, "t.yaml")


def test_a_snapshot_without_the_shared_table_restores_empty() -> None:
    import orjson

    e = engine()
    run(e, [day()])
    data = orjson.loads(e.snapshot())
    del data["compound_memory"]
    restored = Engine.restore(orjson.dumps(data), e.rules, SITES)
    assert restored.memory == {}
    assert run(restored, [day()], start_day=1) == []


def test_the_replay_keeps_the_load_metric() -> None:
    # a rules file whose only power reader is the load_temperature rule still gets the power replayed
    from sitewatch.analytics.replay import needed_metrics

    assert needed_metrics(parse_rules(RULES, "test.yaml")) == {"temperature", "power"}


# --- peer_rise: the compound's chargers as one another's prior ------------------------------------------

PEER_RULES = RULES.replace("flap: 12h}", "flap: 12h, peer_rise: 1.25}")
FLEET = [CH, *PEERS, f"{C}-CH0005"]


def fleet_day(sessions: dict[str, tuple[int, int, float, float]], air0: float = 10.0,
              drift: float = -0.3) -> list[tuple[int, dict[str, dict[str, Any]]]]:  # fmt: skip
    """24 h of the compound's chargers, a minute a step: ``sessions`` maps a device to (from, to)
    minutes at (kW of 7 kW rated, a cooling fault's °C at full load); the others sit idle."""
    temps = dict.fromkeys(FLEET, air0 + 3.0)
    rows = []
    for m in range(24 * 60):
        air = air0 + drift * m / 60.0
        values = {}
        for d in FLEET:
            a, b, kw, extra = sessions.get(d, (0, 0, 0.0, 0.0))
            p = kw if a <= m < b else 0.0
            load = p / 7.0
            temps[d] += (air + 3.0 + 14.0 * load**2 + extra * load - temps[d]) * LAG
            values[d] = {"temperature": round(temps[d], 1), "power": p}
        rows.append((m, values))
    return rows


def run_fleet(e: Engine, days: list[list[tuple[int, dict[str, dict[str, Any]]]]]) -> list[Finding]:
    out: list[Finding] = []
    for d, rows in enumerate(days):
        for m, values in rows:
            ts = T0 + d * 86_400_000 + m * MIN
            out += e.on_samples(C, GW, [Sample(device=dev, kind=DeviceKind.CHARGER, ts_ms=ts, values=v)
                                        for dev, v in values.items()])  # fmt: skip
            out += e.tick(ts)
    return out


def peers_learn() -> list[list[tuple[int, dict[str, dict[str, Any]]]]]:
    """Two days on which two peers charge a 6.6 kW car each morning (CH0001 idle)."""
    return [fleet_day({PEERS[0]: (360, 720, 6.6, 0.0), PEERS[1]: (380, 740, 6.6, 0.0)}) for _ in range(2)]


def test_a_fan_failing_from_the_first_session_is_found_against_the_peers() -> None:
    days = [*peers_learn(), fleet_day({CH: (1080, 1440, 6.6, 15.0)})]
    e = Engine(parse_rules(PEER_RULES, "test.yaml"), SITES)
    out = run_fleet(e, days)
    assert [(f.device, f.state.value) for f in out] == [(CH, "active")]
    assert e.memory[f"hot/{C}/rise"][PEERS[0]][0] == pytest.approx(14.0 * (6.6 / 7.0) ** 2, abs=1.0)
    # without the prior, the first session only teaches the device its (failing) normal
    assert run_fleet(engine(), days) == []


def test_a_healthy_charger_in_its_first_session_raises_nothing_against_the_peers() -> None:
    days = [*peers_learn(), fleet_day({CH: (1080, 1440, 6.6, 0.0)}), fleet_day({CH: (1080, 1440, 3.2, 0.0)})]
    assert run_fleet(Engine(parse_rules(PEER_RULES, "test.yaml"), SITES), days) == []


def test_a_fan_learnt_as_normal_is_found_once_the_peers_know_better() -> None:
    # the device learns first, on a failing fan; later the peers learn, and its rise is capped
    failing = {CH: (1080, 1440, 6.6, 12.0)}
    days = [fleet_day(failing), fleet_day(failing), *peers_learn(), fleet_day(failing)]
    out = run_fleet(Engine(parse_rules(PEER_RULES, "test.yaml"), SITES), days)
    assert [(f.device, f.state.value) for f in out] == [(CH, "active")]
    assert out[0].started_ms >= T0 + 4 * 86_400_000


MAX_RULES = PEER_RULES.replace("peer_rise: 1.25}", "peer_rise: 1.25, max_rise: 0.36}")


def test_a_fan_failing_from_the_first_session_is_found_by_the_highest_rise_before_any_peer() -> None:
    # no peer has learnt: the shipped prior leaves the first sessions to learning; a rise above the
    # highest any cabinet has (14 °C at a 7 kW charger's full load, x 1.25) is a fault all the same
    days = [fleet_day({CH: (1080, 1440, 6.6, 30.0)})]
    out = run_fleet(Engine(parse_rules(MAX_RULES, "test.yaml"), SITES), days)
    assert [(f.device, f.state.value) for f in out] == [(CH, "active")]
    assert out[0].started_ms < T0 + 1080 * MIN + 90 * MIN
    assert run_fleet(Engine(parse_rules(PEER_RULES, "test.yaml"), SITES), days) == []


@pytest.mark.parametrize("kw", [3.2, 6.6, 7.0])
def test_a_healthy_charger_learning_alone_raises_nothing_under_the_highest_rise(kw: float) -> None:
    days = [fleet_day({CH: (1080, 1440, kw, 0.0)}), fleet_day({CH: (600, 960, kw, 0.0)}, drift=0.3)]
    assert run_fleet(Engine(parse_rules(MAX_RULES, "test.yaml"), SITES), days) == []


def test_a_fan_learnt_as_normal_alone_is_found_under_the_highest_rise() -> None:
    # no peer ever learns: without the ceiling the device takes its failing fan for its normal
    failing = {CH: (1080, 1440, 6.6, 12.0)}
    days = [fleet_day(failing) for _ in range(3)]
    assert run_fleet(Engine(parse_rules(PEER_RULES, "test.yaml"), SITES), days) == []
    out = run_fleet(Engine(parse_rules(MAX_RULES, "test.yaml"), SITES), days)
    assert [(f.device, f.state.value) for f in out] == [(CH, "active")]
    assert out[0].started_ms < T0 + 86_400_000


def test_peer_cap_counts_only_peers_that_drew_as_much() -> None:
    from sitewatch.analytics.thermal import peer_cap

    rule = parse_rules(PEER_RULES, "test.yaml").rules[0]
    rises = {PEERS[0]: [12.5, 6.6], PEERS[1]: [13.0, 10.5], PEERS[2]: [2.8, 3.1]}
    assert peer_cap(rule, rises, CH, 6.6) == pytest.approx(1.25 * 13.0 / 6.6**2)
    assert peer_cap(rule, rises, CH, 9.0) is None  # one peer drew 90% of 9 kW: too few
    assert peer_cap(rule, rises, PEERS[0], 6.6) is None  # its own rise does not count
    assert peer_cap(rule, None, CH, 6.6) is None


def test_a_memory_from_before_the_peer_slot_is_upgraded() -> None:
    rule = parse_rules(PEER_RULES, "test.yaml").rules[0]
    x: list[Any] = [T0, 0.0, 0.0, 13.0, [0.28] * 12, 0, None, None, 0.0, 0]
    step(rule, x, 13.0, 0.0, T0 + MIN, False, {}, CH, {})
    assert len(x) == 22


def test_the_peers_rises_come_back_with_a_checkpoint() -> None:
    e = Engine(parse_rules(PEER_RULES, "test.yaml"), SITES)
    run_fleet(e, peers_learn())
    restored = Engine.restore(e.snapshot(), e.rules, SITES)
    assert restored.memory[f"hot/{C}/rise"] == e.memory[f"hot/{C}/rise"]
    assert set(e.memory[f"hot/{C}/rise"]) == set(PEERS[:2])


def biased_day(
    kw: float, peer_bias: float, rated: float = 7.0, extra: float = 0.0, start: int = 18 * 60
) -> list[tuple[int, dict[str, Any], float]]:
    """24 h of one charger in still air (10 °C): idle 18 h (to ``start``), then 6 h at ``kw`` of ``rated``
    kW; during the session the peers read ``peer_bias`` °C warmer than the air the charger stands in (an
    error in the air's drift, as a sunny evening gives); a cooling fault adds ``extra`` °C at full load."""
    rows = []
    temp = 13.0
    for m in range(24 * 60):
        p = kw if m >= start else 0.0
        load = p / rated
        temp += (13.0 + 14.0 * load**2 + extra * load - temp) * LAG
        rows.append((m, {"temperature": round(temp, 1), "power": p}, 10.0 + (peer_bias if p else 0.0)))
    return rows


def test_a_rise_learnt_at_a_slow_cars_load_is_learnt_again_at_a_full_one() -> None:
    # learnt on two sessions of a 3.3 kW car, the drift's error of 1.5 °C is half the rise at that load
    # (2.7 °C): the rise per kW^2 learnt is half the true one, and a 6.6 kW car's session, 12.4 °C up,
    # would be 6 °C over it. The much higher load drops what was learnt, and the charger learns again
    e = engine()
    out = run(e, [biased_day(3.1, 1.5), biased_day(3.1, 1.5)] + [biased_day(6.6, 0.0)] * 4)
    assert out == []


def test_a_fault_is_still_found_after_learning_again() -> None:
    e = engine()
    out = run(e, [biased_day(3.1, 0.0)] * 2 + [biased_day(6.6, 0.0)] * 2 + [day(extra=12.0)])
    assert [(f.fault, f.state.value) for f in out] == [("over_temperature", "active")]


def test_a_memory_of_bare_ratios_is_upgraded_and_judges_at_once() -> None:
    from sitewatch.analytics.thermal import RAISE, step

    rule = parse_rules(RULES, "test.yaml").rules[0]
    # a checkpoint from before each ratio kept its load: taken as learnt at the highest load
    x: list[Any] = [T0, 6.6, 6.6 * 6.6, 13.0, [0.28] * 12, 3_600_000, None, None, 0.0, 0, 6.6]
    verdict, residual, _start = step(
        rule, x, 13.0 + 0.28 * 6.6 * 6.6 + 5.0, 6.6, T0 + MIN, False, {}, CH, None
    )
    assert x[4][0] == [0.28, 6.6]
    assert verdict == RAISE
    assert residual == pytest.approx(5.0, abs=1e-6)


@pytest.mark.parametrize(("learnt_kw", "found"), [(6.3, True), (5.6, False)])
def test_ratios_from_055_of_the_highest_load_still_make_the_rise(learnt_kw: float, found: bool) -> None:
    # an 11 kW charger learnt on 7 kW cars (6.3 kW: 0.59 of 10.6) judges its first 11 kW car at once;
    # learnt under 0.55 of it (5.6 kW: 0.53), it learns again first (no peers here to judge it meanwhile)
    e = engine()
    days = [biased_day(learnt_kw, 0.0, rated=11.0)] * 2 + [biased_day(10.6, 0.0, rated=11.0, extra=20.0)]
    out = run(e, days)
    assert ([(f.fault, f.state.value) for f in out] == [("over_temperature", "active")]) is found


NIGHT_RULES = RULES.replace("for: 30m,", "for: 30m, night_above: 2, night_for: 30m,")


def evening(extra: float = 0.0, start: int = 21 * 60) -> list[tuple[int, dict[str, Any], float]]:
    """As ``day``, with the session from minute ``start`` (21:00: the sun 17 degrees down at the test's
    place and date) to midnight."""
    rows = []
    temp = 13.0
    for m in range(24 * 60):
        air = 10.0 - m / 60.0
        p = 6.6 if m >= start else 0.0
        load = p / 7.0
        temp += (air + 3.0 + 14.0 * load**2 + extra * load - temp) * LAG
        rows.append((m, {"temperature": round(temp, 1), "power": p}, air))
    return rows


def test_a_fault_under_the_level_is_found_by_its_mean_at_night() -> None:
    # 3 °C at full load is 2.8 °C at 6.6 kW: under the 4 °C level, over the night's 2 °C
    days = [day(), day(), evening(extra=3.0)]
    out = run(Engine(parse_rules(NIGHT_RULES, "test.yaml"), SITES), days)
    assert [(f.fault, f.state.value) for f in out] == [("over_temperature", "active")]
    assert 2.0 < out[0].evidence["temperature"] < 4.0  # the session's mean residual at night
    # it starts with the night's evidence: the session's first judged sample, once it settled 30 min
    assert out[0].started_ms == T0 + 2 * 86_400_000 + (21 * 60 + 29) * MIN
    assert out[0].ts_ms - out[0].started_ms >= 30 * MIN
    assert run(engine(), days) == []  # without ``night_above``


def test_the_night_level_waits_for_an_idle_temperature_learnt_at_night() -> None:
    # the same fault in a session whose charger was last idle by day (18:00, the sun 14 degrees up)
    # raises nothing, even once the sun has set: its idle temperature and the peers' drift carry the sun
    e = Engine(parse_rules(NIGHT_RULES, "test.yaml"), SITES)
    assert run(e, [day(), day(), day(extra=3.0)]) == []


@pytest.mark.parametrize(("start", "found"), [(22 * 60 + 30, True), (23 * 60 + 1, False)])
def test_the_night_level_waits_for_night_for_of_load(start: int, found: bool) -> None:
    # judged from 30 min into the session: 60 min of evidence by midnight is enough, 29 min is not
    e = Engine(parse_rules(NIGHT_RULES, "test.yaml"), SITES)
    out = run(e, [day(), day(), evening(extra=3.0, start=start)])
    assert bool(out) is found


def test_healthy_nights_raise_nothing_at_the_night_level() -> None:
    e = Engine(parse_rules(NIGHT_RULES, "test.yaml"), SITES)
    assert run(e, [day(), day(), evening(), evening(start=20 * 60), evening(extra=1.5)]) == []


DAY_RULES = RULES.replace("for: 30m,", "for: 30m, night_above: 2, night_for: 30m, day_above: 2,")


def sunny(extra: float = 0.0, start: int = 21 * 60, end: int = 24 * 60, d: int = 0, own: float = 1.0,
          peers: float = 0.1, drift: float = -0.3, kw: float = 6.6) -> list[tuple[int, dict[str, Any], float]]:  # fmt: skip
    """A day (``d`` days after the test's first) of one charger in the sun: the cabinet relaxes towards the
    air + 3 + 8 x sunshine x its exposure ``own`` (+ the load's rise and a cooling fault's ``extra`` at full
    load), loaded at 6.6 of 7 kW from minute ``start`` to ``end``; sunshine = sin of the sun's elevation at
    the test's place. Rows carry the peers' idle temperature (exposure ``peers``) in place of the air.
    From the test's first instant, the sun rises about minute 440, is highest (47 degrees) about 810 and
    sets about 1,160. Two days of night sessions (the default) teach the rise per kW^2."""
    rows = []
    temp = 13.0
    for m in range(24 * 60):
        ts = T0 + d * 86_400_000 + m * MIN
        sun = max(0.0, math.sin(math.radians(solar_elevation(ts, 43.88, 125.32))))
        air = 10.0 + drift * m / 60.0
        p = kw if start <= m < end else 0.0
        load = p / 7.0
        temp += (air + 3.0 + 8.0 * sun * own + 14.0 * load**2 + extra * load - temp) * LAG
        rows.append((m, {"temperature": round(temp, 1), "power": p}, air + 8.0 * sun * peers))
    return rows


def test_a_fault_under_the_level_is_found_by_day_with_the_devices_own_sun_taken_out() -> None:
    # a sunny charger among shaded peers, loaded while the sun sinks (34 -> 4 degrees): it loses its sun,
    # they have none to lose, which hides most of 3 °C at full load from the residual (the session's mean
    # with the air's drift alone stays under 2 °C); with its own sun learnt while idle that day, the
    # session's mean is the fault's 2.8 °C at 6.6 kW
    fault = sunny(extra=3.0, start=16 * 60, end=19 * 60, d=2, own=1.0, peers=0.0)
    days = [sunny(own=1.0, peers=0.0, d=d) for d in (0, 1)]
    out = run(Engine(parse_rules(DAY_RULES, "test.yaml"), SITES), [*days, fault])
    assert [(f.fault, f.state.value) for f in out] == [("over_temperature", "active")]
    assert 2.0 < out[0].evidence["temperature"] < 4.0
    assert out[0].started_ms == T0 + 2 * 86_400_000 + (16 * 60 + 29) * MIN  # its first judged minute
    assert run(Engine(parse_rules(NIGHT_RULES, "test.yaml"), SITES), [*days, fault]) == []


@pytest.mark.parametrize(("own", "peers"), [(1.0, 0.0), (0.0, 1.0), (0.5, 0.5)])
def test_healthy_sessions_by_day_raise_nothing_whatever_the_shade(own: float, peers: float) -> None:
    # a shaded charger whose sunny peers lose their sun during its session (16:00) stays warm against
    # their air: with the air's drift alone its session's mean passes 2 °C; its own sun takes that out
    days = [sunny(own=own, peers=peers, d=d) for d in (0, 1)]
    days += [sunny(own=own, peers=peers, start=s, end=s + 180, d=d) for d, s in ((2, 12 * 60), (3, 16 * 60))]
    assert run(Engine(parse_rules(DAY_RULES, "test.yaml"), SITES), days) == []


def test_the_day_level_waits_for_the_devices_sun_learnt_that_day() -> None:
    # a session at sunrise (the sun 4 degrees up): too little sun seen idle that day, no day level; the
    # same fault in the afternoon is found (the charger as sunny as its peers: the 4 °C level sees neither)
    days = [sunny(own=0.5, peers=0.5, d=d) for d in (0, 1)]
    rules = parse_rules(DAY_RULES, "test.yaml")
    morning = sunny(extra=3.0, start=7 * 60 + 40, end=10 * 60 + 40, d=2, own=0.5, peers=0.5)
    assert run(Engine(rules, SITES), [*days, morning]) == []
    afternoon = sunny(extra=3.0, start=16 * 60, end=19 * 60, d=2, own=0.5, peers=0.5)
    assert len(run(Engine(rules, SITES), [*days, afternoon])) == 1


def test_own_sun_sums_restart_each_night_and_a_memory_from_before_grows() -> None:
    rule = parse_rules(DAY_RULES, "test.yaml").rules[0]
    x: list[Any] = []
    peers: dict[str, list[float]] = {p: [13.0, T0] for p in PEERS}
    step(rule, x, 13.0, 0.0, T0, False, peers, CH, None, False, 40.0)
    for i in range(1, 90):  # idle in the sun, 3 °C warmer than its peers at sunshine 0.64
        step(
            rule,
            x,
            16.0,
            0.0,
            T0 + i * MIN,
            False,
            {p: [13.0, T0 + i * MIN] for p in PEERS},
            CH,
            None,
            False,
            40.0,
        )
    assert x[18] == pytest.approx(3.0 / math.sin(math.radians(40.0)), rel=0.05)
    step(rule, x, 16.0, 0.0, T0 + 91 * MIN, False, peers, CH, None, True, -10.0)
    assert x[15:19] == [0.0, 0.0, 0.0, None]  # the night: tomorrow's sky is another
    old = x[:15]
    assert step(rule, old, 16.0, 0.0, T0 + 92 * MIN, False, peers, CH, None, True, -10.0)[0] == HOLD
    assert len(old) == 22


def test_a_shaded_chargers_session_past_sunset_is_judged_with_its_own_sun_taken_out() -> None:
    # a shaded charger among sunny peers, loaded from 14:00 past sunset: the peers lose about 5.5 °C of sun
    # that the charger never had, so with the air's drift alone its residual passes the 4 °C level though
    # healthy; with its own sun learnt idle that day (none against theirs) the level sees no fault
    days = [sunny(own=0.0, peers=1.0, d=d) for d in (0, 1)]
    healthy = sunny(own=0.0, peers=1.0, start=14 * 60, end=22 * 60, d=2)
    assert run(Engine(parse_rules(RULES, "test.yaml"), SITES), [*days, healthy]) != []
    assert run(Engine(parse_rules(DAY_RULES, "test.yaml"), SITES), [*days, healthy]) == []
    # a failing fan of 8 °C at full load in the same session is still found (the mean by day or the level)
    faulty = sunny(extra=8.0, own=0.0, peers=1.0, start=14 * 60, end=22 * 60, d=2)
    out = run(Engine(parse_rules(DAY_RULES, "test.yaml"), SITES), [*days, faulty])
    assert [(f.fault, f.state.value) for f in out][:1] == [("over_temperature", "active")]


def test_the_4_degree_level_takes_the_devices_own_sun_out_once_learnt() -> None:
    rule = parse_rules(DAY_RULES, "test.yaml").rules[0]
    x: list[Any] = []
    step(rule, x, 13.0, 0.0, T0, False, {}, CH, None, False, 40.0)
    for i in range(1, 90):  # idle in the sun, 3 °C cooler than its peers at sunshine 0.64
        step(
            rule,
            x,
            13.0,
            0.0,
            T0 + i * MIN,
            False,
            {p: [16.0, T0 + i * MIN] for p in PEERS},
            CH,
            None,
            False,
            40.0,
        )
    assert _sun_change(x, 40.0) == pytest.approx(0.0)
    assert _sun_change(x, -5.0) == pytest.approx(3.0, rel=0.05)  # the sun gone: its peers lost 3 °C more
    x[18] = None
    assert _sun_change(x, -5.0) == 0.0  # not learnt that day: nothing taken out


@pytest.mark.parametrize(("kw", "found"), [(6.5, True), (7.0, False)])
def test_the_session_means_leave_out_a_car_much_faster_than_any_learnt(kw: float, found: bool) -> None:
    # the rise learnt at 6.0 kW; a fan adding 3.5 °C at full load, under the 4 °C level: at 6.5 kW (within
    # 1.1 x 6.0) the night mean finds it, at 7.0 kW (above) the means do not judge the session
    days = [sunny(d=d, kw=6.0) for d in (0, 1)]
    fault = sunny(extra=3.5, d=2, kw=kw)
    out = run(Engine(parse_rules(DAY_RULES, "test.yaml"), SITES), [*days, fault])
    assert bool(out) is found


def test_the_rise_weights_each_ratio_by_its_load_to_the_fourth() -> None:
    from sitewatch.analytics.thermal import _rise

    # five ratios at 10.02 kW (the true rise) and six of an evening session at 6.63 kW whose drift erred
    # (a third low): their plain median is 0.087, 25% low at 10 kW; weighted, the highest loads decide
    ratios = [[0.117, 10.02]] * 5 + [[0.078, 6.63]] * 6
    assert _rise(ratios, 10.02) == pytest.approx(0.117)
    # at one load it is the plain median (an even count: the middle two's mean)
    assert _rise([[0.1, 6.6], [0.2, 6.6], [0.3, 6.6], [0.4, 6.6]], 6.6) == pytest.approx(0.25)
    assert _rise([[0.1, 6.6], [0.3, 6.6], [0.2, 6.6]], 6.6) == pytest.approx(0.2)
    # ratios under 0.55 of the highest load are left out; none left: 0
    assert _rise([[0.5, 3.0], [0.2, 6.6]], 6.6) == pytest.approx(0.2)
    assert _rise([[0.5, 3.0]], 6.6) == 0.0


def test_a_rise_learnt_beside_a_session_whose_drift_erred_judges_the_highest_loads_right() -> None:
    # an 11 kW charger: two 10.4 kW sessions in still air, then three 6.6 kW ones whose peers read 1.5 °C
    # warm (their ratios 30% low, the more numerous); a healthy 10.4 kW car's night session is then judged
    # at its true rise (the plain median of the ratios, a low one, put it 3.7 °C over: the night level raised)
    e = Engine(parse_rules(NIGHT_RULES, "test.yaml"), SITES)
    days = [biased_day(10.4, 0.0, rated=11.0)] * 2 + [biased_day(6.6, 1.5, rated=11.0)] * 3
    assert run(e, [*days, biased_day(10.4, 0.0, rated=11.0, start=21 * 60)]) == []
    # and a fan adding 3 °C at full load (2.8 °C at 10.4 kW, under the 4 °C level) is found at night
    e = Engine(parse_rules(NIGHT_RULES, "test.yaml"), SITES)
    out = run(e, [*days, biased_day(10.4, 0.0, rated=11.0, extra=3.0, start=21 * 60)])
    assert [(f.fault, f.state.value) for f in out] == [("over_temperature", "active")]


def run_quiet(e: Engine, days: list[list[tuple[int, dict[str, Any], float]]], quiet: int) -> list[Finding]:
    """As ``run``, but on the last day the peers send nothing from minute ``quiet`` on (busy or offline:
    the compound's air is not known to the charger then)."""
    out: list[Finding] = []
    for d, rows in enumerate(days):
        for m, values, air in rows:
            ts = T0 + d * 86_400_000 + m * MIN
            batch = [Sample(device=CH, kind=DeviceKind.CHARGER, ts_ms=ts, values=values)]
            if d < len(days) - 1 or m < quiet:
                batch += [Sample(device=p, kind=DeviceKind.CHARGER, ts_ms=ts,
                                 values={"temperature": round(air + 3.0, 1), "power": 0.0}) for p in PEERS]  # fmt: skip
            out += e.on_samples(C, GW, batch)
            out += e.tick(ts)
    return out


def stepped(step_at: int, size: float = 3.0) -> list[tuple[int, dict[str, Any], float]]:
    """As ``evening`` with no fault, in air at 10 °C that steps up ``size`` °C at minute ``step_at`` (the
    day's weather changing at midnight, as the simulated city's does)."""
    rows = []
    temp = 13.0
    for m in range(24 * 60):
        air = 10.0 + (size if m >= step_at else 0.0)
        p = 6.6 if m >= 21 * 60 else 0.0
        temp += (air + 3.0 + 14.0 * (p / 7.0) ** 2 - temp) * LAG
        rows.append((m, {"temperature": round(temp, 1), "power": p}, air))
    return rows


@pytest.mark.parametrize("quiet", [21 * 60, 20 * 60])
def test_the_session_means_judge_only_while_the_airs_drift_is_measured(quiet: int) -> None:
    # the air steps up 3 °C at 22:00 during a healthy night session: measured from two idle peers, the
    # drift takes it out; with the peers quiet (all busy) from the session's start, the drift held from
    # before it would leave 3 °C (the night mean raised, as at seed 41's
    # step); with no air when the charger was last idle, there is no drift at all. Neither is judged
    days = [day(), day(), stepped(22 * 60)]
    assert run(Engine(parse_rules(NIGHT_RULES, "test.yaml"), SITES), days) == []
    assert run_quiet(Engine(parse_rules(NIGHT_RULES, "test.yaml"), SITES), days, quiet) == []
    # a fault under the 4 °C level is still found by the night mean once the peers give the air again
    days = [day(), day(), evening(extra=3.0)]
    assert run_quiet(Engine(parse_rules(NIGHT_RULES, "test.yaml"), SITES), days, 24 * 60)


def test_the_idle_temperature_starts_afresh_when_the_device_is_idle_again() -> None:
    # idle at 20 °C (an afternoon's sun), then 2 h at 6.6 kW, then idle in the night's 12 °C air: once the
    # lagged load is under 0.1 kW, the idle temperature (the device's own, and the one its peers read the air
    # from) is the night's at once, not a running mean still carrying most of the afternoon's 20 °C
    rule = parse_rules(RULES, "test.yaml").rules[0]
    x: list[Any] = []
    peers: dict[str, list[float]] = {}
    ts = T0
    for _ in range(60):
        step(rule, x, 20.0, 0.0, ts, False, peers, CH)
        ts += MIN
    assert x[3] == pytest.approx(20.0)
    for _ in range(120):
        step(rule, x, 25.0, 6.6, ts, False, peers, CH)
        ts += MIN
    assert CH not in peers
    while True:  # the lag running down
        step(rule, x, 12.0, 0.0, ts, False, peers, CH)
        if x[1] < 0.1:
            break
        assert x[3] == pytest.approx(20.0)  # not idle yet: kept
        ts += MIN
    assert x[3] == pytest.approx(12.0)
    assert peers[CH] == [pytest.approx(12.0), ts]
    step(rule, x, 13.0, 0.0, ts + MIN, False, peers, CH)  # then the running mean, as before
    assert x[3] == pytest.approx(12.1)


def test_a_morning_session_before_the_devices_sun_is_learnt_allows_for_the_sun_risen_since(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a sunny charger among shaded peers, a slow car's 1.2 kW from before sunrise into the late morning: its
    # own sun, not yet learnt that day, rises 4-5 °C beyond its peers' drift, which the 4 °C level alone
    # took for a fault; the level is raised by 8 °C x the sunshine risen since the charger was last idle
    days = [sunny(own=1.0, peers=0.0, d=d) for d in (0, 1)]
    healthy = sunny(own=1.0, peers=0.0, start=7 * 60, end=12 * 60, d=2, kw=1.2)
    assert run(Engine(parse_rules(DAY_RULES, "test.yaml"), SITES), [*days, healthy]) == []
    with monkeypatch.context() as m:
        m.setattr(thermal, "SUN_C", 0.0)  # without the margin: the sun taken for a fault
        assert len(run(Engine(parse_rules(DAY_RULES, "test.yaml"), SITES), [*days, healthy])) == 1
    # a failing fan of 25 °C at full load (a clear one) in the same morning is still found
    faulty = sunny(extra=25.0, own=1.0, peers=0.0, start=7 * 60, end=12 * 60, d=2)
    out = run(Engine(parse_rules(DAY_RULES, "test.yaml"), SITES), [*days, faulty])
    assert [(f.fault, f.state.value) for f in out][:1] == [("over_temperature", "active")]


def test_the_sun_margin_only_while_the_devices_sun_is_unknown_and_rising() -> None:
    rule = parse_rules(DAY_RULES, "test.yaml").rules[0]
    x: list[Any] = []
    step(rule, x, 13.0, 0.0, T0, False, {}, CH, None, True, -5.0)  # last idle with the sun down
    assert x[17] == 0.0 and x[18] is None
    assert _sun_unknown(rule, x, 30.0) == pytest.approx(8.0 * 0.5)
    assert _sun_unknown(rule, x, -2.0) == 0.0
    x[17] = 0.6
    assert _sun_unknown(rule, x, 30.0) == 0.0  # the sun sinking since: the peers' drift errs the other way
    x[18] = 0.0
    x[17] = 0.0
    assert _sun_unknown(rule, x, 30.0) == 0.0  # learnt that day: taken out of the residual instead
    night_rule = parse_rules(RULES, "test.yaml").rules[0]
    x[18] = None
    assert _sun_unknown(night_rule, x, 30.0) == 0.0  # no day_above: as before


def shipped_thermal_rules() -> str:
    """The shipped rules file's two load_temperature rules, as a rules file of their own."""
    text = (resources.files("sitewatch.analytics") / "rules.yaml").read_text(encoding="utf-8")
    rules = [r for r in yaml.safe_load(text)["rules"] if r["type"] == "load_temperature"]
    assert [r["name"] for r in rules] == ["charger.hot_under_load", "charger.hot_brief"]
    return yaml.safe_dump({"rules": rules})


def short(
    extra: float = 0.0, minutes: int = 28, start: int = 21 * 60
) -> list[tuple[int, dict[str, Any], float]]:
    """One day of ``day``'s charger with a single car of ``minutes`` at 6.6 kW from ``start`` (at night)."""
    rows = []
    temp = 13.0
    for m in range(24 * 60):
        air = 10.0
        p = 6.6 if start <= m < start + minutes else 0.0
        load = p / 7.0
        temp += (air + 3.0 + 14.0 * load**2 + extra * load - temp) * LAG
        rows.append((m, {"temperature": round(temp, 1), "power": p}, air))
    return rows


@pytest.mark.parametrize("minutes", [28, 48])
def test_a_clear_fault_met_only_by_a_short_session_is_found_by_the_brief_rule(minutes: int) -> None:
    # 30 min of settling and 30 min over 4 °C need an hour of load: a car of under an hour on a charger whose
    # fan adds 38 °C at full load (seed 25: two sessions of 28 min) went unflagged
    rules = parse_rules(shipped_thermal_rules(), "rules.yaml")
    out = run(Engine(rules, SITES), [day(), day(), short(extra=38.0, minutes=minutes)])
    found = [(f.source, f.fault, f.state.value) for f in out]
    assert found == [("rule:charger.hot_brief", "over_temperature", "active")]
    session = T0 + 2 * 86_400_000 + 21 * 60 * MIN
    # judged after 15 min of load (the first sample counts its minute)
    assert out[0].started_ms >= session + 14 * MIN
    assert out[0].ts_ms - out[0].started_ms >= 10 * MIN  # held for its ``for``
    assert out[0].evidence["temperature"] > 8.0


@pytest.mark.parametrize("extra", [0.0, 6.0])
def test_a_short_session_under_twice_the_level_raises_nothing_by_the_brief_rule(extra: float) -> None:
    # healthy, or a fault adding about 5.7 °C at 6.6 kW: under the brief rule's 8 °C (the main rule's
    # 4 °C level needs 30 min over it, which a 28-min car cannot give)
    rules = parse_rules(shipped_thermal_rules(), "rules.yaml")
    assert run(Engine(rules, SITES), [day(), day(), short(extra=extra)]) == []


def test_one_finding_for_a_fault_whichever_rule_raises_first() -> None:
    # a long session's clear fault: the brief rule is first (twice the level after 15 min of load, against
    # 30 min over 4 °C after 30 min), and its open finding explains the main rule's (``unless``, both ways)
    rules = parse_rules(shipped_thermal_rules(), "rules.yaml")
    out = run(Engine(rules, SITES), [day(), day(), day(extra=30.0)])
    assert [(f.source, f.state.value) for f in out] == [("rule:charger.hot_brief", "active")]
    # a moderate fault under twice the level at the load drawn: the main rule's, as before
    out = run(Engine(rules, SITES), [day(), day(), day(extra=7.0)])
    assert [(f.source, f.state.value) for f in out] == [("rule:charger.hot_under_load", "active")]
