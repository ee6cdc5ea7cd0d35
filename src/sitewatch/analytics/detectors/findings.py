"""Findings from the detectors on a ``simulate backfill`` directory, for the evaluation against its labels.

It reads the directory's Parquet files directly (``readings.parquet``, ``devices.parquet``) and
runs, per device, what the live service would run as the data arrive:

- **bearing wear** (elevators): :class:`~.trend.TheilSenTrend` on the running vibration (polls
  whose ``run_state`` is running up or down), flagged from the evaluation that first passes;
- **water balance** (water meters, ``balance.py``): a building meter against the sum of its
  flats (the compound meter against its buildings): a register that stood still for whole days
  while the balance missed its water (``stuck_register``, or ``meter_tamper`` when short or
  flagged), a building meter registering a steady share less, a burst behind a building meter,
  a leak behind it (its residual risen night and day);
- **leak** (water meters): :class:`~.night.NightFlow` on ``flow`` against the meter's own
  nights; household meters also against their compound's household meters (whose night minimum
  is almost always zero), so a leak that began before the history is still seen. An episode on a
  building or compound meter that overlaps one downstream (a household of that building, a
  building of that compound) is the downstream one seen again, and is dropped.
- **pressure dip** (water meters, ``pressure.py``): a building meter's pressure against the
  compound's other meters; a dip at one building alone is a burst there, named to the flat (or
  the building's pipes) whose flow explains it.

Each run of flagged rows (runs closer than ``merge_hours`` joined) becomes one
:class:`~sitewatch.contract.Finding` with ``source`` ``detector:<name>``.

Each fault-specific detector is a function ``(readings, devices) -> list[Finding]`` listed in
:data:`DETECTOR_RUNS` with the kind, metrics and history it reads. ``readings`` is the long form
(``ts_ms``, ``device``, ``metric``, ``value``, ``kind``, ``compound``: :data:`READING_COLUMNS`),
``devices`` one row per device (index ``device``; columns ``compound``, ``building`` and, for
water meters, ``scope``). :func:`detector_findings` feeds them from a backfill's Parquet files
(:func:`read_parquet`); the live service's scorer (``analytics/scoring.py``) from the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.stats import rankdata

from ...contract import DeviceKind, Finding, FindingState, Severity
from ...i18n import N_
from . import generic
from .balance import WaterBalance, water_balance_findings
from .base import Detector, numeric_frame
from .multivariate import PCADetector
from .night import NightArrays, NightFlow, _Nights
from .pressure import PressureDip, pressure_dip_findings
from .trend import TheilSenTrend

log = logging.getLogger(__name__)
RUNNING = (1.0, 2.0)  # run_state codes running_up, running_down (contract/kinds.py)
HOUR_MS = 3_600_000
# the trend is judged from two days of running vibration on (a week once there is one): a bearing
# that wears out in the history's first week is flagged before it fails, not only after a full week
BEARING_WARMUP_HOURS = 48
# hours with a running car in a window: two days of a busy car hold about 36, of a quiet one 24 (36 before:
# a quiet car worn from the history's start was judged only after three and a half days)
BEARING_MIN_POINTS = 24
# the level check (level_rise): the last day's running vibration against the car's own days before
LEVEL_RECENT_HOURS = 24  # the day judged (its hourly medians)
LEVEL_GAP_HOURS = 48  # left out between the reference and the day judged: a wear's own first days
LEVEL_REFERENCE_HOURS = 168  # the reference: up to a week before the gap (at least a day of it)
LEVEL_MIN_RISE = 0.06  # the day's median over the reference's median
LEVEL_MIN_SHARE = 0.8  # and this share of the day's hours above the reference's 90th percentile
# the polls check (level_polls): the last day's running polls themselves against the car's own polls
# before a one-day gap, by their medians and a rank-sum z; a quiet car (a poll running every hour or
# two) has too few polls an hour for hourly medians, and a wear from the history's first day has no
# reference a week back yet
POLLS_RECENT_HOURS = 24  # a whole day, so the day's rhythm of load is in both
POLLS_GAP_HOURS = 24  # a wear grows with the square of its trips: its first half is under 1/4 of it
POLLS_MIN_REFERENCE_HOURS = 24  # the first evaluation: a day of reference, the gap and the day judged
POLLS_MIN_RISE = 0.07  # the day's median poll over the reference's (healthy cars: 6.9% at most, seeds 13-30)
POLLS_MIN_Z = 4.0  # and the rank-sum z of the day's polls over the reference's
POLLS_MIN_RECENT, POLLS_MIN_REFERENCE = 8, 24  # polls at least in the day judged, in the reference
READING_COLUMNS = ("ts_ms", "device", "metric", "value", "kind", "compound")


@dataclass(frozen=True, slots=True)
class Episode:
    """One run of flagged rows of one device: [start_ms, end_ms], with the peak score."""

    device: str
    start_ms: int
    end_ms: int
    peak: float
    evidence: dict[str, float]


def episodes(device: str, flags: pd.Series, scores: pd.Series, *, merge_hours: float) -> list[Episode]:
    """Runs of 1 in ``flags`` (indexed by time), joined when closer than ``merge_hours``."""
    flagged = flags[flags > 0]
    if flagged.empty:
        return []
    ts = pd.DatetimeIndex(flagged.index).as_unit("ns").asi8 // 1_000_000
    breaks = np.flatnonzero(np.diff(ts) > merge_hours * HOUR_MS)
    starts = np.r_[0, breaks + 1]
    ends = np.r_[breaks, len(ts) - 1]
    values = scores.reindex(flagged.index).to_numpy()
    return [
        Episode(device, int(ts[a]), int(ts[b]), float(np.nanmax(values[a : b + 1])), {})
        for a, b in zip(starts, ends, strict=True)
    ]


def _read(
    history: Path | pd.DataFrame, kind: str, metrics: tuple[str, ...], compounds: Iterable[str] | None
) -> pd.DataFrame:
    if isinstance(history, pd.DataFrame):  # readings already read (READING_COLUMNS)
        return _select(history, kind, metrics, compounds)
    filters: list[tuple[str, str, object]] = [("kind", "=", kind), ("metric", "in", list(metrics))]
    if compounds is not None:
        filters.append(("compound", "in", list(compounds)))
    table = pq.read_table(history / "readings.parquet", columns=["ts_ms", "device", "metric", "value"],
                          filters=filters, read_dictionary=["device", "metric"])  # fmt: skip
    return _strings(table.to_pandas(), ("device", "metric"))


def _select(readings: pd.DataFrame, kind: str, metrics: tuple[str, ...],
            compounds: Iterable[str] | None) -> pd.DataFrame:  # fmt: skip
    keep = (readings["kind"].astype(str) == kind) & readings["metric"].astype(str).isin(metrics)
    if compounds is not None:
        keep &= readings["compound"].astype(str).isin(list(compounds))
    frame = readings.loc[keep, ["ts_ms", "device", "metric", "value"]].reset_index(drop=True)
    for name in ("device", "metric"):
        frame[name] = frame[name].astype(str)
    return frame


def read_parquet(history: Path, kind: str, metrics: tuple[str, ...], compounds: Iterable[str] | None = None
                 ) -> pd.DataFrame:  # fmt: skip
    """The readings of ``kind``'s ``metrics`` in a backfill directory, in the long form (READING_COLUMNS)."""
    filters: list[tuple[str, str, object]] = [("kind", "=", kind), ("metric", "in", list(metrics))]
    if compounds is not None:
        filters.append(("compound", "in", list(compounds)))
    table = pq.read_table(Path(history) / "readings.parquet", columns=["ts_ms", "device", "metric", "value", "compound"],
                          filters=filters, read_dictionary=["device", "metric", "compound"])  # fmt: skip
    frame = _strings(table.to_pandas(), ("device", "metric", "compound"))
    frame["kind"] = kind
    return frame


