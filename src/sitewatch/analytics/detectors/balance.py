"""Water balance: a building meter against the sum of its households' meters.

Every building meter registers what its flats draw plus the steady losses of its own pipes
(docs/simulators.md, the water network), so its volume minus the sum of its household meters'
volumes (the *residual*) is a small, nearly constant flow. Two faults move it:

- a **register that misses water** (``stuck_register``: a worn mechanism; ``meter_tamper``: a
  magnet or an opened meter): a household meter that registers less makes the residual rise by
  what it misses, and its own volume falls by as much against its usual use. A building meter that
  registers less makes the residual fall. Measured per local day cut at 03:00, when almost nobody
  draws water, the residual is steady to a few tenths of a litre an hour, so a missing tenth of one
  flat's water shows; the flat is the one whose own volume dropped by what the building lost.
- a **burst in the building's pipes** (behind the building meter, before the flats): the residual
  jumps by the burst's flow, hundreds of litres an hour within the hour.

The compound meter stands to its building meters (and the flats with no building meter) as a
building meter to its flats, and is checked the same way. A meter that misses water is named a
``meter_tamper`` when its tamper flag was set during the episode or the episode lasted under
``stuck_hours``, else a ``stuck_register`` (worn registers stay so for days; a magnet is removed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import ClassVar

import numpy as np
import pandas as pd

from ...contract import DeviceKind, Finding, FindingState, Severity
from ...i18n import N_

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class BalanceEpisode:
    """One episode found by the water balance: a meter, its fault, [start_ms, end_ms], evidence."""

    device: str
    fault: str
    start_ms: int
    end_ms: int
    score: float
    evidence: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Node:
    """A parent meter and the meters right below it (a building's flats; the compound's buildings)."""

    parent: str
    children: tuple[str, ...]


@dataclass(slots=True)
class WaterBalance:
    """Daily and hourly water balance of every parent meter against its children.

    Defaults hold on data the detector has not seen; nothing is learnt per file beyond each
    node's own median residual and spread.
    """

    name: ClassVar[str] = "water_balance"

    tz: str = "Asia/Shanghai"
    cut_hour: int = 3  # local hour at which days are cut: the quietest of the night
    gap_minutes: float = 35.0  # a meter with no reading this close to a cut makes that cut unknown
    day_z: float = 6.0  # a day's residual this many robust SDs from the node's median is off balance
    day_floor_lph: float = 0.8  # ... and at least this far (L/h over the day)
    min_share: float = 0.08  # a parent meter is named when it misses at least this share
    min_fit: float = 0.8  # a parent meter's days explain this share of the balance's loss
    min_days: int = 2  # a partial loss needs this many whole days inside the run
    min_sub_days: int = 3  # ... and a stretch of a run this many
    fit_z: float = 3.0  # ... the flat's days fit the missing water within this many balance SDs
    fit_floor_lph: float = 0.5  # ... or this many litres an hour
    usual_slack: float = 0.3  # ... and its volume is its usual x (1 - share) within this
    still_usual_lph: float = 1.0  # a flat's register standing still matters if it usually draws this
    still_share: float = 0.5  # ... and the balance misses at least this share of it on those days
    stuck_hours: float = 48.0  # episodes this long (in full-day equivalents) are worn registers
    burst_lph: float = 300.0  # litres over two hours above the residual's recent median: a burst
    burst_share: float = 0.3  # ... and at least this share of the building's mean flow
    burst_hours: int = 24  # the recent median is over the previous hours
    burst_slack_l: float = 30.0  # neither of the two hours may be below its median by more than this

    # --- structure ------------------------------------------------------------------------------------

    @staticmethod
    def nodes(devices: pd.DataFrame) -> list[Node]:
        """Parent meters and their children from a devices frame (index device; compound, building, scope)."""
        water = devices[devices["kind"].astype(str) == "water_meter"]
        scope = water["scope"].astype(str)
        building = water["building"].astype(str).replace({"nan": "", "None": ""})
        out: list[Node] = []
        for compound, rows in water.groupby(water["compound"].astype(str), sort=True):
            meters = rows.index.astype(str)
            tops = [d for d in meters if scope[d] != "household" and building[d] == ""]
            blocks = {building[d]: d for d in meters if scope[d] != "household" and building[d] != ""}
            orphans: list[str] = []
            for b, meter in sorted(blocks.items()):
                flats = tuple(sorted(d for d in meters if scope[d] == "household" and building[d] == b))
                if flats:
                    out.append(Node(meter, flats))
            orphans = sorted(d for d in meters if scope[d] == "household" and building[d] not in blocks)
            if len(tops) == 1 and (blocks or orphans):
                out.append(Node(tops[0], tuple(sorted(blocks.values())) + tuple(orphans)))
            del compound
        return out

    # --- registers on a grid ----------------------------------------------------------------------------

    def registers_at(self, readings: pd.DataFrame, grid_ms: np.ndarray) -> pd.DataFrame:
        """Each meter's register (litres) interpolated at ``grid_ms``; NaN where it has no reading near."""
        reg = readings[readings["metric"].astype(str) == "volume_register"]
        gap = self.gap_minutes * 60_000
        cols: dict[str, np.ndarray] = {}
        for device, rows in reg.groupby(reg["device"].astype(str), sort=True):
            rows = rows.sort_values("ts_ms")
            ts = rows["ts_ms"].to_numpy(dtype=np.int64)
            values = rows["value"].to_numpy(dtype=np.float64) * 1000.0
            out = np.interp(grid_ms, ts, values, left=np.nan, right=np.nan)
            at = np.searchsorted(ts, grid_ms)
            before = np.abs(grid_ms - ts[np.clip(at - 1, 0, len(ts) - 1)])
            after = np.abs(ts[np.clip(at, 0, len(ts) - 1)] - grid_ms)
            out[np.minimum(before, after) > gap] = np.nan
            cols[device] = out
        return pd.DataFrame(cols, index=grid_ms)

    def day_cuts(self, start_ms: int, end_ms: int) -> np.ndarray:
        """The local ``cut_hour`` instants (ms) inside [start_ms, end_ms]."""
        first = pd.Timestamp(start_ms, unit="ms", tz="UTC").tz_convert(self.tz).floor("D")
        last = pd.Timestamp(end_ms, unit="ms", tz="UTC").tz_convert(self.tz)
        cuts = pd.date_range(first, last, freq="D") + pd.Timedelta(hours=self.cut_hour)
        ms = cuts.tz_convert("UTC").as_unit("ms").asi8
        return ms[(ms >= start_ms) & (ms <= end_ms)]

    # --- the detectors ------------------------------------------------------------------------------------

    def missing_water(self, readings: pd.DataFrame, devices: pd.DataFrame) -> list[BalanceEpisode]:
        """Meters that register less than their share of the balance (stuck registers, tampering)."""
        if readings.empty:
            return []
        cuts = self.day_cuts(int(readings["ts_ms"].min()), int(readings["ts_ms"].max()))
        if len(cuts) < 4:
            return []
        daily = self.registers_at(readings, cuts).diff().iloc[1:] / 24.0  # L/h over each day
        tamper = readings[(readings["metric"].astype(str) == "tamper") & (readings["value"] > 0.5)]
        flagged = {
            str(d): rows["ts_ms"].to_numpy() for d, rows in tamper.groupby(tamper["device"].astype(str))
        }
        out: list[BalanceEpisode] = []
        for node in self.nodes(devices):
            if node.parent not in daily or not any(c in daily for c in node.children):
                continue
            children = [c for c in node.children if c in daily]
            residual = daily[node.parent] - daily[children].sum(axis=1, skipna=False)
            out.extend(
                self._node_episodes(node.parent, residual, daily[children], daily[node.parent], flagged)
            )
        return out

    def _node_episodes(self, parent: str, residual: pd.Series, children: pd.DataFrame, own: pd.Series,
                       flagged: dict[str, np.ndarray]) -> list[BalanceEpisode]:  # fmt: skip
        known = residual.dropna()
        if len(known) < 4:
            return []
        centre, spread = _shorth(known.to_numpy())
        spread = max(spread, 0.05)
        level = max(self.day_z * spread, self.day_floor_lph)
        excess = residual - centre
        off = excess.abs() > level
        normal = (~off) & excess.notna()
        out: list[BalanceEpisode] = []
        for sign in (1.0, -1.0):
            days = (excess * sign > level).to_numpy()
            for a, b in _runs(days):
                span = excess.iloc[a : b + 1]
                lost = float(span.mean()) * sign  # L/h the balance misses over the run, > 0
                start = int(span.index[0]) - DAY_MS
                end = int(span.index[-1])
                full_days = float((span.abs() / max(float(span.abs().max()), 1e-9)).sum())
                volumes = children if sign > 0 else own.to_frame(parent)
                found = self._explain(volumes, normal, span * sign, a, b, sign < 0)
                if sign < 0:
                    found = [(d, share, full_days, fit) for d, share, _, fit in found]
                elif not found:
                    found = self._partial(children, normal, span, a, b, spread)
                for device, share, lasted, fit in found:
                    times = flagged.get(device, np.empty(0))
                    tampered = int(((times >= start) & (times <= end)).sum()) >= 2
                    fault = (
                        "meter_tamper" if tampered or lasted * 24.0 < self.stuck_hours else "stuck_register"
                    )
                    out.append(BalanceEpisode(device, fault, start, end, fit, {
                        "missing_lph": round(lost, 2), "share": round(share, 2),
                        "fit": round(fit, 2), "days": round(lasted, 1)}))  # fmt: skip
        return out

    def _explain(self, volumes: pd.DataFrame, normal: pd.Series, lost: pd.Series, a: int, b: int,
                 parent: bool) -> list[tuple[str, float, float, float]]:  # fmt: skip
        """Which meters explain the run's missing water: [(device, share not registered, days, evidence)].

        A flat's meter (``parent`` false) is named when its register stood still for whole days of
        the run although the flat usually draws water, and the balance missed at least
        ``still_share`` of that usual use on those days (``evidence``: the missed share of it). A
        flat's use varies by half from day to day, so a partly slowed register is not told from it
        here. A parent meter that registers a share ``f`` less makes the balance miss
        ``f / (1 - f)`` of what it registers, day after day (``evidence``: R² of that line).
        """
        base = volumes[normal.to_numpy()]
        if len(base) < 3:
            return []
        usual = base.median()
        seen = volumes.iloc[a : b + 1]
        y = lost.to_numpy(dtype=np.float64)
        if parent:
            x = seen.iloc[:, 0].to_numpy(dtype=np.float64)
            if len(y) < 2 or not np.isfinite(x).all() or float(x @ x) <= 0.0:
                return []
            coef = float(x @ y) / float(x @ x)
            fit = 1.0 - float(np.sum((y - coef * x) ** 2)) / float(y @ y)
            share = coef / (1.0 + coef)
            if fit < self.min_fit or share < self.min_share:
                return []
            return [(str(seen.columns[0]), share, float(len(y)), fit)]
        out = []
        for device in seen.columns:
            v = seen[device].to_numpy(dtype=np.float64)
            u = float(usual[device])
            if not np.isfinite(u) or u < self.still_usual_lph:
                continue
            still = np.isfinite(v) & (v < 0.02 * u)
            if not still.any():
                continue
            missed = float(y[still].mean()) / u
            if missed >= self.still_share:
                # how many whole days it stood still, counted on past the run: a worn register stays so
                out.append((str(device), 1.0, _still_days(volumes[device], a, b, u), missed))
        return out

    def _partial(self, volumes: pd.DataFrame, normal: pd.Series, excess: pd.Series, a: int, b: int,
                 spread: float) -> list[tuple[str, float, float, float]]:  # fmt: skip
        """A flat's meter that misses a steady share of its water: the balance follows its days.

        On the run's whole days (its first and last are cut off: a fault starts and ends inside a
        day) the missing water is ``f / (1 - f)`` of what the meter registers, within the balance's
        own noise, while a flat's use changes by a third from one day to the next; its volume is
        also down by about ``f`` against its normal days. Exactly one meter must fit.
        """
        inner = excess.iloc[1:-1].to_numpy(dtype=np.float64)
        if len(inner) < self.min_days:
            return []
        base = volumes[normal.to_numpy()]
        if len(base) < 3:
            return []
        usual = base.median()
        seen = volumes.iloc[a + 1 : b]
        tolerance = max(self.fit_z * spread, self.fit_floor_lph)
        found = self._fit_days(inner, seen, usual, tolerance)
        # faults that overlap in part: the longest stretch of whole days one meter (or two) explains
        for length in range(len(inner) - 1, max(self.min_days, self.min_sub_days) - 1, -1):
            if found:
                break
            hits = [self._fit_days(inner[i : i + length], seen.iloc[i : i + length], usual, tolerance)
                    for i in range(len(inner) - length + 1)]  # fmt: skip
            named = {frozenset(d for d, _, _ in hit) for hit in hits if hit}
            if len(named) == 1:  # every stretch of this length that fits names the same meters
                found = next(h for h in hits if h)
        return [(d, f, float(len(excess)), n) for d, f, n in found]

    def _fit_days(self, inner: np.ndarray, seen: pd.DataFrame, usual: pd.Series,
                  tolerance: float) -> list[tuple[str, float, float]]:  # fmt: skip
        """The one meter (else the one pair) whose days explain ``inner``: [(device, share, meters)]."""
        columns: dict[str, np.ndarray] = {}
        for device in seen.columns:
            x = seen[device].to_numpy(dtype=np.float64)
            u = float(usual[device])
            if np.isfinite(x).all() and np.isfinite(u) and u >= self.still_usual_lph and float(x @ x) > 0.0:
                columns[str(device)] = x
        ratio = {d: float(x.mean()) / float(usual[d]) for d, x in columns.items()}

        def fitted(names: tuple[str, ...]) -> list[tuple[str, float]] | None:
            design = np.column_stack([columns[d] for d in names])
            coef, *_ = np.linalg.lstsq(design, inner, rcond=None)
            if float(np.sqrt(np.mean((inner - design @ coef) ** 2))) > tolerance:
                return None
            shares = [(d, float(c) / (1.0 + float(c))) for d, c in zip(names, coef, strict=True)]
            if any(not self.min_share <= f <= 0.98 or abs(ratio[d] - (1.0 - f)) > self.usual_slack
                   for d, f in shares):  # fmt: skip
                return None
            return shares

        singles = [f for d in columns if (f := fitted((d,))) is not None]
        if len(singles) == 1:
            return [(d, f, 1.0) for d, f in singles[0]]
        if singles:
            return []
        # two meters at once (faults overlap): only among meters whose volume is down
        down = sorted(d for d in columns if ratio[d] <= 1.0 - self.min_share)
        pairs = [f for pair in combinations(down, 2) if (f := fitted(pair)) is not None]
        if len(pairs) == 1:
            return [(d, f, 2.0) for d, f in pairs[0]]
        return []

    def bursts(self, readings: pd.DataFrame, devices: pd.DataFrame,
               missing: Sequence[BalanceEpisode] = ()) -> list[BalanceEpisode]:  # fmt: skip
        """Hours in which a parent meter registers far more than its children: a burst in its pipes.

        Not on days when one of the node's meters misses water (``missing``): a still register
        below a parent makes the hourly residual follow that meter's daily peaks."""
        if readings.empty:
            return []
        start = -(-int(readings["ts_ms"].min()) // HOUR_MS) * HOUR_MS
        grid = np.arange(start, int(readings["ts_ms"].max()) + 1, HOUR_MS, dtype=np.int64)
        if len(grid) < self.burst_hours + 2:
            return []
        hourly = self.registers_at(readings, grid).diff().iloc[1:]  # L/h
        out: list[BalanceEpisode] = []
        for node in self.nodes(devices):
            if node.parent not in hourly:
                continue
            children = [c for c in node.children if c in hourly]
            residual = hourly[node.parent] - hourly[children].sum(axis=1, skipna=False)
            recent = residual.rolling(self.burst_hours, min_periods=self.burst_hours // 2).median().shift(1)
            mean_flow = float(hourly[node.parent].mean())
            level = max(self.burst_lph, self.burst_share * mean_flow)
            excess = residual - recent
            # two hours together: a meter's reading between hours splits its water wrongly between
            # them, but what one hour gains the next loses; a burst's water is all extra
            pair = excess + excess.shift(1)
            hot = ((pair > level) & (excess > 0) & (excess.shift(1) > -self.burst_slack_l)).to_numpy()
            members = {node.parent, *node.children}
            masked = [(e.start_ms - DAY_MS, e.end_ms + DAY_MS) for e in missing if e.device in members]
            for a, b in _runs(hot):
                span = excess.iloc[a : b + 1]
                if any(lo <= int(span.index[-1]) and int(span.index[0]) <= hi for lo, hi in masked):
                    continue
                out.append(BalanceEpisode(node.parent, "burst", int(span.index[0]) - HOUR_MS, int(span.index[-1]),
                                          float(span.max() / level),
                                          {"excess_lph": round(float(span.max()), 1)}))  # fmt: skip
        return out


def _shorth(values: np.ndarray) -> tuple[float, float]:
    """Centre and robust SD of the shortest interval holding a quarter of the values.

    A balance that is off on most days (several faults in a month) still has its normal days
    together within a few tenths of a litre an hour, while the faulty days scatter.
    """
    v = np.sort(values[np.isfinite(values)])
    half = max(3, len(v) // 4 + 1)
    widths = v[half - 1 :] - v[: len(v) - half + 1]
    i = int(np.argmin(widths))
    part = v[i : i + half]
    centre = float(np.median(part))
    return centre, float(widths[i]) / 0.637  # a normal quarter around the centre is 0.637 SD wide


def _still_days(volume: pd.Series, a: int, b: int, usual: float) -> float:
    """How long, in days, the register of ``volume`` stood still through rows a..b: its whole still
    days in a row, plus the share of the usual use missing on the day before and the day after."""
    v = volume.to_numpy(dtype=np.float64)
    still = (v < 0.02 * usual).tolist()
    spans = [(first, last) for first, last in _runs(still) if first <= b and last >= a]
    if not spans:
        return 0.0
    first, last = max(spans, key=lambda s: s[1] - s[0])
    days = float(last - first + 1)
    for edge in (first - 1, last + 1):
        if 0 <= edge < len(v) and np.isfinite(v[edge]):
            days += float(np.clip(1.0 - v[edge] / usual, 0.0, 1.0))
    return days


def _runs(mask: Sequence[bool] | np.ndarray) -> list[tuple[int, int]]:
    """[first, last] index pairs of the runs of True in ``mask``."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return []
    edges = np.diff(np.r_[0, m.astype(np.int8), 0])
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


MESSAGES = {
    "stuck_register": N_("{device} registers {share} less water than its building's balance shows: a stuck register suspected"),
    "meter_tamper": N_("{device} registers {share} less water than its building's balance shows: tampering suspected"),
    "burst": N_("{device} registers {flow} m³/h more than the meters behind it: a burst in its pipes suspected"),
}  # fmt: skip


def water_balance_findings(readings: pd.DataFrame, devices: pd.DataFrame,
                           balance: WaterBalance | None = None) -> list[Finding]:  # fmt: skip
    """Findings of the water balance on water meters' readings (long: ts_ms, device, metric, value;
    ``volume_register`` and ``tamper`` used) with their devices (index device; kind, compound,
    building, scope)."""
    balance = balance or WaterBalance()
    water = readings[readings["metric"].astype(str).isin(("volume_register", "tamper"))]
    if water.empty:
        return []
    last = int(water["ts_ms"].max())
    out: list[Finding] = []
    missing = balance.missing_water(water, devices)
    for ep in missing + balance.bursts(water, devices, missing):
        active = ep.end_ms >= last
        if ep.fault == "burst":
            params: dict[str, str | int | float] = {"device": ep.device,
                                                    "flow": round(ep.evidence["excess_lph"] / 1000.0, 2)}  # fmt: skip
        else:
            params = {"device": ep.device, "share": f"{ep.evidence['share']:.0%}"}
        out.append(Finding(
            id=f"{WaterBalance.name}.{ep.device}.{ep.fault}.{ep.start_ms}", compound=str(devices.loc[ep.device, "compound"]),
            device=ep.device, kind=DeviceKind.WATER_METER, source=f"detector:{WaterBalance.name}", fault=ep.fault,
            severity=Severity.CRITICAL if ep.fault == "burst" else Severity.WARNING,
            state=FindingState.ACTIVE if active else FindingState.CLEARED, started_ms=ep.start_ms,
            ended_ms=None if active else ep.end_ms, ts_ms=min(ep.end_ms, last), message=MESSAGES[ep.fault],
            params=params, evidence=ep.evidence, score=ep.score,
        ))  # fmt: skip
    return sorted(out, key=lambda f: (f.started_ms, f.device))
