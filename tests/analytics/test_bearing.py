"""Bearing wear on running vibration: the trend's warm-up, a repaired car, the messages of a finding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sitewatch.analytics.detectors import DetectorError, TheilSenTrend
from sitewatch.analytics.detectors.findings import (
    LEVEL_MIN_RISE,
    _messages,
    bearing_episodes,
    level_polls,
    level_rise,
    still_high,
)
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


def _quiet_car(days: int, seed: int) -> pd.Series:
    """A quiet car's running polls: about one an hour at random times, 4% noise (load and motion)."""
    rng = np.random.default_rng(seed)
    minutes = np.sort(rng.choice(days * 24 * 60, size=days * 24, replace=False))
    index = pd.Timestamp("2026-04-06", tz="UTC") + pd.to_timedelta(minutes, unit="min")
    return pd.Series(0.18 * (1 + rng.normal(0, 0.04, len(minutes))), index=index)


def test_the_polls_check_waits_for_a_day_of_reference_the_gap_and_the_day() -> None:
    s = _quiet_car(5, 1)
    polls = level_polls(s)
    assert polls.index[0] >= s.index[0].floor("h") + pd.Timedelta(hours=72)


def test_the_polls_check_flags_a_quiet_cars_slow_wear_a_day_before_its_end() -> None:
    s = _quiet_car(10, 2)
    hours = (s.index - s.index[0]) / pd.Timedelta(hours=1)
    span = 120.0  # a subtle wear of five days from day 5, to 1.2 x, growing with the square of its trips
    progress = np.clip((hours - (hours.max() - span)) / span, 0, 1)
    worn = s * (1 + 0.2 * progress**2)
    polls = level_polls(worn)
    first = polls.index[polls["score"] >= 1][0]
    assert worn.index[-1] - first >= pd.Timedelta(hours=24)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_polls_check_leaves_a_healthy_quiet_car_alone(seed: int) -> None:
    assert not (level_polls(_quiet_car(30, seed))["score"] >= 1).any()


def test_the_polls_check_does_not_flag_the_first_polls_after_a_repair() -> None:
    s = _quiet_car(8, 4)
    hours = ((s.index - s.index[0]) / pd.Timedelta(hours=1)).to_numpy()
    repair = 100.5  # worn from the start, doubled by the repair, which falls between two evaluations
    s = s * np.where(hours < repair, 1 + hours / 100, 1.0)
    long = pd.DataFrame({
        "ts_ms": np.r_[s.index.as_unit("ms").asi8, s.index.as_unit("ms").asi8], "device": "EL0001",
        "metric": ["vibration_rms"] * len(s) + ["run_state"] * len(s),
        "value": np.r_[s.to_numpy(), np.ones(len(s))], "kind": "elevator", "compound": "C",
    })  # fmt: skip
    found, _ = bearing_episodes(long)
    repaired_ms = int((s.index[0] + pd.Timedelta(hours=repair)).value // 1_000_000)
    assert found and all(ep.start_ms < repaired_ms for ep in found)
