"""Time windows in a time zone: fixed lengths aligned to local midnight, calendar days, weeks, months.

Both stores cut a time range the same way, from a *plan*: a list of runs, each a stretch of
windows of one length laid end to end (``Run``). A run is what one InfluxQL ``GROUP BY time(length,
offset)`` can compute, and what one arithmetic expression in SQL can: in a zone without daylight
saving (Asia/Shanghai) hourly or daily windows over any range are one run; a month is a run of its
own (months differ in length) unless the next month has the same length; a day on which the clocks
change is cut window by window at its wall-clock boundaries.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_MS = 86_400_000
DEFAULT_TIMEZONE = "Asia/Shanghai"

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000}
_LENGTH_RE = re.compile(r"^(\d+)(ms|s|min|m|h)$")
_CALENDAR_WORDS = {
    "1d": "day", "d": "day", "day": "day", "1day": "day",
    "1w": "week", "w": "week", "week": "week", "1week": "week",
    "1mo": "month", "mo": "month", "month": "month", "1month": "month",
}  # fmt: skip


class Calendar(StrEnum):
    """Calendar windows: local days, weeks starting on Monday, months starting on the 1st."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Window:
    """How a range is cut: a fixed length that divides a day (aligned to local midnight), or a
    calendar day, week (Monday) or month. A length of one day is the calendar day."""

    length_ms: int | None = None
    calendar: Calendar | None = None

    def __post_init__(self) -> None:
        if self.length_ms == DAY_MS and self.calendar is None:
            object.__setattr__(self, "length_ms", None)
            object.__setattr__(self, "calendar", Calendar.DAY)
        if (self.length_ms is None) == (self.calendar is None):
            raise ValueError("a window is either a length or a calendar unit")
        if self.length_ms is not None and (self.length_ms <= 0 or DAY_MS % self.length_ms):
            raise ValueError(
                f"a window of {self.length_ms} ms does not divide a day: use a length that does "
                "(1m, 5m, 15m, 1h, 6h, ...) or a calendar day, week or month (1d, 1w, 1mo)"
            )

    @classmethod
    def parse(cls, text: str) -> Window:
        """``15m``, ``1h``, ``500ms`` (lengths dividing a day) or ``1d``, ``1w``, ``1mo`` (calendar)."""
        value = text.strip().lower()
        if value in _CALENDAR_WORDS:
            return cls(calendar=Calendar(_CALENDAR_WORDS[value]))
        match = _LENGTH_RE.match(value)
        if not match:
            raise ValueError(
                f"{text!r} is not a window: use a length that divides a day (1m, 15m, 1h, 6h) "
                "or a calendar unit (1d, 1w, 1mo)"
            )
        return cls(length_ms=int(match.group(1)) * _UNIT_MS[match.group(2)])

    def __str__(self) -> str:
        if self.calendar is not None:
            return {"day": "1d", "week": "1w", "month": "1mo"}[self.calendar.value]
        length = self.length_ms or 0
        for unit, ms in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
            if length % ms == 0:
                return f"{length // ms}{unit}"
        return f"{length}ms"


@dataclass(frozen=True, slots=True)
class Run:
    """Windows of ``length_ms`` laid end to end from ``start_ms``; the last may end early at ``end_ms``."""

    start_ms: int
    end_ms: int
    length_ms: int

    @property
    def offset_ms(self) -> int:
        """Where the windows fall relative to the epoch: ``start_ms`` modulo the length."""
        return self.start_ms % self.length_ms

    def window_of(self, ts_ms: int) -> int:
        """Start of the window of this run that holds ``ts_ms``."""
        return ts_ms - (ts_ms - self.start_ms) % self.length_ms

    def windows(self) -> Iterator[tuple[int, int]]:
        """Each window as (start, end)."""
        for start in range(self.start_ms, self.end_ms, self.length_ms):
            yield start, min(start + self.length_ms, self.end_ms)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The time zone called ``name`` (IANA name, e.g. Asia/Shanghai); ValueError if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai or UTC)"
        ) from None


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _midnight(day: date, tz: ZoneInfo) -> int:
    return _ms(datetime(day.year, day.month, day.day, tzinfo=tz))


