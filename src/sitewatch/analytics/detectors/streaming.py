"""A univariate streaming detector with no training part: robust z-scores against an online baseline.

Each column keeps, per hour of the day (local time), a robust location and scale updated as rows
arrive (a Huber-clipped exponentially weighted mean and RMS: an outlier moves them by at most
``clip`` scales), and a global baseline of the same kind for the hours it has not seen often
enough yet. A row is scored against the state before it, then learnt from, so the detector flags
from its first day on and adapts to a lasting change within about ``memory_days``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ...i18n import N_
from .base import DEFAULT_TZ, Detector, DetectorError, align, local_index, numeric_frame

SLOTS = 24
PRIOR = 3.0  # weight, in values, of the all-hours residual scale in a young hour's scale


@dataclass
class _ColumnState:
    """Online robust baseline of one column (location and scale per hour slot, and overall)."""

    warm: list[float] = field(default_factory=list)  # the first values, until the global baseline starts
    loc: float = math.nan
    scale: float = 0.0
    n: int = 0
    res_scale: float = 0.0  # scale of the residuals against the hours' baselines, all hours together
    res_n: int = 0
    slot_loc: np.ndarray = field(default_factory=lambda: np.full(SLOTS, np.nan))
    slot_scale: np.ndarray = field(default_factory=lambda: np.zeros(SLOTS))
    slot_n: np.ndarray = field(default_factory=lambda: np.zeros(SLOTS, dtype=np.int64))


class StreamingZScore(Detector):
    """Robust z-score against an online hour-of-day baseline; learns as it reads (see the module)."""

    name = "stream_zscore"
    description = N_(
        "univariate, no training: robust z-score against an online hour-of-day baseline, learns as it reads"
    )

    def __init__(self, *, threshold: float = 6.0, memory_days: float = 7.0, warmup: int = 12,
                 slot_warmup: int = 2, clip: float = 3.0, direction: str = "both",
                 tz: str = DEFAULT_TZ) -> None:  # fmt: skip
        if direction not in ("both", "up", "down"):
            raise DetectorError(N_("direction must be both, up or down, not {value}"), value=direction)
        if threshold <= 0 or memory_days <= 0 or warmup < 2 or slot_warmup < 1 or clip <= 0:
            raise DetectorError(N_("detector parameters out of range"))
        self.threshold, self.memory_days, self.warmup = threshold, memory_days, warmup
        self.slot_warmup, self.clip, self.direction, self.tz = slot_warmup, clip, direction, tz
        self.threshold_ = threshold
        self.state_: dict[str, _ColumnState] = {}
        self.step_s_: float | None = None

    # -- the API
    def fit(self, frame: pd.DataFrame) -> StreamingZScore:
        """Learn from ``frame`` (optional: the detector also starts from nothing)."""
        self.update(frame)
        return self

    def score(self, frame: pd.DataFrame) -> pd.Series:
        """Scores of ``frame`` read after what was fitted; the fitted state itself is left unchanged."""
        return copy.deepcopy(self).update(frame)

    def update(self, frame: pd.DataFrame) -> pd.Series:
        """Score ``frame`` row by row and learn from it (the live use: call with each new batch)."""
        clean = numeric_frame(frame)
        if clean.empty:
            return align(pd.Series(dtype="float64"), frame)
        step = _median_step(clean.index)
        if step is not None:
            self.step_s_ = step if self.step_s_ is None else 0.5 * (self.step_s_ + step)
        step_s = self.step_s_ or 3600.0
        per_slot_day = max(3600.0 / step_s, 1.0 / 24.0)
        a_slot = 1.0 / max(5.0, self.memory_days * per_slot_day)
        a_all = 1.0 / max(5.0, self.memory_days * 86400.0 / step_s)
        hours = local_index(pd.DatetimeIndex(clean.index), self.tz).hour.to_numpy()
        out = np.full(len(clean), np.nan)
        for name in clean.columns:
            state = self.state_.setdefault(str(name), _ColumnState())
            z = self._run(state, clean[name].to_numpy(), hours, a_slot, a_all)
            z = np.abs(z) if self.direction == "both" else (z if self.direction == "up" else -z)
            out = np.where(np.isnan(out), z, np.fmax(out, z))
        return align(pd.Series(out, index=clean.index), frame)

    # -- the recursion
    def _run(self, s: _ColumnState, values: np.ndarray, hours: np.ndarray, a_slot: float,
             a_all: float) -> np.ndarray:  # fmt: skip
        z = np.full(len(values), np.nan)
        k = self.clip
        for i in range(len(values)):
            x = values[i]
            if not math.isfinite(x):
                continue
            h = hours[i]
            if s.n < self.warmup:  # warming up: collect, score nothing
                s.warm.append(x)
                s.n += 1
                z[i] = 0.0
                if s.n == self.warmup:
                    arr = np.asarray(s.warm)
                    s.loc = float(np.median(arr))
                    s.scale = float(1.4826 * np.median(np.abs(arr - s.loc)))
                    s.warm = []
                    s.res_scale = s.scale
                continue
            floor = 1e-9 + 1e-3 * abs(s.loc)
            n_h = int(s.slot_n[h])
            # the hour's scale, shrunk towards the residual scale of all hours while it has few values
            h_scale = (
                math.sqrt((PRIOR * s.res_scale**2 + n_h * s.slot_scale[h] ** 2) / (PRIOR + n_h))
                if n_h
                else 0.0
            )
            if n_h >= self.slot_warmup:
                z[i] = (x - s.slot_loc[h]) / max(h_scale, floor)
            else:
                z[i] = (x - s.loc) / max(s.scale, floor)
            # learn: the global baseline, then the hour's and the residual scale of all hours
            g_scale = max(s.scale, floor)
            r = min(max(x - s.loc, -k * g_scale), k * g_scale)
            s.loc += a_all * r
            s.scale = math.sqrt((1 - a_all) * s.scale**2 + a_all * r * r)
            s.n += 1
            if n_h == 0:
                s.slot_loc[h], s.slot_scale[h] = x, 0.0
            else:
                bound = k * max(h_scale, floor)
                r = min(max(x - s.slot_loc[h], -bound), bound)
                a = max(a_slot, 1.0 / (n_h + 1))  # a plain mean while the hour is young
                s.slot_loc[h] += a * r
                s.slot_scale[h] = math.sqrt((1 - a) * s.slot_scale[h] ** 2 + a * r * r)
                a = max(a_all, 1.0 / (s.res_n + 1))
                s.res_scale = math.sqrt((1 - a) * s.res_scale**2 + a * r * r)
                s.res_n += 1
            s.slot_n[h] += 1
        return z

    def memory(self) -> dict[str, Any]:
        """The state held per column (for the docs' memory figures)."""
        return {"columns": len(self.state_), "floats_per_column": 3 * SLOTS + 3}


def _median_step(index: pd.Index) -> float | None:
    """The median spacing of the rows in seconds, or None with fewer than two rows."""
    if len(index) < 2:
        return None
    steps = np.diff(pd.DatetimeIndex(index).asi8) / 1e9
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else None
