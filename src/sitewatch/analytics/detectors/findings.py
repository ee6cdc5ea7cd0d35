"""Findings from the detectors on a ``simulate backfill`` directory, for the evaluation against its labels.

It reads the directory's Parquet files directly (``readings.parquet``, ``devices.parquet``) and
runs, per device, what the live service would run as the data arrive:

- **bearing wear** (elevators): :class:`~.trend.TheilSenTrend` on the running vibration (polls
  whose ``run_state`` is running up or down), flagged from the evaluation that first passes;
- **water balance** (water meters, ``balance.py``): a building meter against the sum of its
  flats (the compound meter against its buildings): a register that stood still for whole days
  while the balance missed its water (``stuck_register``, or ``meter_tamper`` when short or
  flagged), a building meter registering a steady share less, a burst behind a building meter;
- **leak** (water meters): :class:`~.night.NightFlow` on ``flow`` against the meter's own
  nights; household meters also against their compound's household meters (whose night minimum
  is almost always zero), so a leak that began before the history is still seen. An episode on a
  building or compound meter that overlaps one downstream (a household of that building, a
  building of that compound) is the downstream one seen again, and is dropped.

Each run of flagged rows (runs closer than ``merge_hours`` joined) becomes one
:class:`~sitewatch.contract.Finding` with ``source`` ``detector:<name>``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ...contract import DeviceKind, Finding, FindingState, Severity
from ...i18n import N_
from .balance import water_balance_findings
from .night import NightFlow
from .trend import TheilSenTrend

log = logging.getLogger(__name__)
RUNNING = (1.0, 2.0)  # run_state codes running_up, running_down (contract/kinds.py)
HOUR_MS = 3_600_000


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
    history: Path, kind: str, metrics: tuple[str, ...], compounds: Iterable[str] | None
) -> pd.DataFrame:
    filters: list[tuple[str, str, object]] = [("kind", "=", kind), ("metric", "in", list(metrics))]
    if compounds is not None:
        filters.append(("compound", "in", list(compounds)))
    table = pq.read_table(history / "readings.parquet", columns=["ts_ms", "device", "metric", "value"],
                          filters=filters)  # fmt: skip
    frame = table.to_pandas()
    for name in ("device", "metric"):
        frame[name] = frame[name].astype(str)
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


def bearing_episodes(history: Path, *, compounds: Iterable[str] | None = None,
                     detector: TheilSenTrend | None = None) -> tuple[list[Episode], int]:  # fmt: skip
    """Rising running vibration per elevator; also returns the history's last reading time."""
    detector = detector or TheilSenTrend()
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
        scores = detector.score(frame)
        flags = (scores > detector.threshold_).astype("int64")
        for ep in episodes(str(device), flags, scores, merge_hours=24):
            trend = detector.trend(frame["vibration_rms"])
            at = trend[trend.index <= pd.Timestamp(ep.start_ms, unit="ms", tz="UTC")]
            evidence = {} if at.empty else {"rise": float(at["rise"].iloc[-1]), "z": float(at["z"].iloc[-1])}
            out.append(Episode(ep.device, ep.start_ms, ep.end_ms, ep.peak, evidence))
    return out, last


def leak_episodes(history: Path, devices: pd.DataFrame, *, compounds: Iterable[str] | None = None,
                  detector: NightFlow | None = None) -> tuple[list[Episode], int]:  # fmt: skip
    """Raised minimum night flow per water meter, upstream echoes dropped; and the last reading time."""
    detector = detector or NightFlow()
    long = _read(history, "water_meter", ("flow",), compounds)
    if long.empty:
        return [], 0
    last = int(long["ts_ms"].max())
    series = {
        str(device): pd.Series(rows["value"].to_numpy(), index=pd.to_datetime(rows["ts_ms"].to_numpy(), unit="ms", utc=True))
        for device, rows in long.groupby("device", sort=True)
    }  # fmt: skip
    scope = devices["scope"].astype(str) if "scope" in devices else pd.Series("", index=devices.index)
    # the compound's household meters' median night minimum, per night: the reference for each household meter
    reference: dict[str, pd.Series] = {}
    minima: dict[str, pd.Series] = {}
    for device, s in series.items():
        if scope.get(device) == "household":
            nights = NightFlow(tz=detector.tz, start_hour=detector.start_hour, end_hour=detector.end_hour)
            minima[device] = nights.nights(s.to_frame("flow"))["minimum"]
    by_compound: dict[str, list[pd.Series]] = {}
    for device, m in minima.items():
        by_compound.setdefault(str(devices.loc[device, "compound"]), []).append(m)
    for compound, parts in by_compound.items():
        reference[compound] = pd.concat(parts, axis=1).median(axis=1)
    found: list[Episode] = []
    for device, s in series.items():
        household = scope.get(device) == "household"
        ref = reference.get(str(devices.loc[device, "compound"])) if household else None
        frame = s.to_frame("flow")
        night = NightFlow(**{**detector.params(), "reference": ref})
        scores = night.score(frame)
        flags = (scores > night.threshold_).astype("int64")
        table = night.nights(frame)
        for ep in episodes(device, flags, scores, merge_hours=30):
            start = (
                pd.Timestamp(ep.start_ms, unit="ms", tz="UTC")
                .tz_convert(detector.tz)
                .tz_localize(None)
                .normalize()
            )
            row = table[table.index <= start]
            evidence = (
                {}
                if row.empty
                else {"night_minimum": float(row["minimum"].iloc[-1]), "z": float(row["z"].iloc[-1])}
            )
            found.append(Episode(ep.device, ep.start_ms, ep.end_ms, ep.peak, evidence))
    return _drop_upstream(found, devices), last


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


def detector_findings(history_dir: Path, *, compounds: Iterable[str] | None = None) -> list[Finding]:
    """Findings of the fault-specific detectors (bearing wear, leak) on a backfill directory."""
    history = Path(history_dir)
    devices = pd.read_parquet(history / "devices.parquet").set_index("device")
    wanted = None if compounds is None else list(compounds)
    findings: list[Finding] = []
    bearing, last = bearing_episodes(history, compounds=wanted)
    for ep in bearing:
        findings.append(_finding(
            ep, devices, detector=TheilSenTrend.name, fault="bearing_wear", kind=DeviceKind.ELEVATOR, end_ms=last,
            message=N_("running vibration of {device} keeps rising: {rise} over the last week, bearing wear suspected"),
            params={"device": ep.device, "rise": f"{ep.evidence.get('rise', float('nan')):+.0%}"},
        ))  # fmt: skip
    leaks, last = leak_episodes(history, devices, compounds=wanted)
    for ep in leaks:
        findings.append(_finding(
            ep, devices, detector=NightFlow.name, fault="leak", kind=DeviceKind.WATER_METER, end_ms=last,
            message=N_("night flow of {device} stays above its usual minimum: {flow} m³/h between 02:00 and 04:00, a leak suspected"),
            params={"device": ep.device, "flow": round(ep.evidence.get("night_minimum", float("nan")), 4)},
        ))  # fmt: skip
    balance = water_balance_findings(
        _read(history, "water_meter", ("volume_register", "tamper"), wanted), devices
    )
    findings.extend(balance)
    log.debug(
        "detector findings: %d bearing wear, %d leak, %d water balance",
        len(bearing),
        len(leaks),
        len(balance),
    )
    return sorted(findings, key=lambda f: (f.started_ms, f.device))
