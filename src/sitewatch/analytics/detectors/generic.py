"""The generic anomaly detector: a device that behaves unlike its own last week, fault unnamed.

The fault-specific detectors and the rules name the fault they suspect. This one names none: it
finds hours in which a device's metrics together leave the correlation structure of the device's
own previous week, whatever the cause (a fault no rule describes, a sensor drifting, a device
swapped), and reports them as findings with ``fault`` null (the evaluation's own row).

Per device, the readings become one row per hour (:func:`hourly`): gauges and flags as their mean,
counters as their increase (column ``<name>_increase``). Every :data:`REFIT_DAYS` UTC days are
scored by a :class:`~.multivariate.PCADetector` fitted on the device's :data:`TRAIN_HOURS` hours
before them (at least :data:`MIN_TRAIN_HOURS` with values), so the model follows slow changes (sunset
times, a quieter holiday week) and a long fault stops being new once it fills a week. A trained
model (``sitewatch analytics train``, the kind's ``pca_t2q``) replaces the weekly fits when the
live service has one.

An hour is flagged when its score (1 is the model's own 99.9 % control limit) passes
:data:`LEVEL`; :data:`MIN_HOURS` flagged hours in a row make an episode, and episodes closer than
:data:`MERGE_HOURS` are one. The levels were chosen on development backfills for few false
findings (docs/analytics-detectors.md, "Generic anomalies"): a finding nobody can name must be rare to be read.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ...contract import KINDS, DeviceKind, Finding, FindingState, MetricType, Severity
from ...i18n import N_
from .base import Detector, DetectorError
from .multivariate import PCADetector

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
TRAIN_HOURS = 168
MIN_TRAIN_HOURS = 120
REFIT_DAYS = 2
LEVEL = 3.0
MIN_HOURS = 6
MERGE_HOURS = 12
# the kinds it runs on: several metrics that move together; a water meter's household draw is too
# irregular hour by hour (its leaks, bursts and registers have their own detectors)
KINDS_RUN = (DeviceKind.ELEVATOR, DeviceKind.CHARGER, DeviceKind.CAMERA, DeviceKind.STREETLIGHT)


def metrics(kind: DeviceKind) -> tuple[str, ...]:
    """The metrics of ``kind`` the detector reads: its gauges and flags, then its counters."""
    spec = KINDS[kind].metrics
    levels = tuple(m for m, s in spec.items() if s.type in (MetricType.GAUGE, MetricType.FLAG))
    return levels + tuple(m for m, s in spec.items() if s.type is MetricType.COUNTER)


def hourly(readings: pd.DataFrame, kind: DeviceKind) -> pd.DataFrame:
    """One row per (device, hour start in ms) of long-form ``readings``: means and increases."""
    spec = KINDS[kind].metrics
    device_codes, device_names = pd.factorize(readings["device"].astype(str), sort=True)
    metric_codes, metric_names = pd.factorize(readings["metric"].astype(str), sort=True)
    ts = readings["ts_ms"].to_numpy(dtype="int64")
    value = readings["value"].to_numpy(dtype="float64")
    keep = np.isfinite(value) & (metric_codes >= 0) & (device_codes >= 0)
    hour = ts // HOUR_MS
    first_hour = int(hour[keep].min()) if keep.any() else 0
    slot = hour - first_hour
    n_slots = int(slot[keep].max()) + 1 if keep.any() else 0
    columns: dict[str, np.ndarray] = {}
    size = len(device_names) * n_slots
    for m, name in enumerate(metric_names):
        if name not in spec:
            continue
        rows = keep & (metric_codes == m)
        key = device_codes[rows].astype("int64") * n_slots + slot[rows]
        if spec[name].type is MetricType.COUNTER:
            order = np.lexsort((ts[rows], key))
            k, v = key[order], value[rows][order]
            starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
            ends = np.r_[starts[1:], len(k)] - 1
            col = np.full(size, np.nan)
            col[k[starts]] = np.maximum(v[ends] - v[starts], 0.0)  # a reset is not a negative use
            columns[f"{name}_increase"] = col
        else:
            total = np.bincount(key, weights=value[rows], minlength=size)
            count = np.bincount(key, minlength=size)
            with np.errstate(invalid="ignore", divide="ignore"):
                columns[name] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    index = pd.MultiIndex.from_product(
        [pd.Index(device_names, name="device"), pd.Index((np.arange(n_slots) + first_hour) * HOUR_MS, name="hour")]
    )
    frame = pd.DataFrame({name: columns[name] for name in sorted(columns)}, index=index)
    return frame.dropna(how="all")


def device_scores(rows: pd.DataFrame, model: PCADetector | None = None) -> pd.Series:
    """Score per hour of one device's hourly ``rows`` (index: hour start in ms), NaN where no
    model could be fitted (less than :data:`MIN_TRAIN_HOURS` with values in the week before the day)."""
    index = rows.index.to_numpy(dtype="int64")
    values = rows.to_numpy(dtype="float64")
    if model is not None:
        ordered = rows.reindex(columns=list(model.columns_)).to_numpy(dtype="float64")
        return pd.Series(model.score_values(ordered), index=index)
    columns = tuple(str(c) for c in rows.columns)
    out = np.full(len(index), np.nan)
    # refitted every REFIT_DAYS days (UTC), on the week before
    days = index // (REFIT_DAYS * DAY_MS) * (REFIT_DAYS * DAY_MS)
    for day in np.unique(days):
        train = (index >= day - TRAIN_HOURS * HOUR_MS) & (index < day)
        if int(train.sum()) < MIN_TRAIN_HOURS:
            continue
        # a column that did not move all week (a charger nobody used) says nothing of what is usual
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            moving = np.nan_to_num(np.nanstd(values[train], axis=0)) > 0
        if not moving.any():
            continue
        try:
            fitted = PCADetector().fit_values(values[train][:, moving], tuple(np.asarray(columns)[moving]))
        except DetectorError:
            continue
        today = days == day
        out[today] = fitted.score_values(values[today][:, moving])
    return pd.Series(out, index=index)


def runs(scores: pd.Series) -> list[tuple[int, int, float]]:
    """Episodes of ``scores`` (index: hour start in ms): (first hour, end of last hour, peak)."""
    flagged = scores.index.to_numpy(dtype="int64")[(scores > LEVEL).to_numpy()]
    if flagged.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(flagged) > HOUR_MS)
    starts, ends = np.r_[0, breaks + 1], np.r_[breaks, flagged.size - 1]
    kept = [(int(flagged[a]), int(flagged[b]) + HOUR_MS) for a, b in zip(starts, ends, strict=True)
            if b - a + 1 >= MIN_HOURS]  # fmt: skip
    merged: list[list[int]] = []
    for a, b in kept:
        if merged and a - merged[-1][1] < MERGE_HOURS * HOUR_MS:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    values = scores.to_numpy()
    stamps = scores.index.to_numpy(dtype="int64")
    return [(a, b, float(np.nanmax(values[(stamps >= a) & (stamps < b)]))) for a, b in merged]


def generic_anomaly(readings: pd.DataFrame, devices: pd.DataFrame, *, detector: Detector | None = None
                    ) -> list[Finding]:  # fmt: skip
    """Generic anomaly findings (``fault`` null) of one kind's long-form ``readings``."""
    if readings.empty:
        return []
    kind = DeviceKind(str(readings["kind"].iloc[0]))
    last = int(readings["ts_ms"].max())
    features = hourly(readings, kind)
    model = detector if isinstance(detector, PCADetector) and hasattr(detector, "columns_") else None
    # the hourly rows hold every metric read; a device missing one has that column all NaN (dropped)
    found: list[Finding] = []
    for key, rows in features.groupby(level="device", sort=True):
        device = str(key)
        rows = rows.droplevel("device").dropna(axis=1, how="all")
        if model is not None and not set(model.columns_) <= set(rows.columns):
            continue
        scores = device_scores(rows, model)
        for start, end, peak in runs(scores):
            hours = (end - start) // HOUR_MS
            active = end >= last - HOUR_MS  # flagged up to the last hour read: not over yet
            found.append(Finding(
                id=f"{PCADetector.name}.{device}.{start}", compound=str(devices.loc[device, "compound"]),
                device=device, kind=kind, source=f"detector:{PCADetector.name}", fault=None,
                severity=Severity.WARNING, state=FindingState.ACTIVE if active else FindingState.CLEARED,
                started_ms=start, ended_ms=None if active else end, ts_ms=min(end, last),
                message=N_("{device} behaves unlike its own last week for {hours} h (score {score}): no rule names the fault"),
                params={"device": device, "hours": int(hours), "score": round(peak, 1)},
                evidence={"score": peak, "hours": float(hours)},
                score=peak,
            ))  # fmt: skip
    return found
