"""Seasonal baseline: per-device hour-of-day × day-type (workday, weekend) medians learnt in training.

Each column's training rows are grouped by local hour and by whether the day is Saturday or
Sunday; the median and the scaled MAD of each slot are the baseline (a slot with fewer than
``min_slot`` rows falls back to the hour, then to the whole column). The score is the largest
robust |z| over the columns; the scale is at least ``rel_floor`` of the column's typical level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...i18n import N_
from .base import DEFAULT_TZ, Detector, DetectorError, align, local_index, numeric_frame


class SeasonalBaseline(Detector):
    """Robust z-score against hour-of-day × weekday/weekend baselines (see the module docstring)."""

    name = "seasonal_baseline"
    description = N_("univariate, trained: robust z-score against hour-of-day × workday/weekend medians")
    needs_training = True

    def __init__(self, *, threshold: float = 6.0, min_slot: int = 3, rel_floor: float = 0.05,
                 tz: str = DEFAULT_TZ) -> None:  # fmt: skip
        if threshold <= 0 or min_slot < 1 or rel_floor < 0:
            raise DetectorError(N_("detector parameters out of range"))
        self.threshold, self.min_slot, self.rel_floor, self.tz = threshold, min_slot, rel_floor, tz
        self.threshold_ = threshold

    def _slots(self, index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        local = local_index(index, self.tz)
        return local.hour.to_numpy(), (local.day_of_week >= 5).astype("int64")

    def fit(self, frame: pd.DataFrame) -> SeasonalBaseline:
        """Learn each slot's median and spread from ``frame``."""
        clean = numeric_frame(frame).dropna(how="all")
        if len(clean) < 24:
            raise DetectorError(
                N_("too few rows with values to train on: {rows}, need at least {need}"),
                rows=len(clean),
                need=24,
            )
        hour, weekend = self._slots(pd.DatetimeIndex(clean.index))
        self.columns_ = tuple(str(c) for c in clean.columns)
        self.baseline_: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in self.columns_:
            values = clean[name].to_numpy()
            ok = np.isfinite(values)
            if not ok.any():
                continue
            overall = float(np.median(values[ok]))
            overall_spread = 1.4826 * float(np.median(np.abs(values[ok] - overall)))
            floor = max(self.rel_floor * float(np.median(np.abs(values[ok]))), 1e-9 + 1e-3 * abs(overall))
            centre, spread = np.full(48, overall), np.full(48, max(overall_spread, floor))
            for h in range(24):
                by_hour = ok & (hour == h)
                for w in (0, 1):
                    inside = by_hour & (weekend == w)
                    pick = inside if inside.sum() >= self.min_slot else by_hour
                    if pick.sum() >= self.min_slot:
                        m = float(np.median(values[pick]))
                        centre[2 * h + w] = m
                        spread[2 * h + w] = max(1.4826 * float(np.median(np.abs(values[pick] - m))), floor)
            self.baseline_[name] = (centre, spread)
        if not self.baseline_:
            raise DetectorError(N_("the frame has no numeric column to score"))
        return self

    def score(self, frame: pd.DataFrame) -> pd.Series:
        """The largest robust |z| of the row's columns against their slots."""
        if not hasattr(self, "baseline_"):
            raise DetectorError(N_("the detector {name} must be fitted before it scores"), name=self.name)
        clean = numeric_frame(frame, columns=self.columns_)
        hour, weekend = self._slots(pd.DatetimeIndex(clean.index))
        slot = 2 * hour + weekend
        out = np.full(len(clean), np.nan)
        for name, (centre, spread) in self.baseline_.items():
            z = np.abs(clean[name].to_numpy() - centre[slot]) / spread[slot]
            out = np.where(np.isnan(out), z, np.fmax(out, z))
        return align(pd.Series(out, index=clean.index), frame)
