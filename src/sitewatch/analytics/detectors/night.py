"""Minimum night flow: a leak keeps water running when nobody draws any.

For every local night it takes the minimum of the readings between ``start_hour`` and
``end_hour`` (02:00–04:00 by default) and compares it with the same device's previous
``history_nights`` nights: a robust z against their median, with a scale of at least
``rel_floor`` of the device's mean flow (a household meter's nights are mostly zero, so its own
spread is no scale). A night is flagged when it and the ``persist - 1`` nights before it all pass
``threshold``: a bath at 02:00 lifts one night, a leak every night.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...i18n import N_
from .base import DEFAULT_TZ, Detector, DetectorError, align, local_index, numeric_frame

DAY_NS = 86_400_000_000_000
HOUR_NS = 3_600_000_000_000


class NightFlow(Detector):
    """Minimum night flow against the device's own history (see the module docstring)."""

    name = "night_flow"
    description = N_(
        "leaks, no training: minimum night flow (02:00–04:00) against the device's own previous nights"
    )
    fault = "leak"

    def __init__(self, *, threshold: float = 5.0, history_nights: int = 14, min_nights: int = 3,
                 persist: int = 2, rel_floor: float = 0.02, start_hour: int = 2, end_hour: int = 4,
                 tz: str = DEFAULT_TZ, reference: pd.Series | None = None) -> None:  # fmt: skip
        if not 0 <= start_hour < end_hour <= 24 or threshold <= 0 or min_nights < 1 or persist < 1:
            raise DetectorError(N_("detector parameters out of range"))
        if history_nights < min_nights or rel_floor < 0:
            raise DetectorError(N_("detector parameters out of range"))
        self.threshold, self.history_nights, self.min_nights = threshold, history_nights, min_nights
        self.persist, self.rel_floor, self.start_hour, self.end_hour = (
            persist,
            rel_floor,
            start_hour,
            end_hour,
        )
        self.tz = tz
        self.reference = reference  # per local night (date index), a centre from the device's peers
        self.threshold_ = threshold
        self.history_: pd.DataFrame | None = None

    def fit(self, frame: pd.DataFrame) -> NightFlow:
        """Remember ``frame``'s nights as the history earlier than what will be scored (optional)."""
        self.history_ = numeric_frame(frame)
        return self

    def nights(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per column and local night: ``minimum``, ``z`` (robust, against earlier nights) and ``score``
        (the smallest z of the night and the ``persist - 1`` before it), indexed by the local night's date."""
        return self.nights_of(*self._grid(frame))

    def nights_of(self, clean: pd.DataFrame, grid: _Nights) -> pd.DataFrame:
        """:meth:`nights` of a frame already cleaned, with its nights (:meth:`prepare`)."""
        frames = []
        for name in clean.columns:
            index, minima, z = self._column_nights(clean[name].to_numpy(dtype="float64"), grid)
            table = pd.DataFrame({"column": str(name), "minimum": minima, "z": z}, index=index)
            table["score"] = table["z"].rolling(self.persist, min_periods=self.persist).min()
            frames.append(table)
        return pd.concat(frames) if frames else pd.DataFrame(columns=["column", "minimum", "z", "score"])

    def night_arrays(self, values: np.ndarray, grid: _Nights) -> NightArrays:
        """:meth:`nights_of` of one column's values (one per row of ``grid``) as arrays, and each
        row's score as :meth:`score_nights_of` gives it: the same numbers without a frame per meter."""
        index, minima, z = self._column_nights(values, grid)
        nights = index.asi8
        score = np.full(len(z), np.nan)
        if len(z) >= self.persist:  # a night's and the persist - 1 before it: NaN if any of them is
            score[self.persist - 1 :] = np.lib.stride_tricks.sliding_window_view(z, self.persist).min(axis=1)
        rows = np.zeros(len(values))
        if len(nights):
            ready = nights + self.end_hour * HOUR_NS
            position = np.searchsorted(ready, grid.local_ns, side="right") - 1
            per_night = np.where(np.isnan(score), 0.0, score)
            rows = np.where(position >= 0, per_night[np.clip(position, 0, None)], 0.0)
        rows[np.isnan(values)] = np.nan
        return NightArrays(nights, minima, z, rows)

    def _column_nights(
        self, values: np.ndarray, grid: _Nights
    ) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
        """One column's nights: their dates, minima and z (see :meth:`nights`)."""
        index, minima, keep = grid.minima(values)
        # mean flow of each night's past (all readings before that night's end): the running
        # mean at the day's last row (it is never NaN again once a value was seen), earlier nights'
        # carried forward where it is
        running = pd.Series(values).expanding().mean().to_numpy()
        mean_before = pd.Series(running[grid.day_last][grid.night_of_day][keep]).ffill().to_numpy()
        z = np.full(len(minima), np.nan)
        refs = (np.full(len(minima), np.nan) if self.reference is None
                else self.reference.reindex(index).to_numpy(dtype="float64"))  # fmt: skip
        for i in range(len(minima)):
            past = minima[max(0, i - self.history_nights) : i]
            past = past[np.isfinite(past)]
            peer = float(refs[i]) if np.isfinite(refs[i]) else None
            if len(past) < self.min_nights and peer is None:
                continue
            own = _median(past) if len(past) >= self.min_nights else None
            centre = min(c for c in (own, peer) if c is not None)
            spread = 1.4826 * _median(np.abs(past - own)) if own is not None else 0.0
            floor = self.rel_floor * abs(float(mean_before[i]))
            scale = max(spread, floor, 1e-9 + 1e-3 * abs(centre))
            z[i] = (minima[i] - centre) / scale
        return index, minima, z

    def minima(self, frame: pd.DataFrame) -> pd.Series:
        """The ``minimum`` of :meth:`nights` for a frame of one column (its first), without the z."""
        return self.minima_of(*self._grid(frame))

    def minima_of(self, clean: pd.DataFrame, grid: _Nights) -> pd.Series:
        """:meth:`minima` of a frame already cleaned, with its nights (:meth:`prepare`)."""
        index, minima, _keep = grid.minima(clean.iloc[:, 0].to_numpy(dtype="float64"))
        return pd.Series(minima, index=index, name="minimum")

    def prepare(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, _Nights, pd.DatetimeIndex]:
        """What :meth:`minima`, :meth:`nights` and :meth:`score_nights` each derive from ``frame``
        (without a fitted history): the cleaned frame, its nights and its local times, made once
        for the ``*_of`` methods (the same values as each would make)."""
        if self.history_ is not None:  # a fitted history goes before the frame: nights() and score() take it
            raise RuntimeError("NightFlow.prepare is for a detector without a fitted history")
        clean = numeric_frame(frame)
        local = local_index(pd.DatetimeIndex(clean.index), self.tz)
        return clean, _Nights(local, self.start_hour, self.end_hour), local

    def _grid(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, _Nights]:
        clean = numeric_frame(frame)
        if self.history_ is not None:
            clean = (
                pd.concat([self.history_[self.history_.index < clean.index.min()], clean])
                if len(clean)
                else clean
            )
        return clean, _Nights(
            local_index(pd.DatetimeIndex(clean.index), self.tz), self.start_hour, self.end_hour
        )

    def score(self, frame: pd.DataFrame) -> pd.Series:
        """Per row, the score of the latest night whose window has ended (0 before enough nights)."""
        return self.score_nights(frame, self.nights(frame))

    def score_nights(self, frame: pd.DataFrame, table: pd.DataFrame) -> pd.Series:
        """:meth:`score` from ``table``, the :meth:`nights` of ``frame`` already computed."""
        clean = numeric_frame(frame)
        return self.score_nights_of(frame, clean, local_index(pd.DatetimeIndex(clean.index), self.tz), table)

    def score_nights_of(self, frame: pd.DataFrame, clean: pd.DataFrame, local: pd.DatetimeIndex,
                        table: pd.DataFrame) -> pd.Series:  # fmt: skip
        """:meth:`score_nights` with ``frame`` already cleaned and its local times (:meth:`prepare`)."""
        result = np.zeros(len(clean))
        if len(table):
            index = pd.DatetimeIndex(table.index)
            if index.is_monotonic_increasing and index.is_unique:  # one column's nights: one row a night
                per_night = table["score"].fillna(0.0)
            else:
                per_night = table.groupby(level=0)["score"].max().fillna(0.0)
            ready = pd.DatetimeIndex(per_night.index) + pd.Timedelta(hours=self.end_hour)
            position = np.searchsorted(ready.asi8, local.asi8, side="right") - 1
            values = per_night.to_numpy()
            result = np.where(position >= 0, values[np.clip(position, 0, None)], 0.0)
        result[clean.isna().all(axis=1).to_numpy()] = np.nan
        return align(pd.Series(result, index=clean.index), frame)


def _median(values: np.ndarray) -> float:
    """``np.median`` of a few finite values, to the bit (the middle one, or the mean of the middle
    two: their sum halved), without its general machinery (a night's z takes two)."""
    v = np.sort(values)
    m = len(v) // 2
    return float(v[m]) if len(v) % 2 else (float(v[m - 1]) + float(v[m])) / 2.0


def _run_starts(keys: np.ndarray) -> np.ndarray:
    """Positions where a run of equal ``keys`` begins (none for no keys)."""
    if not len(keys):
        return np.zeros(0, dtype="int64")
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])


