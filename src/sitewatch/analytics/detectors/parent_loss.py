"""A building meter that misses water for hours: a magnet on it, seen from both sides of its balance.

A building meter stands between two balances: below it, its flats (the building's residual, the
meter less its flats' meters); above it, the compound meter (the compound's residual, the compound
meter less its building meters and the flats with no building meter). A building meter whose
register misses a share ``f`` of the water (a magnet, or an opened meter: ``meter_tamper``) makes
the building's residual fall by ``f / (1 - f)`` of what it registers, and the compound's residual
rise by just as much, hour by hour. The daily balance names such a meter only when its days fit
(two or more whole days); a magnet of a few hours on a busy building meter misses hundreds of
litres an hour, far beyond either residual's hourly noise, and is named here.

Nothing else moves both residuals apart by the same water: a burst or a leak in the building's
pipes raises the building's residual and leaves the compound's (the building meter counts it); a
flat's register that misses water raises the building's residual alone; a flat's late report
moves the building's residual alone. The building meter's own reading error (interpolated to the
hour between its 5-minute reports) moves both apart but is made up the next hour, so an episode's
water is summed over an hour more on either side. A worn register (``stuck_register``) misses
water for days and is mostly the daily balance's: an episode is named only when the meter registers
its full share again in the day before and the day after, and not within a day of an episode the
daily balance found on the meter; one lasting ``max_hours`` or more is named a worn register (a
building meter's that misses most of its water for two days or more: the daily balance, which
weighs whole days against the meter's usual share, may not fit it), a shorter one a magnet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .balance import DAY_MS, HOUR_MS, BalanceEpisode, Node, WaterBalance
from .base import true_runs


@dataclass(frozen=True, slots=True)
class ParentLoss:
    """Levels of the building meter's two-sided loss (defaults hold on unseen data)."""

    z: float = 3.0  # an hour: both residuals this many robust SDs off their median (by local hour)
    episode_z: float = 5.0  # an episode: the building's loss this many SDs of its hours' sum
    floor_lph: float = 20.0  # ... and at least this many litres in the hour, on both sides
    min_litres: float = 100.0  # an episode misses at least this much in all (within a busy hour's noise)
    noise_floor_l: float = 3.0  # an hour's robust SD is at least this (L)
    min_hours: int = 72  # a node's residual needs this many known hours for its levels
    merge_hours: int = 6  # flagged hours this close together are one episode
    max_hours: float = 48.0  # an episode at least this long is a worn register's (``stuck_register``)
    match: tuple[float, float] = (0.5, 2.0)  # the compound's gain over the building's loss, summed
    min_share: float = 0.08  # the share missed, as the daily balance names a parent meter
    max_share: float = 1.0  # an opened meter registers nothing
    around_hours: int = 24  # the day before and after: the meter registers its full share again
    around_share: float = 0.3  # ... missing at most this much of the episode's f / (1 - f) of its water

    def episodes(self, registers: pd.DataFrame, devices: pd.DataFrame, balance: WaterBalance,
                 others: Sequence[BalanceEpisode] = ()) -> list[BalanceEpisode]:  # fmt: skip
        """Building meters that missed water for hours (``registers``: litres on the hour, a column a meter)."""
        if len(registers) < self.min_hours:
            return []
        hourly = registers.diff().iloc[1:]  # L/h
        ts = hourly.index.to_numpy(dtype=np.int64)
        local = balance._local_hour(ts - HOUR_MS)  # the hour's own start
        scopes = devices["scope"].astype(str).to_dict()
        nodes = balance.nodes(devices)
        above = {child: node for node in nodes for child in node.children}
        out: list[BalanceEpisode] = []
        for node in nodes:
            top = above.get(node.parent)
            if scopes.get(node.parent, "") != "building" or top is None or node.parent not in hourly:
                continue
            if any(scopes.get(c, "") != "household" for c in node.children) or top.parent not in hourly:
                continue
            below, over = self._excess(hourly, node, local), self._excess(hourly, top, local)
            if below is None or over is None:
                continue
            own = hourly[node.parent].to_numpy(dtype=np.float64)
            out += self._node(node.parent, ts, local, own, -below, over, others)
        return out

    def _excess(self, hourly: pd.DataFrame, node: Node, local: np.ndarray) -> np.ndarray | None:
        """The node's hourly residual (L) less its median at the same local hour over the whole history
        (a pipe's loss grows with the flow; a loss lasting days must not become the level)."""
        _children, residual = WaterBalance._hourly_residual(hourly, node)
        res = residual.to_numpy(dtype=np.float64)
        if np.isfinite(res).sum() < self.min_hours:
            return None
        centre = np.zeros(24)
        for hour in range(24):
            v = res[(local == hour) & np.isfinite(res)]
            centre[hour] = float(np.median(v)) if len(v) else 0.0
        return res - centre[local]

    def _sd(self, excess: np.ndarray, local: np.ndarray) -> np.ndarray:
        """Each hour's robust SD (L), by its local hour of the day (draws by day, still nights)."""
        sd = np.full(24, self.noise_floor_l)
        for hour in range(24):
            v = excess[(local == hour) & np.isfinite(excess)]
            if len(v) >= 5:
                sd[hour] = max(self.noise_floor_l, 1.4826 * float(np.median(np.abs(v - np.median(v)))))
        return sd[local]

    def _node(self, device: str, ts: np.ndarray, local: np.ndarray, own: np.ndarray, loss: np.ndarray,
              gain: np.ndarray, others: Sequence[BalanceEpisode]) -> list[BalanceEpisode]:  # fmt: skip
        """The episodes of one building meter: its building's loss and its compound's gain (L/h)."""
        sd_b, sd_c = self._sd(-loss, local), self._sd(gain, local)
        hot = (loss > np.maximum(self.z * sd_b, self.floor_lph)) & (
            gain > np.maximum(self.z * sd_c, self.floor_lph)
        )
        hot &= np.isfinite(loss) & np.isfinite(gain)
        runs: list[list[int]] = []
        for a, b in true_runs(hot):
            if runs and a - runs[-1][1] <= self.merge_hours:
                runs[-1][1] = b
            else:
                runs.append([a, b])
        out: list[BalanceEpisode] = []
        n = len(ts)
        for a, b in runs:
            start, end = int(ts[a]) - HOUR_MS, int(ts[b])
            if any(
                e.device == device and e.start_ms < end + DAY_MS and start - DAY_MS < e.end_ms for e in others
            ):
                continue
            lo, hi = max(0, a - 1), min(n, b + 2)  # an hour more on either side: a reading's error is made up
            lb, lc = float(np.nansum(loss[lo:hi])), float(np.nansum(gain[lo:hi]))
            noise = float(np.sqrt(np.sum(sd_b[lo:hi] ** 2)))
            if (
                lb < max(self.episode_z * noise, self.min_litres)
                or not self.match[0] <= lc / lb <= self.match[1]
            ):
                continue
            registered = float(np.nansum(own[lo:hi]))
            share = lb / max(lb + registered, 1e-9)
            if not self.min_share <= share <= self.max_share:
                continue
            ratio = share / (1.0 - share)
            # the day before and the day after: the meter registers its full share again (a worn one does not)
            if any(
                float(np.nansum(loss[x:y])) > self.around_share * ratio * float(np.nansum(own[x:y]))
                for x, y in ((max(0, lo - self.around_hours), lo), (hi, min(n, hi + self.around_hours)))
                if y > x
            ):
                continue
            # days on end: a worn register (one the daily balance did not name), hours: a magnet
            fault = "stuck_register" if (end - start) / HOUR_MS >= self.max_hours else "meter_tamper"
            out.append(BalanceEpisode(device, fault, start, end, lb / max(noise, 1e-9), {
                "missing_lph": round(lb / max(hi - lo, 1), 2), "share": round(share, 2),
                "fit": round(lc / lb, 2), "days": round((end - start) / DAY_MS, 2)}))  # fmt: skip
        return out
