"""Bearing wear on running vibration: the trend's warm-up, a repaired car, the messages of a finding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sitewatch.analytics.detectors import DetectorError, TheilSenTrend
from sitewatch.analytics.detectors.findings import LEVEL_MIN_RISE, _messages, level_rise, still_high
from sitewatch.contract import DeviceKind, Finding, FindingState, Severity


def hourly(values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=pd.date_range("2026-04-06", periods=len(values), freq="h", tz="UTC"))


def test_the_warm_up_sets_the_first_evaluation() -> None:
    s = hourly(np.ones(24 * 5))
    week = TheilSenTrend(min_points=36).trend(s)
    early = TheilSenTrend(min_points=36, warmup_hours=48).trend(s)
    assert week.empty  # five days: no full week yet
    assert early.index[0] == s.index[0] + pd.Timedelta(
        hours=49
    )  # 48 hours after the first, held from its end
    with pytest.raises(DetectorError):
        TheilSenTrend(warmup_hours=200)  # longer than the window
    with pytest.raises(DetectorError):
        TheilSenTrend(warmup_hours=3)


def test_wear_within_the_first_week_is_flagged_before_its_end() -> None:
    rng = np.random.default_rng(3)
    n = 24 * 5
    wear = 1 + 0.5 * np.linspace(0, 1, n) ** 2  # ends at 1.5 x after five days
    s = hourly(0.2 * wear * (1 + rng.normal(0, 0.02, n)))
    detector = TheilSenTrend(min_points=36, warmup_hours=48)
    trend = still_high(detector, s)
    first = trend.index[trend["score"] >= 1][0]
    assert s.index[-1] - first >= pd.Timedelta(hours=24)
    assert TheilSenTrend(min_points=36).trend(s).empty  # the week-long warm-up saw nothing in time


def test_a_repaired_car_is_not_flagged_for_the_rise_still_in_its_window() -> None:
    rng = np.random.default_rng(4)
    rise = 1 + 1.0 * np.linspace(0, 1, 72) ** 2
    values = np.r_[np.ones(72), rise, np.ones(48)]  # three days normal, three wearing, repaired two days
    s = hourly(0.2 * values * (1 + rng.normal(0, 0.02, len(values))))
    detector = TheilSenTrend(min_points=36, warmup_hours=48)
    raw, capped = detector.trend(s), still_high(detector, s)
    repaired = s.index[144] + pd.Timedelta(hours=24)
    assert (raw.loc[raw.index >= repaired, "score"] >= 1).any()  # the bare line still rises
    assert not (capped.loc[capped.index >= repaired, "score"] >= 1).any()
    assert (capped.loc[capped.index < s.index[144], "score"] >= 1).any()  # the wear itself is flagged


def test_a_cleared_finding_is_sent_as_active_at_its_start_then_cleared() -> None:
    f = Finding(id="trend_slope.X.1", compound="C", device="X", kind=DeviceKind.ELEVATOR, source="detector:trend_slope",
                fault="bearing_wear", severity=Severity.WARNING, state=FindingState.CLEARED, started_ms=1_000,
                ended_ms=9_000, ts_ms=9_000, message="m", params={}, evidence={"rise": 0.2}, score=2.0)  # fmt: skip
    active, cleared = _messages(f)
    assert (active.state, active.ts_ms, active.ended_ms, active.id) == (
        FindingState.ACTIVE,
        1_000,
        None,
        f.id,
    )
    assert cleared == f
    still = replace(f, state=FindingState.ACTIVE, ended_ms=None)
    assert _messages(still) == [still]


def _car(days: int, seed: int) -> np.ndarray:
    """A healthy car's hourly running vibration: a daily rhythm of 3%, weekends 2% lower, 2% noise."""
    rng = np.random.default_rng(seed)
    h = np.arange(24 * days)
    rhythm = 1 + 0.03 * np.sin(2 * np.pi * h / 24) - 0.02 * ((h // 24) % 7 >= 5)
    return 0.2 * rhythm * (1 + rng.normal(0, 0.02, len(h)))


def test_the_level_check_flags_a_slow_wear_a_day_before_its_end() -> None:
    values = _car(12, 5)
    span = 24 * 5  # a subtle wear of five days from day 7, to 1.15 x (the simulators' smallest)
    values[-span:] *= 1 + 0.15 * np.linspace(0, 1, span) ** 2
    level = level_rise(hourly(values))
    first = level.index[level["score"] >= 1][0]
    assert hourly(values).index[-1] - first >= pd.Timedelta(hours=24)
    assert level.loc[level.index < first, "rise"].max() < LEVEL_MIN_RISE * 1.5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_level_check_leaves_healthy_and_repaired_cars_alone(seed: int) -> None:
    healthy = _car(30, seed)
    assert not (level_rise(hourly(healthy))["score"] >= 1).any()
    repaired = _car(14, seed + 10)
    repaired[: 24 * 4] *= 1.3  # worn at the history's start, repaired on day 4
    assert not (level_rise(hourly(repaired))["score"] >= 1).any()