def _strings(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """``frame``'s dictionary-encoded (categorical) columns ``names`` as strings: each row takes its
    category's string (several times faster than converting the categorical, for millions of rows)."""
    for name in names:
        column = frame[name]
        codes = column.cat.codes.to_numpy() if isinstance(column.dtype, pd.CategoricalDtype) else None
        if codes is None or (codes < 0).any():
            frame[name] = column.astype(str)
        else:
            frame[name] = np.asarray(column.cat.categories, dtype=object)[codes]
    return frame


def _finding(ep: Episode, devices: pd.DataFrame, *, detector: str, fault: str | None, kind: DeviceKind,
             end_ms: int, message: str, params: dict[str, str | int | float]) -> Finding:  # fmt: skip
    compound = str(devices.loc[ep.device, "compound"])
    active = ep.end_ms >= end_ms
    return Finding(
        id=f"{detector}.{ep.device}.{ep.start_ms}",
        compound=compound,
        device=ep.device,
        kind=kind,
        source=f"detector:{detector}",
        fault=fault,
        severity=Severity.WARNING,
        state=FindingState.ACTIVE if active else FindingState.CLEARED,
        started_ms=ep.start_ms,
        ended_ms=None if active else ep.end_ms,
        ts_ms=ep.end_ms,
        message=message,
        params=params,
        evidence=ep.evidence,
        score=ep.peak,
    )


def _messages(finding: Finding) -> list[Finding]:
    """A finding as the messages a live run sends: active when the detector first flagged it (its
    evaluations use only the data before them), then cleared at its end if it has ended."""
    if finding.state is FindingState.ACTIVE:
        return [finding]
    return [replace(finding, state=FindingState.ACTIVE, ended_ms=None, ts_ms=finding.started_ms), finding]


def bearing_episodes(history: Path | pd.DataFrame, *, compounds: Iterable[str] | None = None,
                     detector: TheilSenTrend | None = None) -> tuple[list[Episode], int]:  # fmt: skip
    """Rising running vibration per elevator; also returns the history's last reading time."""
    detector = detector or TheilSenTrend(warmup_hours=BEARING_WARMUP_HOURS, min_points=BEARING_MIN_POINTS)
    long = _read(history, "elevator", ("vibration_rms", "run_state"), compounds)
    if long.empty:
        return [], 0
    last = int(long["ts_ms"].max())
    wide = long.pivot_table(index=["device", "ts_ms"], columns="metric", values="value", aggfunc="last")
    out: list[Episode] = []
    for device, rows in wide.groupby(level=0):
        rows = rows.droplevel(0)
        if "vibration_rms" not in rows or "run_state" not in rows:
            continue
        running = rows["vibration_rms"][rows["run_state"].isin(RUNNING)]
        if running.empty:
            continue
        frame = running.to_frame("vibration_rms")
        frame.index = pd.to_datetime(frame.index, unit="ms", utc=True)
        trend = still_high(detector, frame["vibration_rms"])
        values = frame["vibration_rms"]
        level = level_rise(values, stride_hours=detector.stride_hours)
        polls = level_polls(values, stride_hours=detector.stride_hours)
        scores = trend["score"].reindex(frame.index, method="ffill").fillna(0.0)
        if not level.empty:
            by_level = level["score"].reindex(frame.index, method="ffill").fillna(0.0)
            scores = pd.Series(np.fmax(scores.to_numpy(), by_level.to_numpy()), index=frame.index)
        if not polls.empty:
            # a poll under the middle of its evaluation's rise is not flagged by it (as in still_high):
            # the evaluation just before a repair must not flag the repaired car's first polls
            by_polls = polls["score"].reindex(frame.index, method="ffill").fillna(0.0)
            at = polls[["base", "rise"]].reindex(frame.index, method="ffill")
            low = (values < at["base"] * (1.0 + at["rise"].clip(lower=POLLS_MIN_RISE) / 2)).to_numpy()
            by_polls[low] = np.minimum(by_polls[low], 0.99 * detector.threshold_)
            scores = pd.Series(np.fmax(scores.to_numpy(), by_polls.to_numpy()), index=frame.index)
        checks = [t[["score", "rise", "z", "slope"]] for t in (level, polls) if not t.empty]
        if checks:  # the evidence: the evaluation of the highest score at each time
            trend = pd.concat([trend, *checks]).sort_values("score", kind="stable")
            trend = trend[~trend.index.duplicated(keep="last")].sort_index()
        flags = (scores > detector.threshold_).astype("int64")
        for ep in episodes(str(device), flags, scores, merge_hours=24):
            at = trend[trend.index <= pd.Timestamp(ep.start_ms, unit="ms", tz="UTC")]
            evidence = {} if at.empty else {"rise": float(at["rise"].iloc[-1]), "z": float(at["z"].iloc[-1])}
            out.append(Episode(ep.device, ep.start_ms, ep.end_ms, ep.peak, evidence))
    return out, last


def level_rise(series: pd.Series, *, stride_hours: int = 3, recent_hours: int = LEVEL_RECENT_HOURS,
               gap_hours: int = LEVEL_GAP_HOURS, reference_hours: int = LEVEL_REFERENCE_HOURS,
               min_rise: float = LEVEL_MIN_RISE, min_share: float = LEVEL_MIN_SHARE) -> pd.DataFrame:  # fmt: skip
    """The last ``recent_hours`` of ``series`` (hourly medians) against the car's own reference: the
    ``reference_hours`` before a gap of ``gap_hours``. Evaluated every ``stride_hours``; ``score`` is the
    smaller of (rise of the medians / ``min_rise``) and (share of the recent hours above the
    reference's 90th percentile / ``min_share``), ``rise`` the relative rise (indexed like
    :meth:`TheilSenTrend.trend`). A worn bearing lifts every hour of the day above the car's own
    days before it; a day of heavier use lifts some. The trend needs a week's slope to see a slow
    wear; this sees the level it has reached against the days before its steep end."""
    values = series.dropna()
    columns = ["score", "rise", "z", "slope"]
    if values.empty:
        return pd.DataFrame(columns=columns, dtype="float64")
    index = pd.DatetimeIndex(values.index).as_unit("ns")
    hourly = values.groupby(index.floor("h")).median()
    hours = pd.DatetimeIndex(hourly.index).asi8 // 3_600_000_000_000
    y = hourly.to_numpy()
    rows = []
    first = hours[0] + gap_hours + recent_hours + 24
    for end in range(int(first), int(hours[-1]) + stride_hours, stride_hours):
        recent = y[(hours > end - recent_hours) & (hours <= end)]
        start = end - recent_hours - gap_hours
        ref = y[(hours > start - reference_hours) & (hours <= start)]
        if len(recent) < recent_hours // 2 or len(ref) < 12:
            continue
        base = float(np.median(ref))
        if base <= 0:
            continue
        rise = float(np.median(recent)) / base - 1.0
        share = float((recent > np.quantile(ref, 0.9)).mean())
        rows.append((end, max(0.0, min(rise / min_rise, share / min_share)), rise, share, 0.0))
    table = pd.DataFrame(rows, columns=["end", *columns])
    stamps = pd.to_datetime((table.pop("end").to_numpy() + 1).astype("int64") * 3_600_000_000_000)
    if isinstance(series.index, pd.DatetimeIndex) and series.index.tz is not None:
        stamps = stamps.tz_localize("UTC").tz_convert(series.index.tz)
    table.index = pd.DatetimeIndex(stamps)
    return table


def level_polls(series: pd.Series, *, stride_hours: int = 3, recent_hours: int = POLLS_RECENT_HOURS,
                gap_hours: int = POLLS_GAP_HOURS, reference_hours: int = LEVEL_REFERENCE_HOURS,
                min_rise: float = POLLS_MIN_RISE, min_z: float = POLLS_MIN_Z) -> pd.DataFrame:  # fmt: skip
    """The running polls of the last ``recent_hours`` of ``series`` against the car's own polls of the
    ``reference_hours`` before a gap of ``gap_hours`` (at least POLLS_MIN_REFERENCE_HOURS of them).
    Evaluated every ``stride_hours`` on whole hours; ``score`` is the smaller of (rise of the medians /
    ``min_rise``) and (the Mann-Whitney z of the day's polls over the reference's / ``min_z``), ``rise``
    the relative rise, ``z`` the rank-sum z, ``base`` the reference's median (indexed like :meth:`TheilSenTrend.trend`, each evaluation
    from the end of its last hour). Unlike :func:`level_rise` it needs no poll in most hours."""
    values = series.dropna()
    columns = ["score", "rise", "z", "slope"]
    if values.empty:
        return pd.DataFrame(columns=[*columns, "base"], dtype="float64")
    t = pd.DatetimeIndex(values.index).as_unit("ns").asi8 / 3_600_000_000_000
    y = values.to_numpy(dtype="float64")
    rows = []
    first = np.floor(t[0]) + POLLS_MIN_REFERENCE_HOURS + gap_hours + recent_hours
    for end in np.arange(first, np.floor(t[-1]) + 1 + stride_hours, stride_hours):
        recent = y[(t >= end - recent_hours) & (t < end)]
        start = end - recent_hours - gap_hours
        ref = y[(t >= start - reference_hours) & (t < start)]
        nr, nf = len(recent), len(ref)
        if nr < POLLS_MIN_RECENT or nf < POLLS_MIN_REFERENCE:
            continue
        base = float(np.median(ref))
        if base <= 0:
            continue
        rise = float(np.median(recent)) / base - 1.0
        ranks = rankdata(np.r_[recent, ref])
        u = float(ranks[:nr].sum()) - nr * (nr + 1) / 2.0
        z = (u - nr * nf / 2.0) / np.sqrt(nr * nf * (nr + nf + 1) / 12.0)
        rows.append((end, max(0.0, min(rise / min_rise, z / min_z)), rise, z, 0.0, base))
    table = pd.DataFrame(rows, columns=["end", *columns, "base"])
    stamps = pd.to_datetime(table.pop("end").to_numpy().astype("int64") * 3_600_000_000_000)
    if isinstance(series.index, pd.DatetimeIndex) and series.index.tz is not None:
        stamps = stamps.tz_localize("UTC").tz_convert(series.index.tz)
    table.index = pd.DatetimeIndex(stamps)
    return table


def still_high(detector: TheilSenTrend, series: pd.Series) -> pd.DataFrame:
    """The detector's evaluations of ``series``, an evaluation's score capped below the threshold
    when the last day's level (median of its hourly medians) has fallen back under the middle of
    the fitted rise: a week that held a wear and its repair fits a rising line, but the car is fine."""
    trend = detector.trend(series)
    if trend.empty:
        return trend
    index = pd.DatetimeIndex(series.index)
    hourly = series.groupby(index.floor("h")).median()
    stamps = pd.DatetimeIndex(hourly.index)
    capped = []
    for stamp, row in trend.iterrows():
        at = pd.Timestamp(str(stamp))
        score = float(row["score"])
        if score >= detector.threshold_ and row["rise"] > 0:
            # the fitted line's level at the window's start
            start = row["slope"] * detector.window_hours / row["rise"]
            day = hourly[(stamps < at) & (stamps >= at - pd.Timedelta(hours=24))]
            if day.empty or float(day.median()) < start * (1.0 + row["rise"] / 2.0):
                score = min(score, 0.99 * detector.threshold_)
        capped.append(score)
    return trend.assign(score=capped)


def leak_episodes(history: Path | pd.DataFrame, devices: pd.DataFrame, *, compounds: Iterable[str] | None = None,
                  detector: NightFlow | None = None) -> tuple[list[Episode], int]:  # fmt: skip
    """Raised minimum night flow per water meter, upstream echoes dropped; and the last reading time."""
    detector = detector or NightFlow()
    long = _read(history, "water_meter", ("flow",), compounds)
    if long.empty:
        return [], 0
    last = int(long["ts_ms"].max())
    scope = devices["scope"].astype(str) if "scope" in devices else pd.Series("", index=devices.index)
    # each meter's cleaned flow, nights and local times, made once for its minima, nights and scores
    nights = NightFlow(tz=detector.tz, start_hour=detector.start_hour, end_hour=detector.end_hour)
    prepared = {device: _night_rows(nights, rows) for device, rows in _meter_rows(long, detector.tz)}
    # the compound's household meters' median night minimum, per night: the reference for each household meter
    reference: dict[str, pd.Series] = {}
    by_compound: dict[str, list[pd.Series]] = {}
    for device, rows in prepared.items():
        if scope.get(device) == "household":
            by_compound.setdefault(str(devices.loc[device, "compound"]), []).append(rows.minima(nights))
    for compound, parts in by_compound.items():
        reference[compound] = pd.concat(parts, axis=1).median(axis=1)
    found: list[Episode] = []
    for device, rows in prepared.items():
        household = scope.get(device) == "household"
        ref = reference.get(str(devices.loc[device, "compound"])) if household else None
        night = NightFlow(**{**detector.params(), "reference": ref})
        table = rows.nights(night)
        flagged = np.flatnonzero(table.rows > night.threshold_)
        if not len(flagged):
            continue
        ts = rows.ts_ms[flagged]
        breaks = np.flatnonzero(np.diff(ts) > 30 * HOUR_MS)  # episodes' runs joined when closer than 30 h
        for a, b in zip(np.r_[0, breaks + 1], np.r_[breaks, len(ts) - 1], strict=True):
            start_ms = int(ts[a])
            start = (
                pd.Timestamp(start_ms, unit="ms", tz="UTC")
                .tz_convert(detector.tz)
                .tz_localize(None)
                .normalize()
            )
            k = int(np.searchsorted(table.nights, start.value, side="right")) - 1  # the last night by then
            evidence = {} if k < 0 else {"night_minimum": float(table.minimum[k]), "z": float(table.z[k])}
            peak = float(np.nanmax(table.rows[flagged[a : b + 1]]))
            found.append(Episode(device, start_ms, int(ts[b]), peak, evidence))
    return _drop_upstream(found, devices), last


@dataclass(frozen=True, slots=True)
class _MeterNights:
    """One water meter's flow for the leak detector as ``numeric_frame`` leaves it (in time order,
    one row per instant, infinities as NaN), with its nights."""

    ts_ms: np.ndarray
    values: np.ndarray
    grid: _Nights

    def minima(self, nights: NightFlow) -> pd.Series:
        """The nights' minima (:meth:`NightFlow.minima`)."""
        index, minima, _keep = self.grid.minima(self.values)
        return pd.Series(minima, index=index, name="minimum")

    def nights(self, night: NightFlow) -> NightArrays:
        """The nights' minima and z, and each row's score (:meth:`NightFlow.night_arrays`)."""
        return night.night_arrays(self.values, self.grid)


def _local_ns(ts_ms: np.ndarray, tz: str) -> np.ndarray:
    """Wall-clock nanoseconds in ``tz`` of UTC milliseconds."""
    index = pd.DatetimeIndex(pd.to_datetime(ts_ms, unit="ms", utc=True)).as_unit("ns")
    return np.asarray(index.tz_convert(tz).tz_localize(None).asi8, dtype=np.int64)


def _meter_rows(
    long: pd.DataFrame, tz: str
) -> Iterator[tuple[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Each meter's (ms, value, local wall-clock ns) in the readings' order, by device name."""
    code, names = pd.factorize(long["device"].astype(str), sort=True)  # groupby's order of the names
    order = np.argsort(code, kind="stable")  # each meter's rows in the readings' order
    ts = long["ts_ms"].to_numpy(dtype=np.int64)[order]
    values = long["value"].to_numpy(dtype=np.float64)[order]
    local = _local_ns(ts, tz)
    bounds = np.r_[0, np.cumsum(np.bincount(code, minlength=len(names)))]
    for i, name in enumerate(names):
        a, b = int(bounds[i]), int(bounds[i + 1])
        yield str(name), (ts[a:b], values[a:b], local[a:b])


def _night_rows(nights: NightFlow, rows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> _MeterNights:
    ts, values, local = rows
    if len(ts) and bool(np.all(ts[1:] > ts[:-1])):  # in time order, one row per instant: numeric_frame's own
        values = np.where(np.isinf(values), np.nan, values)
    else:  # sorted, rows of one instant averaged: numeric_frame's rows
        clean = numeric_frame(pd.DataFrame({"flow": values}, index=pd.to_datetime(ts, unit="ms", utc=True)))
        ts = np.asarray(pd.DatetimeIndex(clean.index).as_unit("ms").asi8, dtype=np.int64)
        values, local = clean["flow"].to_numpy(dtype=np.float64), _local_ns(ts, nights.tz)
    return _MeterNights(ts, values, _Nights(local, nights.start_hour, nights.end_hour))


def _drop_upstream(found: list[Episode], devices: pd.DataFrame) -> list[Episode]:
    scope = devices["scope"].astype(str)
    building = devices["building"].astype(str)
    kept = []
    for ep in found:
        level = scope.get(ep.device)
        if level == "household":
            kept.append(ep)
            continue
        compound = str(devices.loc[ep.device, "compound"])
        downstream = [
            other for other in found
            if other.device != ep.device and str(devices.loc[other.device, "compound"]) == compound
            and (building.get(other.device) == building.get(ep.device) or _is_compound_meter(ep.device, devices))
            and _depth(other.device, devices) > _depth(ep.device, devices)
            and other.start_ms <= ep.end_ms + 24 * HOUR_MS and ep.start_ms <= other.end_ms + 24 * HOUR_MS
        ]  # fmt: skip
        if not downstream:
            kept.append(ep)
    return kept


def _is_compound_meter(device: str, devices: pd.DataFrame) -> bool:
    return str(devices.loc[device, "scope"]) != "household" and str(devices.loc[device, "building"]) in (
        "",
        "nan",
        "None",
    )


def _depth(device: str, devices: pd.DataFrame) -> int:
    if str(devices.loc[device, "scope"]) == "household":
        return 2
    return 0 if _is_compound_meter(device, devices) else 1


def bearing_wear(readings: pd.DataFrame, devices: pd.DataFrame, *,
                 detector: Detector | None = None) -> list[Finding]:  # fmt: skip
    """Bearing-wear findings (elevators) of ``readings``."""
    trend = detector if isinstance(detector, TheilSenTrend) else None
    bearing, last = bearing_episodes(readings, detector=trend)
    findings = []
    for ep in bearing:
        findings.append(_finding(
            ep, devices, detector=TheilSenTrend.name, fault="bearing_wear", kind=DeviceKind.ELEVATOR, end_ms=last,
            message=N_("running vibration of {device} keeps rising: {rise} over the last week, bearing wear suspected"),
            params={"device": ep.device, "rise": f"{ep.evidence.get('rise', float('nan')):+.0%}"},
        ))  # fmt: skip
    return findings


def leak(readings: pd.DataFrame, devices: pd.DataFrame, *, detector: Detector | None = None) -> list[Finding]:
    """Leak findings (water meters) of ``readings``."""
    night = detector if isinstance(detector, NightFlow) else None
    leaks, last = leak_episodes(readings, devices, detector=night)
    findings = []
    for ep in leaks:
        findings.append(_finding(
            ep, devices, detector=NightFlow.name, fault="leak", kind=DeviceKind.WATER_METER, end_ms=last,
            message=N_("night flow of {device} stays above its usual minimum: {flow} m³/h between 02:00 and 04:00, a leak suspected"),
            params={"device": ep.device, "flow": round(ep.evidence.get("night_minimum", float("nan")), 4)},
        ))  # fmt: skip
    return findings


def water_balance(
    readings: pd.DataFrame, devices: pd.DataFrame, *, detector: Detector | None = None
) -> list[Finding]:
    """Water-balance findings (a meter against the meters behind it: stuck registers, tampering,
    bursts in a building's pipes) of ``readings``; it has no trained model."""
    return water_balance_findings(readings, devices)


def pressure_dip(
    readings: pd.DataFrame, devices: pd.DataFrame, *, detector: Detector | None = None
) -> list[Finding]:
    """Burst findings from the pressure at building meters (a dip at one building's meter alone,
    named to the flat or the building pipes whose flow explains it); it has no trained model."""
    return pressure_dip_findings(readings, devices)


DetectorFunction = Callable[..., list[Finding]]  # (readings, devices, *, detector=None) -> findings


@dataclass(frozen=True, slots=True)
class DetectorRun:
    """One fault-specific detector: what it reads and the function that turns readings into findings.

    ``name`` names the run (the detector class it runs, unless ``model`` names it: a trained
    model of that detector may replace its defaults); ``metrics`` what it reads, the scored one first. For the live scorer: ``window_hours`` of history
    read, the first ``warmup_hours`` of which give too little history for an episode's start to be
    the one the whole history gives; flags closer than ``merge_hours`` are one episode (as the
    function joins them); ``every_h``: the least time between two of its live runs.
    """

    name: str
    kind: DeviceKind
    metrics: tuple[str, ...]
    function: DetectorFunction
    window_hours: float
    warmup_hours: float
    merge_hours: float
    model: str = ""
    every_h: float = 0.0  # the live scorer runs it at most this often (0: on each of its runs)

    @property
    def detector(self) -> str:
        """The detector class a trained model must be of to replace this run's defaults."""
        return self.model or self.name


# the generic anomaly detector, fault unnamed, per kind: each day against the week before it, three days
# scored, hourly (its episodes need six flagged hours)
GENERIC_RUNS: tuple[DetectorRun, ...] = tuple(
    DetectorRun(f"{PCADetector.name}.{kind.value}", kind, generic.metrics(kind), generic.generic_anomaly,
                window_hours=generic.TRAIN_HOURS + 72, warmup_hours=generic.TRAIN_HOURS + 24,
                merge_hours=generic.MERGE_HOURS, model=PCADetector.name, every_h=1.0)
    for kind in generic.KINDS_RUN
)  # fmt: skip

DETECTOR_RUNS: tuple[DetectorRun, ...] = (
    # the trend's 168 h window and three days more
    DetectorRun(TheilSenTrend.name, DeviceKind.ELEVATOR, ("vibration_rms", "run_state"), bearing_wear,
                window_hours=168 + 72, warmup_hours=168, merge_hours=24),
    # 14 nights of history, the 2 nights of persistence and a day
    DetectorRun(NightFlow.name, DeviceKind.WATER_METER, ("flow",), leak,
                window_hours=24 * (14 + 2 + 1), warmup_hours=24 * 16, merge_hours=30),
    # whole local days (cut at 03:00) against the meter's usual share: four days at least, a fortnight read
    DetectorRun(WaterBalance.name, DeviceKind.WATER_METER, ("volume_register", "tamper"), water_balance,
                window_hours=24 * 14, warmup_hours=24 * 4, merge_hours=30),
    # a building meter's pressure against its peers, less its level over the previous two days
    DetectorRun(PressureDip.name, DeviceKind.WATER_METER, ("pressure", "flow"), pressure_dip,
                window_hours=48 + 24, warmup_hours=1, merge_hours=1),
    *GENERIC_RUNS,
)  # fmt: skip


def read_runs(history: Path, runs: Sequence[DetectorRun], compounds: Iterable[str] | None = None
              ) -> Iterator[pd.DataFrame]:  # fmt: skip
    """Each run's readings (as :func:`read_parquet` reads them, rows in the file's order) from one
    pass over ``readings.parquet``: every row group is decoded once, whatever the runs read. A run's
    rows stay dictionary-encoded (a few bytes a row) until its turn comes."""
    parquet = pq.ParquetFile(Path(history) / "readings.parquet")
    wanted = None if compounds is None else set(compounds)
    columns = ["ts_ms", "device", "metric", "value", "compound"]
    parts: list[list[pa.Table]] = [[] for _ in runs]
    for g in range(parquet.num_row_groups):
        table = parquet.read_row_group(g, columns=[*columns, "kind"])
        codes = {name: table.column(name).combine_chunks() for name in ("kind", "metric", "compound")}
        for i, run in enumerate(runs):
            keep = _in(codes["kind"], (run.kind.value,)) & _in(codes["metric"], run.metrics)
            if wanted is not None:
                keep &= _in(codes["compound"], wanted)
            if keep.any():
                parts[i].append(table.select(columns).filter(pa.array(keep)))
    schema = parquet.schema_arrow
    for i, run in enumerate(runs):
        chunks, parts[i] = parts[i], []  # let the run's rows go once read
        table = pa.concat_tables(chunks) if chunks else schema.empty_table().select(columns)
        frame = pa.table({name: _plain(table.column(name)) for name in columns}).to_pandas()
        del chunks, table
        pa.default_memory_pool().release_unused()  # the run's encoded rows: back to the system
        frame["kind"] = run.kind.value
        yield frame


def _in(column: pa.DictionaryArray, values: Iterable[str]) -> np.ndarray:
    """Rows of the dictionary-encoded ``column`` whose value is one of ``values`` (null: not)."""
    wanted = set(values)
    names = column.dictionary.to_pylist()
    hit = np.fromiter((v in wanted for v in names), dtype=bool, count=len(names))
    if column.null_count:
        return np.asarray(pc.fill_null(pc.is_in(column, value_set=pa.array(sorted(wanted))), False))
    return hit[column.indices.to_numpy()]


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column as plain strings (pandas reads those as its ``str`` dtype at once)."""
    return column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column


def detector_findings(history_dir: Path, *, compounds: Iterable[str] | None = None) -> list[Finding]:
    """Findings of the fault-specific detectors (DETECTOR_RUNS) on a backfill directory, each as
    the messages the live scorer sends: active from its first flag, then cleared if it ended."""
    history = Path(history_dir)
    devices = pd.read_parquet(history / "devices.parquet").set_index("device")
    by_run: dict[str, list[Finding]] = {}
    # the cameras' rows (most of a compound's) read in a pass of their own: kept encoded while the
    # other runs work, they would add to the peak what a second pass costs in time
    big = [run for run in DETECTOR_RUNS if run.kind is DeviceKind.CAMERA]
    for runs in ([run for run in DETECTOR_RUNS if run not in big], big):
        for run, readings in zip(runs, read_runs(history, runs, compounds), strict=True):
            found = run.function(readings, devices)
            del readings
            log.debug("detector findings: %d of %s", len(found), run.name)
            by_run[run.name] = [message for finding in found for message in _messages(finding)]
    findings = [message for run in DETECTOR_RUNS for message in by_run[run.name]]
    return sorted(findings, key=lambda f: (f.started_ms, f.device))
