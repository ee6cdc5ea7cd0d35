"""Streetlight, camera and charger rules at their edges: the sun guard, ``unless``, the shipped rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import pytest

from sitewatch.analytics import Engine, Site, load_rules, parse_rules
from sitewatch.analytics.rules import RulesError
from sitewatch.contract import DeviceKind, Event, Finding, Sample
from sitewatch.i18n import translate

from .test_engine import feed

C = "220104-0003"
GW = f"{C}-GW01"
CA, SL, CH = f"{C}-CA0001", f"{C}-SL0001", f"{C}-CH0001"
MIN = 60_000
SITES = {C: Site(43.88, 125.32)}


def _cst(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)


def raised(out: list[Finding]) -> list[tuple[str, str | None]]:
    return [(f.source, f.fault) for f in out if f.state.value == "active"]


SUN = """rules:
  - {name: day, kind: camera, type: threshold, metric: scene_match, below: 50, for: 2m, sun_above: 3,
     fault: camera_tamper}
  - {name: night, kind: camera, type: threshold, metric: scene_match, below: 50, for: 2m, sun_below: -8,
     fault: camera_tamper}"""


def test_sun_guards_look_only_by_day_or_only_by_night() -> None:
    e = Engine(parse_rules(SUN, "t.yaml"), SITES)
    noon = feed(e, CA, DeviceKind.CAMERA, [{"scene_match": 40.0}] * 4, t0=_cst(2026, 6, 21, 12))
    assert raised(noon) == [("rule:day", "camera_tamper")]
    e = Engine(parse_rules(SUN, "t.yaml"), SITES)
    midnight = feed(e, CA, DeviceKind.CAMERA, [{"scene_match": 40.0}] * 4, t0=_cst(2026, 6, 21, 0))
    assert raised(midnight) == [("rule:night", "camera_tamper")]
    e = Engine(parse_rules(SUN, "t.yaml"), SITES)  # twilight (sun between -8 and 3 degrees): neither looks
    rise = _cst(2026, 6, 21, 4, 0)  # the sun rises at about 03:57 local time at 43.9 N, 125.3 E in June
    assert feed(e, CA, DeviceKind.CAMERA, [{"scene_match": 40.0}] * 4, t0=rise) == []


UNLESS = """flap: 30m
rules:
  - {name: power, kind: streetlight, type: threshold, metric: power, below: 30, for: 2m, fault: lamp_failure,
     unless: [flick, alarms.flicker]}
  - {name: flick, kind: streetlight, type: count, condition: {metric: lamp_current, below: 0.02}, window: 1h,
     at_least: 2, runs: 2, fault: flicker, flap: 1h}
  - {name: alarms, kind: streetlight, type: event, faults: {flicker: flicker}}"""


def test_unless_a_flickering_lamp_is_no_failed_lamp() -> None:
    t0 = _cst(2026, 6, 21, 0)
    steady = [{"power": 20.0, "lamp_current": 0.1}] * 5
    e = Engine(parse_rules(UNLESS, "t.yaml"), SITES)
    assert raised(feed(e, SL, DeviceKind.STREETLIGHT, steady, t0=t0)) == [("rule:power", "lamp_failure")]
    # caught dark twice first: the flicker finding is open, the low power is the flicker's
    flicking = [{"power": 60.0, "lamp_current": c} for c in (0.002, 0.1, 0.002)] + steady
    e = Engine(parse_rules(UNLESS, "t.yaml"), SITES)
    assert raised(feed(e, SL, DeviceKind.STREETLIGHT, flicking, t0=t0)) == [("rule:flick", "flicker")]
    # the lamp's own flicker alarm explains it too (while its finding is open)
    e = Engine(parse_rules(UNLESS, "t.yaml"), SITES)
    out = e.on_event(C, GW, Event(SL, DeviceKind.STREETLIGHT, t0 - MIN, "flicker", None, {}))
    out += feed(e, SL, DeviceKind.STREETLIGHT, steady, t0=t0)
    assert raised(out) == [("rule:alarms.flicker", "flicker")]


def test_unless_must_name_a_rule() -> None:
    with pytest.raises(RulesError, match="unless: 'nope' is no rule"):
        parse_rules(UNLESS.replace("[flick, alarms.flicker]", "[nope]"), "t.yaml")
    with pytest.raises(RulesError, match="sun_above"):
        parse_rules(SUN.replace("sun_above: 3", "sun_above: 120"), "t.yaml")


# -- the shipped rules --------------------------------------------------------------------------------


def shipped() -> Engine:
    return Engine(load_rules(), SITES)


def _camera_days(scene_day: float, scene_night: float, days: int, t0: int) -> list[dict[str, float]]:
    """Minute samples of a camera over ``days`` days: its scene by day and by night (sun at -3 degrees)."""
    from sitewatch.analytics.sun import solar_elevation

    out = []
    for i in range(days * 1440):
        day = solar_elevation(t0 + i * MIN, 43.88, 125.32) > -3.0
        out.append({"online": 1.0, "frame_rate": 25.0, "scene_match": scene_day if day else scene_night})
    return out


@pytest.mark.parametrize(("ratio", "found"), [(0.89, True), (0.92, False)])
def test_shipped_scene_rules_against_the_cameras_own_picture(ratio: float, found: bool) -> None:
    t0 = _cst(2026, 4, 6, 0)
    e = shipped()
    normal = _camera_days(90.0, 75.0, 3, t0)
    assert raised(feed(e, CA, DeviceKind.CAMERA, normal, t0=t0)) == []
    nudged = _camera_days(90.0 * ratio, 75.0 * ratio, 1, t0 + 3 * 1440 * MIN)
    out = raised(feed(e, CA, DeviceKind.CAMERA, nudged, t0=t0 + 3 * 1440 * MIN))
    assert (("rule:camera.scene_day", "camera_tamper") in out) is found
    assert (("rule:camera.scene_night", "camera_tamper") in out) is found
    assert all(fault == "camera_tamper" for _, fault in out)


HOURS = """rules:
  - {name: late, kind: streetlight, type: threshold, metric: power, below: 30, for: 10m, hours: [0, 5],
     fault: lamp_failure}
  - {name: evening, kind: streetlight, type: threshold, metric: power, below: 30, for: 10m, hours: [18, 2],
     fault: lamp_failure}"""


@pytest.mark.parametrize(
    ("start", "sources"),
    [((3, 0), ["rule:late"]), ((4, 50), []), ((1, 0), ["rule:evening", "rule:late"]),
     ((20, 0), ["rule:evening"]), ((12, 0), [])],
)  # fmt: skip
def test_hours_guard_in_local_time_wrapping_past_midnight(start: tuple[int, int], sources: list[str]) -> None:
    e = Engine(parse_rules(HOURS, "t.yaml"), SITES)
    # 20 minutes of low power from the given local time (04:50: the last 10 are after 05:00)
    out = feed(
        e, SL, DeviceKind.STREETLIGHT, [{"power": 20.0}] * 3, t0=_cst(2026, 6, 21, *start), step=5 * MIN
    )
    assert sorted(s for s, _ in raised(out)) == sources


def test_hours_must_be_two_different_local_hours() -> None:
    with pytest.raises(RulesError, match="hours"):
        parse_rules(HOURS.replace("[0, 5]", "[3, 3]"), "t.yaml")
    with pytest.raises(RulesError, match="hours"):
        parse_rules(HOURS.replace("[0, 5]", "[0, 25]"), "t.yaml")


TOGETHER = """rules:
  - {name: dark, kind: camera, type: threshold, metric: online, below: 0.5, for: 15m, together: 2m,
     fault: camera_offline}"""


def _cameras(e: Engine, offline: dict[str, int], minutes: int, t0: int) -> list[Finding]:
    """Minute samples of cameras, each offline from its minute in ``offline`` on."""
    out: list[Finding] = []
    for i in range(minutes):
        ts = t0 + i * MIN
        batch = [Sample(device=d, kind=DeviceKind.CAMERA, ts_ms=ts + 7_000 * n,
                        values={"online": 0.0 if i >= at else 1.0}) for n, (d, at) in enumerate(offline.items())]  # fmt: skip
        out += e.on_samples(C, GW, batch)
        out += e.tick(ts)
    return out


def test_cameras_going_dark_together_are_an_outage_not_faults() -> None:
    t0 = _cst(2026, 6, 21, 12)
    a, b, c = (f"{C}-CA000{i}" for i in (1, 2, 3))
    e = Engine(parse_rules(TOGETHER, "t.yaml"), SITES)  # two within a minute of each other: a power cut
    assert raised(_cameras(e, {a: 5, b: 6, c: 10_000}, 4 * 60, t0)) == []
    e = Engine(parse_rules(TOGETHER, "t.yaml"), SITES)  # three minutes apart: each its own fault
    assert raised(_cameras(e, {a: 5, b: 8, c: 10_000}, 60, t0)) == [("rule:dark", "camera_offline")] * 2
    e = Engine(parse_rules(TOGETHER, "t.yaml"), SITES)  # a camera alone
    out = _cameras(e, {a: 5, b: 10_000, c: 10_000}, 60, t0)
    assert [(f.device, f.started_ms) for f in out] == [(a, t0 + 5 * MIN)]


def test_an_outage_stays_one_across_a_snapshot() -> None:
    t0 = _cst(2026, 6, 21, 12)
    a, b = f"{C}-CA0001", f"{C}-CA0002"
    e = Engine(parse_rules(TOGETHER, "t.yaml"), SITES)
    assert _cameras(e, {a: 5, b: 5}, 10, t0) == []
    e = Engine.restore(e.snapshot(), parse_rules(TOGETHER, "t.yaml"), SITES)
    assert raised(_cameras(e, {a: 0, b: 0}, 3 * 60, t0 + 10 * MIN)) == []


def test_shipped_flicker_rule_two_dark_reports_in_a_night_not_one_long_dark() -> None:
    t0 = _cst(2026, 4, 10, 20)
    lit = {"lamp_on": 1.0, "power": 60.0, "lamp_current": 0.27}
    dark = {"lamp_on": 1.0, "power": 58.0, "lamp_current": 0.002}
    # caught dark at 20:00 and again 5 hours later: flicker
    series = [dark] + [lit] * 59 + [dark] + [lit] * 3
    out = raised(feed(shipped(), SL, DeviceKind.STREETLIGHT, series, t0=t0, step=5 * MIN))
    assert out == [("rule:streetlight.flicker", "flicker")]
    # 13 hours apart: two nights' single catches are not enough
    series = [dark] + [lit] * 155 + [dark] + [lit] * 3
    out = raised(feed(shipped(), SL, DeviceKind.STREETLIGHT, series, t0=t0, step=5 * MIN))
    assert ("rule:streetlight.flicker", "flicker") not in out


def test_shipped_frame_rate_floor_even_without_a_learnt_normal() -> None:
    t0 = _cst(2026, 4, 10, 12)
    ok = {"online": 1.0, "frame_rate": 17.0, "scene_match": 90.0}
    low = {"online": 1.0, "frame_rate": 11.0, "scene_match": 90.0}
    assert raised(feed(shipped(), CA, DeviceKind.CAMERA, [ok] * 30, t0=t0)) == []
    out = raised(feed(shipped(), CA, DeviceKind.CAMERA, [low] * 30, t0=t0))
    assert out == [("rule:camera.frames_low", "video_loss")]


@pytest.mark.parametrize(
    ("kw", "minutes", "found"), [(0.95, 60, True), (0.95, 40, False), (1.05, 120, False)]
)
def test_shipped_stuck_session_below_1_kw_for_45_min(kw: float, minutes: int, found: bool) -> None:
    t0 = _cst(2026, 4, 10, 20)
    series = [{"status": 2.0, "power": kw}] * (minutes + 1)
    out = raised(feed(shipped(), CH, DeviceKind.CHARGER, series, t0=t0))
    assert (("rule:charger.stuck_slow", "stuck_session") in out) is found


@pytest.mark.parametrize("kw", [0.0, 0.01])
def test_shipped_stuck_session_at_nothing_is_one_finding(kw: float) -> None:
    # Charging at nothing for an hour (a charger broken during a session without its Faulted status, or a
    # stall of all the power): charger.stuck's after 20 min, not a second finding of stuck_slow's
    series = [{"status": 2.0, "power": kw}] * 61
    out = raised(feed(shipped(), CH, DeviceKind.CHARGER, series, t0=_cst(2026, 4, 10, 20)))
    assert ("rule:charger.stuck", "stuck_session") in out
    assert (("rule:charger.stuck_slow", "stuck_session") in out) is (kw > 0.0)


def _taper(sp: float, wanted: float) -> list[dict[str, float]]:
    """A healthy session's minute samples (as the charger model draws them): ``sp`` kW until 1.5 kWh are
    left, then tapering to 0.3 x ``sp`` until the car is full (SuspendedEV)."""
    out, remaining = [], wanted
    while remaining > 0:
        p = sp * min(1.0, max(0.3, remaining / 1.5))
        out.append({"status": 2.0, "power": round(p, 2)})
        remaining -= min(p / 60, remaining)
    return [*out, *[{"status": 4.0, "power": 0.0}] * 30]


@pytest.mark.parametrize(
    ("series", "found"),
    [
        # the floor of a 3.07 kW car (0.92 kW) for 12 min, a pause of the site's load management of 110
        # min, 19 min more (seed 17): 31 minutes Charging under 1 kW, not a stuck session
        (
            [{"status": 2.0, "power": 0.92}] * 12
            + [{"status": 3.0, "power": 0.0}] * 110
            + [{"status": 2.0, "power": 0.92}] * 19,
            False,
        ),
        # 35 min, a 10 min pause, 12 min more: 47 minutes Charging under 1 kW within the hour
        (
            [{"status": 2.0, "power": 0.95}] * 35
            + [{"status": 3.0, "power": 0.0}] * 10
            + [{"status": 2.0, "power": 0.95}] * 12,
            True,
        ),
        (_taper(2.97, 12.0), False),
    ],
)
def test_shipped_stuck_slow_counts_minutes_charging_not_pauses(
    series: list[dict[str, float]], found: bool
) -> None:
    out = raised(feed(shipped(), CH, DeviceKind.CHARGER, series, t0=_cst(2026, 4, 10, 20)))
    assert (("rule:charger.stuck_slow", "stuck_session") in out) is found


@pytest.mark.parametrize(
    ("series", "found"),
    [
        ([{"status": 2.0, "power": 2.0}] * 62, True),  # an hour at 2 kW
        ([{"status": 2.0, "power": 2.7}] * 62, True),
        ([{"status": 2.0, "power": 2.0}] * 46, True),  # 45 minutes within the hour (seed 31: 57 min)
        ([{"status": 2.0, "power": 2.0}] * 44, False),
        ([{"status": 2.0, "power": 2.9}] * 180, False),  # a slow car (3.3 kW at 90%)
        ([{"status": 2.0, "power": 0.9}] * 40, False),  # under 1 kW: the stuck_slow rule's
        (_taper(2.97, 12.0), False),  # the slowest car's taper from 2.97 kW lasts about an hour
        # 25 min, a 10 min pause of the site's load management (not counted), 22 min more: stuck
        (
            [{"status": 2.0, "power": 2.0}] * 25
            + [{"status": 3.0, "power": 0.0}] * 10
            + [{"status": 2.0, "power": 2.0}] * 22,
            True,
        ),
        # 35 min, a 40 min pause, 30 min more: never 45 minutes Charging within an hour
        (
            [{"status": 2.0, "power": 2.0}] * 35
            + [{"status": 3.0, "power": 0.0}] * 40
            + [{"status": 2.0, "power": 2.0}] * 30,
            False,
        ),
        # a slow car's taper, its driver leaving, the next slow car wanting 3 kWh and tapering too (seed 37:
        # 50 minutes in the band within 2 h, 57 here): at most 29 within one hour
        (
            _taper(3.08, 12.0)[:-30]
            + [{"status": 5.0, "power": 0.0}]
            + [{"status": 0.0, "power": 0.0}] * 3
            + [{"status": 1.0, "power": 0.0}]
            + _taper(3.23, 3.0),
            False,
        ),
        # two sessions' tapers 3 h apart do not add up
        (_taper(2.97, 3.0) + [{"status": 0.0, "power": 0.0}] * 120 + _taper(2.97, 3.0), False),
        # a stuck session hours after a taper that left the band below 1 kW (those samples are not judged):
        # the taper's run is over, the stuck session is a run of its own
        (
            _taper(2.97, 12.0) + [{"status": 0.0, "power": 0.0}] * 180 + [{"status": 2.0, "power": 2.0}] * 62,
            True,
        ),
    ],
)
def test_shipped_stuck_session_part_of_the_power_for_an_hour(
    series: list[dict[str, float]], found: bool
) -> None:
    out = raised(feed(shipped(), CH, DeviceKind.CHARGER, series, t0=_cst(2026, 4, 10, 20)))
    assert (("rule:charger.stuck_part", "stuck_session") in out) is found
    assert ("rule:charger.stuck_slow", "stuck_session") not in out or series[0]["power"] < 1.0


def test_shipped_stuck_part_not_while_the_charger_derates_running_hot() -> None:
    # over 70 °C the charger halves its power: a 3.3 kW car draws 1.5 kW; the hot rule explains it
    hot = [{"status": 2.0, "power": 1.5, "temperature": 72.0}] * 90
    out = raised(feed(shipped(), CH, DeviceKind.CHARGER, hot, t0=_cst(2026, 4, 10, 20)))
    assert ("rule:charger.hot", "over_temperature") in out
    assert ("rule:charger.stuck_part", "stuck_session") not in out


def _warm(series: list[dict[str, float]], temperature: float = 30.0) -> list[dict[str, float]]:
    """The samples with the cabinet's temperature (the stuck_low and stuck_mid rules judge only below 65 °C)."""
    return [{**s, "temperature": temperature} for s in series]


