"""The NOAA sun position: sunrise, sunset and elevation at a compound's latitude."""

from __future__ import annotations

import datetime as dt

import pytest

from sitewatch.analytics.sun import solar_elevation, sunrise_sunset

CST = dt.timezone(dt.timedelta(hours=8))
CHANGCHUN = (43.88, 125.32)


def _ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=CST).timestamp() * 1000)


@pytest.mark.parametrize(
    ("day", "rise", "set_"),
    [((2026, 6, 21), (3, 55), (19, 24)), ((2026, 12, 21), (7, 8), (16, 5))],  # almanac times, by hand
)
def test_sunrise_and_sunset_in_changchun(
    day: tuple[int, int, int], rise: tuple[int, int], set_: tuple[int, int]
) -> None:
    times = sunrise_sunset(_ms(*day, 12), *CHANGCHUN)
    assert times is not None
    assert abs(times[0] - _ms(*day, *rise)) <= 4 * 60_000
    assert abs(times[1] - _ms(*day, *set_)) <= 4 * 60_000


def test_elevation_at_the_edges_of_the_day() -> None:
    rise, set_ = sunrise_sunset(_ms(2026, 3, 20, 12), *CHANGCHUN) or (0, 0)
    # at sunrise and sunset the sun's centre is 0.833° below the horizon (refraction and its radius)
    assert solar_elevation(rise, *CHANGCHUN) == pytest.approx(-0.833, abs=0.15)
    assert solar_elevation(set_, *CHANGCHUN) == pytest.approx(-0.833, abs=0.15)
    assert solar_elevation(rise - 600_000, *CHANGCHUN) < -0.833 < solar_elevation(rise + 600_000, *CHANGCHUN)
    # noon at the June solstice: 90 - latitude + 23.44
    noon = max(solar_elevation(_ms(2026, 6, 21, 11, m), *CHANGCHUN) for m in range(0, 60, 2))
    assert noon == pytest.approx(90 - 43.88 + 23.44, abs=0.3)


def test_polar_night_has_no_sunrise() -> None:
    assert sunrise_sunset(_ms(2026, 12, 21, 12), 80.0, 15.0) is None
