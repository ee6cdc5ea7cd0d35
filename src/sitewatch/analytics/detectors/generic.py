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
:data:`MERGE_HOURS` are one. An episode in which the device is like most of its peers (the
other devices of its kind in its compound, at least :data:`MIN_PEERS`, each by its own weekly
model: :func:`like_peers`) is dropped: a device repaired after a fault that filled its week. The levels were chosen on development backfills for few false
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
MIN_PEERS = 2
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


def weekly_fits(rows: pd.DataFrame) -> dict[int, tuple[PCADetector, np.ndarray]]:
    """The models of one device's hourly ``rows`` (index: hour start in ms), refitted every
    :data:`REFIT_DAYS` days (UTC) on the week before: per first hour of those days, the model and
    the columns it reads (a mask of ``rows.columns``); none where less than :data:`MIN_TRAIN_HOURS`
    had values."""
    index = rows.index.to_numpy(dtype="int64")
    values = rows.to_numpy(dtype="float64")
    columns = np.asarray([str(c) for c in rows.columns])
    out: dict[int, tuple[PCADetector, np.ndarray]] = {}
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
            out[int(day)] = (PCADetector().fit_values(values[train][:, moving], tuple(columns[moving])), moving)
        except DetectorError:
            continue
    return out


def device_scores(rows: pd.DataFrame, model: PCADetector | None = None,
                  fits: dict[int, tuple[PCADetector, np.ndarray]] | None = None) -> pd.Series:  # fmt: skip
    """Score per hour of one device's hourly ``rows`` (index: hour start in ms), NaN where no
    model could be fitted (less than :data:`MIN_TRAIN_HOURS` with values in the week before the day).
    ``fits``: the device's :func:`weekly_fits`, when already made."""
    index = rows.index.to_numpy(dtype="int64")
    values = rows.to_numpy(dtype="float64")
    if model is not None:
        ordered = rows.reindex(columns=list(model.columns_)).to_numpy(dtype="float64")
        return pd.Series(model.score_values(ordered), index=index)
    out = np.full(len(index), np.nan)
    days = index // (REFIT_DAYS * DAY_MS) * (REFIT_DAYS * DAY_MS)
    for day, (fitted, moving) in (weekly_fits(rows) if fits is None else fits).items():
        today = days == day
        out[today] = fitted.score_values(values[today][:, moving])
    return pd.Series(out, index=index)


def like_peers(rows: pd.DataFrame, start: int, end: int,
               peers: list[tuple[pd.DataFrame, dict[int, tuple[PCADetector, np.ndarray]]]]) -> bool:  # fmt: skip
    """Whether the flagged hours in [``start``, ``end``) of one device's hourly ``rows`` are usual
    for most of its ``peers`` (each: its hourly rows and :func:`weekly_fits`): scored by each
    peer's own model of those days, fewer than half of them pass :data:`LEVEL` for at least
    :data:`MIN_PEERS` peers out of two. A device back to normal after a fault that filled its
    week is unlike that week but like the devices beside it; a faulty one is unlike both."""
    index = rows.index.to_numpy(dtype="int64")
    hours = (index >= start) & (index < end)
    days = index // (REFIT_DAYS * DAY_MS) * (REFIT_DAYS * DAY_MS)
    votes: list[bool] = []
    for peer_rows, fits in peers:
        flagged = total = 0
        for day in np.unique(days[hours]):
            if int(day) not in fits:
                continue
            fitted, moving = fits[int(day)]
            names = list(peer_rows.columns[moving])
            if not set(names) <= set(rows.columns):
                continue
            picked = hours & (days == day)
            score = fitted.score_values(rows.loc[picked, names].to_numpy(dtype="float64"))
            flagged += int((score > LEVEL).sum())
            total += int(np.isfinite(score).sum())
        if total:
            votes.append(flagged < total / 2)
    return len(votes) >= MIN_PEERS and 2 * sum(votes) > len(votes)


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
    model = detector if isinstance(detector, PCADetector) and hasattr(detector, "columns_") else None
    return kind_findings(hourly(readings, kind), kind, int(readings["ts_ms"].max()), devices, model)


def kind_findings(features: pd.DataFrame, kind: DeviceKind, last: int, devices: pd.DataFrame,
                  model: PCADetector | None = None) -> list[Finding]:  # fmt: skip
    """:func:`generic_anomaly` of one kind's :func:`hourly` ``features`` read up to ``last``."""
    # the hourly rows hold every metric read; a device missing one has that column all NaN (dropped)
    per_device: dict[str, tuple[pd.DataFrame, dict[int, tuple[PCADetector, np.ndarray]]]] = {}
    episodes: list[tuple[str, int, int, float]] = []
    for key, rows in features.groupby(level="device", sort=True):
        device = str(key)
        rows = rows.droplevel("device").dropna(axis=1, how="all")
        if model is not None and not set(model.columns_) <= set(rows.columns):
            continue
        fits = weekly_fits(rows) if model is None else {}
        per_device[device] = (rows, fits)
        episodes.extend((device, *run) for run in runs(device_scores(rows, model, fits)))
    found: list[Finding] = []
    for device, start, end, peak in episodes:
        compound = str(devices.loc[device, "compound"])
        if model is None:
            peers = [per_device[d] for d in per_device
                     if d != device and str(devices.loc[d, "compound"]) == compound]  # fmt: skip
            if like_peers(per_device[device][0], start, end, peers):
                continue
        hours = (end - start) // HOUR_MS
        active = end >= last - HOUR_MS  # flagged up to the last hour read: not over yet
        found.append(Finding(
            id=f"{PCADetector.name}.{device}.{start}", compound=compound,
            device=device, kind=kind, source=f"detector:{PCADetector.name}", fault=None,
            severity=Severity.WARNING, state=FindingState.ACTIVE if active else FindingState.CLEARED,
            started_ms=start, ended_ms=None if active else end, ts_ms=min(end, last),
            message=N_("{device} behaves unlike its own last week for {hours} h (score {score}): no rule names the fault"),
            params={"device": device, "hours": int(hours), "score": round(peak, 1)},
            evidence={"score": peak, "hours": float(hours)},
            score=peak,
        ))  # fmt: skip
    return sorted(found, key=lambda f: (f.device, f.started_ms))