@pytest.mark.parametrize(
    ("series", "found"),
    [
        ([{"status": 2.0, "power": 0.8}] * 7, True),  # 0.8 kW for 6 min
        ([{"status": 2.0, "power": 0.06}] * 7, True),  # 98% not delivered of a 3.3 kW car's 2.97 kW
        ([{"status": 2.0, "power": 0.0}] * 16, False),  # nothing: a charger faulting, its status late
        ([{"status": 2.0, "power": 0.8}] * 5, False),  # for 4 min
        ([{"status": 2.0, "power": 0.89}] * 40, False),  # the slowest car's taper floor (0.3 x 2.97 kW)
        (_taper(2.97, 12.0), False),
        ([{"status": 4.0, "power": 0.0}] * 30, False),  # SuspendedEV: the car is full
    ],
)
def test_shipped_stuck_low_under_any_healthy_taper_for_5_min(
    series: list[dict[str, float]], found: bool
) -> None:
    out = raised(feed(shipped(), CH, DeviceKind.CHARGER, _warm(series), t0=_cst(2026, 4, 10, 20)))
    assert (("rule:charger.stuck_low", "stuck_session") in out) is found


@pytest.mark.parametrize(
    ("series", "found"),
    [
        ([{"status": 2.0, "power": 4.5}] * 26, True),  # a 7 kW car throttled by a third, 25 min
        ([{"status": 2.0, "power": 3.35}] * 26, True),
        ([{"status": 2.0, "power": 5.8}] * 26, True),
        ([{"status": 2.0, "power": 4.5}] * 24, False),  # 23 min
        ([{"status": 2.0, "power": 3.23}] * 180, False),  # a 3.3 kW car at 98%
        ([{"status": 2.0, "power": 5.94}] * 180, False),  # a 6.6 kW car at 90%
        ([{"status": 2.0, "power": 8.0}] * 180, False),  # above the band (no rule of its own)
        (_taper(5.94, 12.0), False),  # the slowest taper through the band
        (_taper(10.3, 12.0), False),
        # hours after a taper that left the band below 3.3 kW (not judged): a run of its own
        (
            _taper(5.94, 12.0) + [{"status": 0.0, "power": 0.0}] * 180 + [{"status": 2.0, "power": 4.5}] * 26,
            True,
        ),
        # two 6.6 kW cars' tapers within the hour (the second wants 3 kWh: half an hour) do not add up
        (_taper(5.94, 3.0)[:-30] + _taper(5.94, 3.0), False),
        # 15 min, a 30 min pause of the site's load management (not counted), 12 min more: 27 within the hour
        (
            [{"status": 2.0, "power": 4.5}] * 15
            + [{"status": 3.0, "power": 0.0}] * 30
            + [{"status": 2.0, "power": 4.5}] * 12,
            True,
        ),
    ],
)
def test_shipped_stuck_mid_between_the_cars_powers(series: list[dict[str, float]], found: bool) -> None:
    out = raised(feed(shipped(), CH, DeviceKind.CHARGER, _warm(series), t0=_cst(2026, 4, 10, 20)))
    assert (("rule:charger.stuck_mid", "stuck_session") in out) is found


