"""What every detector shares: the input checks, the score/predict shape, and the error it raises.

A detector follows the scikit-learn shape (as pyod and river do): ``fit(frame) -> self`` learns from
data that is mostly normal, ``score(frame)`` gives one anomaly score per row (higher is more
anomalous, a pandas Series on the frame's index, NaN where a row holds no value), ``predict(frame)``
gives 0/1 per row by the detector's own threshold (``threshold_``). Fitted attributes end in ``_``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ...i18n import N_, _

DEFAULT_TZ = "Asia/Shanghai"


class DetectorError(ValueError):
    """Input a detector cannot use; its text is a catalog message in the current language."""

    def __init__(self, message: str, /, **params: Any) -> None:
        self.message, self.params = message, params
        super().__init__(message.format(**params))

    def __str__(self) -> str:
        return _(self.message, **self.params)


def numeric_frame(frame: object, *, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The frame's numeric columns as float64, on a sorted DatetimeIndex with one row per instant.

    Non-numeric columns are dropped (booleans count as numbers); rows sharing a timestamp are
    averaged; infinities become NaN. Raises :class:`DetectorError` for anything that is not a
    DataFrame on a DatetimeIndex, or that has no numeric column (or lacks ``columns``).
    """
    if not isinstance(frame, pd.DataFrame):
        if isinstance(frame, pd.Series):
            frame = frame.to_frame(name=str(frame.name) if frame.name is not None else "value")
        else:
            raise DetectorError(
                N_("a detector needs a pandas DataFrame, not {type}"), type=type(frame).__name__
            )
    assert isinstance(frame, pd.DataFrame)
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DetectorError(N_("the frame needs a DatetimeIndex (one timestamp per row)"))
    numeric: dict[str, pd.Series] = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column, pd.DataFrame):  # a duplicated column name: keep the first
            column = column.iloc[:, 0]
        is_number = pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column)
        if is_number and not pd.api.types.is_complex_dtype(column):
            numeric.setdefault(str(name), column.astype("float64"))
    if columns is not None:
        missing = [c for c in columns if c not in numeric]
        if missing:
            raise DetectorError(
                N_("the frame lacks the numeric columns the detector was fitted on: {columns}"),
                columns=", ".join(missing),
            )
        numeric = {c: numeric[c] for c in columns}
    if not numeric:
        raise DetectorError(N_("the frame has no numeric column to score"))
    out = pd.DataFrame(numeric, index=frame.index)
    out = out.replace([np.inf, -np.inf], np.nan)
    stamps = pd.DatetimeIndex(out.index)
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC")
    out.index = stamps.as_unit("ns")  # asi8 is nanoseconds everywhere below
    if stamps.hasnans:
        out = out[np.logical_not(np.asarray(stamps.isna()))]
    if not out.index.is_monotonic_increasing or out.index.has_duplicates:
        out = out.groupby(level=0, sort=True).mean()
    return out


def true_runs(mask: object) -> list[tuple[int, int]]:
    """[first, last] index pairs of the runs of True in ``mask`` (a sequence of booleans)."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return []
    edges = np.diff(np.r_[0, m.astype(np.int8), 0])
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def local_index(index: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    """Wall-clock time of each row: aware times converted to ``tz``, naive times taken as local."""
    if index.tz is None:
        return index
    return index.tz_convert(tz).tz_localize(None)


def align(scores: pd.Series, frame: pd.DataFrame) -> pd.Series:
    """Scores computed on the cleaned frame, given back on the caller's index in the caller's order."""
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):  # checked before; keeps mypy content
        raise DetectorError(N_("the frame needs a DatetimeIndex (one timestamp per row)"))
    target = index.tz_convert("UTC") if index.tz is not None else index
    values = scores.reindex(target).to_numpy(dtype="float64")
    return pd.Series(values, index=index, name="score")


class Detector(ABC):
    """An unsupervised anomaly detector (see the module docstring)."""

    name: ClassVar[str]
    description: ClassVar[str]  # one line, marked with N_ for the catalog
    needs_training: ClassVar[bool] = False  # True: score() before fit() raises DetectorError
    fault: ClassVar[str | None] = None  # the fault type the detector stands for, None for a generic one

    threshold_: float

    @abstractmethod
    def fit(self, frame: pd.DataFrame) -> Detector:
        """Learn from ``frame`` (mostly normal data); returns self."""

    @abstractmethod
    def score(self, frame: pd.DataFrame) -> pd.Series:
        """One anomaly score per row of ``frame`` (higher is more anomalous; NaN where no value)."""

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """1 where the score is above the detector's threshold, else 0 (NaN scores give 0)."""
        scores = self.score(frame)
        return (scores > self.threshold_).astype("int64").rename("anomaly")

    def params(self) -> dict[str, Any]:
        """The detector's parameters (what its constructor took), for manifests and docs."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}
