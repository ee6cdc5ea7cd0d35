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
- a **leak in the building's pipes**: the residual rises by the leak's flow in every hour, night and
  day, and stays (a flat's register that misses water raises it only while the flat draws).

Between the daily cuts, the balance is read at the instants where every flat's register is known to
the litre (the flat's two reports around it read the same): there it is off only by the registers'
rounding, and a flat that misses a fifth of a day's water shows.

The compound meter stands to its building meters (and the flats with no building meter) as a
building meter to its flats, and is checked the same way. A meter that misses water is named a
``meter_tamper`` when its tamper flag was set during the episode (for all but under ``stuck_hours``
of it) or the episode lasted under ``stuck_hours``, else a ``stuck_register`` (worn registers stay
so for days; a magnet is removed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import ClassVar

import numpy as np
import pandas as pd

from ...contract import DeviceKind, Finding, FindingState, Severity
from ...i18n import N_
from .base import true_runs

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
    pair_min_days: int = 8  # two meters at once are fitted on at least this many whole days
    usual_slack: float = 0.3  # ... and its volume is its usual x (1 - share) within this
    usual_rise: float = 0.2  # ... and above it by at most this for the one meter (or pair) that fits
    still_usual_lph: float = 1.0  # a flat's register standing still matters if it usually draws this
    still_share: float = 0.5  # ... and the balance misses at least this share of it on those days
    still_together_share: float = 0.25  # ... or this share, when the balance is off on those days alone
    still_beside_missed: float = 1.5  # a still register's days missing this many times its usual use hold a second fault
    level_min_days: int = 6  # the level leaves out a quarter's still days of a flat (``_level_days``) while this many are left
    flag_cover: float = 0.5  # an episode is another meter's when that meter's flag was set this share of its hours
    flag_gap_h: float = 2.0  # ... its flagged reports this close together are one spell
    flag_pad_h: float = 1.0  # ... held this long either side (a magnet's first and last minutes between reports)
    stuck_hours: float = 48.0  # episodes this long (in full-day equivalents) are worn registers
    tamper_hours: float = 72.0  # ... unless under this long and missing under ``subtle_share``: a magnet
    subtle_share: float = 0.4
    soft_z: float = 2.5  # days this many robust SDs over the node's level ...
    soft_floor_lph: float = 0.4  # ... and this far are a run for the hourly fit alone
    soft_days: int = 3  # ... when this many days in a row
    hour_noise_floor_l: float = 3.0  # the hourly residual's noise SD is at least this (L)
    hour_fit_chi2: float = 6.0  # the hourly fit's weighted squared error, per hour, at most this
    hour_fit_margin: float = 1.5  # ... the next-best meter's at least this much more, per hour
    hour_fit_gain: float = 4.0  # ... and the fit takes at least this much away, per hour
    hour_fit_min_h: float = 3.0  # ... and times the fault this long at least (shorter: an hourly spike)
    exact_slack_lph: float = 0.5  # the exact balance's CUSUM: litres an hour it may run over its level freely
    exact_alarm_l: float = 12.0  # ... and a window for the fit once this many litres are missing
    exact_chunk_h: float = 48.0  # a longer window is fitted in parts this long, each half over the next
    exact_still_h: float = 12.0  # no flat's fit is trusted while another's register stands still this long
    exact_extend_h: float = 72.0  # a fault found is followed this far either side for its length
    exact_extend_share: float = 0.1  # ... at a share within this of the one found
    exact_pad_h: float = 12.0  # the fit reads this many hours either side of the window
    steady_window_h: float = 6.0  # a flat's steady flow: the least it registered in an hour within this either side
    steady_slack_l: float = 1.0  # ... and a rise within this of that flow's is no draw (the registers' whole litres)
    exact_noise_l2: float = 1.0  # variance (L²) added to each instant's own (rounding, interpolation)
    exact_max_var_l2: float = 1e4  # the fit reads the instants with at most this variance
    exact_gain: float = 60.0  # the fit takes at least this much weighted squared error away
    exact_margin: float = 30.0  # ... at least this much more than the next flat's (or a steady drift's)
    exact_close_margin: float = 13.0  # ... or this much (a part cut short by another fault's hours: not)
    exact_chi2_z: float = 3.0  # ... and leaves at most n + this many SDs of a chi-square with n points
    burst_lph: float = 300.0  # litres over two hours above the residual's recent median: a burst
    burst_share: float = 0.3  # ... and at least this share of the building's mean flow
    burst_hours: int = 24  # the recent median is over the previous hours
    still_burst_lph: float = 500.0  # behind a still register: an hour this far over, more than a flat draws
    still_burst_ratio: float = 10.0  # ... and this many times the meter's mean flow
    burst_slack_l: float = 30.0  # neither of the two hours may be below its median by more than this
    burst_loss_match: float = 0.5  # a child meter's residual fell by this share of the water: its register's
    leak_share: float = 0.025  # a building's residual this share of its mean flow over its level ...
    leak_floor_lph: float = 4.0  # ... and at least this many litres an hour, over the past day ...
    leak_night: float = 0.5  # ... and over the past day's night hours at least this share of it ...
    leak_hours: int = 30  # ... for this many hours in a row: a leak in the building's pipes
    leak_lookback_h: int = 120  # its start is searched this many hours before the first such hour

    # --- structure ------------------------------------------------------------------------------------

    @staticmethod
    def nodes(devices: pd.DataFrame) -> list[Node]:
        """Parent meters and their children from a devices frame (index device; compound, building, scope)."""
        water = devices[devices["kind"].astype(str) == "water_meter"]
        names = water.index.astype(str)
        # by name: a Series' label lookup per meter and block costs more than the rest together
        scope = dict(zip(names, water["scope"].astype(str).tolist(), strict=True))
        building = dict(zip(names, water["building"].astype(str).replace({"nan": "", "None": ""}).tolist(),
                            strict=True))  # fmt: skip
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
        gap = self.gap_minutes * 60_000
        cols: dict[str, np.ndarray] = {}
        for device, ts, values in _metric_rows(readings, "volume_register"):
            order = np.argsort(ts, kind="quicksort")  # the order sort_values("ts_ms") gives the rows
            ts, values = ts[order], values[order] * 1000.0
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

    def hourly_registers(self, readings: pd.DataFrame) -> pd.DataFrame:
        """Each meter's register (litres) on every hour of the readings' span (NaN where unknown)."""
        keep = (readings["metric"].astype(str) == "volume_register").to_numpy(dtype=bool)
        if not keep.any():
            return pd.DataFrame()
        ts = readings["ts_ms"].to_numpy(dtype=np.int64)[keep]
        first, last = int(ts.min()), int(ts.max())
        return self.registers_at(
            readings, np.arange(-(-first // HOUR_MS) * HOUR_MS, last + 1, HOUR_MS, dtype=np.int64)
        )

    def missing_water(self, readings: pd.DataFrame, devices: pd.DataFrame,
                      hourly: pd.DataFrame | None = None) -> list[BalanceEpisode]:  # fmt: skip
        """Meters that register less than their share of the balance (stuck registers, tampering)."""
        if readings.empty:
            return []
        first, last = int(readings["ts_ms"].min()), int(readings["ts_ms"].max())
        cuts = self.day_cuts(first, last)
        if len(cuts) < 4:
            return []
        # registers on the hour (the cuts are on the hour); days are cut at ``cut_hour``
        hourly = self.hourly_registers(readings) if hourly is None else hourly
        daily = hourly.reindex(cuts).diff().iloc[1:] / 24.0  # L/h over each day
        flagged = {d: ts[values > 0.5] for d, ts, values in _metric_rows(readings, "tamper")}
        flagged = {d: ts for d, ts in flagged.items() if len(ts)}
        out: list[BalanceEpisode] = []
        series = self.register_series(readings)  # the exact balance's registers, each at its own reports
        scopes = devices["scope"].astype(str).to_dict()
        for node in self.nodes(devices):
            if node.parent not in daily or not any(c in daily for c in node.children):
                continue
            children = [c for c in node.children if c in daily]
            residual = daily[node.parent] - daily[children].sum(axis=1, skipna=False)
            level = self._level_days(daily[children], residual)
            found = self._node_episodes(node.parent, residual, daily[children], daily[node.parent], flagged,
                                        hourly[[node.parent, *children]], level)  # fmt: skip
            episodes = list(found)
            # the exact balance: households' meters only (a building meter always passes water)
            if residual.notna().sum() >= 4 and all(scopes.get(c, "") == "household" for c in children):
                exact = self.exact_registers(series, node.parent, children)
                if exact is not None:
                    centre = _shorth(residual[level].dropna().to_numpy())[0]
                    episodes.extend(self._exact_episodes(exact, node.parent, centre, found, flagged))
            out.extend(e for e in episodes if not self._beside_flagged(e, children, flagged))
        return out

    def _beside_flagged(self, episode: BalanceEpisode, children: Sequence[str],
                        flagged: dict[str, np.ndarray]) -> bool:  # fmt: skip
        """Whether another meter of the node had its tamper flag set for at least ``flag_cover`` of
        the hours of ``episode`` (a share of a meter's water, with no flag of its own in them): that
        meter's magnet, which the rules name, leaves its flat's draws unregistered, and the balance
        then rises by them whichever flat's draws a fit follows. A register that stood still (its
        whole share) is named by its own spell, not by a fit, and is kept."""
        start, end = episode.start_ms, episode.end_ms
        own = flagged.get(episode.device, np.empty(0))
        if (end <= start or episode.evidence.get("share", 0.0) >= 0.98
                or bool(np.any((own >= start) & (own <= end)))):  # fmt: skip
            return False
        gap, pad = int(self.flag_gap_h * HOUR_MS), int(self.flag_pad_h * HOUR_MS)
        spells: list[tuple[int, int]] = []
        for other in children:
            times = np.sort(flagged.get(other, np.empty(0)).astype(np.int64))
            if other == episode.device or len(times) < 2:
                continue
            breaks = np.flatnonzero(np.diff(times) > gap)
            firsts, lasts = np.r_[0, breaks + 1], np.r_[breaks, len(times) - 1]
            spells += [(int(times[a]) - pad, int(times[b]) + pad)
                       for a, b in zip(firsts, lasts, strict=True) if b > a]  # fmt: skip
        total, reach = 0, start
        for a, b in sorted(spells):  # the union of the spells within the episode
            a, b = max(a, reach), min(b, end)
            if b > a:
                total, reach = total + b - a, b
        return total >= self.flag_cover * (end - start)

    # --- the exact balance ------------------------------------------------------------------------------

    @staticmethod
    def register_series(readings: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each meter's reports as (minute of the report in ms, register in whole litres), in time order.

        A meter's register is the network's water up to the minute its report was taken in, so the
        minute, not the millisecond, is the instant it stands for."""
        return {
            d: (ts // 60_000 * 60_000, np.round(values * 1000.0))
            for d, ts, values in _metric_rows(readings, "volume_register", by_time=True)
        }  # fmt: skip

    def exact_registers(self, series: dict[str, tuple[np.ndarray, np.ndarray]], parent: str,
                        children: Sequence[str]) -> pd.DataFrame | None:  # fmt: skip
        """The node's registers at the parent's reports, each child's interpolated between its own
        reports, with the variance (L²) of what the interpolation leaves unknown (column ``""``).

        A household meter's register is known exactly between two of its reports that read the
        same (no water passed: the flat drew nothing in those 15 minutes) and at a report in the
        same minute; between two that differ by d litres, the water came in draws at unknown
        moments, and a draw at a uniform moment leaves d² u (1 - u) unknown at the fraction u of
        the interval. The registers' rounding (half a litre each) adds 1/12 L² per meter. Where
        every child is exact the balance is off only by that rounding. A flat whose register never
        stands still (a leak behind its meter) is known as well between two reports whose rise is
        its steady flow's to within ``steady_slack_l`` (:meth:`_steady_lph`): else a building with
        a leaking flat would have no exact instant for days."""
        if parent not in series:
            return None
        ts, own = series[parent]
        var = np.full(len(ts), (len(children) + 1) / 12.0)
        values = {parent: own}
        gap = self.gap_minutes * 60_000
        for child in children:
            if child not in series:
                return None
            tc, vc = series[child]
            k = np.searchsorted(tc, ts, side="left")  # the child's first report at or after each instant
            at = np.clip(k, 0, len(tc) - 1)
            before = np.clip(k - 1, 0, len(tc) - 1)
            same_minute = (k < len(tc)) & (tc[at] == ts)
            inside = (k > 0) & (k < len(tc)) & (tc[at] - tc[before] <= 2 * gap)
            span = np.maximum(tc[at] - tc[before], 1)
            u = np.clip((ts - tc[before]) / span, 0.0, 1.0)
            d = vc[at] - vc[before]
            values[child] = np.where(same_minute, vc[at], vc[before] + u * d)
            # a steady flow through the register (a leak behind the flat's meter) moves it between
            # any two reports: what it adds is known, and only a rise beyond it is a draw
            steady = self._steady_lph(tc, vc)[np.clip(k - 1, 0, max(len(tc) - 2, 0))] * span / HOUR_MS
            flowing = (steady > 0.0) & (np.abs(d - steady) <= self.steady_slack_l)
            draw = np.where(flowing, 0.0, d)
            var += np.where(same_minute, 0.0, np.where(inside, draw * draw * u * (1.0 - u), np.inf))
        frame = pd.DataFrame(values, index=ts)
        frame[""] = var
        frame = frame[np.isfinite(var)]
        if len(frame) < 48:
            return None
        return frame

    def _steady_lph(self, ts: np.ndarray, register: np.ndarray) -> np.ndarray:
        """A meter's steady flow (L/h) through each interval between its reports: the least it
        registered in any hour within ``steady_window_h`` either side (0 where a gap or the series'
        ends leave that window short). A flat's draws leave some hour empty every few hours; a
        leak behind its meter does not."""
        if len(ts) < 2:
            return np.zeros(max(len(ts) - 1, 0))
        rise = pd.Series(np.diff(register))
        span = pd.Series(np.diff(ts) / HOUR_MS)
        per = max(1, round(1.0 / max(float(span.median()), 1e-9)))  # reports in an hour
        # the sums as pandas rolls them (compensated); the maximum and minimum below are exact in NumPy
        hourly = (rise.rolling(per).sum() / span.rolling(per).sum()).to_numpy(dtype=np.float64, copy=True)
        hourly[_rolling(span.to_numpy(dtype=np.float64), per, np.max) > 2 * self.gap_minutes / 60.0] = (
            np.nan
        )  # a gap
        reach = round(self.steady_window_h * per)
        shifted = np.full(len(hourly), np.nan)  # shift(-(per // 2))
        shifted[: len(hourly) - per // 2] = hourly[per // 2 :]
        least = _rolling(shifted, 2 * reach + 1, np.min, center=True)
        return np.nan_to_num(np.maximum(least, 0.0))

    def _exact_episodes(self, exact: pd.DataFrame, parent: str, centre: float,
                        found: Sequence[BalanceEpisode], flagged: dict[str, np.ndarray]) -> list[BalanceEpisode]:  # fmt: skip
        """Flats that miss a share of their water, found on the exact balance.

        The balance at the exact instants less the node's level (``centre`` L/h) is flat to the
        registers' rounding. A one-sided CUSUM over it (:meth:`_exact_windows`) opens windows in
        which water goes missing; each is fitted flat by flat (:meth:`_exact_fit`), a long one in
        overlapping parts (another fault in the building keeps the CUSUM up for days), and a part is
        trusted only when a neighbouring part's best flat is the same (else two faults at once can
        be named on a third flat whose water happens to follow them). Windows that overlap what the
        daily balance already named are left to it. The parts of one flat are one episode, followed
        on either side for its length (:meth:`_exact_extent`)."""
        kids = [c for c in exact.columns if c not in (parent, "")]
        windows = self._exact_windows(exact, parent, centre)
        members = {parent, *kids}
        span_h = max((int(exact.index[-1]) - int(exact.index[0])) / HOUR_MS, 1.0)
        usual = {d: (float(exact[d].iloc[-1]) - float(exact[d].iloc[0])) / span_h for d in kids}  # L/h
        chunk, stride = int(self.exact_chunk_h * HOUR_MS), int(self.exact_chunk_h * HOUR_MS) // 2
        hits: list[tuple[str, float, int, int, float, float]] = []
        held = [(e.device, self._held_span(exact, e)) for e in found if e.device in members]
        own = [span for _, span in held]
        for w0, w1 in windows:
            # a long window (another fault in the building keeps the CUSUM up) is read in overlapping parts
            parts = [(w0, w1)] if w1 - w0 <= chunk else [
                (a, min(a + chunk, w1)) for a in range(w0, w1 - stride, stride)]  # fmt: skip
            bests: list[str] = []
            fitted: list[tuple[str, float, int, int, float, float] | None] = []
            for k, (a, b) in enumerate(parts):
                whole = parts[k]
                a, b = parts[k] = self._part_left(*whole, own)
                if b <= a:
                    bests.append("")
                    fitted.append(None)
                    continue
                best, hit = self._exact_fit(exact, parent, kids, centre, usual, a, b)
                # a part cut short by another fault's hours: no close call (they are for a fault alone
                # in its building; the other fault's water may be what the best flat's fit follows)
                if hit is not None and (a, b) != whole and hit[4] < self.exact_margin:
                    hit = None
                bests.append(best)
                fitted.append(hit)
            # each instant of a long window is in two parts: a fault should be the best of either;
            # a part whose neighbours both name another flat is taken for two faults at once. A
            # neighbour that holds under half the fault's hours (a fault at the window's first or
            # last end, which only one part reads whole) can neither confirm it nor deny it
            for k, hit in enumerate(fitted):
                near = [j for j in (k - 1, k + 1) if 0 <= j < len(bests)]
                if hit is not None and (hit[0] in [bests[j] for j in near] or not any(
                        _overlap(parts[j], hit[2], hit[3]) >= 0.5 for j in near)):  # fmt: skip
                    hits.append(hit)
        # the parts of one fault: one episode from the first part's start to the last's end
        merged: list[list[tuple[str, float, int, int, float, float]]] = []
        for hit in sorted(hits, key=lambda h: (h[0], h[2])):
            last = merged[-1][-1] if merged else None
            if last is not None and last[0] == hit[0] and hit[2] <= last[3] + chunk:
                merged[-1].append(hit)
            else:
                merged.append([hit])
        out: list[BalanceEpisode] = []
        for group in merged:
            device, t0, t1 = group[0][0], min(h[2] for h in group), max(h[3] for h in group)
            share = float(np.median([h[1] for h in group]))
            gain, lost = max(h[4] for h in group), max(h[5] for h in group)  # the parts overlap: the most
            others = [span for d, span in held if d != device]
            t0, t1 = self._exact_extent(exact, parent, kids, centre, device, share, t0, t1, held=others)
            hours = (t1 - t0) / HOUR_MS
            # the exact fit's hours are the fault's own to within the flat's idle spells: by length alone
            out.append(
                self._episode(device, share, hours / 24.0, gain, lost / max(hours, 1.0), t0, t1, flagged)
            )
        return out

    def _held_span(self, exact: pd.DataFrame, episode: BalanceEpisode) -> tuple[int, int]:
        """The hours (ms) of the exact balance that ``episode`` of the daily balance holds: its run
        of days, or for a register that stood still (its whole share missed) the longest spell in
        which it did not move inside the run, followed out for as long as it stood still, and
        ``exact_pad_h`` either side. The daily balance names a still register over its whole run of
        off days, which may reach days past the spell (another fault keeping the run up): those
        days are left to the exact fit."""
        whole = (episode.start_ms, episode.end_ms)
        if episode.device not in exact.columns or episode.evidence.get("share", 0.0) < 0.98:
            return whole
        inside = exact[(exact.index >= episode.start_ms) & (exact.index <= episode.end_ms)]
        if len(inside) < 2:
            return whole
        ts = inside.index.to_numpy(dtype=np.int64)
        moved = np.flatnonzero(np.diff(inside[episode.device].to_numpy(dtype=np.float64)) != 0.0)
        edges = np.r_[0, moved + 1, len(ts) - 1]  # each still spell runs from one move to the next
        k = int(np.argmax(np.diff(ts[edges])))
        first, last = int(ts[edges[k]]), int(ts[edges[k + 1]])
        if last - first < self.exact_still_h * HOUR_MS:
            return whole
        # the spell as long as the register stood still, past the run's days too (a register that
        # stopped in the hours before the run's first cut)
        value = float(inside[episode.device].iloc[int(edges[k]) + 1])
        register = exact[episode.device].to_numpy(dtype=np.float64)
        at = exact.index.to_numpy(dtype=np.int64)
        moved = np.flatnonzero(register != value)
        i = int(np.searchsorted(at, first))
        before, after = moved[moved < i], moved[moved > i]
        first = int(at[before[-1]]) if len(before) else int(at[0])
        last = int(at[after[0]]) if len(after) else int(at[-1])
        pad = int(self.exact_pad_h * HOUR_MS)
        return first - pad, last + pad

    def _part_left(self, a: int, b: int, held: Sequence[tuple[int, int]]) -> tuple[int, int]:
        """What the daily balance's episodes (their ``held`` hours, :meth:`_held_span`) leave of the
        part [a, b] of an exact window: the part cut short where one holds its first or last hours,
        at least ``exact_still_h`` long, else nothing (b <= a). A part with an episode inside it is
        left to the daily balance whole."""
        cut = False
        for s, t in sorted(held):
            if s < b and a < t:
                if s > a and t < b:
                    return a, a
                a, b, cut = (max(a, t), b, True) if s <= a else (a, min(b, s), True)
        return (a, b) if not cut or b - a >= self.exact_still_h * HOUR_MS else (a, a)

    def _exact_windows(self, exact: pd.DataFrame, parent: str, centre: float) -> list[tuple[int, int]]:
        """Windows [start, end] (ms) in which water went missing from the exact balance.

        The balance at the exact instants (every flat's register known) less the node's level and
        ``exact_slack_lph``, summed while it rises (a one-sided CUSUM); a window runs from the
        sum's last zero to its peak once the peak reaches ``exact_alarm_l``. The rounding leaves
        the balance within a few litres of its level, so the sum does not wander."""
        kids = [c for c in exact.columns if c not in (parent, "")]
        windows: list[tuple[int, int]] = []
        rounding = (len(kids) + 1) / 12.0
        known = exact[exact[""] <= rounding + 1e-9]
        if len(known) < 48:
            return windows
        ts = known.index.to_numpy(dtype=np.int64)
        res = known[parent].to_numpy(dtype=np.float64) - known[kids].sum(axis=1).to_numpy(dtype=np.float64)
        step = np.diff(res) - (centre + self.exact_slack_lph) * np.diff(ts) / HOUR_MS
        total, start, peak, top = 0.0, 0, 0.0, -1
        for k, e in enumerate(step.tolist()):
            if total <= 0.0:
                start = k
            total = max(0.0, total + e)
            if total > peak:
                peak, top = total, k
            if total <= 0.0 or k == len(step) - 1:
                if peak >= self.exact_alarm_l:
                    windows.append((int(ts[start]), int(ts[top + 1])))
                peak, top = 0.0, -1
        return windows

    def _exact_frame(self, exact: pd.DataFrame, parent: str, kids: list[str], centre: float, lo: int,
                     hi: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray] | None:  # fmt: skip
        """The node's instants in [lo, hi] for a fit: (frame, instants, weights, balance less its level).

        Counted from the first exact instant (it sets the origin of every other), one instant per
        quarter hour (its best known), each weighed by the inverse of its variance."""
        frame = exact[(exact.index >= lo) & (exact.index <= hi)]
        frame = frame[frame[""] <= self.exact_max_var_l2]
        known = np.flatnonzero(frame[""].to_numpy() <= (len(kids) + 1) / 12.0 + 1e-9)
        if len(known) == 0:
            return None
        frame = frame.iloc[int(known[0]) :]
        bucket = (frame.index.to_numpy(dtype=np.int64) - int(frame.index[0])) // (15 * 60_000)
        frame = frame.iloc[pd.Series(frame[""].to_numpy()).groupby(bucket).idxmin().to_numpy()]
        if len(frame) < 6:
            return None
        ts = frame.index.to_numpy(dtype=np.int64)
        w = 1.0 / (frame[""].to_numpy(dtype=np.float64) + self.exact_noise_l2)
        res = frame[parent].to_numpy(dtype=np.float64) - frame[kids].sum(axis=1).to_numpy(dtype=np.float64)
        return frame, ts, w, res - res[0] - centre * (ts - ts[0]) / HOUR_MS

    def _exact_extent(self, exact: pd.DataFrame, parent: str, kids: list[str], centre: float, device: str,
                      share: float, t0: int, t1: int,
                      held: Sequence[tuple[int, int]] = ()) -> tuple[int, int]:  # fmt: skip
        """How long the fault found on ``device`` in [t0, t1] lasted: the same fit over
        ``exact_extend_h`` more on each side, the start no later and the end no earlier, kept when
        it fits within the rounding's chi-square at about the same share (a window finds the
        part of a long fault that stands out; its length tells a worn register from a magnet).
        It is followed no further than into the hours the daily balance's episodes hold (``held``,
        :meth:`_held_span`) beside [t0, t1]: there another register's fault (a still register)
        hides water too, and a fit over them can take the other fault's loss for this one's."""
        lo = max([t for s, t in held if s < t0 and t <= t1], default=None)
        hi = min([s for s, t in held if t > t1 and s >= t0], default=None)
        t0_, t1_ = self._exact_extent_fit(exact, parent, kids, centre, device, share, t0, t1)
        if lo is not None:
            t0_ = max(t0_, min(lo, t0))
        if hi is not None:
            t1_ = min(t1_, max(hi, t1))
        return t0_, t1_

    def _exact_extent_fit(self, exact: pd.DataFrame, parent: str, kids: list[str], centre: float, device: str,
                          share: float, t0: int, t1: int) -> tuple[int, int]:  # fmt: skip
        """The fit of :meth:`_exact_extent` over ``exact_extend_h`` more on each side."""
        extend = int(self.exact_extend_h * HOUR_MS)
        prepared = self._exact_frame(exact, parent, kids, centre, t0 - extend, t1 + extend)
        if prepared is None:
            return t0, t1
        frame, ts, w, y = prepared
        n = len(frame)
        a, b = int(np.searchsorted(ts, t0, side="right")), int(np.searchsorted(ts, t1, side="left"))
        if not 0 < a <= b < n:
            return t0, t1
        sse, coef, s0, s1 = _best_window(y, frame[device].to_numpy(dtype=np.float64), w,
                                         np.arange(a)[:, None], np.arange(b, n)[None, :])  # fmt: skip
        if not np.isfinite(sse) or abs(coef / (1.0 + coef) - share) > self.exact_extend_share:
            return t0, t1
        return min(t0, int(ts[s0])), max(t1, int(ts[s1]))

    def _exact_fit(self, exact: pd.DataFrame, parent: str, kids: list[str], centre: float, usual: dict[str, float],
                   w0: int, w1: int) -> tuple[str, tuple[str, float, int, int, float, float] | None]:  # fmt: skip
        """The one flat whose registered water explains the balance's missing water in [w0, w1]:
        (the best candidate, whether accepted or not; (device, share, fault start, fault end, gain,
        litres missed) when accepted, else None), searched as in :meth:`_hourly_fit` over every
        start and end among the window's instants and ``exact_pad_h`` either side. A steady drift
        of the balance (a leak in the building's pipes) competes as one more candidate; the best
        flat must beat every other candidate by ``exact_margin``, take ``exact_gain`` away and fit
        within the rounding's chi-square, with no other flat's register still for
        ``exact_still_h`` of it (a flat that stopped counting could have missed that water) and
        no second flat explaining much of what is left (two faults at once)."""
        prepared = self._exact_frame(exact, parent, kids, centre, w0 - int(self.exact_pad_h * HOUR_MS),
                                     w1 + int(self.exact_pad_h * HOUR_MS))  # fmt: skip
        if prepared is None:
            return "", None
        frame, ts, w, y = prepared
        n = len(frame)
        i0 = np.arange(n)[:, None]
        i1 = np.arange(n)[None, :]
        candidates = {d: frame[d].to_numpy(dtype=np.float64) for d in kids}
        candidates[""] = (ts - ts[0]) / HOUR_MS  # a steady drift (no flat)
        fits = sorted((*_best_window(y, c, w, i0, i1), d) for d, c in candidates.items())
        sse, coef, t0, t1, device = fits[0]
        yy = float(np.sum(w * y * y))
        second = fits[1][0] if len(fits) > 1 else yy
        if not device or not np.isfinite(sse):
            return device, None
        share = coef / (1.0 + coef)
        if (yy - sse < self.exact_gain or second - sse < self.exact_close_margin
                or sse > n + self.exact_chi2_z * np.sqrt(2.0 * n) or not self.min_share <= share <= 0.98):  # fmt: skip
            return device, None
        c = candidates[device]
        lost = coef * float(c[t1] - c[t0])
        # a second flat that explains much of what is left: two faults at once, which one flat's fit
        # can name wrongly (the pair is left to the daily balance)
        x = np.where(np.arange(n) <= t0, 0.0, np.where(np.arange(n) <= t1, c - c[t0], c[t1] - c[t0]))
        rest = y - coef * x
        left = float(np.sum(w * rest * rest))
        if any(left - _best_window(rest, candidates[d], w, i0, i1)[0] >= self.exact_margin
               for d in kids if d != device):  # fmt: skip
            return device, None
        # a register that stood still meanwhile, of a flat that draws water, may have missed any of it:
        # not trusted when it stood still ``exact_still_h`` and its usual use over the still hours
        # comes to half the water missed. A close call takes the same test: a flat idle for most of a
        # fault of a few hours in the day is common (nobody in), and a magnet that stops a register
        # with its tamper flag set leaves the episode to the rules (:meth:`_beside_flagged`)
        for other in kids:
            if other == device or float(usual.get(other, 0.0)) < self.still_usual_lph:
                continue
            moved = np.flatnonzero(np.diff(candidates[other][t0 : t1 + 1]) > 0.0)
            edges = np.r_[t0, t0 + 1 + moved, t1]
            still_h = float(np.max(np.diff(ts[edges]))) / HOUR_MS if len(edges) > 1 else 0.0
            if still_h >= self.exact_still_h and usual[other] * still_h >= 0.5 * lost:
                return device, None
        return device, (device, share, int(ts[t0]), int(ts[t1]), (second - sse), lost)

    def _level_days(self, children: pd.DataFrame, residual: pd.Series) -> pd.Series:
        """The days (rows of ``residual``) that may set the node's level: all, unless a flat that
        draws water on other days (its 90th percentile day at least ``still_usual_lph``) registered
        nothing all day on a quarter of the days or more; then not those days, while
        ``level_min_days`` are left. A register stopped for half the month makes its days the
        tightest quarter (the node's level plus the flat's steady use), and every other fault of the
        node then reads wrongly; a flat away for a few days cannot, and leaves the level alone."""
        busy = children.quantile(0.9)
        busy = busy[busy >= self.still_usual_lph]
        if busy.empty:
            return pd.Series(True, index=residual.index)
        still = (children[busy.index] < 0.02 * busy).any(axis=1)
        keep = ~still & residual.notna()
        # only still days enough to be the commonest residual: the level is the densest quarter of the days
        if int((still & residual.notna()).sum()) < residual.notna().sum() / 4 or int(keep.sum()) < self.level_min_days:
            return pd.Series(True, index=residual.index)
        return ~still

    def _node_episodes(self, parent: str, residual: pd.Series, children: pd.DataFrame, own: pd.Series,
                       flagged: dict[str, np.ndarray], registers: pd.DataFrame | None = None,
                       level_days: pd.Series | None = None) -> list[BalanceEpisode]:  # fmt: skip
        known = residual.dropna()
        if len(known) < 4:
            return []
        # the node's level from the days that may set it (:meth:`_level_days`)
        centre, spread = _shorth((known if level_days is None else residual[level_days].dropna()).to_numpy())
        spread = max(spread, 0.05)
        level = max(self.day_z * spread, self.day_floor_lph)
        excess = residual - centre
        off = excess.abs() > level
        normal = (~off) & excess.notna()
        out: list[BalanceEpisode] = []
        # runs (or their parts) left to the hourly fit, and whether a still register's days cut them
        # off at their start and at their end
        timed: list[tuple[int, int, bool, bool]] = []
        for sign in (1.0, -1.0):
            days = (excess * sign > level).to_numpy()
            for a, b in true_runs(days):
                span = excess.iloc[a : b + 1]
                lost = float(span.mean()) * sign  # L/h the balance misses over the run, > 0
                start = int(span.index[0]) - DAY_MS
                end = int(span.index[-1])
                full_days = float((span.abs() / max(float(span.abs().max()), 1e-9)).sum())
                volumes = children if sign > 0 else own.to_frame(parent)
                found = self._explain(volumes, normal, span * sign, a, b, sign < 0)
                if sign < 0:
                    found = [(d, share, full_days, fit) for d, share, _, fit in found]
                elif found:  # still registers: the run's days before or after them may hold another fault
                    usual = children[normal.to_numpy()].median()
                    covered = [_still_span(children[d], a, b, float(usual[d])) for d, *_ in found]
                    first = min(c[0] for c in covered if c is not None) if any(covered) else a
                    last = max(c[1] for c in covered if c is not None) if any(covered) else b
                    timed += [(x, y, x == last + 2, y == first - 2)
                              for x, y in ((a, first - 2), (last + 2, b)) if y >= x]  # fmt: skip
                    found += self._beside_still(children, normal, span, a, b, spread, found)
                else:
                    found = self._partial(children, normal, span, a, b, spread)
                    if not found:
                        timed.append((a, b, False, False))
                out += [self._episode(device, share, lasted, fit, lost, start, end, flagged)
                        for device, share, lasted, fit in found]  # fmt: skip
        if registers is None:
            return out
        # a slowed register whose days are near the level: runs of days above a lower one, hour by hour
        soft = (excess > max(self.soft_z * spread, self.soft_floor_lph)).to_numpy()
        for a, b in true_runs(soft):
            if b - a + 1 >= self.soft_days and not any(x <= b and a <= y for x, y, *_ in timed) and not any(
                    e.start_ms < int(excess.index[b]) and int(excess.index[a]) - DAY_MS < e.end_ms for e in out):  # fmt: skip
                timed.append((a, b, False, False))
        for a, b, cut_start, cut_end in timed:
            span = excess.iloc[a : b + 1]
            hit = self._hourly_fit(
                registers, parent, centre, normal, int(span.index[0]) - DAY_MS, int(span.index[-1])
            )
            if hit is not None:
                device, share, hours, fit, t0, t1, at_start, at_end = hit
                # a fault that may have begun (ended) inside the still register's days: its hours are a least
                cut = (at_start and cut_start) or (at_end and cut_end)
                out.append(self._episode(device, share, hours / 24.0, fit, float(span.mean()), t0, t1, flagged,
                                         timed=True, cut=cut))  # fmt: skip
        return out

    def _episode(self, device: str, share: float, lasted: float, fit: float, lost: float, start: int, end: int,
                 flagged: dict[str, np.ndarray], timed: bool = False, cut: bool = False) -> BalanceEpisode:  # fmt: skip
        # worn registers stay so for 2-14 days, magnets 1-72 h; a small share missing for 2-3 days
        # without the tamper flag is the likelier a magnet (the simulators' rates and spans)
        hours = lasted * 24.0
        tampered = self._tampered(flagged.get(device, np.empty(0)), start, end, hours)
        # (when the hours are the fault's own, from the hourly fit, not whole days'); hours that are
        # only a least (``cut``: the fault may reach past the run the fit read) say nothing of its
        # length, and with no tamper flag a worn register is then the likelier: magnets are the
        # rarer fault (2% of meters a year against 5%) and of a magnet's 1-72 h, most of the
        # spans longer than a few hours are cut short by its removal
        short = not cut and (hours < self.stuck_hours or (
            timed and hours < self.tamper_hours and share < self.subtle_share
        ))  # fmt: skip
        fault = "meter_tamper" if tampered or short else "stuck_register"
        return BalanceEpisode(device, fault, start, end, fit, {
            "missing_lph": round(lost, 2), "share": round(share, 2), "fit": round(fit, 2),
            "days": round(lasted, 1)})  # fmt: skip

    def _tampered(self, times: np.ndarray, start: int, end: int, hours: float) -> bool:
        """Whether the meter's tamper flag names the episode [start, end] of ``hours`` missing water
        (its own length: a daily run's bounds may hold other faults' days): set in 2 reports of it,
        and set for all but under ``stuck_hours`` of those hours (the flag is set while a magnet is
        on; water missing for two days more than that is a worn register's too: a worn register
        right after a magnet on the same meter)."""
        inside = times[(times >= start) & (times <= end)]
        if len(inside) < 2:
            return False
        return hours - (int(inside[-1]) - int(inside[0])) / HOUR_MS < self.stuck_hours

    def _explain(self, volumes: pd.DataFrame, normal: pd.Series, lost: pd.Series, a: int, b: int,
                 parent: bool) -> list[tuple[str, float, float, float]]:  # fmt: skip
        """Which meters explain the run's missing water: [(device, share not registered, days, evidence)].

        A flat's meter (``parent`` false) is named when its register stood still for whole days of
        the run although the flat usually draws water, and the balance missed at least
        ``still_share`` of that usual use on those days (``evidence``: the missed share of it), or
        ``still_together_share`` of it when the run is those days (at least ``min_days`` of them in a
        row) and at most the day before and the day after, which the stop and the restart cut: the
        water went missing when the register stopped and came back when it moved again, and a flat
        using half its usual water for a few days is common (a flat away whose still register
        happens to span another fault's run exactly is not). A flat's use varies by half from day
        to day, so a partly slowed register is not told from it here. A parent meter that registers a share ``f`` less makes the balance miss
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
            days = np.flatnonzero(still)
            together = (len(days) >= self.min_days and int(days[-1] - days[0]) + 1 == len(days)
                        and days[0] <= 1 and days[-1] >= len(v) - 2)  # fmt: skip
            if missed >= (self.still_together_share if together else self.still_share):
                # how many whole days it stood still, counted on past the run: a worn register stays so
                out.append((str(device), 1.0, _still_days(volumes[device], a, b, u), missed))
        return out

    def _beside_still(self, volumes: pd.DataFrame, normal: pd.Series, excess: pd.Series, a: int, b: int,
                      spread: float, still: list[tuple[str, float, float, float]]) -> list[tuple[str, float, float, float]]:  # fmt: skip
        """A worn register beside still ones: the run's missing water less the still flats' usual use.

        A still register hides its flat's whole use, about its usual (a flat's use varies by half
        from day to day); when the balance misses ``still_beside_missed`` times that or more on its
        still days, another meter misses the rest. The still flats' usual use is taken off their
        still days and the remainder is fitted as a partly worn register (:meth:`_partial`) among
        the other flats.
        """
        if not still or max(missed for *_, missed in still) < self.still_beside_missed:
            return []
        base = volumes[normal.to_numpy()]
        if len(base) < 3:
            return []
        usual = base.median()
        rest = excess.copy()
        names = [d for d, *_ in still]
        for device in names:
            u = float(usual[device])
            v = volumes[device].iloc[a : b + 1].to_numpy(dtype=np.float64)
            rest = rest - np.where(np.isfinite(v) & (v < 0.02 * u), u, 0.0)
        return self._partial(volumes.drop(columns=names), normal, rest, a, b, spread)

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

        def drawn(shares: list[tuple[str, float]]) -> bool:
            # a flat drawing its usual water or more whose days follow a neighbour's missing share (a
            # worn register beside it) is not the one that misses it: its own volume shows no drop
            return any(ratio[d] - (1.0 - f) > self.usual_rise for d, f in shares)

        singles = [f for d in columns if (f := fitted((d,))) is not None]
        if len(singles) == 1:
            return [] if drawn(singles[0]) else [(d, f, 1.0) for d, f in singles[0]]
        if singles:
            return []
        # two meters at once (faults overlap): only among meters whose volume is down, and not when a
        # steady loss fits the days as well (a leak in the building's pipes: two flats' days can
        # add up to about any steady level)
        if float(np.sqrt(np.mean((inner - inner.mean()) ** 2))) <= tolerance:
            return []
        # ... nor over a few days: two shares fitted to a few days' losses, any of tens of pairs of
        # flats whose use happens to follow them fits (one worn register beside a short magnet)
        if len(inner) < self.pair_min_days:
            return []
        down = sorted(d for d in columns if ratio[d] <= 1.0 - self.min_share)
        pairs = [f for pair in combinations(down, 2) if (f := fitted(pair)) is not None]
        if len(pairs) == 1 and not drawn(pairs[0]):
            return [(d, f, 2.0) for d, f in pairs[0]]
        return []

    def _hourly_fit(self, registers: pd.DataFrame, parent: str, centre: float, normal: pd.Series,
                    start: int, end: int) -> tuple[str, float, float, float, int, int, bool, bool] | None:  # fmt: skip
        """The one flat whose registered water, hour by hour, the balance misses a share of within
        the run [start, end] (ms, cut to cut): (device, share, hours, fit, fault start, fault end,
        and whether the fault may reach past the run's start, and past its end: its start (end) in
        the first (last) hours searched with no normal day beyond).

        The balance's cumulative residual on the hour (parent minus children since the run's start,
        less the node's normal level) is free of the daily cuts' luck: each hour's value is off
        only by what the meters' 15-minute reports leave unknown around it, its noise learnt from
        the node's normal days. A flat that misses a share f from t0 to t1 makes it rise by
        f / (1 - f) of what the flat registers in between, with the flat's own hours (its nights
        still, its mornings and evenings steep); it is searched over t0 within the run's first day
        and t1 within its last. One flat must fit within the noise and fit clearly better than
        every other.
        """
        cols = list(registers.columns)
        kids = [c for c in cols if c != parent]
        # a normal day on each side, when there is one: the flat's own water, none of it missed
        lo = start - DAY_MS if bool(normal.get(start, False)) else start
        hi = end + DAY_MS if bool(normal.get(end + DAY_MS, False)) else end
        frame = registers[(registers.index >= lo) & (registers.index <= hi)].dropna()
        if len(frame) < 12 or not kids:
            return None
        ts = frame.index.to_numpy(dtype=np.int64)
        res = frame[parent].to_numpy() - frame[kids].sum(axis=1).to_numpy()
        y = res - res[0] - centre * (ts - ts[0]) / HOUR_MS
        sigma = self._hourly_noise(registers, parent, kids, centre, normal)
        if sigma is None:
            return None
        w2 = 1.0 / sigma[self._local_hour(ts)] ** 2  # each hour weighed by its own noise
        n = len(ts)
        first_day = int(np.searchsorted(ts, start + DAY_MS, side="right"))
        last_day = int(np.searchsorted(ts, end - DAY_MS, side="left"))
        i0 = np.arange(0, min(first_day, n - 1))[:, None]
        i1 = np.arange(max(last_day, 1), n)[None, :]
        if i0.size == 0 or i1.size == 0:
            return None
        best: list[tuple[float, str, float, int, int, bool, bool]] = []
        yy = float(np.sum(w2 * y * y))
        pw, py = np.r_[0.0, np.cumsum(w2)], np.r_[0.0, np.cumsum(w2 * y)]
        a, b = i0 + 1, i1 + 1  # x_j = c_j - c0 for i0 < j <= i1, c1 - c0 after
        for device in kids:
            c = frame[device].to_numpy(dtype=np.float64)
            c = c - c[0]
            pc, pcc = np.r_[0.0, np.cumsum(w2 * c)], np.r_[0.0, np.cumsum(w2 * c * c)]
            pcy = np.r_[0.0, np.cumsum(w2 * c * y)]
            c0, c1 = c[i0], c[i1]
            xy = (pcy[b] - pcy[a]) - c0 * (py[b] - py[a]) + (c1 - c0) * (py[n] - py[b])
            xx = ((pcc[b] - pcc[a]) - 2.0 * c0 * (pc[b] - pc[a]) + c0 * c0 * (pw[b] - pw[a])
                  + (c1 - c0) ** 2 * (pw[n] - pw[b]))  # fmt: skip
            ok = (i1 > i0) & (xx > 1e-9) & (xy > 0.0)
            sse = np.where(ok, yy - np.where(ok, xy, 0.0) ** 2 / np.where(ok, xx, 1.0), np.inf)
            k = int(np.argmin(sse))
            r, q = np.unravel_index(k, sse.shape)
            if not np.isfinite(sse[r, q]):
                continue
            coef = float(xy[r, q] / xx[r, q])
            # hours in which the flat drew nothing leave the fault's start and end open: their middle
            lo0, hi1 = int(i0[r, 0]), int(i1[0, q])
            hi0 = min(int(np.searchsorted(c, c[lo0], side="right")) - 1, hi1)
            lo1 = max(int(np.searchsorted(c, c[hi1], side="left")), lo0)
            # a start (end) in the first (last) hours searched, where no normal day lies beyond: the
            # fault may have begun (ended) outside the run
            at_start, at_end = lo0 == 0 and lo == start, hi1 == n - 1 and hi == end
            best.append(
                (float(sse[r, q]), device, coef, (lo0 + hi0) // 2, (lo1 + hi1 + 1) // 2, at_start, at_end)
            )
        if not best:
            return None
        best.sort()
        chi2, device, coef, t0, t1, at_start, at_end = best[0]
        share = coef / (1.0 + coef)
        second = best[1][0] if len(best) > 1 else yy
        if (chi2 > self.hour_fit_chi2 * n or second - chi2 < self.hour_fit_margin * n
                or yy - chi2 < self.hour_fit_gain * n or not self.min_share <= share <= 0.98):  # fmt: skip
            return None
        # a fault of an hour or two rests on one or two hourly values, each off by what the reports
        # leave unknown around the hour: a flat that drew in the hour of such a spike fits it (a few
        # hours' fault is the exact balance's, read at the instants every register is known)
        if (ts[t1] - ts[t0]) / HOUR_MS < self.hour_fit_min_h:
            return None
        return (device, share, (ts[t1] - ts[t0]) / HOUR_MS, (second - chi2) / n, int(ts[t0]), int(ts[t1]),
                bool(at_start), bool(at_end))  # fmt: skip

    def _local_hour(self, ts: np.ndarray) -> np.ndarray:
        return np.asarray(pd.DatetimeIndex(pd.to_datetime(ts, unit="ms", utc=True)).tz_convert(self.tz).hour)

    def _hourly_noise(self, registers: pd.DataFrame, parent: str, kids: list[str], centre: float,
                      normal: pd.Series) -> np.ndarray | None:  # fmt: skip
        """Robust SD (L) by local hour of the cumulative residual on the hour against its value at
        the day's cut, over the node's normal days: what the meters' reports leave unknown then."""
        res = (registers[parent] - registers[kids].sum(axis=1, skipna=False)).to_numpy(dtype=np.float64)
        ts = registers.index.to_numpy(dtype=np.int64)
        days = normal[normal].index.to_numpy(dtype=np.int64)  # each normal day's closing cut
        values: list[np.ndarray] = []
        stamps: list[np.ndarray] = []
        for close in days:
            inside = (ts > close - DAY_MS) & (ts < close)
            at = np.searchsorted(ts, close - DAY_MS)
            if at >= len(ts) or ts[at] != close - DAY_MS or not np.isfinite(res[at]):
                continue
            values.append(res[inside] - res[at] - centre * (ts[inside] - ts[at]) / HOUR_MS)
            stamps.append(ts[inside])
        if len(values) < 3:
            return None
        v, hours = np.concatenate(values), self._local_hour(np.concatenate(stamps))
        sd = np.full(24, np.nan)
        for hour in range(24):
            part = v[(hours == hour) & np.isfinite(v)]
            if len(part) >= 3:
                sd[hour] = 1.4826 * float(np.median(np.abs(part - np.median(part))))
        sd[self.cut_hour] = 0.0  # the cut itself: nothing unknown
        sd = np.where(
            np.isfinite(sd), sd, np.nanmax(sd) if np.isfinite(sd).any() else self.hour_noise_floor_l
        )
        return np.maximum(sd, self.hour_noise_floor_l)

    @staticmethod
    def _hourly_residual(hourly: pd.DataFrame, node: Node) -> tuple[list[str], pd.Series]:
        """The node's children that have readings, and the parent's litres per hour less theirs
        (NaN in an hour one of them does not cover)."""
        children = [c for c in node.children if c in hourly]
        return children, hourly[node.parent] - hourly[children].sum(axis=1, skipna=False)

    def leaks(self, registers: pd.DataFrame, devices: pd.DataFrame,
              others: Sequence[BalanceEpisode] = ()) -> list[BalanceEpisode]:  # fmt: skip
        """A building's residual that rises and stays, night and day: a leak in its pipes.

        A leak behind the building meter, before the flats, adds its flow to that meter alone, so
        the residual (the building meter less its flats' meters) rises by the leak's flow in every
        hour and stays. A flat's register that misses water raises the residual too, but only
        while the flat draws: hardly at night, when the flats are still; so the residual over the
        past day's night hours must have risen by at least ``leak_night`` of its rise over the whole
        past day. Hours near a burst or a register fault the balance found on the node are left
        out (``others``), and a flat with no reading leaves its hours unknown. The simulator ramps
        a building's leak up over a quarter of its span (pipes corrode slowly), so the start is
        fitted as the bend of a ramp on the hourly residual before the first hour found."""
        if len(registers) < 72:
            return []
        hourly = registers.diff().iloc[1:]
        ts = hourly.index.to_numpy(dtype=np.int64)
        local = self._local_hour(ts - HOUR_MS)  # the hour's own start
        night = (local >= 0) & (local < 5)
        scopes = devices["scope"].astype(str).to_dict()
        out: list[BalanceEpisode] = []
        for node in self.nodes(devices):
            if scopes.get(node.parent, "") != "building" or node.parent not in hourly:
                continue
            children, residual = self._hourly_residual(hourly, node)
            if not children or len(children) < len(node.children):
                continue
            members = {node.parent, *node.children}
            res = residual.to_numpy(dtype=np.float64, copy=True)
            for e in others:
                if e.device in members:
                    res[(ts >= e.start_ms - DAY_MS) & (ts <= e.end_ms + DAY_MS)] = np.nan
            known = np.isfinite(res)
            if known.sum() < 72 or (known & night).sum() < 15:
                continue
            centre = float(np.median(res[known]))
            night_centre = float(np.median(res[known & night]))
            day = pd.Series(res).rolling(24, min_periods=20).mean().to_numpy() - centre
            part = (
                pd.Series(np.where(night, res, np.nan)).rolling(24, min_periods=4).mean().to_numpy()
                - night_centre
            )
            mean_flow = float(hourly[node.parent].mean())
            level = max(self.leak_floor_lph, self.leak_share * mean_flow)
            hot = (day > level) & (part > self.leak_night * np.maximum(day, level))
            # each hour weighed by its own noise: the still nights say most about when the rise began
            sd = np.ones(24)
            for hour in range(24):
                v = res[known & (local == hour)]
                if len(v) >= 5:
                    sd[hour] = max(1.0, 1.4826 * float(np.median(np.abs(v - np.median(v)))))
            weight = 1.0 / sd[local] ** 2
            for a, b in true_runs(hot.tolist()):
                if b - a + 1 < self.leak_hours:
                    continue
                start = self._leak_start(
                    ts, res - centre, weight, max(0, a - self.leak_lookback_h), min(len(ts) - 1, a + 24)
                )
                out.append(BalanceEpisode(node.parent, "leak", start, int(ts[b]), float(np.nanmax(day[a : b + 1]) / level),
                                          {"excess_lph": round(float(np.nanmedian(day[a : b + 1])), 1),
                                           "share": round(float(np.nanmedian(day[a : b + 1])) / max(mean_flow, 1.0), 3)}))  # fmt: skip
        return out

    @staticmethod
    def _leak_start(ts: np.ndarray, y: np.ndarray, w: np.ndarray, lo: int, hi: int) -> int:
        """The start (ms) of a rise in ``y`` within rows lo..hi: the bend of the best ramp (or step)
        that is nothing before it, by least squares over the known hours weighed by ``w``."""
        t = (ts[lo : hi + 1] - ts[lo]) / HOUR_MS
        v = y[lo : hi + 1]
        ok = np.isfinite(v)
        t, v, w = t[ok], v[ok], w[lo : hi + 1][ok]
        if len(t) < 6:
            return int(ts[lo])
        best, when = np.inf, float(t[0])
        for ramp in (1.0, 6.0, 12.0, 24.0, 48.0, 84.0):
            for s0 in t[: max(1, len(t) - 3)]:
                x = np.clip((t - s0) / ramp, 0.0, 1.0)
                xx = float(x @ (w * x))
                if xx <= 0.0:
                    continue
                coef = float(x @ (w * v)) / xx
                if coef <= 0.0:
                    continue
                sse = float(np.sum(w * (v - coef * x) ** 2))
                if sse < best:
                    best, when = sse, float(s0)
        return int(ts[lo] + when * HOUR_MS - HOUR_MS)

    def bursts(self, readings: pd.DataFrame, devices: pd.DataFrame,
               missing: Sequence[BalanceEpisode] = (), registers: pd.DataFrame | None = None
               ) -> list[BalanceEpisode]:  # fmt: skip
        """Hours in which a parent meter registers far more than its children: a burst in its pipes.

        Not on days when one of the node's meters misses water (``missing``): a still register
        below a parent makes the hourly residual follow that meter's daily peaks."""
        if readings.empty:
            return []
        registers = self.hourly_registers(readings) if registers is None else registers
        if len(registers) < self.burst_hours + 2:
            return []
        hourly = registers.diff().iloc[1:]  # L/h
        out: list[BalanceEpisode] = []
        nodes = self.nodes(devices)
        local = self._local_hour(hourly.index.to_numpy(dtype=np.int64) - HOUR_MS)
        residuals = {n.parent: self._hourly_residual(hourly, n)[1] for n in nodes if n.parent in hourly}
        # each node's residual less its median at the same local hour over the whole history
        level_of = {parent: _off_usual(residual, local) for parent, residual in residuals.items()}
        for node in nodes:
            if node.parent not in hourly:
                continue
            residual = residuals[node.parent]
            usual = level_of[node.parent]
            usual_pair = usual + np.concatenate(([np.nan], usual[:-1]))  # two hours together, as ``pair``
            recent = residual.rolling(self.burst_hours, min_periods=self.burst_hours // 2).median().shift(1)
            mean_flow = float(hourly[node.parent].mean())
            level = max(self.burst_lph, self.burst_share * mean_flow)
            excess = residual - recent
            # two hours together: a meter's reading between hours splits its water wrongly between
            # them, but what one hour gains the next loses; a burst's water is all extra
            pair = excess + excess.shift(1)
            hot = ((pair > level) & (excess > 0) & (excess.shift(1) > -self.burst_slack_l)).to_numpy()
            members = {node.parent, *node.children}
            masked = [(e.start_ms - DAY_MS, e.end_ms + DAY_MS, e) for e in missing if e.device in members]
            for a, b in true_runs(hot):
                span = excess.iloc[a : b + 1]
                over = [e for lo, hi, e in masked if lo <= int(span.index[-1]) and int(span.index[0]) <= hi]
                # a flat whose register stands still while the burst runs: the burst is behind its meter
                still = {e.device for e in over if e.device in node.children and e.evidence.get("share", 0.0) >= 0.98
                         and e.start_ms <= int(span.index[0]) and int(span.index[-1]) <= e.end_ms}  # fmt: skip
                # ... and far over what that meter usually passes (a flat's, not a building's)
                if over and (len(still) != 1 or float(span.max()) < max(
                        self.still_burst_lph, self.still_burst_ratio * float(hourly[next(iter(still))].mean()))):  # fmt: skip
                    continue
                # a residual over its recent median only because that median fell (the node's meter
                # missed water the day before, and stopped missing it or draws little now): a burst's
                # water is over the node's usual level too
                if not over and not np.nanmax(usual_pair[a : b + 1], initial=-np.inf) > level:
                    continue
                # a child's meter (a building's) whose own residual falls by the water the node's rose:
                # that meter misses water, nothing bursts (a burst behind it leaves the node's residual)
                lo, hi = max(0, a - 1), b + 2
                gain = float(np.nansum(excess.to_numpy()[lo:hi]))
                if any(float(-np.nansum(level_of[c][lo:hi])) >= self.burst_loss_match * gain
                       for c in node.children if c in level_of):  # fmt: skip
                    continue
                out.append(BalanceEpisode(still.pop() if still else node.parent, "burst", int(span.index[0]) - HOUR_MS, int(span.index[-1]),
                                          float(span.max() / level),
                                          {"excess_lph": round(float(span.max()), 1)}))  # fmt: skip
        return out


def _off_usual(residual: pd.Series, local: np.ndarray) -> np.ndarray:
    """``residual`` (L/h) less its median at the same local hour over the whole series."""
    res = residual.to_numpy(dtype=np.float64)
    centre = np.zeros(24)
    for hour in range(24):
        v = res[(local == hour) & np.isfinite(res)]
        centre[hour] = float(np.median(v)) if len(v) else 0.0
    return res - centre[local]


def _metric_rows(readings: pd.DataFrame, metric: str, *,
                 by_time: bool = False) -> list[tuple[str, np.ndarray, np.ndarray]]:  # fmt: skip
    """Each device's rows of ``metric`` as (device, ts_ms int64, value float64), devices by name, as
    ``groupby(device, sort=True)`` gives them: each device's rows in the readings' order, or with
    ``by_time`` in the order ``sort_values("ts_ms")`` of all rows gives them (without moving the
    frame's string columns row by row)."""
    keep = (readings["metric"].astype(str) == metric).to_numpy(dtype=bool)
    ts = readings["ts_ms"].to_numpy(dtype=np.int64)[keep]
    values = readings["value"].to_numpy(dtype=np.float64)[keep]
    code, names = pd.factorize(readings["device"].astype(str)[keep], sort=True)
    if np.any(code < 0):  # a row without a device: groupby leaves it out
        ts, values, code = ts[code >= 0], values[code >= 0], code[code >= 0]
    order = np.argsort(ts, kind="quicksort") if by_time else np.arange(len(ts))
    order = order[np.argsort(code[order], kind="stable")]
    bounds = np.r_[0, np.cumsum(np.bincount(code, minlength=len(names)))]
    return [(str(name), ts[order[bounds[i] : bounds[i + 1]]], values[order[bounds[i] : bounds[i + 1]]])
            for i, name in enumerate(names)]  # fmt: skip


def _rolling(
    values: np.ndarray, window: int, reduce: Callable[..., np.ndarray], *, center: bool = False
) -> np.ndarray:
    """pandas' ``rolling(window, center=center).max()`` or ``.min()`` of ``values``, full windows
    only: NaN where the window is short or holds a NaN (``reduce`` propagates it), else exact."""
    out = np.full(len(values), np.nan)
    if window <= len(values):
        first = window // 2 if center else window - 1  # the row each window's value goes to (as pandas)
        out[first : first + len(values) - window + 1] = reduce(
            np.lib.stride_tricks.sliding_window_view(values, window), axis=1
        )
    return out


def _best_window(y: np.ndarray, c: np.ndarray, w: np.ndarray, i0: np.ndarray,
                 i1: np.ndarray) -> tuple[float, float, int, int]:  # fmt: skip
    """Weighted least squares of ``y`` on a meter's register ``c`` counted from i0 to i1 (nothing
    before i0, what it registered from i0 to i1 after; ``w`` each point's weight): (squared
    error, coefficient, i0, i1) of the best pair with a positive coefficient, infinite error when
    none has. The fault's start and end are set to the middle of the still points around them
    (nothing drawn: either is as good).

    ``i0`` is a column of starts, ``i1`` a row of ends (ascending): the pairs are scored a block of
    starts at a time, each block only on the ends after its first start (an end at or before a
    start is no pair), which keeps a block in the processor's cache. Every pair's error is the same
    sum as over the whole grid, and the first of equal errors in the grid's order wins, as with
    ``argmin`` over it."""
    n = len(y)
    c = c - c[0]
    pw = np.r_[0.0, np.cumsum(w)]
    py, pc = np.r_[0.0, np.cumsum(w * y)], np.r_[0.0, np.cumsum(w * c)]
    pcc, pcy = np.r_[0.0, np.cumsum(w * c * c)], np.r_[0.0, np.cumsum(w * c * y)]
    yy = float(np.sum(w * y * y))
    starts, ends = i0[:, 0], i1[0, :]
    ascending = bool(np.all(ends[1:] > ends[:-1]))
    rows = max(1, _BLOCK // max(len(ends), 1))
    best = (np.inf, 0.0, 0.0, 0, 0)  # (sse, xy, xx, row, column) of the first best pair so far
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for r0 in range(0, len(starts), rows):
            s0 = i0[r0 : r0 + rows]
            q0 = int(np.searchsorted(ends, int(s0.min()), side="right")) if ascending else 0
            if q0 >= len(ends):
                continue
            s1 = i1[:, q0:]
            a, b = s0 + 1, s1 + 1
            c0, c1 = c[s0], c[s1]
            # xy = (pcy[b] - pcy[a]) - c0 * (py[b] - py[a]) + (c1 - c0) * (py[n] - py[b]) and
            # xx = (pcc[b] - pcc[a]) - 2 c0 (pc[b] - pc[a]) + c0² (pw[b] - pw[a]) + (c1 - c0)² (pw[n] - pw[b]),
            # each operation as written and in its order, into a few arrays reused (c1 - c0 made once)
            d = c1 - c0
            xy = pcy[b] - pcy[a]
            t = py[b] - py[a]
            t *= c0
            xy -= t
            np.multiply(d, py[n] - py[b], out=t)
            xy += t
            xx = pcc[b] - pcc[a]
            np.subtract(pc[b], pc[a], out=t)
            t *= 2.0 * c0
            xx -= t
            np.subtract(pw[b], pw[a], out=t)
            t *= c0 * c0
            xx += t
            d *= d
            d *= pw[n] - pw[b]
            xx += d
            ok = s1 > s0
            ok &= xx > 1e-9
            ok &= xy > 0.0
            sse = np.multiply(xy, xy, out=t)  # yy - xy² / xx where ok, else no pair
            sse /= xx
            np.subtract(yy, sse, out=sse)
            sse[~ok] = np.inf
            k = int(np.argmin(sse))
            r, q = np.unravel_index(k, sse.shape)
            value = float(sse[r, q])
            if np.isnan(value):  # argmin over the grid would stop at the first NaN: no pair
                return float("inf"), 0.0, 0, 0
            if value < best[0]:
                best = (value, float(xy[r, q]), float(xx[r, q]), r0 + int(r), q0 + int(q))
    if not np.isfinite(best[0]):
        return float("inf"), 0.0, 0, 0
    sse_best, xy_best, xx_best, row, column = best
    lo0, hi1 = int(i0[row, 0]), int(i1[0, column])
    hi0 = min(int(np.searchsorted(c, c[lo0], side="right")) - 1, hi1)
    lo1 = max(int(np.searchsorted(c, c[hi1], side="left")), lo0)
    return sse_best, xy_best / xx_best, (lo0 + hi0) // 2, (lo1 + hi1 + 1) // 2


_BLOCK = 1 << 15  # pairs scored at once by _best_window (a few arrays of it fit a processor's cache)


def _overlap(part: tuple[int, int], t0: int, t1: int) -> float:
    """The share of [t0, t1] that ``part`` holds."""
    return max(0, min(part[1], t1) - max(part[0], t0)) / max(t1 - t0, 1)


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


def _still_span(volume: pd.Series, a: int, b: int, usual: float) -> tuple[int, int] | None:
    """The longest run of days (rows) of ``volume`` still through rows a..b."""
    still = (volume.to_numpy(dtype=np.float64) < 0.02 * usual).tolist()
    spans = [(first, last) for first, last in true_runs(still) if first <= b and last >= a]
    return max(spans, key=lambda s: s[1] - s[0]) if spans else None


def _still_days(volume: pd.Series, a: int, b: int, usual: float) -> float:
    """How long, in days, the register of ``volume`` stood still through rows a..b: its whole still
    days in a row, plus the share of the usual use missing on the day before and the day after."""
    v = volume.to_numpy(dtype=np.float64)
    still = (v < 0.02 * usual).tolist()
    spans = [(first, last) for first, last in true_runs(still) if first <= b and last >= a]
    if not spans:
        return 0.0
    first, last = max(spans, key=lambda s: s[1] - s[0])
    days = float(last - first + 1)
    for edge in (first - 1, last + 1):
        if 0 <= edge < len(v) and np.isfinite(v[edge]):
            days += float(np.clip(1.0 - v[edge] / usual, 0.0, 1.0))
    return days


MESSAGES = {
    "stuck_register": N_("{device} registers {share} less water than its building's balance shows: a stuck register suspected"),
    "meter_tamper": N_("{device} registers {share} less water than its building's balance shows: tampering suspected"),
    "burst": N_("{device} registers {flow} m³/h more than the meters behind it: a burst in its pipes suspected"),
    "leak": N_("{device} registers {flow} L/h more than the meters behind it, night and day: a leak in its pipes suspected"),
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
    hourly = balance.hourly_registers(water)
    missing = balance.missing_water(water, devices, hourly)
    # a building meter that missed water for hours (a magnet), from both sides of its balance; its
    # compound's residual rises by that water, which is no burst in the compound's pipes
    from .parent_loss import ParentLoss  # here: parent_loss imports this module

    missing += ParentLoss().episodes(hourly, devices, balance, missing)
    bursts = balance.bursts(water, devices, missing, hourly)
    for ep in missing + bursts + balance.leaks(hourly, devices, [*missing, *bursts]):
        active = ep.end_ms >= last
        if ep.fault == "leak":
            params: dict[str, str | int | float] = {
                "device": ep.device,
                "flow": round(ep.evidence["excess_lph"], 1),
            }
        elif ep.fault == "burst":
            params = {"device": ep.device, "flow": round(ep.evidence["excess_lph"] / 1000.0, 2)}
        else:
            params = {"device": ep.device, "share": f"{ep.evidence['share']:.0%}"}
        out.append(Finding(
            id=f"{WaterBalance.name}.{ep.device}.{ep.fault}.{ep.start_ms}", compound=str(devices.loc[ep.device, "compound"]),
            device=ep.device, kind=DeviceKind.WATER_METER, source=f"detector:{WaterBalance.name}", fault=ep.fault,
            severity=Severity.CRITICAL if ep.fault == "burst" else Severity.WARNING,
            state=FindingState.ACTIVE if active else FindingState.CLEARED, started_ms=ep.start_ms,
            ended_ms=None if active else ep.end_ms, ts_ms=min(ep.end_ms, last), message=MESSAGES[ep.fault],
            params=params, evidence={k: float(v) for k, v in ep.evidence.items()}, score=float(ep.score),
        ))  # fmt: skip
    return sorted(out, key=lambda f: (f.started_ms, f.device))
