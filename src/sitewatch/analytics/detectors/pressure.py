"""Pressure dips: a burst drops the pressure at its own building's meter, and there only.

Every building meter of a compound hangs on the same inlet, so what moves the pressure of the
whole compound (its demand, the city network's transients) moves every building meter's pressure
together: a building meter's pressure less the median of the compound's other meters' (the
compound meter's too) is a constant plus the gauges' noise (a robust SD of about 0.007 MPa). A
burst (in a flat's pipes or in the building's, behind the building meter) draws water where the
building's supply pipe narrows: its meter alone reads a drop of about 0.1-0.15 MPa for as long as
the burst runs, more than 15 noise SDs, however small the burst's flow is beside a flat's own
use. The detector takes each building meter's pressure against its peers, less that difference's
own level over the previous two days, and flags runs of reports ``dip_mpa`` or more below it.

Whose burst it is: the flat of that building whose meter passes the most water in every report
that lies wholly inside the dip (a burst runs without pause; a shower or a bath fills one or two
reports), when that is at least ``flat_lph``; else the building meter itself when it passes at
least ``building_lph`` more than its flats together (a burst in the building's pipes). A dip that
names neither raises nothing (a flat whose register misses the burst's water is the water
balance's, ``balance.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from ...contract import DeviceKind, Finding, FindingState, Severity
from ...i18n import N_
from .base import true_runs

GRID_MS = 300_000  # building meters report every 5 minutes
FLAT_REPORT_MS = 900_000  # household meters every 15


@dataclass(frozen=True, slots=True)
class DipEpisode:
    """One pressure dip named to a meter: [start_ms, end_ms], the dip (MPa) and the flow (m³/h)."""

    device: str
    start_ms: int
    end_ms: int
    dip_mpa: float
    flow_m3h: float


@dataclass(slots=True)
class PressureDip:
    """Building meters' pressure against their compound's other meters (see the module docstring)."""

    name: ClassVar[str] = "pressure_dip"

    dip_mpa: float = 0.05  # a report this far below the meter's level against its peers (7 noise SDs) ...
    noise_z: float = 7.0  # ... and at least this many of the meter's own robust SDs
    min_reports: int = 2  # ... in this many reports running (10 min): one report alone is a gauge's blip
    level_hours: float = 48.0  # the level: the median of the difference over this many previous hours
    level_min_hours: float = 1.0  # ... once this many hours of it are known (12 reports: a constant plus noise)
    flat_lph: float = 60.0  # a flat's meter passing this much in each report inside the dip: its burst
    building_lph: float = 200.0  # a building meter passing this much more than its flats: its pipes
    still_hours: float = 24.0  # ... unless one flat's register stood still this long before and through it
    still_usual_lph: float = 1.0  # ... although that flat usually draws this much: the burst is behind it

    def dips(self, pressure: pd.DataFrame) -> dict[str, list[tuple[int, int, float]]]:
        """Per meter (columns of ``pressure``, a 5-minute grid of one compound's meters), the runs
        [(start_ms, end_ms, deepest dip MPa)] of reports far below its level against its peers."""
        out: dict[str, list[tuple[int, int, float]]] = {}
        if pressure.shape[1] < 3:  # a meter and at least two peers: one peer's own dip is no reference
            return out
        values = pressure.to_numpy(dtype=np.float64)
        ts = pressure.index.to_numpy(dtype=np.int64)
        window = max(2, int(self.level_hours * 3_600_000 // GRID_MS))
        least = max(2, min(window, int(self.level_min_hours * 3_600_000 // GRID_MS)))
        for j, meter in enumerate(pressure.columns):
            others = np.delete(values, j, axis=1)
            enough = np.isfinite(others).sum(axis=1) >= 2
            with np.errstate(all="ignore"):
                peer = np.where(enough, np.nanmedian(np.where(enough[:, None], others, 0.0), axis=1), np.nan)
            diff = pd.Series(values[:, j] - peer)
            level = diff.rolling(window, min_periods=least).median().shift(1)
            dev = (diff - level).to_numpy()
            finite = dev[np.isfinite(dev)]
            if finite.size < 36:
                continue
            sd = 1.4826 * float(np.median(np.abs(finite - np.median(finite))))
            low = np.isfinite(dev) & (dev < -max(self.dip_mpa, self.noise_z * sd))
            runs = []
            for a, b in true_runs(low):
                if b - a + 1 >= self.min_reports:
                    # the dip began after the report before its first and ended after its last
                    runs.append(
                        (int(ts[a]) - GRID_MS // 2, int(ts[b]) + GRID_MS // 2, float(-dev[a : b + 1].min()))
                    )
            if runs:
                out[str(meter)] = runs
        return out

    def episodes(self, readings: pd.DataFrame, devices: pd.DataFrame) -> list[DipEpisode]:
        """Bursts found by their pressure dip in water meters' readings (long: ts_ms, device, metric,
        value; ``pressure`` and ``flow``), named to a flat or a building meter."""
        water = devices[devices["kind"].astype(str) == "water_meter"]
        if water.empty or readings.empty:
            return []
        scope = water["scope"].astype(str)
        building = water["building"].astype(str).replace({"nan": "", "None": ""})
        metric = readings["metric"].astype(str)
        press = readings[metric == "pressure"]
        flow = readings[metric == "flow"]
        flows = {str(d): (g["ts_ms"].to_numpy(dtype=np.int64), g["value"].to_numpy(dtype=np.float64))
                 for d, g in flow.sort_values("ts_ms").groupby(flow["device"].astype(str), sort=False)}  # fmt: skip
        out: list[DipEpisode] = []
        for _compound, rows in water.groupby(water["compound"].astype(str), sort=True):
            meters = [str(d) for d in rows.index if scope[d] != "household"]
            part = press[press["device"].astype(str).isin(meters)]
            if part.empty:
                continue
            grid = part.assign(ts_ms=part["ts_ms"].to_numpy(dtype=np.int64) // GRID_MS * GRID_MS)
            table = grid.pivot_table(index="ts_ms", columns="device", values="value", aggfunc="mean")
            table = table.reindex(np.arange(int(table.index.min()), int(table.index.max()) + 1, GRID_MS))
            for meter, runs in self.dips(table).items():
                if building[meter] == "":
                    continue  # the compound meter's inlet: no flats of its own to tell apart
                flats = [
                    str(d) for d in rows.index if scope[d] == "household" and building[d] == building[meter]
                ]
                for start, end, depth in runs:
                    named = self._name(meter, flats, flows, start, end)
                    if named is not None:
                        out.append(DipEpisode(named[0], start, end, round(depth, 3), round(named[1], 3)))
        return out

    def _name(self, meter: str, flats: list[str], flows: dict[str, tuple[np.ndarray, np.ndarray]],
              start: int, end: int) -> tuple[str, float] | None:  # fmt: skip
        """The meter whose burst the dip [start, end] is, and its flow (m³/h): see the module docstring."""
        best: tuple[float, str] | None = None
        total = 0.0
        for flat in flats:
            if flat not in flows:
                continue
            ts, value = flows[flat]
            inside = (ts - FLAT_REPORT_MS >= start) & (ts <= end)
            if inside.any():
                least = float(value[inside].min())
                total += float(value[inside].mean())
                if best is None or least > best[0]:
                    best = (least, flat)
        pipes = 0.0
        if meter in flows:
            ts, value = flows[meter]
            inside = (ts - GRID_MS >= start) & (ts <= end)
            if inside.any():
                pipes = float(value[inside].mean()) - total
        if pipes * 1000.0 >= self.building_lph and (best is None or pipes > best[0]):
            # the water a still register lets through unseen: behind the one flat standing still
            still = [f for f in flats if f in flows and self._still(*flows[f], start, end)]
            return (still[0], pipes) if len(still) == 1 else (meter, pipes)
        if best is not None and best[0] * 1000.0 >= self.flat_lph:
            return best[1], best[0]
        return None

    def _still(self, ts: np.ndarray, value: np.ndarray, start: int, end: int) -> bool:
        """Whether a flat's register stood still from ``still_hours`` before ``start`` to ``end``
        although the flat drew ``still_usual_lph`` on average before then."""
        span = (ts > start - int(self.still_hours * 3_600_000)) & (ts <= end)
        before = ts <= start - int(self.still_hours * 3_600_000)
        return (int(span.sum()) >= 4 * self.still_hours and bool((value[span] == 0.0).all())
                and bool(before.any()) and float(value[before].mean()) * 1000.0 >= self.still_usual_lph)  # fmt: skip


MESSAGE = N_("the pressure at {meter} fell by {dip} MPa while {device} passed {flow} m³/h: a burst suspected")


def pressure_dip_findings(readings: pd.DataFrame, devices: pd.DataFrame,
                          detector: PressureDip | None = None) -> list[Finding]:  # fmt: skip
    """Burst findings of the pressure-dip detector on water meters' readings (``pressure``, ``flow``)
    with their devices (index device; kind, compound, building, scope)."""
    detector = detector or PressureDip()
    if readings.empty:
        return []
    last = int(readings["ts_ms"].max())
    water = devices[devices["kind"].astype(str) == "water_meter"]
    meter_of = {(str(water.loc[d, "compound"]), str(water.loc[d, "building"])): str(d)
                for d in water.index if str(water.loc[d, "scope"]) != "household"}  # fmt: skip
    out: list[Finding] = []
    for ep in detector.episodes(readings, devices):
        active = ep.end_ms >= last
        compound = str(devices.loc[ep.device, "compound"])
        meter = meter_of.get((compound, str(devices.loc[ep.device, "building"])), ep.device)
        out.append(Finding(
            id=f"{PressureDip.name}.{ep.device}.burst.{ep.start_ms}", compound=compound, device=ep.device,
            kind=DeviceKind.WATER_METER, source=f"detector:{PressureDip.name}", fault="burst",
            severity=Severity.CRITICAL, state=FindingState.ACTIVE if active else FindingState.CLEARED,
            started_ms=ep.start_ms, ended_ms=None if active else ep.end_ms, ts_ms=min(ep.end_ms, last),
            message=MESSAGE, params={"meter": meter, "dip": ep.dip_mpa, "device": ep.device, "flow": ep.flow_m3h},
            evidence={"dip_mpa": ep.dip_mpa, "flow_m3h": ep.flow_m3h}, score=ep.dip_mpa / detector.dip_mpa,
        ))  # fmt: skip
    return sorted(out, key=lambda f: (f.started_ms, f.device))