def _offset(ts_ms: int, tz: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(ts_ms / 1000, tz).utcoffset()


def _local_date(ts_ms: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(tz).date()


def _periods(start_ms: int, end_ms: int, calendar: Calendar, tz: ZoneInfo) -> Iterator[tuple[int, int]]:
    """Local days, weeks or months from the one holding ``start_ms`` until one starts at ``end_ms``."""
    day = _local_date(start_ms, tz)
    if calendar is Calendar.WEEK:
        day -= timedelta(days=day.weekday())
    elif calendar is Calendar.MONTH:
        day = day.replace(day=1)
    begin = _midnight(day, tz)
    while begin < end_ms:
        if calendar is Calendar.DAY:
            following = day + timedelta(days=1)
        elif calendar is Calendar.WEEK:
            following = day + timedelta(days=7)
        else:
            following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        end = _midnight(following, tz)
        yield begin, end
        day, begin = following, end


def _day_runs(begin: int, end: int, length: int, day: date, tz: ZoneInfo) -> list[Run]:
    """Windows of ``length`` in one local day, at its wall-clock boundaries."""
    if end - begin == DAY_MS and _offset(begin, tz) == _offset(end - 1, tz):
        return [Run(begin, end, length)]
    # the clocks change this day: boundaries at local midnight + k * length, each window its own run
    base = datetime(day.year, day.month, day.day)
    bounds = sorted(
        {begin, end}
        | {
            b
            for k in range(DAY_MS // length)
            if begin <= (b := _ms((base + timedelta(milliseconds=k * length)).replace(tzinfo=tz))) < end
        }
    )
    return [Run(a, b, b - a) for a, b in pairwise(bounds)]


def plan(start_ms: int, end_ms: int, window: Window, tz: str = DEFAULT_TIMEZONE) -> list[Run]:
    """The runs of windows covering ``[start_ms, end_ms)`` in zone ``tz``.

    The first window is the one holding ``start_ms`` (it may begin before it); the last run ends at
    ``end_ms``. Consecutive runs that continue one grid are merged.
    """
    if end_ms <= start_ms:
        return []
    zone_info = zone(tz)
    runs: list[Run] = []
    if window.calendar is not None:
        pieces = [Run(a, b, b - a) for a, b in _periods(start_ms, end_ms, window.calendar, zone_info)]
    else:
        length = window.length_ms or DAY_MS
        pieces = []
        for begin, end in _periods(start_ms, end_ms, Calendar.DAY, zone_info):
            pieces += _day_runs(begin, end, length, _local_date(begin, zone_info), zone_info)
    for run in pieces:
        last = runs[-1] if runs else None
        if (
            last is not None
            and last.length_ms == run.length_ms
            and last.end_ms == run.start_ms
            and (run.start_ms - last.start_ms) % run.length_ms == 0
        ):
            runs[-1] = Run(last.start_ms, run.end_ms, run.length_ms)
        else:
            runs.append(run)
    # windows wholly before the range are dropped; the last run stops at the range's end
    first = runs[0]
    skip = (start_ms - first.start_ms) // first.length_ms * first.length_ms
    runs[0] = Run(first.start_ms + skip, first.end_ms, first.length_ms)
    runs = [r for r in runs if r.end_ms > start_ms]
    runs[-1] = Run(runs[-1].start_ms, min(runs[-1].end_ms, end_ms), runs[-1].length_ms)
    return runs


def windows(
    start_ms: int, end_ms: int, window: Window | None, tz: str = DEFAULT_TIMEZONE
) -> list[tuple[int, int]]:
    """Every window of the range as (label, end): the label is the window's start (the first may
    begin before ``start_ms``), the end is clipped to ``end_ms``; one window when ``window`` is None."""
    if end_ms <= start_ms:
        return []
    if window is None:
        return [(start_ms, end_ms)]
    return [w for run in plan(start_ms, end_ms, window, tz) for w in run.windows()]


def label_of(ts_ms: int, runs: Sequence[Run]) -> int | None:
    """The start of the window holding ``ts_ms``, or None when no run covers it."""
    i = bisect_right([r.start_ms for r in runs], ts_ms) - 1 if len(runs) > 1 else 0
    if runs and i >= 0 and runs[i].start_ms <= ts_ms < runs[i].end_ms:
        return runs[i].window_of(ts_ms)
    return None
