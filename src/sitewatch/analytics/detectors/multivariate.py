"""Multivariate detectors with a normal training part: PCA (Hotelling T² and Q/SPE) and IsolationForest.

Both standardise each column by the training mean and standard deviation and put a missing value
at the training mean (so a row with a gap is scored on what it has). Thresholds come from the
training data alone, never from labels or a contamination share.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest

from ...i18n import N_
from .base import Detector, DetectorError, align, numeric_frame

MIN_ROWS = 10


class _Standardised(Detector):
    """Shared fitting steps: the columns, their centre and scale, and the rows to score."""

    needs_training = True
    columns_: tuple[str, ...]
    center_: np.ndarray
    scale_: np.ndarray

    def _train_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        clean = numeric_frame(frame)
        clean = clean.dropna(how="all")
        return self._train_values(clean.to_numpy(), tuple(str(c) for c in clean.columns))

    def _train_values(self, values: np.ndarray, columns: tuple[str, ...]) -> np.ndarray:
        """The standardised training matrix of ``values`` (rows with at least one value)."""
        need = max(MIN_ROWS, 2 * values.shape[1] + 2)
        if len(values) < need:
            raise DetectorError(
                N_("too few rows with values to train on: {rows}, need at least {need}"),
                rows=len(values),
                need=need,
            )
        self.columns_ = columns
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column all NaN: its centre is NaN, set below
            center = np.nanmean(values, axis=0)
            scale = np.nanstd(values, axis=0, ddof=1)
        center = np.where(np.isfinite(center), center, 0.0)
        floor = 1e-3 * np.maximum(np.abs(center), 1e-3)  # a constant column: any change is a large step
        self.center_ = center
        self.scale_ = np.where(np.isfinite(scale) & (scale > floor), scale, floor)
        return self._standardise(values)

    def _standardise(self, values: np.ndarray) -> np.ndarray:
        z = (values - self.center_) / self.scale_
        return np.where(np.isnan(z), 0.0, z)

    def _score_matrix(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        if not hasattr(self, "columns_"):
            raise DetectorError(N_("the detector {name} must be fitted before it scores"), name=self.name)
        clean = numeric_frame(frame, columns=self.columns_)
        empty = clean.isna().all(axis=1).to_numpy()
        return clean, self._standardise(clean.to_numpy()), empty


class PCADetector(_Standardised):
    """PCA on standardised columns; a row is anomalous when its T² or its Q (SPE) passes its limit.

    The score is ``max(T² / T²_limit, Q / Q_limit)``, so 1 is the threshold. Limits: the F-based
    T² limit and the Jackson–Mudholkar Q limit at ``alpha``, each raised to the training rows'
    ``1 - alpha`` quantile when the data are heavier-tailed than those formulas assume.
    """

    name = "pca_t2q"
    description = N_(
        "multivariate, trained on normal data: PCA reconstruction error (Q/SPE) and Hotelling T² against control limits"
    )

    def __init__(self, *, variance: float = 0.9, alpha: float = 0.001) -> None:
        if not 0 < variance <= 1 or not 0 < alpha < 0.5:
            raise DetectorError(N_("detector parameters out of range"))
        self.variance, self.alpha = variance, alpha
        self.threshold_ = 1.0

    def fit(self, frame: pd.DataFrame) -> PCADetector:
        """Learn the normal correlation structure and the control limits from ``frame``."""
        return self._fit_standardised(self._train_matrix(frame))

    def fit_values(self, values: np.ndarray, columns: tuple[str, ...]) -> PCADetector:
        """:meth:`fit` on a float matrix already clean (rows in time order, no row all NaN, no
        infinity), one column per name of ``columns``: the fast path for many small fits."""
        return self._fit_standardised(self._train_values(values, columns))

    def _fit_standardised(self, z: np.ndarray) -> PCADetector:
        n, d = z.shape
        total = float((z**2).sum())
        if total <= 0:  # every column constant: no structure, only the distance from the constants
            self.components_ = np.zeros((0, d))
            self.eigen_ = np.zeros(0)
            self.t2_limit_, self.q_limit_ = math.inf, 9.0 * d
            return self
        pca = PCA(svd_solver="full").fit(z)
        ratio = np.cumsum(pca.explained_variance_ratio_)
        k = int(np.searchsorted(ratio, self.variance - 1e-12) + 1)
        k = max(1, min(k, d - 1 if d > 1 else 1))
        self.components_ = pca.components_[:k]
        self.eigen_ = np.maximum(pca.explained_variance_[:k], 1e-12)
        residual_eigen = pca.explained_variance_[k:]
        t2, q = self._stats(z)
        t2_theory = k * (n - 1) * (n + 1) / (n * max(n - k, 1)) * _f_quantile(1 - self.alpha, k, max(n - k, 1))
        self.t2_limit_ = max(t2_theory, float(np.quantile(t2, 1 - self.alpha)))
        q_theory = _q_limit(residual_eigen, self.alpha)
        q_floor = 1e-6 * d
        self.q_limit_ = max(q_theory, float(np.quantile(q, 1 - self.alpha)), q_floor) if d > 1 else math.inf
        self.mean_ = pca.mean_
        return self

    def _stats(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centred = z - getattr(self, "mean_", 0.0) if self.components_.shape[0] else z
        t = centred @ self.components_.T
        t2 = (t**2 / self.eigen_).sum(axis=1) if self.components_.shape[0] else np.zeros(len(z))
        q = ((centred - t @ self.components_) ** 2).sum(axis=1)
        return t2, q

    def score(self, frame: pd.DataFrame) -> pd.Series:
        """``max(T²/limit, Q/limit)`` per row (NaN for a row with no value)."""
        clean, z, empty = self._score_matrix(frame)
        score = self._score_standardised(z)
        score[empty] = np.nan
        return align(pd.Series(score, index=clean.index), frame)

    def score_values(self, values: np.ndarray) -> np.ndarray:
        """:meth:`score` of a float matrix in the fitted columns' order (NaN for a row all NaN)."""
        if not hasattr(self, "columns_"):
            raise DetectorError(N_("the detector {name} must be fitted before it scores"), name=self.name)
        score = self._score_standardised(self._standardise(values))
        score[np.isnan(values).all(axis=1)] = np.nan
        return score

    def _score_standardised(self, z: np.ndarray) -> np.ndarray:
        t2, q = self._stats(z)
        return np.asarray(np.maximum(t2 / self.t2_limit_, q / self.q_limit_), dtype="float64")


