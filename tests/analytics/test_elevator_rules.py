"""The shipped elevator rules at their edges: doors held open (in a loaded or an empty car), door faults
within a day, a stray door fault after a burst."""

from __future__ import annotations

from sitewatch.analytics import Engine, Site, load_rules
from sitewatch.contract import DeviceKind, Finding, Sample

C = "220104-0003"
GW = f"{C}-GW01"
EL = f"{C}-EL0001"
T0 = 1_775_404_800_000  # 2026-04-06 00:00 in Asia/Shanghai, a Monday
MIN = 60_000
IDLE, DOOR_OPEN = 0.0, 3.0


def run(rows: list[dict[str, float]], t0: int = T0) -> list[Finding]:
    e = Engine(load_rules(), {C: Site(43.88, 125.32)})
    out: list[Finding] = []
    for i, values in enumerate(rows):
        ts = t0 + i * MIN
        out += e.on_samples(C, GW, [Sample(device=EL, kind=DeviceKind.ELEVATOR, ts_ms=ts, values=values)])
        out += e.tick(ts)
    return out


def doors(open_polls: int) -> list[dict[str, float]]:
    """30 polls with the doors open in ``open_polls`` of them, never two in a row."""
    states = [DOOR_OPEN if i % 4 == 0 and i // 4 < open_polls else IDLE for i in range(30)]
    return [{"run_state": s, "trip_count": 100.0 + i, "door_faults": 0.0} for i, s in enumerate(states)]


def test_doors_open_in_7_of_30_polls_is_a_burst_6_is_a_busy_car() -> None:
    assert [f for f in run(doors(6)) if f.fault == "door_fault_burst"] == []
    found = [f for f in run(doors(7)) if f.fault == "door_fault_burst"]
    assert [f.source for f in found] == ["rule:elevator.door_held_open"]


def test_doors_open_in_an_empty_car_in_3_of_30_polls_is_a_door_that_will_not_close() -> None:
    def empty(open_polls: int, load: float) -> list[dict[str, float]]:
        return [r | {"car_load": load if r["run_state"] == DOOR_OPEN else 0.0} for r in doors(open_polls)]

    def bursts(rows: list[dict[str, float]]) -> list[Finding]:
        return [f for f in run(rows) if f.fault == "door_fault_burst"]

    assert bursts(empty(2, 0.0)) == []
    found = bursts(empty(3, 0.0))
    assert [(f.source, f.started_ms) for f in found] == [("rule:elevator.door_open_empty", T0)]
    assert bursts(empty(6, 60.0)) == []  # riders in the car: a busy car's doors
    assert bursts(empty(6, 4.0)) != []  # under 5 kg: nobody in it


def test_two_door_faults_within_a_day() -> None:
    def faults(gap_min: int) -> list[dict[str, float]]:
        rows = [{"run_state": IDLE, "door_faults": 5.0} for _ in range(gap_min + 2)]
        rows[1]["door_faults"] = 6.0
        for r in rows[2:]:
            r["door_faults"] = 6.0
        rows[-1]["door_faults"] = 7.0
        return rows

    def bursts(rows: list[dict[str, float]]) -> list[Finding]:
        return [f for f in run(rows) if f.source == "rule:elevator.door_faults"]

    assert len(bursts(faults(23 * 60))) == 1  # the second 23 h after the first
    assert bursts(faults(25 * 60)) == []


def test_a_stray_door_fault_within_a_day_of_a_bursts_last_one_continues_its_finding() -> None:
    """Door faults at 1 h and 11 h (a finding until 25 h, when the first leaves the day), then one at 34 h,
    within a day of the second: the same finding, not a second one 9 h after the first cleared."""
    hours = 40
    at = {60: 1.0, 11 * 60: 1.0, 34 * 60: 1.0}
    count, rows = 5.0, []
    for i in range(hours * 60):
        count += at.get(i, 0.0)
        rows.append({"run_state": IDLE, "door_faults": count})
    found = [f for f in run(rows) if f.source == "rule:elevator.door_faults"]
    assert len({f.id for f in found}) == 1
    assert found[0].started_ms == T0 + 11 * 60 * MIN
