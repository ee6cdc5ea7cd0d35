"""A compound's water network, minute by minute: every flat's draws, every building's pipes, the courtyard.

Meters read the cumulative volume at minute boundaries, so a building meter always equals the sum
of its flats plus the losses of its own pipes, and the compound meter the sum of its buildings plus
the courtyard's losses. A leak behind a household meter therefore shows on that meter, its
building's meter and the compound's; a leak in a building's pipes only on the building and compound
meters. Pressure at the building meters falls with the compound's demand (more in summer, when the
city's network is loaded), with bursts and with the network's own transients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..clock import summer, water_demand
from ..planning import is_building_meter
from ..site import Device
from .base import SiteContext

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
SLOT_MS = 60_000
KEEP_SLOTS = 16  # a household meter's 15-minute interval, plus one
SMALL_L, LONG_L = 7.0, 60.0  # mean volume of a flush or tap draw, of a shower, bath or wash
LONG_SHARE = 0.3  # of a flat's water goes in long draws


@dataclass(slots=True)
class _Flow:
    """Extra water (a leak, a burst, a night wash) at ``lph`` litres an hour in [t0, t1)."""

    target: int  # index into the network's columns: households, then buildings, then the courtyard
    t0: int
    t1: int
    lph: float
    ramp_ms: int = 0  # grows linearly to full rate over this long


class WaterNetwork:
    """Cumulative litres per flat, per building meter and for the compound, at minute boundaries."""

    def __init__(
        self, ctx: SiteContext, meters: list[Device], rng: np.random.Generator, start_ms: int
    ) -> None:
        self.ctx = ctx
        self.rng = rng
        households = [d for d in meters if not is_building_meter(d)]
        buildings = [d for d in meters if is_building_meter(d) and d.building_no is not None]
        self.household_index = {d.device: i for i, d in enumerate(households)}
        self.building_index = {d.device: i for i, d in enumerate(buildings)}
        self.compound_meters = {d.device for d in meters if is_building_meter(d) and d.building_no is None}
        of_building = {d.building_no: i for i, d in enumerate(buildings)}
        self.home_building = np.array(
            [of_building.get(d.building_no, -1) for d in households], dtype=np.int64
        )
        h, b = len(households), len(buildings)
        self._to_building = np.zeros((h, b))  # flat -> its building meter, for summing by matrix product
        self._to_building[
            np.flatnonzero(self.home_building >= 0), self.home_building[self.home_building >= 0]
        ] = 1.0
        self.persons = np.where(
            rng.random(h) < 0.08, 0.0, rng.choice([1.0, 2.0, 3.0, 4.0], h, p=[0.2, 0.35, 0.3, 0.15])
        )
        self.daily_l = self.persons * rng.lognormal(np.log(135.0), 0.3, h)
        served = np.zeros(b)
        np.add.at(served, self.home_building[self.home_building >= 0], self.daily_l[self.home_building >= 0])
        self.building_loss_lph = served / 24.0 * rng.uniform(0.01, 0.04, b)  # pipes behind the building meter
        total = self.daily_l.sum() / 24.0 + self.building_loss_lph.sum()
        self.courtyard_loss_lph = total * rng.uniform(0.03, 0.07)
        self.mean_lph = np.concatenate([self.daily_l / 24.0, served / 24.0 + self.building_loss_lph,
                                        [total + self.courtyard_loss_lph]])  # fmt: skip
        self.pressure = rng.uniform(0.28, 0.38, b + 1)  # buildings, then the compound meter at the inlet
        self.flows: list[_Flow] = []
        self.dips: list[tuple[int, int, int, float]] = []  # (t0, t1, building or -1 for all, MPa)
        # Columns: households, buildings, compound. Row k of _cum is the boundary of slot _base + k.
        self.h, self.b = h, b
        self._base = start_ms // SLOT_MS - KEEP_SLOTS
        self._cum = np.zeros((1, h + b + 1))

    def column(self, device: str) -> int:
        """The network column of a meter."""
        if device in self.household_index:
            return self.household_index[device]
        if device in self.building_index:
            return self.h + self.building_index[device]
        return self.h + self.b

    def add_flow(self, device: str, t0: int, t1: int, lph: float, ramp_ms: int = 0) -> None:
        """Extra water behind ``device`` (its flat, its building's pipes or the courtyard)."""
        self.flows.append(_Flow(self.column(device), t0, t1, lph, ramp_ms))

    def add_dip(self, device: str | None, t0: int, t1: int, mpa: float) -> None:
        """A pressure drop at ``device``'s building (None: at every building meter)."""
        col = -1 if device is None else self.column(device)
        building = -1 if col < 0 or col >= self.h + self.b else (col - self.h if col >= self.h else
                                                                int(self.home_building[col]))  # fmt: skip
        self.dips.append((t0, t1, building, mpa))

    def advance(self, a: int, b: int) -> None:
        """Make the boundaries from ``a`` minus a household interval up to ``b`` available."""
        first_needed = a // SLOT_MS - KEEP_SLOTS
        last = self._base + len(self._cum) - 1  # last boundary generated
        if first_needed > last + 60:  # a long pause (live mode): skip ahead, nothing drawn meanwhile
            self._cum = self._cum[-1:].copy()
            self._base, last = first_needed, first_needed
        end = -(-b // SLOT_MS)
        if end > last:
            slots = self._draw(last, end)
            cum = self._cum[-1] + np.cumsum(slots, axis=0)
            self._cum = np.concatenate([self._cum, cum])
        if first_needed > self._base:
            cut = first_needed - self._base
            self._cum, self._base = self._cum[cut:], first_needed

    def _draw(self, first: int, end: int) -> F64:
        """Litres drawn in slots [first, end): (slots x columns)."""
        rng = self.rng
        n = end - first
        mid = np.arange(first, end, dtype=np.int64) * SLOT_MS + SLOT_MS // 2
        profile = (water_demand(mid) * self.ctx.occupancy(mid))[:, None]
        per_slot = self.daily_l[None, :] / 1440.0 * profile
        small = rng.poisson(per_slot * (1.0 - LONG_SHARE) / SMALL_L)
        long = rng.poisson(per_slot * LONG_SHARE / LONG_L)
        homes = rng.gamma(2.0 * small, SMALL_L / 2.0) + rng.gamma(4.0 * long, LONG_L / 4.0)
        out = np.zeros((n, self.h + self.b + 1))
        out[:, : self.h] = homes
        for f in self.flows:
            if f.t1 <= first * SLOT_MS or f.t0 >= end * SLOT_MS:
                continue
            on = (mid >= f.t0) & (mid < f.t1)
            ramp = np.clip((mid - f.t0) / f.ramp_ms, 0.0, 1.0) if f.ramp_ms else 1.0
            out[:, f.target] += np.where(on, f.lph / 60.0 * ramp, 0.0)
        flats = out[:, : self.h]
        out[:, self.h : self.h + self.b] += flats @ self._to_building + self.building_loss_lph / 60.0
        outside = flats[:, self.home_building < 0].sum(axis=1)  # flats with no building meter of their own
        out[:, self.h + self.b] += (out[:, self.h : self.h + self.b].sum(axis=1) + outside
                                    + self.courtyard_loss_lph / 60.0)  # fmt: skip
        return out

    def _row(self, ts_ms: I64) -> I64:
        return np.clip(ts_ms // SLOT_MS - self._base, 0, len(self._cum) - 1)

    def litres(self, column: int, ts_ms: I64, span_ms: int) -> F64:
        """Litres through a meter's column in (t - span, t] for each t (minute boundaries)."""
        return np.asarray(self._cum[self._row(ts_ms), column] - self._cum[self._row(ts_ms - span_ms), column])

    def pressure_at(self, building: int, ts_ms: I64) -> F64:
        """Pressure (MPa) at a building meter (``building`` = number of buildings: the compound inlet)."""
        rows = self._row(ts_ms)
        # The network answers the compound's demand of the last quarter of an hour.
        back = np.maximum(rows - 15, 0)
        recent = (self._cum[rows, -1] - self._cum[back, -1]) / np.maximum(rows - back, 1)
        load = np.clip(recent / max(self.mean_lph[-1] / 60.0, 1e-9), 0.0, 4.0) - 1.0
        p = self.pressure[building] - 0.02 * (1.0 + 0.5 * np.maximum(summer(ts_ms), 0.0)) * load
        return p - self.dip(building, ts_ms)

    def dip(self, building: int, ts_ms: I64) -> F64:
        """Pressure drop from transients and bursts felt at ``building`` (-1: any household's building)."""
        out = np.zeros(ts_ms.shape)
        for t0, t1, where, mpa in self.dips:
            if where in (-1, building):
                out += np.where((ts_ms >= t0) & (ts_ms < t1), mpa, 0.0)
        return out
