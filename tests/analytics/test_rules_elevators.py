"""The shipped elevator rule for a passenger trapped without an alarm, at its edges."""

from __future__ import annotations

from typing import Any

import pytest

from sitewatch.analytics import Engine, Site, load_rules
from sitewatch.contract import DeviceKind

from .test_engine import feed

C = "220104-0003"
EL = f"{C}-EL0001"
T0 = 1_776_157_200_000  # 2026-04-14 09:00 UTC
RULE = ("rule:elevator.occupied_idle", "entrapment")


def raised(series: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    e = Engine(load_rules(), {C: Site(43.88, 125.32)})
    out = feed(e, EL, DeviceKind.ELEVATOR, series, t0=T0)
    return [(f.source, f.fault) for f in out if f.state.value == "active"]


def minutes(n: int, *, load: float = 30.0, state: float = 0.0, trips_every: int = 0) -> list[dict[str, Any]]:
    """``n`` minute polls of a car (trip count moving every ``trips_every`` minutes; 0: never)."""
    return [{"run_state": state, "car_load": load, "entrapment": 0.0,
             "trip_count": 1000.0 + (i // trips_every if trips_every else 0)} for i in range(n)]  # fmt: skip


@pytest.mark.parametrize(
    ("series", "found"),
    [
        (minutes(13), True),  # someone in an idle car, no trip for 10 min
        (minutes(9), False),  # not yet 10 min
        (minutes(40, load=0.0), False),  # an empty idle car
        (minutes(40, trips_every=3), False),  # a busy car: it keeps making trips
        (minutes(40, state=1.0), False),  # running (a long ride): not idle
        (minutes(40, load=4.0), False),  # the weighing's drift of an empty car
    ],
)
def test_an_occupied_idle_car_with_no_trip_for_ten_minutes_is_an_entrapment(
    series: list[dict[str, Any]], found: bool
) -> None:
    assert (RULE in raised(series)) is found