def test_shipped_stuck_low_and_mid_not_while_the_charger_derates_running_hot() -> None:
    # over 70 °C the charger halves its power: an 11 kW car draws 5 kW, a taper's floor 0.45 kW
    for kw in (5.0, 0.45):
        hot = _warm([{"status": 2.0, "power": kw}] * 90, 72.0)
        out = raised(feed(shipped(), CH, DeviceKind.CHARGER, hot, t0=_cst(2026, 4, 10, 20)))
        assert ("rule:charger.hot", "over_temperature") in out
        assert not {"rule:charger.stuck_low", "rule:charger.stuck_mid"} & {source for source, _ in out}
    # and without the cabinet's temperature neither judges
    bare = [{"status": 2.0, "power": 4.5}] * 60 + [{"status": 2.0, "power": 0.5}] * 30
    out = raised(feed(shipped(), CH, DeviceKind.CHARGER, bare, t0=_cst(2026, 4, 10, 20)))
    assert not {"rule:charger.stuck_low", "rule:charger.stuck_mid"} & {source for source, _ in out}


@pytest.mark.parametrize(("ratio", "found"), [(0.8, True), (0.88, False)])
def test_shipped_lamp_power_against_its_own_evening_and_dimmed_night(ratio: float, found: bool) -> None:
    t0 = _cst(2026, 4, 6, 0)

    def lamp(days: int, start: int, scale: float) -> list[dict[str, float]]:
        out = []
        for i in range(days * 288):
            hour = ((start + i * 5 * MIN) // 3_600_000 + 8) % 24  # local (UTC+8)
            if 5 <= hour < 19:
                out.append({"lamp_on": 0.0, "power": 0.4, "lamp_current": 0.002})
            else:  # lit; dimmed to 60% from midnight to 05:00
                watts = 60.0 * (0.6 if hour < 5 else 1.0) * scale
                out.append({"lamp_on": 1.0, "power": watts, "lamp_current": watts / 209})
        return out

    e = shipped()
    # the dimmed night (0.6 of the evening) is normal for this lamp: no finding while it learns and after
    assert raised(feed(e, SL, DeviceKind.STREETLIGHT, lamp(3, t0, 1.0), t0=t0, step=5 * MIN)) == []
    t1 = t0 + 3 * 86_400_000
    out = raised(feed(e, SL, DeviceKind.STREETLIGHT, lamp(1, t1, ratio), t0=t1, step=5 * MIN))
    assert (("rule:streetlight.power", "lamp_failure") in out) is found
    assert (("rule:streetlight.power_dimmed", "lamp_failure") in out) is found


CHANGE = """rules:
  - {name: week, kind: camera, type: change, metric: storage_free, lag: 2h, bucket: 1h, below: -1.0,
     for: 1h, fault: storage_full}"""


def test_change_against_the_same_bucket_a_lag_earlier() -> None:
    t0 = _cst(2026, 4, 6, 0)
    # a rhythm of 2 h: up and down by 3% every hour is normal; the same rhythm 1.5% lower is not
    rhythm = [10.0, 13.0] * 3
    lower = [x - 1.5 for x in [10.0, 13.0] * 4]
    samples = [{"storage_free": v} for v in rhythm for _ in range(60)]
    e = Engine(parse_rules(CHANGE, "t.yaml"), SITES)
    assert feed(e, CA, DeviceKind.CAMERA, samples, t0=t0) == []
    out = feed(
        e,
        CA,
        DeviceKind.CAMERA,
        [{"storage_free": v} for v in lower for _ in range(60)],
        t0=t0 + 6 * 3_600_000,
    )
    found = [f for f in out if f.state.value == "active"]
    assert [(f.source, f.fault) for f in found] == [("rule:week", "storage_full")]
    # judged on complete hours: the first lower hour is judged at 07:00, found an hour later
    assert found[0].started_ms == t0 + 7 * 3_600_000
    assert found[0].evidence["storage_free"] == pytest.approx(-1.5)
    e = Engine(parse_rules(CHANGE, "t.yaml"), SITES)  # 0.9% lower: within the rule's level
    almost = [{"storage_free": v - 0.9} for v in [10.0, 13.0] * 4 for _ in range(60)]
    assert feed(e, CA, DeviceKind.CAMERA, samples + almost, t0=t0) == []


def test_change_rule_levels() -> None:
    with pytest.raises(RulesError, match="exactly one of above, below"):
        parse_rules(CHANGE.replace("below: -1.0,", ""), "t.yaml")
    with pytest.raises(RulesError, match="lag must be at least one bucket"):
        parse_rules(CHANGE.replace("lag: 2h", "lag: 10m"), "t.yaml")


def test_a_change_rule_with_no_fault_has_its_own_summary() -> None:
    t0 = _cst(2026, 4, 6, 0)
    e = Engine(parse_rules(CHANGE.replace(", fault: storage_full", ""), "t.yaml"), SITES)
    values = [10.0] * 2 + [5.0] * 3
    out = feed(e, CA, DeviceKind.CAMERA, [{"storage_free": v} for v in values for _ in range(60)], t0=t0)
    assert [(f.fault, f.message) for f in out if f.state.value == "active"] == [
        (None, "{rule}: {device} far from its value at the same time before")
    ]
    assert e.errors == 0


def test_a_camera_failing_now_and_then_does_not_hide_a_neighbour_going_dark() -> None:
    t0 = _cst(2026, 6, 21, 12)
    a, b = f"{C}-CA0001", f"{C}-CA0002"
    e = Engine(parse_rules(TOGETHER, "t.yaml"), SITES)
    out: list[Finding] = []
    for i in range(60):
        ts = t0 + i * MIN
        flaky = 0.0 if i % 3 == 0 else 1.0  # a failed check every third minute: begins again and again
        out += e.on_samples(C, GW, [
            Sample(device=a, kind=DeviceKind.CAMERA, ts_ms=ts, values={"online": flaky}),
            Sample(device=b, kind=DeviceKind.CAMERA, ts_ms=ts + 5_000, values={"online": 0.0 if i >= 3 else 1.0}),
        ])  # fmt: skip
        out += e.tick(ts)
    assert [(f.device, f.started_ms) for f in out] == [(b, t0 + 3 * MIN + 5_000)]


DIP = """flap: 0
rules:
  - {name: dips, kind: streetlight, type: dip, metric: power, below: 0.95, window: 1h, at_least: 3,
     gap: 11m, when: [{metric: lamp_on, equals: 1}], fault: flicker}"""


def _lamp(watts: list[float]) -> list[dict[str, float]]:
    return [{"lamp_on": 1.0, "power": w} for w in watts]


def test_dip_counts_a_sample_below_both_neighbours_from_the_first_dip() -> None:
    t0 = _cst(2026, 4, 10, 20)
    # dips at samples 1, 3 and 5 (94.9 < 0.95 x 100): the third raises, the finding starts at the first
    watts = [100.0, 94.9, 100.0, 90.0, 100.0, 60.0, 100.0, 100.0]
    out = feed(Engine(parse_rules(DIP, "t.yaml"), SITES), SL, DeviceKind.STREETLIGHT, _lamp(watts), t0=t0,
               step=5 * MIN)  # fmt: skip
    assert raised(out) == [("rule:dips", "flicker")]
    assert out[0].started_ms == t0 + 5 * MIN and out[0].ts_ms == t0 + 30 * MIN
    # 95.1 is not below 0.95 x 100: two dips only
    watts[1] = 95.1
    out = feed(Engine(parse_rules(DIP, "t.yaml"), SITES), SL, DeviceKind.STREETLIGHT, _lamp(watts), t0=t0,
               step=5 * MIN)  # fmt: skip
    assert raised(out) == []


def test_dip_is_not_a_step_a_gap_or_a_lamp_switched_off() -> None:
    t0 = _cst(2026, 4, 10, 20)

    def found(series: list[dict[str, float]], step: int = 5 * MIN) -> list[tuple[str, str | None]]:
        e = Engine(parse_rules(DIP, "t.yaml"), SITES)
        return raised(feed(e, SL, DeviceKind.STREETLIGHT, series, t0=t0, step=step))

    # steps down and up (dimmed at midnight, back at 05:00, a failing lamp): never below both neighbours
    assert found(_lamp([100.0, 60.0, 60.0, 100.0, 100.0, 50.0, 50.0, 100.0, 40.0, 40.0])) == []
    # dips with neighbours more than 11 min away (a report lost between) are not counted
    assert found(_lamp([100.0, 90.0, 100.0, 90.0, 100.0, 90.0, 100.0]), step=12 * MIN) == []
    # the lamp switched off between (the guard leaves those samples out): no dip across the off time
    off = [{"lamp_on": 0.0, "power": 0.4}] * 2
    assert found(_lamp([100.0, 90.0]) + off + _lamp([100.0, 90.0]) + off + _lamp([100.0, 90.0, 100.0])) == []
    # three dips, but more than the 1 h window from the first to the third
    assert found(_lamp([100.0, 90.0, 100.0, 90.0] + [100.0] * 10 + [90.0, 100.0])) == []


def test_dip_rule_levels() -> None:
    with pytest.raises(RulesError, match="below"):
        parse_rules(DIP.replace("below: 0.95", "below: 1.2"), "t.yaml")
    with pytest.raises(RulesError, match="gap and window must be positive"):
        parse_rules(DIP.replace("gap: 11m", "gap: 0s"), "t.yaml")


@pytest.mark.parametrize(("dips", "found"), [(5, True), (4, False)])
def test_shipped_power_dips_five_in_48_h_are_a_flicker(dips: int, found: bool) -> None:
    t0 = _cst(2026, 4, 10, 19)
    series = []
    for i in range(10 * 12):  # 19:00 to 05:00, dimmed to 60% from midnight: a step, no dip
        watts = 60.0 * (0.6 if i >= 5 * 12 else 1.0)
        if i in (13, 37, 61, 85, 109)[:dips]:
            watts *= 0.94  # dark for 18 s of the 5-minute report
        series.append({"lamp_on": 1.0, "power": watts, "lamp_current": watts / 209})
    out = raised(feed(shipped(), SL, DeviceKind.STREETLIGHT, series, t0=t0, step=5 * MIN))
    assert (("rule:streetlight.power_dips", "flicker") in out) is found
    assert ("rule:streetlight.power", "lamp_failure") not in out


PROJECTED = """rules:
  - {name: fill, kind: camera, type: rate, metric: storage_free, window: 24h, below: -0.02, reaches: 0,
     within: 3d, for: 2h, fault: storage_full}"""


def _storage(days: float, start: float, per_day: float, *, wave: float = 0.0) -> list[dict[str, float]]:
    """Free space every 10 min: ``start`` falling by ``per_day``, plus a weekly wave of ``wave``."""
    n = int(days * 144)
    return [{"storage_free": round(start - per_day * i / 144 + wave * math.sin(2 * math.pi * i / 1008), 1)}
            for i in range(n)]  # fmt: skip


def test_free_space_projected_to_run_out_within_the_horizon() -> None:
    t0 = _cst(2026, 4, 6, 0)
    e = Engine(parse_rules(PROJECTED, "t.yaml"), SITES)
    # 3.2% free, filling at 1%/day: empty in about 3 days, from the first full day on
    out = feed(e, CA, DeviceKind.CAMERA, _storage(2, 3.2, 1.0), t0=t0, step=10 * MIN)
    found = [f for f in out if f.state.value == "active"]
    assert [(f.source, f.fault) for f in found] == [("rule:fill", "storage_full")]
    # judged each hour once 22 of the day's hours are in, and held for 2 h
    assert t0 + 22 * 3_600_000 <= found[0].started_ms <= t0 + 26 * 3_600_000
    assert found[0].evidence["storage_free"] == pytest.approx(-1.0 / 24, rel=0.1)  # the fitted %/h


@pytest.mark.parametrize(
    ("start", "per_day", "wave"),
    [
        (25.0, 1.0, 0.0),  # filling as fast, but 25% free: 25 days left
        (1.5, 0.0, 0.4),  # a recorder that overwrites: near full, its weekly rhythm only (0.36%/day at most)
        (8.0, 0.0, 1.5),  # one that keeps space free: its rhythm moves it by up to 1.35%/day, 8% free
    ],
)
def test_no_projection_finding_for_space_that_lasts(start: float, per_day: float, wave: float) -> None:
    e = Engine(parse_rules(PROJECTED, "t.yaml"), SITES)
    assert feed(e, CA, DeviceKind.CAMERA, _storage(4, start, per_day, wave=wave), t0=_cst(2026, 4, 6),
                step=10 * MIN) == []  # fmt: skip


def test_projection_levels() -> None:
    with pytest.raises(RulesError, match="both reaches and within"):
        parse_rules(PROJECTED.replace("within: 3d,", ""), "t.yaml")
    with pytest.raises(RulesError, match="within"):
        parse_rules(PROJECTED.replace("within: 3d", "within: 0"), "t.yaml")


def _shipped_only(name: str) -> Engine:
    rules = load_rules()
    return Engine(dataclasses.replace(rules, rules=tuple(r for r in rules.rules if r.name == name)), SITES)


def test_shipped_projection_a_slight_fill_from_its_first_day() -> None:
    t0 = _cst(2026, 4, 6, 0)
    # a recorder that overwrites, 2.6% free, filling at 0.6%/day: 2.0% left after a day, 3.3 days to empty.
    # Within 4 days: flagged once the day's fit is in (3 days waited until 1.8% was left, 34 h in)
    out = feed(_shipped_only("camera.storage_projected"), CA, DeviceKind.CAMERA, _storage(3, 2.6, 0.6), t0=t0,
               step=10 * MIN)  # fmt: skip
    found = [f for f in out if f.state.value == "active"]
    assert [(f.source, f.fault) for f in found] == [("rule:camera.storage_projected", "storage_full")]
    assert found[0].started_ms <= t0 + 28 * 3_600_000


@pytest.mark.parametrize(
    ("start", "wave"),
    [
        (3.0, 0.4),  # a recorder that overwrites with the most free space and its weekly rhythm (0.36%/day)
        (8.0, 1.5),  # one that keeps the least space free: its steepest fall (1.35%/day) at 8%, 5.9 days
    ],
)
def test_shipped_projection_not_for_a_healthy_recorders_week(start: float, wave: float) -> None:
    out = feed(_shipped_only("camera.storage_projected"), CA, DeviceKind.CAMERA, _storage(8, start, 0.0, wave=wave),
               t0=_cst(2026, 4, 6), step=10 * MIN)  # fmt: skip
    assert out == []


def test_shipped_day_burning_in_the_morning_from_ten_minutes_of_sun_above_the_horizon() -> None:
    from sitewatch.analytics.sun import solar_elevation, sunrise_sunset

    rise, sets = sunrise_sunset(_cst(2026, 4, 20, 12), 43.88, 125.32) or (0, 0)
    lit = {"lamp_on": 1.0, "power": 60.0, "lamp_current": 0.27}
    rule = "rule:streetlight.day_burning_morning"
    # put out 5 minutes after sunrise (the sun still a little under the horizon, without refraction): normal
    out = raised(feed(shipped(), SL, DeviceKind.STREETLIGHT, [lit] * 4, t0=rise - 10 * MIN, step=5 * MIN))
    assert out == []
    # burning past sunrise: found from the first report with the sun above the horizon, once it has
    # stayed lit there for 10 minutes (three reports), not after two
    out = feed(shipped(), SL, DeviceKind.STREETLIGHT, [lit] * 2, t0=rise + 10 * MIN, step=5 * MIN)
    assert solar_elevation(rise + 10 * MIN, 43.88, 125.32) > 0.0
    assert out == []
    found = [f for f in feed(shipped(), SL, DeviceKind.STREETLIGHT, [lit] * 3, t0=rise + 10 * MIN, step=5 * MIN)
             if f.state.value == "active"]  # fmt: skip
    assert [f.source for f in found] == [rule] and found[0].started_ms == rise + 10 * MIN
    # lit 40 min before sunset (a dark afternoon's first lamp): the afternoon waits for the sun at 1.5°
    # for 20 min, so three reports with the sun 4-6° up raise nothing
    assert solar_elevation(sets - 30 * MIN, 43.88, 125.32) > 3.0
    assert feed(shipped(), SL, DeviceKind.STREETLIGHT, [lit] * 3, t0=sets - 40 * MIN, step=5 * MIN) == []


SHORT = """flap: 0
rules:
  - {name: short, kind: streetlight, type: counter, metric: burning_hours, mode: short, per_hour: 1.0,
     below: 0.99, gap: 6m, window: 1h, steps: 3, when: [{metric: lamp_on, equals: 1}], fault: flicker}"""


def _hours(steps: list[float], start: float = 1000.0) -> list[dict[str, float]]:
    """A lit lamp's reports whose burning hours rose by ``steps`` (h) one report after the other."""
    out, h = [{"lamp_on": 1.0, "burning_hours": start}], start
    for s in steps:
        h = round(h + s, 3)
        out.append({"lamp_on": 1.0, "burning_hours": h})
    return out


def test_short_counts_steps_that_rose_less_than_the_time_between_from_the_first() -> None:
    t0 = _cst(2026, 4, 10, 20)
    # 5 min is 0.0833 h: 0.082 is under 0.99 x that, 0.083 (the register's 0.001 h steps) is not
    steps = [0.083, 0.082, 0.084, 0.082, 0.083, 0.081, 0.084]
    out = feed(Engine(parse_rules(SHORT, "t.yaml"), SITES), SL, DeviceKind.STREETLIGHT, _hours(steps), t0=t0,
               step=5 * MIN)  # fmt: skip
    assert raised(out) == [("rule:short", "flicker")]
    assert out[0].started_ms == t0 + 10 * MIN and out[0].ts_ms == t0 + 30 * MIN
    # the rounding of a normal lamp's register (0.083 and 0.084 by turns) is no short step
    out = feed(Engine(parse_rules(SHORT, "t.yaml"), SITES), SL, DeviceKind.STREETLIGHT,
               _hours([0.083, 0.084, 0.083] * 8), t0=t0, step=5 * MIN)  # fmt: skip
    assert raised(out) == []


def test_short_is_not_a_gap_a_dark_spell_a_reset_or_outside_the_window() -> None:
    t0 = _cst(2026, 4, 10, 20)

    def found(series: list[dict[str, float]], step: int = 5 * MIN) -> list[tuple[str, str | None]]:
        e = Engine(parse_rules(SHORT, "t.yaml"), SITES)
        return raised(feed(e, SL, DeviceKind.STREETLIGHT, series, t0=t0, step=step))

    # reports 7 min apart (a report lost): not judged, although 0.1 h is short of 0.117
    assert found(_hours([0.1] * 6), step=7 * MIN) == []
    # the lamp off between lit reports (its register still): steps across the dark are not judged
    off = {"lamp_on": 0.0, "burning_hours": 2000.0}
    lit = {"lamp_on": 1.0, "burning_hours": 2000.0}
    assert found([lit, off, lit, off, lit, off, lit]) == []
    # a register reset (a replaced controller) is no short step
    assert found(_hours([0.083, -500.0, 0.083, -500.0, 0.083, -500.0])) == []
    # three short steps, but more than the 1 h window from the first to the third
    assert found(_hours([0.082, 0.083, 0.082] + [0.083] * 12 + [0.082])) == []
    # the same three within the hour are a finding
    assert found(_hours([0.082, 0.083, 0.082, 0.083, 0.082])) == [("rule:short", "flicker")]


def test_short_rule_levels() -> None:
    with pytest.raises(RulesError, match="mode short needs window, per_hour and below"):
        parse_rules(SHORT.replace("per_hour: 1.0,", ""), "t.yaml")
    with pytest.raises(RulesError, match="below"):
        parse_rules(SHORT.replace("below: 0.99", "below: 1.0"), "t.yaml")
    with pytest.raises(RulesError, match="gap must be positive"):
        parse_rules(SHORT.replace("gap: 6m", "gap: 0s"), "t.yaml")


@pytest.mark.parametrize(("short", "found"), [(3, True), (2, False)])
def test_shipped_burning_short_three_in_6_h_are_a_flicker(short: int, found: bool) -> None:
    t0 = _cst(2026, 4, 10, 19)
    steps = [0.083, 0.084, 0.083] * 24  # 6 h of a lit lamp, its register's rounding by turns
    for i in (5, 30, 65)[:short]:
        steps[i] = 0.082  # dark for about 5 s between two reports
    series = _hours(steps)
    for s in series:
        s["power"] = 60.0
        s["lamp_current"] = 0.27
    out = raised(feed(shipped(), SL, DeviceKind.STREETLIGHT, series, t0=t0, step=5 * MIN))
    assert (("rule:streetlight.burning_short", "flicker") in out) is found


def test_shipped_a_lamp_whose_burning_hours_fall_short_is_a_flicker_not_a_failed_lamp() -> None:
    t0 = _cst(2026, 4, 10, 19)
    series, hours = [], 1000.0
    # two days lit at 60 W (the power rules learn them), then a flicker dark for 45 s a report
    for i in range(3 * 288):
        flicker = i >= 2 * 288
        hours = round(hours + (0.0708 if flicker else (0.083 if i % 3 else 0.084)), 3)
        watts = 60.0 * (0.85 if flicker else 1.0) * (0.7 if flicker and i % 2 else 1.0)
        series.append({"lamp_on": 1.0, "power": watts, "lamp_current": 0.27, "burning_hours": hours})
    out = raised(feed(shipped(), SL, DeviceKind.STREETLIGHT, series, t0=t0, step=5 * MIN))
    assert ("rule:streetlight.burning_short", "flicker") in out
    assert ("rule:streetlight.power", "lamp_failure") not in out
    assert ("rule:streetlight.power_dimmed", "lamp_failure") not in out


PEER_FLOOR = """rules:
  - {name: power, kind: streetlight, type: threshold, metric: power, baseline: true, learn: 5m, peer_floor: 0.9,
     below: 0.84, fault: lamp_failure}"""


def _lamps(e: Engine, watts: list[float], last: list[float], t0: int) -> list[Finding]:
    """Lamps SL0001... of one compound, each learning at its own power for 5 min, then the last one's
    powers ``last`` after its learning."""
    out: list[Finding] = []
    for n, w in enumerate(watts, start=1):
        series: list[Mapping[str, Any]] = [{"power": w}] * 6
        series += [{"power": p} for p in last] if n == len(watts) else []
        out += feed(e, f"{C}-SL{n:04d}", DeviceKind.STREETLIGHT, series, t0=t0)
    return out


def test_peer_floor_judges_a_lamp_that_learnt_while_failing_against_its_compound() -> None:
    t0 = _cst(2026, 6, 21, 21)
    # a lamp that learnt at 10 W among lamps at 60 W: its 10 W is 0.19 of 0.9 x 60, a lamp failure
    e = Engine(parse_rules(PEER_FLOOR, "t.yaml"), SITES)
    assert raised(_lamps(e, [60.0, 60.0, 60.0, 10.0], [10.0], t0)) == [("rule:power", "lamp_failure")]
    # while it learns, it is judged against its peers alone: a failure over before its learning ends
    e = Engine(parse_rules(PEER_FLOOR, "t.yaml"), SITES)
    out = _lamps(e, [60.0, 60.0, 60.0, 10.0], [], t0)
    assert raised(out) == [("rule:power", "lamp_failure")] and out[0].started_ms == t0
    e = Engine(parse_rules(PEER_FLOOR, "t.yaml"), SITES)  # healthy lamps learning together: nothing
    assert raised(_lamps(e, [60.0, 60.0, 59.0, 55.0], [], t0)) == []
    # fewer than 4 lamps of the compound have a normal: its own 10 W is its normal
    e = Engine(parse_rules(PEER_FLOOR, "t.yaml"), SITES)
    assert raised(_lamps(e, [60.0, 60.0, 10.0], [10.0], t0)) == []
    # learnt at 50 W (0.83 of the median): judged against 0.9 x 60 = 54 W, 45 W is 0.833 of it, below 0.84
    e = Engine(parse_rules(PEER_FLOOR, "t.yaml"), SITES)
    assert raised(_lamps(e, [60.0, 60.0, 60.0, 50.0], [45.0], t0)) == [("rule:power", "lamp_failure")]
    # learnt at 55 W (0.92 of the median, above the floor): its own normal, 47 W is 0.855 of it
    e = Engine(parse_rules(PEER_FLOOR, "t.yaml"), SITES)
    assert raised(_lamps(e, [60.0, 60.0, 60.0, 55.0], [47.0], t0)) == []
    # without peer_floor, the lamp that learnt at 10 W is never flagged
    e = Engine(parse_rules(PEER_FLOOR.replace(" peer_floor: 0.9,", ""), "t.yaml"), SITES)
    assert raised(_lamps(e, [60.0, 60.0, 60.0, 10.0], [10.0], t0)) == []


def test_peer_floor_takes_a_baseline() -> None:
    with pytest.raises(RulesError, match="peer_floor takes a baseline"):
        parse_rules(PEER_FLOOR.replace("baseline: true", "baseline: false"), "t.yaml")
    with pytest.raises(RulesError, match="peer_floor"):
        parse_rules(PEER_FLOOR.replace("peer_floor: 0.9", "peer_floor: 1.5"), "t.yaml")


def test_shipped_refusing_three_plug_ins_in_a_row_backing_out_not_two() -> None:
    t0 = _cst(2026, 4, 10, 18)
    refused = [{"status": 1.0}, {"status": 5.0}] + [{"status": 0.0}] * 120  # Preparing, Finishing, idle
    session = [{"status": 1.0}] + [{"status": 2.0, "power": 6.5}] * 60 + [{"status": 5.0}, {"status": 0.0}]
    two = raised(feed(shipped(), CH, DeviceKind.CHARGER, refused * 2 + session + refused, t0=t0))
    assert ("rule:charger.refusing", "charger_faulted") not in two  # a session between: no streak
    three = raised(feed(shipped(), CH, DeviceKind.CHARGER, refused * 3, t0=t0))
    assert three == [("rule:charger.refusing", "charger_faulted")]


def _step(before: float, after: float, minutes: int) -> list[dict[str, float]]:
    """A session at ``before`` kW for 20 min, then at ``after`` kW for ``minutes`` (a stall begun during it)."""
    return _warm([{"status": 2.0, "power": before}] * 20 + [{"status": 2.0, "power": after}] * minutes)


@pytest.mark.parametrize(
    ("series", "found"),
    [
        (_step(6.31, 3.1, 31), True),  # a 7 kW car stalled by half in a minute (seed 35), 30 min
        (_step(6.31, 3.1, 29), False),  # 28 min
        (_step(10.5, 7.3, 40), True),  # an 11 kW car stalled by 30.5%
        (_step(10.5, 7.5, 40), False),  # by 28.6%: not below 0.7 x the minute before
        (_step(6.5, 0.5, 40), True),  # most of the power (stuck_low's too)
        (_step(6.5, 0.0, 40), False),  # nothing at all: charger.stuck's
        # stepping down and coming back above 0.75 x the level within 30 min
        (_step(6.5, 3.2, 20) + _warm([{"status": 2.0, "power": 6.4}] * 20), False),
        (_warm(_taper(10.78, 20.0)), False),  # the fastest taper: at most about 12% a minute
        (_warm(_taper(2.97, 12.0)), False),
        # a pause of the site's load management, then the car at its taper's floor: not a step (the pause
        # leaves Charging for over 90 s)
        (
            _warm(
                [{"status": 2.0, "power": 6.5}] * 20
                + [{"status": 3.0, "power": 0.0}] * 30
                + [{"status": 2.0, "power": 2.0}] * 40
            ),
            False,
        ),
        # a 7 kW car's session ends, a 3.3 kW car plugs in at once: Finishing and Preparing between
        (
            _warm(
                [{"status": 2.0, "power": 6.5}] * 20
                + [{"status": 5.0, "power": 0.0}, {"status": 1.0, "power": 0.0}]
                + [{"status": 2.0, "power": 3.1}] * 40
            ),
            False,
        ),
    ],
)
def test_shipped_stuck_step_down_during_a_session(series: list[dict[str, float]], found: bool) -> None:
    out = raised(feed(shipped(), CH, DeviceKind.CHARGER, series, t0=_cst(2026, 4, 10, 20)))
    assert (("rule:charger.stuck_step", "stuck_session") in out) is found


def test_shipped_stuck_step_starts_at_the_step_and_not_while_the_charger_derates() -> None:
    t0 = _cst(2026, 4, 10, 20)
    out = feed(shipped(), CH, DeviceKind.CHARGER, _step(6.31, 3.1, 40), t0=t0)
    step = [f for f in out if f.source == "rule:charger.stuck_step"]
    assert step and step[0].started_ms == t0 + 20 * MIN
    # over 70 °C the charger halves its power (reported over 65 °C): the temperature guard leaves it out
    hot = [{"status": 2.0, "power": 6.5, "temperature": 64.0}] * 20 + [
        {"status": 2.0, "power": 3.25, "temperature": 68.5}
    ] * 40
    out = raised(feed(shipped(), CH, DeviceKind.CHARGER, hot, t0=t0))
    assert ("rule:charger.stuck_step", "stuck_session") not in out


def test_step_rule_levels() -> None:
    with pytest.raises(RulesError, match="clear must not be below"):
        parse_rules(
            "rules: [{name: s, kind: charger, type: step, metric: power, below: 0.7, clear: 0.6}]", "t.yaml"
        )
    with pytest.raises(RulesError):
        parse_rules("rules: [{name: s, kind: charger, type: step, metric: power, below: 1.2}]", "t.yaml")


def _cells(e: Engine, shares: list[float], t0: int, reports: int) -> list[Finding]:
    """Five lamps' photocells every 5 min from ``t0``: SL0001 reads ``shares[0]`` x 20,000 lx, the others theirs."""
    out: list[Finding] = []
    for i in range(reports):
        ts = t0 + i * 5 * MIN
        for n, share in enumerate(shares):
            lamp = f"{C}-SL{n + 1:04d}"
            out += e.on_samples(C, GW, [Sample(device=lamp, kind=DeviceKind.STREETLIGHT, ts_ms=ts + n * 1000,
                                               values={"ambient_light": 20_000.0 * share, "lamp_on": 0.0})])  # fmt: skip
        out += e.tick(ts + len(shares) * 1000)
    return out


def test_shipped_photocell_dark_under_0_3_of_the_compound_by_day_for_an_hour() -> None:
    noon = _cst(2026, 4, 20, 11)
    others = [0.6, 1.0, 1.1, 0.9]  # the median of the five is 0.9 (each pole's shade differs)
    rule = "rule:streetlight.photocell_dark"
    # 0.26 of the median (a dirty cell): judged from its second report (the first has no peers' readings
    # yet), found an hour later (14 reports), not after 13
    assert raised(_cells(shipped(), [0.235, *others], noon, 13)) == []
    found = [f for f in _cells(shipped(), [0.235, *others], noon, 14) if f.state.value == "active"]
    assert [(f.device, f.source, f.fault, f.started_ms) for f in found] == [(SL, rule, "day_burning", noon + 5 * MIN)]
    # its summary names the photocell, not a lamp burning by day (it may not burn yet), in both languages
    assert translate(found[0].message, "en", **found[0].params) == (
        f"Photocell of lamp {SL} reads dark in daylight: dirty or covered, the lamp may burn by day"
    )
    assert translate(found[0].message, "zh_CN", **found[0].params).startswith(f"路灯 {SL} 的光控探头白天读数偏暗")
    # 0.31 of the median (a pole in deep shade, or a cell just beginning to dirty): nothing
    assert raised(_cells(shipped(), [0.28, *others], noon, 24)) == []
