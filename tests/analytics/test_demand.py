"""The ``demand`` rule (an elevator idle while its usual demand says it should be running) at its edges."""

from __future__ import annotations

from collections.abc import Iterable

from sitewatch.analytics import Engine, Site, parse_rules
from sitewatch.contract import DeviceKind, Finding, FindingState, Sample

C = "220104-0003"
GW = f"{C}-GW01"
EL = f"{C}-EL0001"
MONDAY = 1_775_404_800_000  # 2026-04-06 00:00 in Asia/Shanghai
STEP = 10 * 60_000
HOUR = 3_600_000
RULES = """flap: 0
rules:
  - {name: idle, kind: elevator, type: demand, metric: trip_count, expected: 5, learn: 1d, alpha: 1,
     when: [{metric: run_state, below: 3.5}], fault: out_of_service}"""


def engine() -> Engine:
    return Engine(parse_rules(RULES, "test.yaml"), {C: Site(43.88, 125.32)})


def feed(e: Engine, rows: Iterable[tuple[int, float, float]]) -> list[Finding]:
    out: list[Finding] = []
    for ts, trips, state in rows:
        values = {"trip_count": trips, "run_state": state}
        out += e.on_samples(C, GW, [Sample(device=EL, kind=DeviceKind.ELEVATOR, ts_ms=ts, values=values)])
        out += e.tick(ts)
    return out


def busy(start: int, hours: float, first: float, *, day_only: bool = False) -> list[tuple[int, float, float]]:
    """One trip every 10 minutes (6 an hour); with ``day_only`` none between 20:00 and 08:00 local."""
    rows, trips = [], first
    for i in range(int(hours * 6)):
        ts = start + i * STEP
        local_hour = (ts + 8 * HOUR) // HOUR % 24
        if not day_only or 8 <= local_hour < 20:
            trips += 1
        rows.append((ts, trips, 0.0))
    return rows


def still(start: int, minutes: int, trips: float, step: int = STEP) -> list[tuple[int, float, float]]:
    return [(start + i * step, trips, 0.0) for i in range(1, minutes * 60_000 // step + 1)]


def test_raised_when_the_expected_trips_reach_the_level_and_cleared_by_the_next_trip() -> None:
    e = engine()
    learnt = busy(MONDAY, 30, 0.0)  # 30 h at 6 trips an hour: past the day of learning
    last_ts, trips = learnt[-1][0], learnt[-1][1]
    out = feed(e, learnt)
    assert out == []
    out = feed(e, still(last_ts, 50, trips))  # 5 samples x 10 min x 6/h = 5 expected trips
    assert [(f.state, f.started_ms, f.ts_ms) for f in out] == [
        (FindingState.ACTIVE, last_ts, last_ts + 5 * STEP)
    ]
    assert out[0].fault == "out_of_service" and out[0].evidence["trip_count"] >= 5.0
    out = feed(e, [(last_ts + 6 * STEP, trips + 1, 0.0)])
    assert [(f.state, f.ended_ms) for f in out] == [(FindingState.CLEARED, last_ts + 6 * STEP)]


def test_just_under_the_level_or_before_the_learning_is_over_nothing() -> None:
    e = engine()
    learnt = busy(MONDAY, 30, 0.0)
    last_ts, trips = learnt[-1][0], learnt[-1][1]
    feed(e, learnt)
    assert feed(e, [*still(last_ts, 40, trips), (last_ts + 5 * STEP, trips + 1, 0.0)]) == []  # 4 expected
    e = engine()
    early = busy(MONDAY, 10, 0.0)  # still learning: a long stop says nothing
    assert feed(e, [*early, *still(early[-1][0], 300, early[-1][1])]) == []


def test_a_quiet_night_is_what_the_device_always_does() -> None:
    e = engine()
    out = feed(e, busy(MONDAY, 24 * 4, 0.0, day_only=True))  # trips by day only, four days
    assert out == []


def test_a_data_gap_is_no_idle_time_and_guarded_states_are_skipped() -> None:
    e = engine()
    learnt = busy(MONDAY, 30, 0.0)
    last_ts, trips = learnt[-1][0], learnt[-1][1]
    feed(e, learnt)
    # nothing heard for 5 hours, then one sample: only 10 minutes (the gap) count
    assert feed(e, [(last_ts + 5 * HOUR, trips, 0.0), (last_ts + 5 * HOUR + STEP, trips + 1, 0.0)]) == []
    # in maintenance (run_state 5) the rule does not look
    t = last_ts + 5 * HOUR + STEP
    assert feed(e, [(t + i * STEP, trips + 1, 5.0) for i in range(1, 12)]) == []


def test_hours_of_an_open_finding_are_not_learnt() -> None:
    e = engine()
    learnt = busy(MONDAY, 30, 0.0)
    last_ts, trips = learnt[-1][0], learnt[-1][1]
    feed(e, learnt)
    out = feed(e, still(last_ts, 6 * 60, trips))  # six hours stopped: one finding
    assert [f.state for f in out] == [FindingState.ACTIVE]
    back = last_ts + 6 * HOUR
    out = feed(e, busy(back, 3, trips))
    assert [f.state for f in out] == [FindingState.CLEARED]
    # the six idle hours did not lower the learnt demand: a new stop is found as fast as before
    again, trips = back + 3 * HOUR - STEP, trips + 18
    out = feed(e, still(again, 50, trips))
    assert [f.state for f in out] == [FindingState.ACTIVE]


def test_rules_file_checks_the_demand_rule() -> None:
    rules = parse_rules(RULES, "test.yaml")
    (rule,) = rules.rules
    assert rule.learn == 86_400_000 and rule.gap == 600_000 and rule.expected == 5


def test_the_learnt_demand_survives_a_checkpoint() -> None:
    e = engine()
    learnt = busy(MONDAY, 30, 0.0)
    last_ts, trips = learnt[-1][0], learnt[-1][1]
    feed(e, learnt)
    restored = Engine.restore(e.snapshot(), parse_rules(RULES, "test.yaml"), {C: Site(43.88, 125.32)})
    out = feed(restored, still(last_ts, 50, trips))
    assert [(f.state, f.started_ms) for f in out] == [(FindingState.ACTIVE, last_ts)]
