"""A degradation detector: a rolling robust slope (Theil–Sen) on hourly medians.

Made for wear that creeps up over days (a bearing's running vibration): at every ``stride`` hours
it fits a Theil–Sen line to the hourly medians of the last ``window_hours`` and asks two things of
it: the rise over the window, relative to the line's starting level, is at least ``min_rise``, and
the rise is not noise (a Mann–Kendall z of at least ``min_z``). The score is the smaller of the two
ratios, so 1 is the threshold and a row is flagged from the first evaluation that passes both.
No training: the detector compares a device with its own recent past.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...i18n import N_
from .base import Detector, DetectorError, align, numeric_frame

HOUR_NS = 3_600_000_000_000


class TheilSenTrend(Detector):
    """Rolling Theil–Sen slope with a Mann–Kendall check (see the module docstring)."""

    name = "trend_slope"
    description = N_(
        "degradation, no training: rolling Theil–Sen slope of hourly medians over a week (wear, drift)"
    )
    fault = None

    def __init__(self, *, window_hours: int = 168, stride_hours: int = 3, min_rise: float = 0.10,
                 min_z: float = 4.0, min_points: int = 48, direction: str = "up",
                 warmup_hours: int | None = None) -> None:  # fmt: skip
        if direction not in ("both", "up", "down"):
            raise DetectorError(N_("direction must be both, up or down, not {value}"), value=direction)
        warmup = window_hours if warmup_hours is None else warmup_hours
        if window_hours < 6 or stride_hours < 1 or min_rise <= 0 or min_z <= 0 or min_points < 4:
            raise DetectorError(N_("detector parameters out of range"))
        if not 6 <= warmup <= window_hours:
            raise DetectorError(N_("detector parameters out of range"))
        self.window_hours, self.stride_hours, self.min_rise = window_hours, stride_hours, min_rise
        self.min_z, self.min_points, self.direction = min_z, min_points, direction
        self.warmup_hours = warmup
        self.threshold_ = 1.0

    def fit(self, frame: pd.DataFrame) -> TheilSenTrend:
        """Nothing to learn (the detector compares a series with its own past); checks the input."""
        numeric_frame(frame)
        return self

    def score(self, frame: pd.DataFrame) -> pd.Series:
        """Per row, the score of the latest evaluation at or before it (0 before a full window)."""
        clean = numeric_frame(frame)
        out = pd.Series(np.nan, index=clean.index)
        for name in clean.columns:
            column = self.trend(clean[name])
            scored = column["score"].reindex(clean.index, method="ffill").fillna(0.0)
            scored[clean[name].isna()] = np.nan
            out = pd.Series(np.fmax(out.to_numpy(), scored.to_numpy()), index=clean.index)
        return align(out, frame)

    def trend(self, series: pd.Series) -> pd.DataFrame:
        """The evaluations of one series: ``score``, ``rise`` (relative), ``z`` and ``slope`` per hour,
        indexed by the evaluation time (the end of its window)."""
        values = series.dropna()
        if values.empty:
            return _empty(series)
        index = pd.DatetimeIndex(values.index).as_unit("ns")
        hourly = values.groupby(index.floor("h")).median()
        hours = (pd.DatetimeIndex(hourly.index).asi8 // HOUR_NS).astype("float64")
        y = hourly.to_numpy()
        rows = []
        first, last = hours[0] + self.warmup_hours, hours[-1]
        ends = np.arange(first, last + self.stride_hours, self.stride_hours)
        for end in ends:
            inside = (hours > end - self.window_hours) & (hours <= end)
            if inside.sum() < self.min_points:
                continue
            score, rise, z, slope = self._evaluate(hours[inside], y[inside])
            rows.append((end, score, rise, z, slope))
        if not rows:
            return _empty(series)
        table = pd.DataFrame(rows, columns=["end", "score", "rise", "z", "slope"])
        stamps = pd.to_datetime((table.pop("end").to_numpy() + 1).astype("int64") * HOUR_NS)
        if isinstance(series.index, pd.DatetimeIndex) and series.index.tz is not None:
            stamps = stamps.tz_localize("UTC").tz_convert(series.index.tz)
        table.index = pd.DatetimeIndex(stamps)  # an evaluation holds from the end of its last hour
        return table

    def _evaluate(self, t: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
        i, j = np.triu_indices(len(t), k=1)
        dt, dy = t[j] - t[i], y[j] - y[i]
        slope = float(np.median(dy / dt))
        intercept = float(np.median(y - slope * t))
        start = intercept + slope * (t[-1] - self.window_hours)
        level = max(abs(start), 1e-9, 1e-3 * float(np.median(np.abs(y))))
        rise = slope * self.window_hours / level
        n = len(t)
        s = float(np.sign(dy).sum())
        z = s / np.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
        if self.direction == "down":
            rise, z = -rise, -z
        elif self.direction == "both":
            rise, z = abs(rise), abs(z)
        score = max(0.0, min(rise / self.min_rise, z / self.min_z))
        return score, rise, z, slope


def _empty(series: pd.Series) -> pd.DataFrame:
    index = pd.DatetimeIndex([], tz=series.index.tz if isinstance(series.index, pd.DatetimeIndex) else None)
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in ("score", "rise", "z", "slope")}).set_axis(
        index
    )
