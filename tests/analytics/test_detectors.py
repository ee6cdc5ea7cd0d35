"""The detector API on seeded synthetic series with known anomalies, and on hostile input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sitewatch.analytics.detectors import (
    DETECTORS,
    DetectorError,
    IsolationForestDetector,
    NightFlow,
    PCADetector,
    SeasonalBaseline,
    StreamingZScore,
    TheilSenTrend,
    make_detector,
)

DAYS = 30


def hourly(seed: int = 0, days: int = DAYS) -> pd.DataFrame:
    """A daily cycle with noise, hourly, in UTC (the detectors read it in Shanghai time)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2026-01-01", periods=24 * days, freq="h", tz="UTC")
    hour = index.tz_convert("Asia/Shanghai").hour.to_numpy()
    return pd.DataFrame(
        {"v": 10 + 5 * np.sin(2 * np.pi * hour / 24) + rng.normal(0, 0.5, len(index))}, index=index
    )


def flagged(detector: object, frame: pd.DataFrame) -> np.ndarray:
    return np.flatnonzero(detector.predict(frame).to_numpy())  # type: ignore[attr-defined]


def test_streaming_flags_a_spike_and_a_level_shift_from_the_first_days() -> None:
    frame = hourly()
    frame.iloc[60, 0] += 8  # day 3: before any hour of the day has a seasonal baseline of its own
    frame.iloc[400, 0] += 8
    frame.iloc[600:, 0] += 4
    hits = flagged(StreamingZScore(), frame)
    assert 60 in hits and 400 in hits and 600 in hits
    false = [i for i in hits if i not in (60, 400) and i < 600]
    assert len(false) <= 2
    assert len([i for i in hits if i >= 700]) < 5  # it learns the new level


def test_streaming_quiet_on_normal_data_for_several_seeds() -> None:
    for seed in range(5):
        assert len(flagged(StreamingZScore(), hourly(seed))) <= 2


def test_streaming_score_leaves_the_fitted_state_alone_and_update_learns() -> None:
    frame = hourly()
    detector = StreamingZScore().fit(frame.iloc[:300])
    first = detector.score(frame.iloc[300:])
    again = detector.score(frame.iloc[300:])
    pd.testing.assert_series_equal(first, again)
    live = StreamingZScore()
    parts = pd.concat([live.update(frame.iloc[:300]), live.update(frame.iloc[300:])])
    pd.testing.assert_series_equal(parts, StreamingZScore().score(frame), check_exact=False, atol=1e-9)