@dataclass(frozen=True, slots=True)
class NightArrays:
    """One meter's nights (:meth:`NightFlow.night_arrays`): each kept night's local date (ns), minimum
    and z, and each row's score."""

    nights: np.ndarray
    minimum: np.ndarray
    z: np.ndarray
    rows: np.ndarray


class _Nights:
    """Where the rows of a local time index fall: their local days and nights."""

    def __init__(self, local: pd.DatetimeIndex | np.ndarray, start_hour: int, end_hour: int) -> None:
        # wall-clock nanoseconds (a naive index's asi8): the hour and day fields by division
        self.local_ns = (
            local.asi8 if isinstance(local, pd.DatetimeIndex) else np.asarray(local, dtype=np.int64)
        )
        hour = self.local_ns // HOUR_NS % 24
        in_night = (hour >= start_hour) & (hour < end_hour)
        day = self.local_ns // DAY_NS * DAY_NS
        days, of_day = np.unique(day, return_inverse=True)
        # each day's last row (where the running mean holds all of the day's readings)
        self.day_last = np.full(len(days), -1, dtype="int64")
        np.maximum.at(self.day_last, of_day, np.arange(len(day)))
        # the night rows grouped by night (stable: a clock set back keeps the rows' order)
        self.night_rows = np.flatnonzero(in_night)
        self.night_rows = self.night_rows[np.argsort(day[self.night_rows], kind="stable")]
        night_day = day[self.night_rows]
        self.night_start = _run_starts(night_day)
        self.nights = night_day[self.night_start]
        self.night_of_day = np.searchsorted(days, self.nights)  # the day that holds each night
        self.name = local.name if isinstance(local, pd.DatetimeIndex) else None

    def minima(self, values: np.ndarray) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
        """Each night's minimum of ``values`` (one per row; NaN skipped) where it holds at least two
        values: the nights' dates, their minima, and which of all nights they are."""
        at_night = values[self.night_rows]
        if len(at_night):
            minimum = np.fmin.reduceat(at_night, self.night_start)
            keep = np.add.reduceat(~np.isnan(at_night), self.night_start) >= 2
        else:
            minimum, keep = np.zeros(0), np.zeros(0, dtype=bool)
        index = pd.DatetimeIndex(self.nights[keep].astype("datetime64[ns]"), name=self.name)
        return index, minimum[keep], keep
