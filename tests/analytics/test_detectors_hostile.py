"""Hostile input to every detector: a clear DetectorError or a defined result, never a crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sitewatch.analytics.detectors import DETECTORS, DetectorError, make_detector

INDEX = pd.date_range("2026-01-01", periods=24 * 20, freq="h", tz="UTC")
RNG = np.random.default_rng(0)
NORMAL = pd.DataFrame({"a": RNG.normal(10, 1, len(INDEX)), "b": RNG.normal(5, 1, len(INDEX))}, index=INDEX)


def run(name: str, frame: object) -> pd.Series | None:
    """fit then predict; returns the flags, or None when the detector refused with a DetectorError."""
    detector = make_detector(name)
    try:
        detector.fit(frame)  # type: ignore[arg-type]
        flags = detector.predict(frame)  # type: ignore[arg-type]
    except DetectorError as exc:
        assert str(exc)  # a message people can read
        return None
    assert set(np.unique(flags.to_numpy())) <= {0, 1}
    return flags


CASES = {
    "constant": pd.DataFrame({"a": 3.0}, index=INDEX),
    "empty": pd.DataFrame({"a": pd.Series(dtype="float64")}, index=pd.DatetimeIndex([], tz="UTC")),
    "all_nan": pd.DataFrame({"a": np.nan}, index=INDEX),
    "single_row": NORMAL.iloc[:1],
    "text_only": pd.DataFrame({"a": ["x"] * len(INDEX)}, index=INDEX),
    "mixed_columns": NORMAL.assign(name="x", flag=True),
    "unsorted_duplicates": pd.concat([NORMAL.iloc[::-1], NORMAL.iloc[:50]]),
    "gaps": NORMAL.drop(NORMAL.index[100:300]),
    "infinities": NORMAL.replace(NORMAL.iloc[5, 0], np.inf),
    "one_second": NORMAL.set_axis(pd.date_range("2026-01-01", periods=len(NORMAL), freq="s", tz="UTC")),
    "daily_naive": NORMAL.set_axis(pd.date_range("2020-01-01", periods=len(NORMAL), freq="D")),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_hostile_frames_give_a_clear_error_or_a_defined_result(name: str, case: str) -> None:
    frame = CASES[case]
    flags = run(name, frame)
    if flags is not None:
        assert flags.index.equals(frame.index)  # one answer per input row, in the input's order
    if case in ("text_only",):
        assert flags is None
    if case in ("gaps", "unsorted_duplicates", "mixed_columns", "one_second", "daily_naive", "infinities"):
        assert flags is not None, f"{name} refused usable data ({case})"


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_not_a_frame_or_no_time_index_is_refused(name: str) -> None:
    detector = make_detector(name)
    with pytest.raises(DetectorError):
        detector.fit(np.arange(10))  # type: ignore[arg-type]
    with pytest.raises(DetectorError, match="DatetimeIndex"):
        detector.fit(pd.DataFrame({"a": range(30)}))


def test_trained_detectors_refuse_to_score_unfitted_or_with_other_columns() -> None:
    for name in ("pca_t2q", "isolation_forest", "seasonal_baseline"):
        with pytest.raises(DetectorError, match="fitted"):
            make_detector(name).score(NORMAL)
        fitted = make_detector(name).fit(NORMAL)
        with pytest.raises(DetectorError, match="lacks"):
            fitted.score(NORMAL.rename(columns={"a": "z"}))


def test_constant_training_then_a_change_is_flagged() -> None:
    constant = pd.DataFrame({"a": 3.0, "b": 1.0}, index=INDEX)
    changed = constant.copy()
    changed.iloc[10, 0] = 4.0
    detector = make_detector("pca_t2q").fit(constant)
    flags = detector.predict(changed).to_numpy()
    assert flags[10] == 1 and flags.sum() == 1


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(DetectorError):
        make_detector("stream_zscore", direction="sideways")
    with pytest.raises(DetectorError):
        make_detector("night_flow", start_hour=5, end_hour=3)