@functools.lru_cache(maxsize=1024)
def _f_quantile(p: float, dfn: int, dfd: int) -> float:
    """The F distribution's ``p`` quantile (many small fits share their degrees of freedom)."""
    return float(stats.f.ppf(p, dfn, dfd))


def _q_limit(residual: np.ndarray, alpha: float) -> float:
    """Jackson–Mudholkar upper limit of Q from the residual eigenvalues (0 when there are none)."""
    t1, t2, t3 = (float(np.sum(residual**p)) for p in (1, 2, 3))
    if t1 <= 0 or t2 <= 0:
        return 0.0
    h0 = 1 - 2 * t1 * t3 / (3 * t2**2)
    if abs(h0) < 1e-6:
        h0 = 1e-6
    c = float(stats.norm.ppf(1 - alpha))
    inner = c * math.sqrt(2 * t2 * h0**2) / t1 + 1 + t2 * h0 * (h0 - 1) / t1**2
    return float(t1 * max(inner, 0.0) ** (1 / h0))


class IsolationForestDetector(_Standardised):
    """IsolationForest on standardised columns; the threshold from the training scores' own spread.

    The score is scikit-learn's ``-score_samples`` (about 0.3–0.5 for normal rows, towards 1 for
    isolated ones). Threshold: the larger of the training scores' ``quantile`` and their median
    plus ``k`` robust standard deviations (no contamination share is assumed).
    """

    name = "isolation_forest"
    description = N_(
        "multivariate, trained on normal data: IsolationForest, threshold from the training score spread"
    )

    def __init__(self, *, n_estimators: int = 200, quantile: float = 0.999, k: float = 6.0,
                 random_state: int = 0) -> None:  # fmt: skip
        if n_estimators < 10 or not 0.5 < quantile < 1 or k <= 0:
            raise DetectorError(N_("detector parameters out of range"))
        self.n_estimators, self.quantile, self.k, self.random_state = n_estimators, quantile, k, random_state
        self.threshold_ = math.inf

    def fit(self, frame: pd.DataFrame) -> IsolationForestDetector:
        """Grow the forest on ``frame`` and set the threshold from its own scores."""
        z = self._train_matrix(frame)
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, random_state=self.random_state).fit(z)
        train = -self.forest_.score_samples(z)
        median = float(np.median(train))
        spread = 1.4826 * float(np.median(np.abs(train - median)))
        self.threshold_ = max(float(np.quantile(train, self.quantile)), median + self.k * spread)
        return self

    def score(self, frame: pd.DataFrame) -> pd.Series:
        """``-score_samples`` per row (NaN for a row with no value)."""
        clean, z, empty = self._score_matrix(frame)
        score = -self.forest_.score_samples(z) if len(z) else np.zeros(0)
        score[empty] = np.nan
        return align(pd.Series(score, index=clean.index), frame)
