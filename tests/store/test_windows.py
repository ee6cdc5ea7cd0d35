"""Windows in a time zone: lengths from local midnight, calendar days, weeks and months (pure)."""

from __future__ import annotations

from datetime import datetime

import pytest

from sitewatch.store.windows import DAY_MS, Calendar, Run, Window, label_of, plan, windows, zone

H = 3_600_000


def ms(text: str) -> int:
    """Epoch milliseconds of an ISO date-time with offset."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def local(ts: int, tz: str) -> str:
    return datetime.fromtimestamp(ts / 1000, zone(tz)).isoformat()


def test_a_shanghai_day_starts_at_local_midnight_not_utc() -> None:
    (run,) = plan(ms("2024-02-01T10:17:00+08:00"), ms("2024-02-04T00:00:00+08:00"), Window.parse("1d"))
    assert run == Run(ms("2024-02-01T00:00:00+08:00"), ms("2024-02-04T00:00:00+08:00"), DAY_MS)
    assert run.offset_ms == 16 * H  # 00:00 in Shanghai is 16:00 UTC
    assert [local(a, "Asia/Shanghai") for a, _ in run.windows()] == [
        "2024-02-01T00:00:00+08:00", "2024-02-02T00:00:00+08:00", "2024-02-03T00:00:00+08:00"]  # fmt: skip


def test_months_are_calendar_months_of_their_own_length() -> None:
    runs = plan(ms("2024-01-30T10:00:00+08:00"), ms("2024-04-10T00:00:00+08:00"), Window.parse("1mo"))
    spans = [(local(a, "Asia/Shanghai"), (b - a) // DAY_MS) for r in runs for a, b in r.windows()]
    assert spans == [
        ("2024-01-01T00:00:00+08:00", 31),
        ("2024-02-01T00:00:00+08:00", 29),  # a leap year
        ("2024-03-01T00:00:00+08:00", 31),
        ("2024-04-01T00:00:00+08:00", 9),  # the last one ends with the range
    ]
    assert len(runs) == 4  # each month its own statement / expression...
    summer = plan(ms("2024-07-01T00:00:00+08:00"), ms("2024-09-01T00:00:00+08:00"), Window.parse("1mo"))
    assert len(summer) == 1  # ...unless the next month has the same length: July and August are one run


def test_weeks_start_on_monday_in_the_zone() -> None:
    (run,) = plan(ms("2024-02-01T12:00:00+08:00"), ms("2024-02-20T00:00:00+08:00"), Window.parse("1w"))
    first = datetime.fromtimestamp(run.start_ms / 1000, zone("Asia/Shanghai"))
    assert (first.date().isoformat(), first.weekday(), first.hour) == ("2024-01-29", 0, 0)
    assert run.length_ms == 7 * DAY_MS


def test_fixed_lengths_align_to_local_midnight() -> None:
    # Kolkata is UTC+05:30: hourly windows start at half past in UTC
    (run,) = plan(ms("2024-02-01T10:17:00+05:30"), ms("2024-02-01T14:00:00+05:30"), Window.parse("1h"), "Asia/Kolkata")
    assert local(run.start_ms, "Asia/Kolkata") == "2024-02-01T10:00:00+05:30"
    assert run.offset_ms == 30 * 60_000
    assert label_of(ms("2024-02-01T12:59:59+05:30"), [run]) == ms("2024-02-01T12:00:00+05:30")
    assert label_of(ms("2024-02-01T15:00:00+05:30"), [run]) is None


def test_a_day_when_the_clocks_change_is_cut_at_wall_clock_boundaries() -> None:
    # New York, 2024-03-10: 02:00 does not exist; 2-hour windows stay on even local hours
    tz = "America/New_York"
    spans = windows(ms("2024-03-09T22:00:00-05:00"), ms("2024-03-10T08:00:00-04:00"), Window.parse("2h"), tz)
    assert [(local(a, tz), (b - a) // H) for a, b in spans] == [
        ("2024-03-09T22:00:00-05:00", 2),
        ("2024-03-10T00:00:00-05:00", 2),  # 00:00 to 03:00 EDT: two hours pass
        ("2024-03-10T03:00:00-04:00", 1),  # the 02:00 boundary fell on 03:00; 04:00 follows an hour later
        ("2024-03-10T04:00:00-04:00", 2),
        ("2024-03-10T06:00:00-04:00", 2),
    ]


def test_window_spelling_and_refusals() -> None:
    assert Window.parse("15m") == Window(length_ms=15 * 60_000)
    assert Window.parse("1d") == Window(calendar=Calendar.DAY) == Window(length_ms=DAY_MS)
    assert [str(Window.parse(t)) for t in ("1mo", "1w", "6h", "90s", "500ms")] == ["1mo", "1w", "6h", "90s", "500ms"]
    for bad in ("2d", "7m", "0h", "week2", ""):
        with pytest.raises(ValueError, match="window"):
            Window.parse(bad)
    with pytest.raises(ValueError, match="time zone"):
        plan(0, DAY_MS, Window.parse("1h"), "Mars/Olympus")


def test_windows_without_a_window_is_the_range_and_an_empty_range_has_none() -> None:
    assert windows(5, 10, None) == [(5, 10)]
    assert windows(10, 10, Window.parse("1h")) == []
    assert plan(10, 5, Window.parse("1h")) == []
