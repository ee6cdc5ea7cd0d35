"""Local time, daily and weekly activity profiles, sun position, seasons and weather, vectorised over ms
timestamps. Residents follow the weekend routine on weekends and public holidays (China's calendar,
with its make-up workdays: :mod:`sitewatch.simulators.calendar`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .calendar import rest_day

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

UTC_OFFSET_H = 8.0  # China Standard Time, no daylight saving
MS_PER_H = 3_600_000
MS_PER_DAY = 86_400_000


def local_hour(ts_ms: I64) -> F64:
    """Hour of the local day, 0 <= h < 24."""
    return np.mod(ts_ms / MS_PER_H + UTC_OFFSET_H, 24.0)


def local_day(ts_ms: I64) -> I64:
    """Local day number since 1970-01-01."""
    return np.floor_divide(ts_ms + int(UTC_OFFSET_H * MS_PER_H), MS_PER_DAY).astype(np.int64)


def _bumps(h: F64, bumps: tuple[tuple[float, float, float], ...], floor: float) -> F64:
    out = np.full_like(h, floor)
    for centre, width, height in bumps:
        d = np.minimum(np.abs(h - centre), 24.0 - np.abs(h - centre))  # circular distance
        out += height * np.exp(-0.5 * (d / width) ** 2)
    return out


def _table(bumps: tuple[tuple[float, float, float], ...], floor: float) -> F64:
    h = (np.arange(288, dtype=np.float64) + 0.5) / 12.0
    v = _bumps(h, bumps, floor)
    return np.asarray(v / v.mean(), dtype=np.float64)  # mean 1 over the day


# Residents' routines: (centre hour, width h, height) over a floor; weekday and weekend differ.
_HOME_WEEKDAY = _table(((7.3, 0.9, 3.0), (12.0, 1.0, 1.0), (18.6, 1.6, 2.6), (21.5, 1.0, 1.2)), 0.08)
_HOME_WEEKEND = _table(((9.0, 1.5, 2.2), (12.3, 1.2, 1.4), (18.3, 1.8, 2.2), (21.5, 1.2, 1.2)), 0.10)
_WATER_WEEKDAY = _table(((7.0, 0.8, 3.2), (12.0, 1.0, 1.2), (19.5, 1.5, 2.8), (22.0, 0.8, 1.2)), 0.06)
_WATER_WEEKEND = _table(((8.8, 1.4, 2.6), (12.3, 1.1, 1.5), (19.3, 1.7, 2.6), (22.0, 1.0, 1.2)), 0.07)
_CHARGE_WEEKDAY = _table(((8.0, 1.0, 0.4), (13.0, 2.0, 0.3), (19.0, 1.6, 2.5), (21.5, 1.2, 1.2)), 0.05)
_CHARGE_WEEKEND = _table(((11.0, 2.5, 0.8), (17.5, 2.0, 1.5), (21.0, 1.5, 1.0)), 0.06)


def _lookup(ts_ms: I64, weekday: F64, weekend: F64) -> F64:
    slot = np.floor(local_hour(ts_ms) * 12.0).astype(np.int64) % 288
    return np.where(rest_day(ts_ms), weekend[slot], weekday[slot])


def summer(ts_ms: I64) -> F64:
    """+1 at the height of summer (about 19 July), -1 at the depth of winter, smooth in between."""
    days = ts_ms / MS_PER_DAY
    return np.asarray(np.cos(2.0 * np.pi * (np.mod(days, 365.2422) - 200.0) / 365.2422), dtype=np.float64)


def people_activity(ts_ms: I64) -> F64:
    """Residents moving in and out (elevator trips, camera scenes); mean 1 over a day."""
    return _lookup(ts_ms, _HOME_WEEKDAY, _HOME_WEEKEND)


def water_demand(ts_ms: I64) -> F64:
    """Household water demand: morning and evening peaks, low night flow; mean 1 over a day and a year.

    Summer days use about 15% more than the yearly mean (showers), winter days 15% less.
    """
    return np.asarray(_lookup(ts_ms, _WATER_WEEKDAY, _WATER_WEEKEND) * (1.0 + 0.15 * summer(ts_ms)),
                      dtype=np.float64)  # fmt: skip


def charging_arrivals(ts_ms: I64) -> F64:
    """Cars plugging in at home: mostly after work; mean 1 over a day, 15% more in summer, 15% less in winter."""
    return np.asarray(_lookup(ts_ms, _CHARGE_WEEKDAY, _CHARGE_WEEKEND) * (1.0 + 0.15 * summer(ts_ms)),
                      dtype=np.float64)  # fmt: skip


def solar_elevation(ts_ms: I64, latitude: float, longitude: float) -> F64:
    """Sun elevation above the horizon in degrees (NOAA approximation, good to a fraction of a degree)."""
    days = ts_ms / MS_PER_DAY  # since 1970-01-01 UTC
    day_of_year = np.mod(days - 0.0, 365.2422)  # 1970-01-01 is day 0 of a tropical year, close enough
    gamma = 2.0 * np.pi / 365.0 * day_of_year
    eqtime = 229.18 * (0.000075 + 0.001868 * np.cos(gamma) - 0.032077 * np.sin(gamma)
                       - 0.014615 * np.cos(2 * gamma) - 0.040849 * np.sin(2 * gamma))  # fmt: skip
    decl = (0.006918 - 0.399912 * np.cos(gamma) + 0.070257 * np.sin(gamma) - 0.006758 * np.cos(2 * gamma)
            + 0.000907 * np.sin(2 * gamma) - 0.002697 * np.cos(3 * gamma) + 0.00148 * np.sin(3 * gamma))  # fmt: skip
    utc_minutes = np.mod(ts_ms / 60_000.0, 1440.0)
    true_solar = np.mod(utc_minutes + eqtime + 4.0 * longitude, 1440.0)
    hour_angle = np.radians(true_solar / 4.0 - 180.0)
    lat = np.radians(latitude)
    cos_zenith = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    return np.asarray(90.0 - np.degrees(np.arccos(np.clip(cos_zenith, -1.0, 1.0))), dtype=np.float64)


def _hash01(day: I64, salt: float) -> F64:
    """A deterministic pseudo-random number in [0, 1) per day (weather that is the same for every device)."""
    x = np.sin(day.astype(np.float64) * 12.9898 + salt * 78.233) * 43758.5453
    return np.asarray(x - np.floor(x), dtype=np.float64)


def _day_of_year(day: I64) -> F64:
    return np.asarray(np.mod(day.astype(np.float64), 365.2422), dtype=np.float64)


def dark_afternoon(day: I64, salt: float = 0.0) -> npt.NDArray[np.bool_]:
    """Overcast or snowy winter days (mid-November to mid-February, about one in eight) whose
    afternoons are dark enough for photocells to switch the lamps on 30-90 minutes early."""
    doy = _day_of_year(day)
    winter = (doy >= 319.0) | (doy < 46.0)
    return np.asarray(winter & (_hash01(day, salt + 2.0) < 0.12), dtype=bool)


def heat_day(day: I64, salt: float = 0.0) -> npt.NDArray[np.bool_]:
    """Hot summer days (June to August, about one in eleven): 7 °C above the season."""
    doy = _day_of_year(day)
    return np.asarray((doy >= 160.0) & (doy < 240.0) & (_hash01(day, salt + 3.0) < 0.09), dtype=bool)


def ambient_light(ts_ms: I64, latitude: float, longitude: float, salt: float = 0.0) -> F64:
    """Outdoor illuminance in lux: twilight, daylight and a cloud factor that changes day by day;
    on a dark winter afternoon the light from 13:00 falls to a few hundredths."""
    elev = solar_elevation(ts_ms, latitude, longitude)
    day_no = local_day(ts_ms)
    cloud = 0.25 + 0.75 * _hash01(day_no, salt)
    gloom = 0.003 + 0.012 * _hash01(day_no, salt + 4.0)
    cloud = np.where(dark_afternoon(day_no, salt) & (local_hour(ts_ms) >= 13.0), cloud * gloom, cloud)
    day = 120_000.0 * np.sin(np.radians(np.clip(elev, 0.0, 90.0))) ** 1.15 * cloud
    twilight = 400.0 * np.exp(np.clip(elev, -12.0, 0.0) / 1.2) * cloud  # civil twilight, ~0 below -6°
    return np.asarray(np.where(elev > 0.0, np.maximum(day, 400.0 * cloud), twilight), dtype=np.float64)


def air_temperature(ts_ms: I64, salt: float = 0.0) -> F64:
    """Outdoor air temperature in °C for a north-east China city: cold winters, warm summers."""
    days = ts_ms / MS_PER_DAY
    season = 5.5 - 20.0 * np.cos(2.0 * np.pi * (np.mod(days, 365.2422) - 15.0) / 365.2422)
    diurnal = 5.0 * np.cos(2.0 * np.pi * (local_hour(ts_ms) - 14.5) / 24.0)
    day = local_day(ts_ms)
    weather = 6.0 * (_hash01(day, salt + 1.0) - 0.5) + np.where(heat_day(day, salt), 7.0, 0.0)
    return np.asarray(season + diurnal + weather, dtype=np.float64)


def sunshine(ts_ms: I64, latitude: float, longitude: float, salt: float = 0.0) -> F64:
    """0..1: how much direct sun falls on an outdoor cabinet (sun height and the day's clear sky)."""
    elev = solar_elevation(ts_ms, latitude, longitude)
    clear = 1.0 - _hash01(local_day(ts_ms), salt)
    return np.asarray(np.clip(np.sin(np.radians(np.clip(elev, 0.0, 90.0))) * 1.4, 0.0, 1.0) * clear,
                      dtype=np.float64)  # fmt: skip
