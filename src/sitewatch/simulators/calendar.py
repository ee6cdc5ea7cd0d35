"""China's public holidays and make-up workdays, and how full a compound is on each day.

2023-2026 follow the State Council's yearly notices (国务院办公厅关于部分节假日安排的通知);
2027-2030 are projected from the lunar calendar's festival dates with the usual lengths
(Spring Festival and National Day seven days, the others three) and no make-up workdays. Outside
2023-2030 only New Year's Day, Labour Day and National Day (fixed dates) are known.

During Spring Festival many residents travel to their families: the compound empties (occupancy
0.55-0.8 by compound, lower in the middle of the holiday), water use and elevator trips fall, and
fewer cars charge. Other holidays follow the weekend's routine with a few residents away.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MS_PER_DAY = 86_400_000
LOCAL_OFFSET_MS = 8 * 3_600_000  # China Standard Time
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

# (name, first day, last day) of each holiday period, and the make-up workdays (weekend days worked).
_PERIODS: tuple[tuple[str, str, str], ...] = (
    ("new_year", "2023-01-01", "2023-01-02"), ("spring_festival", "2023-01-21", "2023-01-27"),
    ("qingming", "2023-04-05", "2023-04-05"), ("labour_day", "2023-04-29", "2023-05-03"),
    ("dragon_boat", "2023-06-22", "2023-06-24"), ("national_day", "2023-09-29", "2023-10-06"),
    ("new_year", "2023-12-30", "2024-01-01"), ("spring_festival", "2024-02-10", "2024-02-17"),
    ("qingming", "2024-04-04", "2024-04-06"), ("labour_day", "2024-05-01", "2024-05-05"),
    ("dragon_boat", "2024-06-08", "2024-06-10"), ("mid_autumn", "2024-09-15", "2024-09-17"),
    ("national_day", "2024-10-01", "2024-10-07"),
    ("new_year", "2025-01-01", "2025-01-01"), ("spring_festival", "2025-01-28", "2025-02-04"),
    ("qingming", "2025-04-04", "2025-04-06"), ("labour_day", "2025-05-01", "2025-05-05"),
    ("dragon_boat", "2025-05-31", "2025-06-02"), ("national_day", "2025-10-01", "2025-10-08"),
    ("new_year", "2026-01-01", "2026-01-03"), ("spring_festival", "2026-02-15", "2026-02-23"),
    ("qingming", "2026-04-04", "2026-04-06"), ("labour_day", "2026-05-01", "2026-05-05"),
    ("dragon_boat", "2026-06-19", "2026-06-21"), ("mid_autumn", "2026-09-25", "2026-09-27"),
    ("national_day", "2026-10-01", "2026-10-07"),
    ("new_year", "2027-01-01", "2027-01-03"), ("spring_festival", "2027-02-05", "2027-02-11"),
    ("qingming", "2027-04-03", "2027-04-05"), ("labour_day", "2027-05-01", "2027-05-05"),
    ("dragon_boat", "2027-06-09", "2027-06-11"), ("mid_autumn", "2027-09-15", "2027-09-17"),
    ("national_day", "2027-10-01", "2027-10-07"),
    ("new_year", "2028-01-01", "2028-01-03"), ("spring_festival", "2028-01-25", "2028-01-31"),
    ("qingming", "2028-04-02", "2028-04-04"), ("labour_day", "2028-05-01", "2028-05-05"),
    ("dragon_boat", "2028-05-27", "2028-05-29"), ("national_day", "2028-10-01", "2028-10-07"),
    ("new_year", "2029-01-01", "2029-01-01"), ("spring_festival", "2029-02-12", "2029-02-18"),
    ("qingming", "2029-04-04", "2029-04-06"), ("labour_day", "2029-05-01", "2029-05-05"),
    ("dragon_boat", "2029-06-16", "2029-06-18"), ("mid_autumn", "2029-09-22", "2029-09-24"),
    ("national_day", "2029-10-01", "2029-10-07"),
    ("new_year", "2030-01-01", "2030-01-01"), ("spring_festival", "2030-02-02", "2030-02-08"),
    ("qingming", "2030-04-05", "2030-04-07"), ("labour_day", "2030-05-01", "2030-05-05"),
    ("dragon_boat", "2030-06-05", "2030-06-07"), ("mid_autumn", "2030-09-12", "2030-09-14"),
    ("national_day", "2030-10-01", "2030-10-07"),
)  # fmt: skip
_WORKDAYS = (
    "2023-01-28", "2023-01-29", "2023-04-23", "2023-05-06", "2023-06-25", "2023-10-07", "2023-10-08",
    "2024-02-04", "2024-02-18", "2024-04-07", "2024-04-28", "2024-05-11", "2024-09-14", "2024-09-29",
    "2024-10-12", "2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11", "2026-01-04",
    "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10",
)  # fmt: skip
_FIXED = (
    ("new_year", 1, 1, 1),
    ("labour_day", 5, 1, 5),
    ("national_day", 10, 1, 7),
)  # (name, month, day, days)
_TABLE_YEARS = (2023, 2030)


def _epoch_day(iso: str) -> int:
    return (dt.date.fromisoformat(iso) - dt.date(1970, 1, 1)).days


@dataclass(frozen=True, slots=True)
class Holiday:
    """One holiday period: local days [first, last], both inclusive (days since 1970-01-01)."""

    name: str
    first: int
    last: int


def _build() -> tuple[int, npt.NDArray[np.int8], npt.NDArray[np.int8], list[Holiday]]:
    """Per local day from 2000 to 2040: 1 holiday / -1 make-up workday / 0 ordinary; Spring Festival days."""
    base = _epoch_day("2000-01-01")
    n = _epoch_day("2041-01-01") - base
    kind = np.zeros(n, dtype=np.int8)
    spring = np.zeros(n, dtype=np.int8)  # 1 inside Spring Festival, 2 in the days around it
    periods = [Holiday(name, _epoch_day(a), _epoch_day(b)) for name, a, b in _PERIODS]
    for year in range(2000, 2041):
        if _TABLE_YEARS[0] <= year <= _TABLE_YEARS[1]:
            continue
        for name, month, day, days in _FIXED:
            first = _epoch_day(dt.date(year, month, day).isoformat())
            periods.append(Holiday(name, first, first + days - 1))
    for p in periods:
        kind[p.first - base : p.last - base + 1] = 1
        if p.name == "spring_festival":
            spring[p.first - base - 4 : p.last - base + 4] = 2
            spring[p.first - base : p.last - base + 1] = 1
    for iso in _WORKDAYS:
        kind[_epoch_day(iso) - base] = -1
    return base, kind, spring, sorted(periods, key=lambda p: p.first)


_BASE, _KIND, _SPRING, HOLIDAYS = _build()


def local_day(ts_ms: I64) -> I64:
    """Local (UTC+8) day number since 1970-01-01."""
    return np.floor_divide(ts_ms + LOCAL_OFFSET_MS, MS_PER_DAY).astype(np.int64)


def _index(day: I64) -> I64:
    return np.clip(day - _BASE, 0, len(_KIND) - 1)


def rest_day(ts_ms: I64) -> B:
    """Days residents follow the weekend routine: weekends and holidays, but not make-up workdays."""
    day = local_day(ts_ms)
    kind = _KIND[_index(day)]
    weekend = np.mod(day + 3, 7) >= 5
    return np.asarray((kind == 1) | (weekend & (kind != -1)), dtype=bool)


def occupancy(ts_ms: I64, away: float) -> F64:
    """Share of residents at home (1 on ordinary days); ``away`` (0.2-0.45) is how much of the
    compound travels at Spring Festival, a quarter of that on other holidays."""
    day = local_day(ts_ms)
    i = _index(day)
    out = np.ones(ts_ms.shape, dtype=np.float64)
    out = np.where(_KIND[i] == 1, 1.0 - 0.25 * away, out)
    out = np.where(_SPRING[i] == 2, 1.0 - 0.4 * away, out)  # leaving before, coming back after
    return np.where(_SPRING[i] == 1, 1.0 - away, out)


def holidays_between(start_ms: int, end_ms: int) -> Iterator[tuple[Holiday, int, int]]:
    """Holiday periods overlapping [start_ms, end_ms), with their span in epoch ms (local midnights)."""
    for h in HOLIDAYS:
        a, b = h.first * MS_PER_DAY - LOCAL_OFFSET_MS, (h.last + 1) * MS_PER_DAY - LOCAL_OFFSET_MS
        if a < end_ms and b > start_ms:
            yield h, a, b