def correlated(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    index = pd.date_range("2026-01-01", periods=n, freq="10min")
    return pd.DataFrame({"a": a, "b": 2 * a + rng.normal(0, 0.3, n), "c": rng.normal(size=n)}, index=index)


def test_pca_finds_a_correlation_break_each_value_alone_normal() -> None:
    train, test = correlated(1, 1000), correlated(2, 1000)
    test.iloc[500:520, 1] = -2 * test.iloc[500:520, 0]  # b leaves a: each within its usual range
    assert test["b"].iloc[500:520].abs().max() < 3 * train["b"].std() * 2
    hits = flagged(PCADetector().fit(train), test)
    inside = [i for i in hits if 500 <= i < 520]
    assert len(inside) >= 14
    assert len(hits) - len(inside) <= 8  # under 1% of 980 normal rows (two statistics at alpha 0.001 each)


def test_isolation_forest_finds_far_points_and_stays_quiet_otherwise() -> None:
    train, test = correlated(3, 1000), correlated(4, 1000)
    test.iloc[100:105] = 8.0
    hits = flagged(IsolationForestDetector().fit(train), test)
    assert set(range(100, 105)) <= set(hits)
    assert len(hits) - 5 <= 3


def test_trend_flags_a_drift_after_it_starts_and_not_flat_noise() -> None:
    rng = np.random.default_rng(5)
    index = pd.date_range("2026-01-01", periods=24 * DAYS, freq="h", tz="UTC")
    flat = 1 + rng.normal(0, 0.05, len(index))
    drift = flat.copy()
    drift[400:] *= np.linspace(1, 1.5, len(index) - 400)
    detector = TheilSenTrend()
    hits = flagged(detector, pd.DataFrame({"v": drift}, index=index))
    assert len(hits) and 400 < hits[0] < 400 + 24 * 5
    assert len(flagged(detector, pd.DataFrame({"v": flat}, index=index))) == 0
    down = pd.DataFrame({"v": flat[::-1] * np.linspace(1.5, 1, len(index))}, index=index)
    assert len(flagged(detector, down)) == 0  # wear rises: a fall is not flagged by default


def test_night_flow_flags_a_leak_that_persists_and_not_one_night_of_use() -> None:
    rng = np.random.default_rng(6)
    index = pd.date_range("2026-01-01", periods=96 * DAYS, freq="15min", tz="Asia/Shanghai")
    day = (index.hour >= 6) & (index.hour < 23)
    flow = np.where(day, rng.exponential(0.01, len(index)), 0.0)
    frame = pd.DataFrame({"flow": flow}, index=index)
    bath = (index.normalize() == pd.Timestamp("2026-01-10", tz="Asia/Shanghai")) & (index.hour == 2)
    frame.loc[bath, "flow"] = 0.05  # one night's bath at 02:00
    assert len(flagged(NightFlow(), frame)) == 0
    leaking = frame.copy()
    leaking.loc[index >= pd.Timestamp("2026-01-20", tz="Asia/Shanghai"), "flow"] += 0.002
    hits = flagged(NightFlow(), leaking)
    assert len(hits)
    first = index[hits[0]]
    assert (
        pd.Timestamp("2026-01-21", tz="Asia/Shanghai")
        <= first
        < pd.Timestamp("2026-01-23", tz="Asia/Shanghai")
    )


def _nights_by_groupby(detector: NightFlow, frame: pd.DataFrame) -> pd.DataFrame:
    """``NightFlow.nights``'s minima and z the plain pandas way (its grouping is NumPy's)."""
    from sitewatch.analytics.detectors.base import local_index, numeric_frame

    clean = numeric_frame(frame)
    local = local_index(pd.DatetimeIndex(clean.index), detector.tz)
    in_night = (local.hour >= detector.start_hour) & (local.hour < detector.end_hour)
    column = clean.iloc[:, 0]
    night = column[in_night].groupby(local[in_night].normalize()).agg(["min", "count"])
    night = night[night["count"] >= 2]
    running = column.expanding().mean()
    mean_before = running.groupby(local.normalize()).last().reindex(night.index).ffill()
    minima, z = night["min"].to_numpy(), np.full(len(night), np.nan)
    refs = (np.full(len(night), np.nan) if detector.reference is None
            else detector.reference.reindex(night.index).to_numpy(dtype="float64"))  # fmt: skip
    for i in range(len(night)):
        past = minima[max(0, i - detector.history_nights) : i]
        past = past[np.isfinite(past)]
        peer = float(refs[i]) if np.isfinite(refs[i]) else None
        if len(past) < detector.min_nights and peer is None:
            continue
        own = float(np.median(past)) if len(past) >= detector.min_nights else None
        centre = min(c for c in (own, peer) if c is not None)
        spread = 1.4826 * float(np.median(np.abs(past - own))) if own is not None else 0.0
        floor = detector.rel_floor * abs(float(mean_before.iloc[i]))
        z[i] = (minima[i] - centre) / max(spread, floor, 1e-9 + 1e-3 * abs(centre))
    return pd.DataFrame({"minimum": minima, "z": z}, index=night.index)


@pytest.mark.parametrize(
    ("tz", "start"),
    [("Asia/Shanghai", "2026-10-20"), ("Europe/Berlin", "2026-10-10"), ("America/Santiago", "2026-03-20")],
)
def test_night_flow_nights_match_a_plain_groupby(tz: str, start: str) -> None:
    """Gaps, NaN, a night of one reading, rows out of order and a clock set back (Berlin's at 03:00,
    Santiago's at midnight, into the day before): the same minima and z as a plain groupby gives."""
    rng = np.random.default_rng(3)
    index = pd.date_range(start, periods=24 * 3 * 24, freq="20min", tz="UTC")
    flow = rng.exponential(0.02, len(index))
    flow[rng.integers(0, len(index), 300)] = np.nan
    frame = pd.DataFrame({"flow": flow}, index=index).drop(index[200:400]).sample(frac=1.0, random_state=1)
    local = frame.index.tz_convert(tz)
    frame = frame[~((local.day == 30) & (local.hour == 2) & (local.minute > 0))]  # a night of one reading
    for reference in (None, pd.Series(0.01, index=pd.date_range(start, periods=30, freq="D"))):
        detector = NightFlow(tz=tz, reference=reference)
        table = detector.nights(frame)
        expected = _nights_by_groupby(detector, frame)
        pd.testing.assert_index_equal(table.index, expected.index, check_names=False)
        np.testing.assert_array_equal(table["minimum"].to_numpy(), expected["minimum"].to_numpy())
        np.testing.assert_array_equal(table["z"].to_numpy(), expected["z"].to_numpy())
        pd.testing.assert_series_equal(detector.minima(frame), table["minimum"], check_names=False)
        assert not table.index.has_duplicates and table["z"].notna().sum() > 10


def test_seasonal_baseline_flags_off_pattern_hours() -> None:
    train, test = hourly(7), hourly(8)
    test.iloc[300:306, 0] = 10 + 5 * -np.sin(2 * np.pi * np.arange(300, 306) / 24)  # the cycle inverted
    hits = flagged(SeasonalBaseline().fit(train), test)
    assert len(hits) <= 10 and len([i for i in hits if 300 <= i < 306]) >= 2


def test_registry_names_and_descriptions() -> None:
    assert {
        "stream_zscore",
        "pca_t2q",
        "isolation_forest",
        "trend_slope",
        "night_flow",
        "seasonal_baseline",
    } <= set(DETECTORS)
    for name, cls in DETECTORS.items():
        assert cls.name == name and cls.description and "\n" not in cls.description
    with pytest.raises(DetectorError, match="unknown detector"):
        make_detector("nope")


def test_night_flow_prepared_once_gives_what_each_method_gives() -> None:
    """``prepare`` then the ``*_of`` methods (the leak detector cleans each meter's flow once): the
    same nights, minima and scores as ``nights``, ``minima`` and ``score_nights``; a detector with a
    fitted history (which ``nights`` puts before the frame) cannot be prepared."""
    rng = np.random.default_rng(5)
    index = pd.date_range("2026-10-10", periods=24 * 3 * 20, freq="20min", tz="UTC")
    flow = rng.exponential(0.02, len(index))
    flow[rng.integers(0, len(index), 200)] = np.nan
    flow[24 * 3 * 12 :] += 0.5  # a leak from the 13th day
    frame = pd.DataFrame({"flow": flow}, index=index).sample(frac=1.0, random_state=2)
    for reference in (None, pd.Series(0.01, index=pd.date_range("2026-10-10", periods=20, freq="D"))):
        detector = NightFlow(tz="Europe/Berlin", reference=reference)
        clean, grid, local = detector.prepare(frame)
        table = detector.nights(frame)
        pd.testing.assert_frame_equal(detector.nights_of(clean, grid), table)
        pd.testing.assert_series_equal(detector.minima_of(clean, grid), detector.minima(frame))
        pd.testing.assert_series_equal(detector.score_nights_of(frame, clean, local, table),
                                       detector.score_nights(frame, table))  # fmt: skip
        assert (detector.score_nights(frame, table) > detector.threshold_).any()
    with pytest.raises(RuntimeError, match="without a fitted history"):
        NightFlow().fit(frame).prepare(frame)


@pytest.mark.parametrize("persist", [1, 2, 3])
def test_night_flow_arrays_give_what_the_frames_give(persist: int) -> None:
    """``night_arrays`` (the leak detector's per-meter path, rows in time order): the nights, minima
    and z of ``nights_of`` and each row's score of ``score_nights_of``, to the bit (NaN, an infinite
    reading, Berlin's clock set back, a leak, with and without the peers' reference)."""
    from sitewatch.analytics.detectors.night import _median, _Nights

    rng = np.random.default_rng(11)
    index = pd.date_range("2026-10-10", periods=24 * 3 * 20, freq="20min", tz="UTC")
    flow = rng.exponential(0.02, len(index))
    flow[rng.integers(0, len(index), 200)] = np.nan
    flow[5] = np.inf
    flow[24 * 3 * 12 :] += 0.5
    frame = pd.DataFrame({"flow": flow}, index=index)
    for reference in (None, pd.Series(0.01, index=pd.date_range("2026-10-10", periods=20, freq="D"))):
        detector = NightFlow(tz="Europe/Berlin", reference=reference, persist=persist)
        clean, grid, local = detector.prepare(frame)
        table = detector.nights_of(clean, grid)
        scores = detector.score_nights_of(frame, clean, local, table)
        values = np.where(np.isinf(flow), np.nan, flow)
        arrays = detector.night_arrays(values, _Nights(local.asi8, detector.start_hour, detector.end_hour))
        np.testing.assert_array_equal(arrays.nights, pd.DatetimeIndex(table.index).asi8)
        np.testing.assert_array_equal(arrays.minimum, table["minimum"].to_numpy())
        np.testing.assert_array_equal(arrays.z, table["z"].to_numpy())
        np.testing.assert_array_equal(arrays.rows, scores.to_numpy())
        assert (arrays.rows > detector.threshold_).any() and np.isnan(arrays.rows[5])
    for n in range(1, 30):  # the nights' medians: numpy's, to the bit
        v = rng.normal(0, 1, n) * 10.0 ** rng.integers(-3, 3)
        assert _median(v) == float(np.median(v))


def _leak_by_frames(
    long: pd.DataFrame, devices: pd.DataFrame
) -> list[tuple[str, int, int, float, dict[str, float]]]:
    """The leak detector as it was before its per-meter arrays: a frame per meter, pandas' groupby,
    ``nights_of`` and ``score_nights_of``, then ``episodes`` (upstream echoes not dropped)."""
    from sitewatch.analytics.detectors.findings import episodes

    series = {str(d): pd.Series(rows["value"].to_numpy(), index=pd.to_datetime(rows["ts_ms"].to_numpy(), unit="ms",
                                                                                utc=True))
              for d, rows in long.groupby("device", sort=True)}  # fmt: skip
    nights = NightFlow()
    prepared = {d: nights.prepare(s.to_frame("flow")) for d, s in series.items()}
    households = [
        nights.minima_of(*prepared[d][:2]) for d in series if devices.loc[d, "scope"] == "household"
    ]
    reference = pd.concat(households, axis=1).median(axis=1)
    out = []
    for device, s in series.items():
        night = NightFlow(reference=reference if devices.loc[device, "scope"] == "household" else None)
        clean, grid, local = prepared[device]
        table = night.nights_of(clean, grid)
        scores = night.score_nights_of(s.to_frame("flow"), clean, local, table)
        for ep in episodes(device, (scores > night.threshold_).astype("int64"), scores, merge_hours=30):
            start = (
                pd.Timestamp(ep.start_ms, unit="ms", tz="UTC")
                .tz_convert(night.tz)
                .tz_localize(None)
                .normalize()
            )
            row = table[table.index <= start]
            evidence = {} if row.empty else {"night_minimum": float(row["minimum"].iloc[-1]),
                                             "z": float(row["z"].iloc[-1])}  # fmt: skip
            out.append((ep.device, ep.start_ms, ep.end_ms, ep.peak, evidence))
    return out


def test_leak_episodes_on_arrays_are_the_frames_episodes() -> None:
    """Four flats and their building's meter over 20 days, two flats leaking from different days, two
    meters' rows out of order (one of them leaking, some of its instants twice: cleaned as
    ``numeric_frame`` cleans them), NaN readings: the episodes of the frames' path, to the bit."""
    from sitewatch.analytics.detectors.findings import leak_episodes

    rng = np.random.default_rng(4)
    ts = pd.date_range("2026-03-01", periods=24 * 4 * 20, freq="15min", tz="UTC").as_unit("ms").asi8
    rows = []
    for k, device in enumerate(["C-W000", "C-W001", "C-W002", "C-W003", "C-W004"]):
        flow = rng.exponential(0.01 if k else 0.05, len(ts)) * (rng.random(len(ts)) < 0.5)
        flow[rng.integers(0, len(ts), 40)] = np.nan
        if k in (1, 3):
            flow[len(ts) // (k + 1) :] += 0.03  # a leak
        order = rng.permutation(len(ts)) if k == 2 else np.arange(len(ts))
        if k == 3:  # a leaking meter's rows out of order, some instants reported twice
            order = rng.permutation(np.r_[np.arange(len(ts)), rng.integers(0, len(ts), 30)])
        rows.append(pd.DataFrame({"ts_ms": ts[order], "device": device, "metric": "flow", "value": flow[order],
                                  "kind": "water_meter", "compound": "C"}))  # fmt: skip
    long = pd.concat(rows, ignore_index=True)
    devices = pd.DataFrame({"compound": "C", "building": ["B1"] * 5, "scope": ["building"] + ["household"] * 4},
                           index=pd.Index(["C-W000", "C-W001", "C-W002", "C-W003", "C-W004"], name="device"))  # fmt: skip
    found, last = leak_episodes(long, devices)
    # the frames' path on each meter's instants in order, readings of one instant averaged (its episodes
    # take rows in time order, and it cannot align an instant read twice)
    once = long.groupby(["device", "ts_ms"], as_index=False)["value"].mean()
    expected = _leak_by_frames(once, devices)
    assert [(e.device, e.start_ms, e.end_ms, e.peak, e.evidence) for e in found] == expected
    assert {e.device for e in found} == {"C-W001", "C-W003"} and last == int(ts.max())
