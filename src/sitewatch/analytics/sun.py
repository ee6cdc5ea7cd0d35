"""The sun's position for a place and time (NOAA's approximation, good to a fraction of a degree).

Pure functions on epoch milliseconds (UTC): ``solar_elevation`` for the day/night rules and
``sunrise_sunset`` for people and tests. The formulas are NOAA's general solar position
calculations (Global Monitoring Laboratory), which fit within about a minute of the full
algorithm between the polar circles.
"""

from __future__ import annotations

import math

MS_PER_DAY = 86_400_000
SUNRISE_ZENITH = 90.833  # degrees: the sun's upper limb on the horizon, with refraction


def _fraction_year(ts_ms: int) -> tuple[float, float]:
    """NOAA's fractional year (radians) and the UTC hour of ``ts_ms``."""
    days = ts_ms / MS_PER_DAY
    day = math.floor(days)
    hour = (days - day) * 24.0
    # day of the year (0-based) from the civil date of ``day`` days after 1970-01-01
    year, doy = _year_and_doy(day)
    length = 366 if _leap(year) else 365
    return 2.0 * math.pi / length * (doy + (hour - 12.0) / 24.0), hour


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _year_and_doy(day: int) -> tuple[int, int]:
    year = 1970 + day // 366
    while True:
        start = _days_before_year(year)
        if day < start:
            year -= 1
            continue
        if day >= start + (366 if _leap(year) else 365):
            year += 1
            continue
        return year, day - start


def _days_before_year(year: int) -> int:
    y = year - 1
    return y * 365 + y // 4 - y // 100 + y // 400 - 719_162  # days from 0001-01-01 to 1970-01-01


def _eqtime_decl(gamma: float) -> tuple[float, float]:
    """Equation of time (minutes) and solar declination (radians)."""
    eqtime = 229.18 * (
        0.000075 + 0.001868 * math.cos(gamma) - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma) - 0.040849 * math.sin(2 * gamma)
    )  # fmt: skip
    decl = (
        0.006918 - 0.399912 * math.cos(gamma) + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma) + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma) + 0.00148 * math.sin(3 * gamma)
    )  # fmt: skip
    return eqtime, decl


def solar_elevation(ts_ms: int, latitude: float, longitude: float) -> float:
    """The sun's elevation above the horizon in degrees at ``ts_ms`` (no refraction)."""
    gamma, hour = _fraction_year(ts_ms)
    eqtime, decl = _eqtime_decl(gamma)
    true_solar_min = hour * 60.0 + eqtime + 4.0 * longitude
    hour_angle = math.radians(true_solar_min / 4.0 - 180.0)
    lat = math.radians(latitude)
    cos_zenith = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(hour_angle)
    return 90.0 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))


def sunrise_sunset(day_ms: int, latitude: float, longitude: float) -> tuple[int, int] | None:
    """Sunrise and sunset (epoch ms, UTC) of the UTC day holding ``day_ms``, for the place.

    The solar day is the one whose solar noon falls on that UTC date; for places east of Greenwich
    the sunrise may lie on the UTC day before. None in polar day or night.
    """
    day_start = (day_ms // MS_PER_DAY) * MS_PER_DAY
    noon_guess = day_start + int((720.0 - 4.0 * longitude) * 60_000)
    gamma, _ = _fraction_year(noon_guess)
    eqtime, decl = _eqtime_decl(gamma)
    lat = math.radians(latitude)
    cos_ha = math.cos(math.radians(SUNRISE_ZENITH)) / (math.cos(lat) * math.cos(decl)) - math.tan(
        lat
    ) * math.tan(decl)
    if not -1.0 <= cos_ha <= 1.0:
        return None
    ha = math.degrees(math.acos(cos_ha))
    rise_min = 720.0 - 4.0 * (longitude + ha) - eqtime
    set_min = 720.0 - 4.0 * (longitude - ha) - eqtime
    return day_start + round(rise_min * 60_000), day_start + round(set_min * 60_000)
