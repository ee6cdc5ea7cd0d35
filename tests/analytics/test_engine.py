"""The rule engine at the edges of each rule type, on hostile input, and across a snapshot."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from sitewatch.analytics import Engine, Site, parse_rules
from sitewatch.analytics.rules import RulesError, load_rules
from sitewatch.analytics.sun import sunrise_sunset
from sitewatch.contract import DeviceKind, Event, Finding, FindingState, Sample

C = "220104-0003"
GW = f"{C}-GW01"
EL, CA, SL, WM = f"{C}-EL0001", f"{C}-CA0001", f"{C}-SL0001", f"{C}-WM00001"
T0 = 1_790_000_000_000
MIN = 60_000
SITES = {C: Site(43.88, 125.32)}


def engine(yaml: str) -> Engine:
    return Engine(parse_rules(yaml, "test.yaml"), SITES)


def feed(e: Engine, device: str, kind: DeviceKind, series: list[Mapping[str, Any]], step: int = MIN,
         t0: int = T0) -> list[Finding]:  # fmt: skip
    out: list[Finding] = []
    for i, values in enumerate(series):
        ts = t0 + i * step
        out += e.on_samples(C, GW, [Sample(device=device, kind=kind, ts_ms=ts, values=values)])
        out += e.tick(ts)
    return out


def states(out: list[Finding]) -> list[tuple[str, int, int | None]]:
    return [(f.state.value, f.started_ms, f.ended_ms) for f in out]


HYST = """flap: 0
rules: [{name: vib, kind: elevator, type: threshold, metric: vibration_rms, above: 0.5, clear: 0.3, for: 3m,
         fault: bearing_wear}]"""


def test_threshold_hysteresis_and_duration() -> None:
    e = engine(HYST)
    # 0.6 for 3 samples (2 minutes: not yet 3m), back to 0.4 (between the levels), then 4 samples high
    vib = [0.1, 0.6, 0.6, 0.6, 0.2, 0.6, 0.6, 0.6, 0.6, 0.4, 0.4, 0.31, 0.29, 0.1]
    out = feed(e, EL, DeviceKind.ELEVATOR, [{"vibration_rms": v} for v in vib])
    assert states(out) == [("active", T0 + 5 * MIN, None), ("cleared", T0 + 5 * MIN, T0 + 12 * MIN)]
    assert out[0].fault == "bearing_wear" and out[0].id == f"rule:vib:{EL}:{T0 + 5 * MIN}"
    assert out[0].evidence == {"vibration_rms": 0.6}
    assert out[0].ts_ms == T0 + 8 * MIN  # out when the 3 minutes were over


def test_exactly_the_duration_raises() -> None:
    e = engine(HYST)
    assert len(feed(e, EL, DeviceKind.ELEVATOR, [{"vibration_rms": v} for v in (0.6, 0.6, 0.6, 0.6)])) == 1
    e = engine(HYST)
    assert feed(e, EL, DeviceKind.ELEVATOR, [{"vibration_rms": v} for v in (0.6, 0.6, 0.6, 0.1)]) == []


FLAP = """flap: 10m
rules: [{name: st, kind: elevator, type: state, metric: run_state, states: [fault], fault: entrapment}]"""


def test_flapping_within_the_window_stays_one_finding() -> None:
    e = engine(FLAP)
    fault = 4.0
    run = [fault, 0.0, 0.0, fault, 0.0, *([0.0] * 15)]  # clears and returns within 10 minutes
    out = feed(e, EL, DeviceKind.ELEVATOR, [{"run_state": v} for v in run])
    assert states(out) == [("active", T0, None), ("cleared", T0, T0 + 4 * MIN)]
    assert out[1].ts_ms == T0 + 14 * MIN


def test_a_return_after_the_window_is_a_new_finding() -> None:
    e = engine(FLAP)
    run = [4.0, *([0.0] * 12), 4.0, 0.0]
    out = feed(e, EL, DeviceKind.ELEVATOR, [{"run_state": v} for v in run])
    assert [f.state for f in out] == [FindingState.ACTIVE, FindingState.CLEARED, FindingState.ACTIVE]
    assert out[0].id != out[2].id


COUNTERS = """flap: 0
rules:
  - {name: back, kind: elevator, type: counter, metric: trip_count, mode: backwards}
  - {name: burst, kind: elevator, type: counter, metric: door_faults, mode: increase, window: 10m, at_least: 3}
  - {name: stuck, kind: water_meter, type: counter, metric: volume_register, mode: stopped, stopped_for: 30m,
     when: [{metric: flow, above: 0.01}]}"""


def test_counter_backwards_but_not_a_reset() -> None:
    e = engine(COUNTERS)
    trips = [100, 105, 104, 110, 112, 3, 5]  # 105 -> 104 goes backwards; 112 -> 3 is a reset
    out = feed(e, EL, DeviceKind.ELEVATOR, [{"trip_count": float(v)} for v in trips])
    assert states(out) == [("active", T0 + 2 * MIN, None), ("cleared", T0 + 2 * MIN, T0 + 3 * MIN)]


def test_counter_increase_within_a_window() -> None:
    e = engine(COUNTERS)
    slow = [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3]  # 3 faults in 24 min
    assert feed(e, EL, DeviceKind.ELEVATOR, [{"door_faults": float(v)} for v in slow]) == []
    e = engine(COUNTERS)
    fast = [0, 1, 1, 2, 3, 3]  # 3 in 4 minutes
    out = feed(e, EL, DeviceKind.ELEVATOR, [{"door_faults": float(v)} for v in fast])
    assert [f.state for f in out] == [FindingState.ACTIVE]


def test_counter_stopped_only_while_water_flows() -> None:
    e = engine(COUNTERS)
    idle = [{"volume_register": 5.0, "flow": 0.0}] * 10  # no flow: a still register is fine
    flowing = [{"volume_register": 5.0, "flow": 0.2}] * 7
    moving = [{"volume_register": 5.1, "flow": 0.2}]
    out = feed(e, WM, DeviceKind.WATER_METER, idle + flowing + moving, step=5 * MIN)
    assert states(out) == [("active", T0, None), ("cleared", T0, T0 + 17 * 5 * MIN)]


NODATA = """rules:
  - {name: quiet, kind: camera, type: no_data, interval: 60s, intervals: 5}
  - {name: gw, kind: gateway, type: no_data, interval: 60s, intervals: 5}"""


def test_no_data_after_n_intervals_and_not_while_the_gateway_is_down() -> None:
    e = engine(NODATA)
    feed(e, CA, DeviceKind.CAMERA, [{"online": 1.0}] * 3)
    other = f"{C}-CA0002"
    assert (
        e.on_samples(
            C, GW, [Sample(device=other, kind=DeviceKind.CAMERA, ts_ms=T0 + 2 * MIN, values={"online": 1.0})]
        )
        == []
    )
    assert e.tick(T0 + 6 * MIN) == []  # 4 minutes of silence: not yet
    for m in range(3, 12):  # the other camera keeps the gateway alive
        e.on_samples(
            C, GW, [Sample(device=other, kind=DeviceKind.CAMERA, ts_ms=T0 + m * MIN, values={"online": 1.0})]
        )
    out = e.tick(T0 + 11 * MIN)
    assert [(f.device, f.state.value, f.started_ms) for f in out] == [(CA, "active", T0 + 3 * MIN)]
    assert out[0].fault is None and out[0].source == "rule:quiet"
    back = e.on_samples(
        C, GW, [Sample(device=CA, kind=DeviceKind.CAMERA, ts_ms=T0 + 12 * MIN, values={"online": 1.0})]
    )
    assert [f.state.value for f in back] == ["cleared"]
    # the gateway goes dark: its devices' silence is not theirs
    e.on_gateway(C, GW, False, T0 + 13 * MIN)
    out = e.tick(T0 + 40 * MIN)
    assert [(f.device, f.kind.value) for f in out] == [(GW, "gateway")]
    out = e.on_gateway(C, GW, True, T0 + 41 * MIN)
    assert [(f.device, f.state.value) for f in out] == [(GW, "cleared")]


DAYNIGHT = """flap: 0
rules:
  - {name: day, kind: streetlight, type: daynight, mode: on_in_day, elevation: 5, for: 10m, fault: day_burning}
  - {name: night, kind: streetlight, type: daynight, mode: off_at_night, elevation: -12, for: 10m}"""


def _cst(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)


def test_a_lamp_on_at_noon_and_off_at_midnight() -> None:
    e = engine(DAYNIGHT)
    noon = feed(e, SL, DeviceKind.STREETLIGHT, [{"lamp_on": 1.0}] * 4, step=5 * MIN, t0=_cst(2026, 6, 21, 12))
    assert [(f.source, f.fault) for f in noon] == [("rule:day", "day_burning")]
    assert noon[0].message == "Lamp {device} burning in daylight"  # the fault type's summary (on_in_day)
    e = engine(DAYNIGHT)
    midnight = feed(
        e, SL, DeviceKind.STREETLIGHT, [{"lamp_on": 0.0}] * 4, step=5 * MIN, t0=_cst(2026, 6, 21, 0)
    )
    assert [(f.source, f.fault) for f in midnight] == [("rule:night", None)]
    e = engine(DAYNIGHT)  # lit at midnight, dark at noon: as it should be
    assert (
        feed(e, SL, DeviceKind.STREETLIGHT, [{"lamp_on": 1.0}] * 4, step=5 * MIN, t0=_cst(2026, 6, 21, 0))
        == []
    )
    assert (
        feed(e, SL, DeviceKind.STREETLIGHT, [{"lamp_on": 0.0}] * 4, step=5 * MIN, t0=_cst(2026, 6, 21, 12))
        == []
    )


def test_a_lamp_still_on_just_after_sunrise_is_normal() -> None:
    rise, _ = sunrise_sunset(_cst(2026, 6, 21, 12), 43.88, 125.32) or (0, 0)
    e = engine(DAYNIGHT)
    # lit for the 20 minutes after sunrise: the sun is still below 5°
    assert feed(e, SL, DeviceKind.STREETLIGHT, [{"lamp_on": 1.0}] * 5, step=5 * MIN, t0=rise) == []
    e = engine(DAYNIGHT)  # lit for the 2 hours after: found once the sun is over 5° for 10 minutes
    out = feed(e, SL, DeviceKind.STREETLIGHT, [{"lamp_on": 1.0}] * 25, step=5 * MIN, t0=rise)
    assert len(out) == 1 and rise + 20 * MIN < out[0].started_ms < rise + 60 * MIN


PHOTOCELL = """flap: 0
rules:
  - {name: cell, kind: streetlight, type: daynight, mode: dark_in_day, metric: ambient_light, elevation: 10,
     below: 0.3, for: 1h, fault: day_burning}"""


def _lamps(e: Engine, share: float, t0: int, reports: int, peers: int = 4) -> list[Finding]:
    """``peers`` lamps reading 20,000 lx and SL0001 ``share`` of it, every 5 min from ``t0``."""
    out: list[Finding] = []
    for i in range(reports):
        ts = t0 + i * 5 * MIN
        for p in range(peers):
            lamp = f"{C}-SL{p + 2:04d}"
            out += e.on_samples(C, GW, [Sample(device=lamp, kind=DeviceKind.STREETLIGHT, ts_ms=ts,
                                               values={"ambient_light": 20_000.0 * (0.8 + 0.1 * p)})])  # fmt: skip
        out += e.on_samples(C, GW, [Sample(device=SL, kind=DeviceKind.STREETLIGHT, ts_ms=ts + MIN,
                                           values={"ambient_light": 20_000.0 * share})])  # fmt: skip
        out += e.tick(ts + MIN)
    return out


def test_a_photocell_reading_under_a_share_of_its_neighbours_by_day() -> None:
    noon = _cst(2026, 4, 10, 12)
    out = _lamps(engine(PHOTOCELL), 0.25, noon, 14)  # the median 19,000 lx: 0.26 of it for over an hour
    assert [(f.device, f.source, f.fault, f.started_ms) for f in out] == [(SL, "rule:cell", "day_burning", noon + MIN)]
    assert _lamps(engine(PHOTOCELL), 0.25, noon, 12) == []  # 55 min: not yet
    assert _lamps(engine(PHOTOCELL), 0.3, noon, 14) == []  # 0.32 of the median: in the shade, not dirty
    assert _lamps(engine(PHOTOCELL), 0.25, noon, 14, peers=2) == []  # three lamps heard: no median
    rise, _ = sunrise_sunset(noon, 43.88, 125.32) or (0, 0)
    # dark from sunrise on: judged from the sun at 10 degrees (61 min after sunrise; the peers' reports at
    # 65 min are the first in the median), so the hour runs from 66 min to 126 min
    assert _lamps(engine(PHOTOCELL), 0.25, rise, 25) == []
    found = _lamps(engine(PHOTOCELL), 0.25, rise, 26)
    assert [f.started_ms for f in found] == [rise + 66 * MIN]


def test_dark_in_day_judges_a_backlog_only_against_readings_of_its_own_time() -> None:
    noon = _cst(2026, 4, 10, 12)
    e = engine(PHOTOCELL)
    assert _lamps(e, 1.0, noon + 3 * 60 * MIN, 1) == []  # the peers (and SL0001) heard at 15:00
    # SL0001's backlog from 12:00 arrives after: its peers' readings are 3 h off, not its compound's light then
    backlog = [Sample(device=SL, kind=DeviceKind.STREETLIGHT, ts_ms=noon + i * 5 * MIN, values={"ambient_light": 500.0})
               for i in range(20)]  # fmt: skip
    assert e.on_samples(C, GW, backlog) == []


def test_dark_in_day_takes_below_and_no_peers() -> None:
    with pytest.raises(RulesError):
        parse_rules(PHOTOCELL.replace("below: 0.3, ", ""), "t.yaml")
    with pytest.raises(RulesError):
        parse_rules(PHOTOCELL.replace("below: 0.3, ", "below: 0.3, peers: 0.3, "), "t.yaml")
    with pytest.raises(RulesError):
        parse_rules(DAYNIGHT.replace("elevation: 5, ", "elevation: 5, below: 0.3, "), "t.yaml")


def test_a_return_after_the_window_is_a_new_finding_even_before_the_timer_runs() -> None:
    # a gateway replaying its backlog: hours of samples arrive with no tick between them
    e = engine(FLAP)
    out: list[Finding] = []
    for i, v in enumerate([4.0, *([0.0] * 12), 4.0, 0.0]):
        out += e.on_samples(C, GW, [Sample(device=EL, kind=DeviceKind.ELEVATOR, ts_ms=T0 + i * MIN,
                                           values={"run_state": v})])  # fmt: skip
    assert states(out) == [("active", T0, None), ("cleared", T0, T0 + MIN), ("active", T0 + 13 * MIN, None)]
    assert out[1].ts_ms == T0 + 13 * MIN  # closed when the return showed the window had passed


def test_a_second_event_after_the_window_is_a_new_finding_before_the_timer_runs() -> None:
    e = engine(EVENTS)
    out = e.on_event(C, GW, Event(EL, DeviceKind.ELEVATOR, T0, "entrapment", True))
    out += e.on_event(C, GW, Event(EL, DeviceKind.ELEVATOR, T0 + MIN, "entrapment", False))
    out += e.on_event(C, GW, Event(EL, DeviceKind.ELEVATOR, T0 + 7 * MIN, "entrapment", True))
    assert states(out) == [("active", T0, None), ("cleared", T0, T0 + MIN), ("active", T0 + 7 * MIN, None)]


EVENTS = """flap: 5m
rules:
  - {name: alarms, kind: elevator, type: event, exclude: [door_fault], faults: {entrapment: entrapment}}
  - {name: meter, kind: water_meter, type: event, faults: {tamper: meter_tamper}, confirm: {tamper: 15m}}"""


def test_critical_events_at_once_confirmed_ones_after_their_time() -> None:
    e = engine(EVENTS)
    out = e.on_event(C, GW, Event(EL, DeviceKind.ELEVATOR, T0, "entrapment", True))
    assert [(f.state.value, f.fault, f.severity.value) for f in out] == [("active", "entrapment", "critical")]
    assert e.on_event(C, GW, Event(EL, DeviceKind.ELEVATOR, T0, "door_fault")) == []  # excluded
    assert e.on_event(C, GW, Event(EL, DeviceKind.ELEVATOR, T0 + MIN, "overload")) == []  # info
    assert e.on_event(C, GW, Event(EL, DeviceKind.ELEVATOR, T0 + 2 * MIN, "entrapment", False)) == []
    out = e.tick(T0 + 8 * MIN)
    assert [(f.state.value, f.ended_ms) for f in out] == [("cleared", T0 + 2 * MIN)]
    # a tamper switch bouncing for 3 minutes is held back; one that stays is a finding from its first message
    assert e.on_event(C, GW, Event(WM, DeviceKind.WATER_METER, T0, "tamper", True)) == []
    e.on_event(C, GW, Event(WM, DeviceKind.WATER_METER, T0 + 3 * MIN, "tamper", False))
    assert e.tick(T0 + 30 * MIN) == []
    e.on_event(C, GW, Event(WM, DeviceKind.WATER_METER, T0 + 40 * MIN, "tamper", True))
    out = e.tick(T0 + 56 * MIN)
    assert [(f.state.value, f.started_ms, f.fault) for f in out] == [
        ("active", T0 + 40 * MIN, "meter_tamper")
    ]


HOSTILE = """flap: 0
rules:
  - {name: vib, kind: elevator, type: threshold, metric: vibration_rms, above: 0.5, baseline: false}
  - {name: rel, kind: elevator, type: threshold, metric: motor_current, below: 0.5, baseline: true, learn: 5m}
  - {name: rate, kind: elevator, type: rate, metric: levelling_error, window: 10m, above: 100}
  - {name: cnt, kind: elevator, type: count, condition: {metric: car_load, above: 90}, window: 10m, at_least: 2}
  - {name: back, kind: elevator, type: counter, metric: trip_count, mode: backwards}
  - {name: st, kind: elevator, type: state, metric: run_state, states: [fault]}"""


@pytest.mark.parametrize("junk", ["high", float("nan"), float("inf"), None, True, [1], {"a": 1}, -1e308])
def test_garbage_values_never_crash_and_are_counted(junk: Any) -> None:
    e = engine(HOSTILE)
    metrics = ("vibration_rms", "motor_current", "levelling_error", "car_load", "trip_count", "run_state")
    out = feed(e, EL, DeviceKind.ELEVATOR, [dict.fromkeys(metrics, junk)] * 20)
    assert e.errors == 0
    if junk == -1e308:  # a number, only an odd one
        return
    assert out == [] and e.bad_values == 20 * len(metrics)


def test_constant_and_empty_series() -> None:
    e = engine(HOSTILE)
    assert feed(e, EL, DeviceKind.ELEVATOR, [{"vibration_rms": 0.2, "motor_current": 10.0, "levelling_error": 1.0,
                                              "car_load": 10.0, "trip_count": 5.0, "run_state": 0.0}] * 60) == []  # fmt: skip
    assert feed(e, EL, DeviceKind.ELEVATOR, [{}] * 10) == []
    assert e.on_samples(C, GW, []) == []
    assert e.tick(T0) == []


def test_baseline_learns_the_device_then_flags_a_drop() -> None:
    e = engine(HOSTILE)
    series = [{"motor_current": 10.0}] * 6 + [{"motor_current": 4.0}] * 2
    out = feed(e, EL, DeviceKind.ELEVATOR, series)
    assert [(f.source, f.evidence["motor_current"]) for f in out] == [("rule:rel", 0.4)]


def test_snapshot_and_restore_give_no_duplicate() -> None:
    e = engine(HYST + "\n" if False else HYST)
    first = feed(e, EL, DeviceKind.ELEVATOR, [{"vibration_rms": 0.6}] * 5)
    assert len(first) == 1
    blob = e.snapshot()
    restored = Engine.restore(blob, e.rules, SITES)
    assert restored.device_count() == e.device_count()
    # the same high readings again (a replay after a restart), then the clear
    again = feed(
        restored,
        EL,
        DeviceKind.ELEVATOR,
        [{"vibration_rms": 0.6}] * 2 + [{"vibration_rms": 0.1}],
        t0=T0 + 5 * MIN,
    )
    assert [f.state.value for f in again] == ["cleared"] and again[0].id == first[0].id
    with pytest.raises(ValueError, match="snapshot"):
        Engine.restore(b"{not json", e.rules, SITES)
    with pytest.raises(ValueError, match="snapshot"):
        Engine.restore(b'{"v": 99}', e.rules, SITES)


STREAK = """flap: 0
rules: [{name: refusing, kind: charger, type: streak, metric: status, attempt: [Preparing],
         fail: [Finishing, Available], at_least: 3, fault: charger_faulted}]"""
CH = f"{C}-CH0001"
AVAILABLE, PREPARING, CHARGING, SUSPENDED_EV, FINISHING = 0.0, 1.0, 2.0, 4.0, 5.0
REFUSED = [PREPARING, FINISHING, AVAILABLE]  # a plug-in backing out without Charging
SESSION = [PREPARING, CHARGING, CHARGING, SUSPENDED_EV, FINISHING, AVAILABLE]


def _statuses(e: Engine, run: list[float]) -> list[Finding]:
    return feed(e, CH, DeviceKind.CHARGER, [{"status": v} for v in run])


def test_streak_raises_at_the_third_failed_attempt_in_a_row_from_the_first() -> None:
    run = [AVAILABLE, *REFUSED, *REFUSED, AVAILABLE]
    assert _statuses(engine(STREAK), run) == []  # two in a row: an authorisation can fail twice
    run = [AVAILABLE, *REFUSED, *REFUSED, *REFUSED, AVAILABLE, *SESSION]
    out = _statuses(engine(STREAK), run)
    first, third, success = T0 + 1 * MIN, T0 + 7 * MIN, T0 + 12 * MIN
    assert states(out) == [("active", first, None), ("cleared", first, success)]
    assert out[0].ts_ms == T0 + 8 * MIN  # judged when the third attempt backs out
    assert out[0].fault == "charger_faulted" and out[0].evidence == {"status": 3.0}
    assert third > first


def test_streak_a_success_between_starts_the_count_again() -> None:
    run = [*REFUSED, *REFUSED, *SESSION, *REFUSED, *REFUSED, AVAILABLE]
    assert _statuses(engine(STREAK), run) == []


def test_streak_an_attempt_is_judged_by_the_next_other_state() -> None:
    # a long Preparing is one attempt; Available straight after it (a lost Finishing report) fails it
    run = [PREPARING, PREPARING, PREPARING, AVAILABLE, *REFUSED, PREPARING, AVAILABLE, AVAILABLE]
    out = _statuses(engine(STREAK), run)
    assert states(out) == [("active", T0, None)]
    # a fail state with no attempt before it neither counts nor ends the streak
    run = [*REFUSED, *REFUSED, FINISHING, AVAILABLE, *REFUSED]
    assert states(_statuses(engine(STREAK), run)) == [("active", T0, None)]
    # any other state does: a session whose Preparing report was lost is still a success
    run = [*REFUSED, *REFUSED, CHARGING, FINISHING, AVAILABLE, *REFUSED]
    assert _statuses(engine(STREAK), run) == []


def test_streak_ignores_garbage_and_survives_a_snapshot() -> None:
    e = engine(STREAK)
    out = feed(e, CH, DeviceKind.CHARGER, [{"status": v} for v in [*REFUSED, *REFUSED]]
               + [{"status": "Preparing"}, {"status": float("nan")}])  # fmt: skip
    assert out == [] and e.bad_values == 2
    restored = Engine.restore(e.snapshot(), e.rules, SITES)
    out = feed(restored, CH, DeviceKind.CHARGER, [{"status": v} for v in REFUSED], t0=T0 + 10 * MIN)
    assert states(out) == [("active", T0, None)]


def _shipped(name: str) -> Engine:
    rules = load_rules()
    return Engine(replace(rules, rules=tuple(r for r in rules.rules if r.name == name)), SITES)


def test_a_flat_meter_above_a_quarter_cubic_metre_for_60_minutes_is_a_burst() -> None:
    """Five reports running above 0.25 m3/h (a 60-minute span) raise; four (a flat's heavy hour) do not."""
    four = [0.0, 0.3, 0.46, 0.3, 0.26, 0.0, 0.0]
    out = feed(_shipped("water_meter.burst_sustained"), WM, DeviceKind.WATER_METER,
               [{"flow": v} for v in four], step=15 * MIN)  # fmt: skip
    assert out == []
    five = [0.0, 0.3, 0.3, 0.3, 0.26, 0.3, 0.0, 0.0, 0.0]
    out = feed(_shipped("water_meter.burst_sustained"), WM, DeviceKind.WATER_METER,
               [{"flow": v} for v in five], step=15 * MIN)  # fmt: skip
    assert [(f.state.value, f.fault) for f in out][:1] == [("active", "burst")]
    assert out[0].started_ms == T0 + 15 * MIN and out[0].ts_ms == T0 + 75 * MIN
    # a building meter (it reports pressure) is left to its own rules
    out = feed(_shipped("water_meter.burst_sustained"), WM, DeviceKind.WATER_METER,
               [{"flow": v, "pressure": 0.3} for v in five], step=15 * MIN)  # fmt: skip
    assert out == []


def test_a_flat_meter_above_90_litres_an_hour_for_3_hours_is_a_burst() -> None:
    """Every report above 0.09 m3/h for 3 h raises; 2.5 h of a flat's heavy use (11 reports) does not."""
    heavy = [0.0, *[0.15, 0.12, 0.3, 0.1, 0.2, 0.11, 0.15, 0.33, 0.1, 0.14, 0.12], 0.0, 0.0]
    out = feed(_shipped("water_meter.burst"), WM, DeviceKind.WATER_METER,
               [{"flow": v} for v in heavy], step=15 * MIN)  # fmt: skip
    assert out == []
    burst = [0.0, *[0.12] * 14, 0.0, 0.0]
    out = feed(_shipped("water_meter.burst"), WM, DeviceKind.WATER_METER,
               [{"flow": v} for v in burst], step=15 * MIN)  # fmt: skip
    assert [(f.state.value, f.fault) for f in out][:1] == [("active", "burst")]
    assert out[0].started_ms == T0 + 15 * MIN and out[0].ts_ms == T0 + 195 * MIN


OWN = """flap: 0
rules: [{name: flow, kind: water_meter, type: threshold, metric: flow, above: 0.25, for: 30m, own_above: 8,
         learn: 2h, fault: burst}]"""


@pytest.mark.parametrize(
    ("own", "flow", "raised"), [(0.05, 0.3, False), (0.05, 0.45, True), (0.01, 0.3, True)]
)
def test_own_above_judges_a_device_against_its_own_mean_when_that_is_higher(own: float, flow: float,
                                                                           raised: bool) -> None:  # fmt: skip
    """After 2 h at its own mean, a device is judged against 8 x that mean (0.4 for a mean of 0.05) when it
    passes `above`, else against `above` (0.25)."""
    series = [{"flow": own}] * 8 + [{"flow": flow}] * 4 + [{"flow": 0.0}]
    out = feed(engine(OWN), WM, DeviceKind.WATER_METER, series, step=15 * MIN)
    assert [f.state.value for f in out][:1] == (["active"] if raised else [])
    if raised:
        assert out[0].started_ms == T0 + 120 * MIN and out[0].evidence  # the flow itself, not a ratio


def test_own_above_judges_by_above_alone_while_it_learns() -> None:
    """A burst in the device's first 2 h is judged against `above` (it raises), and clears at its own
    level once that is learnt (0.3 is under 8 x the mean of 0.3)."""
    series = [{"flow": 0.3}] * 12
    out = feed(engine(OWN), WM, DeviceKind.WATER_METER, series, step=15 * MIN)
    assert states(out) == [("active", T0, None), ("cleared", T0, T0 + 120 * MIN)]


def test_own_above_keeps_the_learnt_mean_across_a_snapshot() -> None:
    """A device that learnt a mean of 0.05 before a checkpoint is judged against 0.4 after the restore."""
    e = engine(OWN)
    assert feed(e, WM, DeviceKind.WATER_METER, [{"flow": 0.05}] * 9, step=15 * MIN) == []
    restored = Engine.restore(e.snapshot(), e.rules, SITES)
    later = T0 + 9 * 15 * MIN
    assert feed(restored, WM, DeviceKind.WATER_METER, [{"flow": 0.3}] * 4, step=15 * MIN, t0=later) == []
    out = feed(restored, WM, DeviceKind.WATER_METER, [{"flow": 0.45}] * 4, step=15 * MIN, t0=later + 60 * MIN)
    assert [f.state.value for f in out] == ["active"]


@pytest.mark.parametrize("bad", ["own_above: 8, baseline: true", "own_above: 0", "below: 0.1, own_above: 8"])
def test_own_above_takes_an_absolute_above(bad: str) -> None:
    text = OWN.replace(
        "above: 0.25, for: 30m, own_above: 8", bad if "below" in bad else f"above: 0.25, {bad}"
    )
    with pytest.raises(ValueError, match=r"own_above|greater than 0"):
        parse_rules(text, "test.yaml")


def test_a_flat_that_draws_five_times_the_median_raises_no_burst_with_its_own_use() -> None:
    """A flat of 50 L/h on average over its first 2 days: an hour and a quarter at 0.3 m3/h and 3 h at
    0.12 m3/h are its own use (7 x and 3 x its mean are 0.35 and 0.15); a burst of 0.5 m3/h still raises."""
    learnt = [{"flow": v} for v in [0.01, 0.02, 0.01, 0.16] * 48]  # 2 days of 15-min reports, mean 0.05
    for name, use in [("water_meter.burst_sustained", [0.3] * 5), ("water_meter.burst", [0.12] * 14)]:
        out = feed(_shipped(name), WM, DeviceKind.WATER_METER, [*learnt, *[{"flow": v} for v in use],
                   {"flow": 0.0}], step=15 * MIN)  # fmt: skip
        assert out == [], name
    out = feed(_shipped("water_meter.burst_sustained"), WM, DeviceKind.WATER_METER,
               [*learnt, *[{"flow": 0.5}] * 6], step=15 * MIN)  # fmt: skip
    assert [(f.state.value, f.fault) for f in out][:1] == [("active", "burst")]


GAP = """flap: 0
rules: [{name: hot, kind: elevator, type: threshold, metric: vibration_rms, above: 0.5, for: 20m, max_gap: 5m,
         fault: bearing_wear}]"""


@pytest.mark.parametrize(("gap_min", "raised_at"), [(5, 20), (6, 31)])
def test_a_for_timer_does_not_run_across_a_gap_longer_than_max_gap(gap_min: int, raised_at: int) -> None:
    """Samples 5 min apart and a gap of exactly max_gap: the 20 min count from the first sample; a gap of
    6 min: they count again from the sample after it (the value in the gap is unknown)."""
    e = engine(GAP)
    out: list[Finding] = []
    times = [0, 5, 5 + gap_min] + [5 + gap_min + 5 * k for k in range(1, 6)]
    for t in times:
        out += e.on_samples(C, GW, [Sample(device=EL, kind=DeviceKind.ELEVATOR, ts_ms=T0 + t * MIN,
                                           values={"vibration_rms": 0.9})])  # fmt: skip
    first = next(f for f in out if f.state is FindingState.ACTIVE)
    assert first.ts_ms == T0 + next(t for t in times if t >= raised_at) * MIN
    assert first.started_ms == (T0 if gap_min == 5 else T0 + (5 + gap_min) * MIN)


def test_an_open_finding_stays_open_across_a_gap() -> None:
    e = engine(GAP)
    series = [(t, 0.9) for t in range(0, 25, 5)] + [(60, 0.9), (65, 0.1)]
    out: list[Finding] = []
    for t, v in series:
        out += e.on_samples(C, GW, [Sample(device=EL, kind=DeviceKind.ELEVATOR, ts_ms=T0 + t * MIN,
                                           values={"vibration_rms": v})])  # fmt: skip
    assert states(out) == [("active", T0, None), ("cleared", T0, T0 + 65 * MIN)]


def test_max_gap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_gap"):
        parse_rules(GAP.replace("max_gap: 5m", "max_gap: 0"), "test.yaml")


def test_two_reports_of_a_burst_before_a_data_gap_of_hours_raise_no_burst() -> None:
    """A flat above 90 L/h in two reports, then 4 h without a report: the 3 h start again after the gap."""
    e = _shipped("water_meter.burst")
    out: list[Finding] = []
    times = [0, 15, 15 + 240] + [255 + 15 * k for k in range(1, 13)]
    for t in times:
        out += e.on_samples(C, GW, [Sample(device=WM, kind=DeviceKind.WATER_METER, ts_ms=T0 + t * MIN,
                                           values={"flow": 0.12})])  # fmt: skip
    assert [(f.state.value, f.started_ms, f.ts_ms) for f in out] == [("active", T0 + 255 * MIN, T0 + 435 * MIN)]


def test_no_shipped_rule_names_a_burst_from_a_building_meter_s_own_readings() -> None:
    """A building meter's pressure falls for a burst in any flat of its building: its pressure rule is gone."""
    names = {r.name for r in load_rules().rules}
    assert "water_meter.burst_pressure" not in names
    out = feed(_shipped_all(*sorted(n for n in names if n.startswith("water_meter."))), WM,
               DeviceKind.WATER_METER, [{"flow": 6.0, "pressure": 0.1}] * 12, step=5 * MIN)  # fmt: skip
    assert [f for f in out if f.fault == "burst"] == []


def test_a_battery_below_its_alarm_level_for_longer_than_a_cold_dip_is_low() -> None:
    """A battery reading 0 (run flat) for 9 h raises; a cold dip to 17% for 8 h does not."""
    dip = [60.0] * 4 + [17.0] * 33 + [60.0] * 8  # 8 h at 17%, 15-minute reports
    out = feed(_shipped("water_meter.battery_flat"), WM, DeviceKind.WATER_METER,
               [{"battery": v} for v in dip], step=15 * MIN)  # fmt: skip
    assert out == []
    flat = [0.0] * 40
    out = feed(_shipped("water_meter.battery_flat"), WM, DeviceKind.WATER_METER,
               [{"battery": v} for v in flat], step=15 * MIN)  # fmt: skip
    assert [(f.state.value, f.fault) for f in out][:1] == [("active", "battery_low")]
    assert out[0].started_ms == T0 and out[0].ts_ms == T0 + 9 * 60 * MIN


def _battery(start: float, per_day: float, hours: float, dip: tuple[float, float] | None = None) -> list[dict[str, float]]:
    """15-minute battery reports to 0.1%: ``start`` less ``per_day`` a day; ``dip``: (from, to) hours at 17%."""
    out = []
    for i in range(int(hours * 4) + 1):
        h = i / 4
        cold = dip is not None and dip[0] <= h < dip[1]
        out.append({"battery": 17.0 if cold else round(start - per_day * h / 24, 1)})
    return out


DRAIN = ("water_meter.battery_drain", "water_meter.battery_drain_fast")


def test_a_normal_battery_and_its_cold_dips_raise_no_drain() -> None:
    """0.04%/day for 5 days (a step of the reading every 2.5 days) with two 8-h dips to 17%: nothing."""
    out = feed(_shipped_all(*DRAIN), WM, DeviceKind.WATER_METER, _battery(70.05, 0.04, 120, (30, 38)),
               step=15 * MIN)  # fmt: skip
    assert out == []
    out = feed(_shipped_all(*DRAIN), WM, DeviceKind.WATER_METER, _battery(60.0, 0.04, 48, (40, 48)),
               step=15 * MIN)  # fmt: skip
    assert out == []


def test_a_fall_of_two_steps_in_6_h_is_a_fast_drain_and_one_step_is_not() -> None:
    """A fall of 0.2% within 6 h (20 times a normal battery's) raises after an hour; 0.1% does not."""
    steady = [{"battery": 50.0}] * 25  # 6 h
    two = steady + [{"battery": 49.9}] * 4 + [{"battery": 49.8}] * 8
    out = feed(_shipped("water_meter.battery_drain_fast"), WM, DeviceKind.WATER_METER, two, step=15 * MIN)
    assert [(f.state.value, f.fault) for f in out] == [("active", "battery_low")]
    assert out[0].started_ms == T0 + 29 * 15 * MIN and out[0].ts_ms == T0 + 33 * 15 * MIN
    one = steady + [{"battery": 49.9}] * 40
    assert feed(_shipped("water_meter.battery_drain_fast"), WM, DeviceKind.WATER_METER, one, step=15 * MIN) == []


@pytest.mark.parametrize(("per_day", "within_h"), [(1.0, 9.0), (4.0, 3.0), (0.3, 34.0)])
def test_a_failing_battery_is_found_within_hours_of_its_fall(per_day: float, within_h: float) -> None:
    """A day of normal drain, then a fall of 1%/day is flagged within 9 h, 4%/day within 3 h, 0.3%/day
    (the 24-h rule) within 34 h, a cold dip in the middle notwithstanding."""
    healthy = _battery(80.0, 0.04, 24)[:-1]
    failing = _battery(healthy[-1]["battery"], per_day, 48, (5, 12))
    out = feed(_shipped_all(*DRAIN), WM, DeviceKind.WATER_METER, healthy + failing, step=15 * MIN)
    assert out and out[0].state.value == "active" and out[0].fault == "battery_low"
    assert T0 + 24 * 60 * MIN < out[0].ts_ms <= T0 + int((24 + within_h) * 60 * MIN)


def _recorder(free: float, days: float, fill_from_h: float | None, per_day: float, seed: int = 3) -> list[dict[str, float]]:
    """A recorder's free space each minute: a weekly rhythm of 1.5% (falling at its steepest, 1.35%/day, at
    hour 36), readings' noise of 0.2%, to 0.1%; from ``fill_from_h`` on it fills at ``per_day``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(int(days * 1440)):
        h = i / 60
        v = free + 1.5 * math.sin(2 * math.pi * (h - 36) / 168 + math.pi / 2) + rng.normal(0.0, 0.2)
        if fill_from_h is not None and h >= fill_from_h:
            v -= per_day * (h - fill_from_h) / 24
        out.append({"storage_free": round(max(v, 0.0), 1)})
    return out


def test_a_recorder_filling_at_3_percent_a_day_is_found_within_hours_and_its_week_is_not() -> None:
    """The weekly rhythm (1.35%/day at its steepest) and the readings' noise of a recorder keeping 8% free
    (the least) raise nothing over 3 days; a fill of 4%/day on one keeping 20% free is flagged within 8 h."""
    rule = "camera.storage_fill"
    assert feed(_shipped(rule), CA, DeviceKind.CAMERA, _recorder(8.0, 3, None, 0.0)) == []  # 1.2%/day would raise
    out = feed(_shipped(rule), CA, DeviceKind.CAMERA, _recorder(20.0, 2, 24.0, 4.0))
    assert out and out[0].fault == "storage_full" and out[0].ts_ms <= T0 + 32 * 60 * MIN


def test_a_flat_meter_above_0_8_cubic_metres_in_two_reports_is_a_burst() -> None:
    """Two reports running above 0.8 m3/h (15 minutes) raise; one (a bath filling) does not."""
    out = feed(_shipped("water_meter.burst_clear"), WM, DeviceKind.WATER_METER,
               [{"flow": v} for v in (0.0, 0.9, 0.5, 0.0)], step=15 * MIN)  # fmt: skip
    assert out == []
    out = feed(_shipped("water_meter.burst_clear"), WM, DeviceKind.WATER_METER,
               [{"flow": v} for v in (0.0, 1.0, 1.1, 0.0, 0.0)], step=15 * MIN)  # fmt: skip
    assert [(f.state.value, f.fault) for f in out][:1] == [("active", "burst")]
    assert out[0].started_ms == T0 + 15 * MIN


def _shipped_all(*names: str) -> Engine:
    rules = load_rules()
    return Engine(replace(rules, rules=tuple(r for r in rules.rules if r.name in names)), SITES)


@pytest.mark.parametrize(("flow", "leak", "burst"), [(0.013, True, False), (0.2, False, True)])
def test_a_flat_meter_that_never_stops_for_8_h_is_a_leak_unless_it_bursts(flow: float, leak: bool,
                                                                          burst: bool) -> None:  # fmt: skip
    """13 L/h for 9 h is a leak; 200 L/h for 9 h is a burst, and the leak rule waits while it is open."""
    e = _shipped_all("water_meter.leak", "water_meter.burst", "water_meter.burst_sustained")
    out = feed(e, WM, DeviceKind.WATER_METER, [{"flow": flow}] * 37 + [{"flow": 0.0}] * 4, step=15 * MIN)
    active = {f.fault for f in out if f.state.value == "active"}
    assert ("leak" in active) is leak
    assert ("burst" in active) is burst
