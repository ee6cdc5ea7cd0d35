"""Streetlights: on from dusk to dawn by photocell; lamp failure, day burning and flicker."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ...contract import DeviceKind
from ..clock import ambient_light
from ..faults import FaultView
from ..site import Device
from .base import I64, KindModel, Output, RawEvent, cumulative


class StreetlightModel(KindModel):
    """Single-lamp controllers report every 300 s."""

    kind = DeviceKind.STREETLIGHT
    metrics = ("lamp_on", "power", "lamp_current", "ambient_light", "burning_hours")

    @staticmethod
    def interval_for(device: Device) -> int:
        """Every 300 s."""
        return 300

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        rng, n = self.rng, self.n
        self.wattage = self.attr("wattage_w", 60.0)
        self.threshold = rng.uniform(20.0, 40.0, n)  # photocell switching level, lx
        self.shade = rng.uniform(0.6, 1.1, n)  # trees and buildings around each pole
        self.hours = np.round(self.age_days(self.start_ms) * 11.5 * rng.uniform(0.95, 1.05, n), 2)

    def generate(self, rows: I64, times: I64, faults: FaultView) -> Output:
        """Lamp state from the sun's position and the weather; faults override it."""
        rng = self.rng
        shape = times.shape
        lux = (
            ambient_light(times, self.site.latitude, self.site.longitude, self.salt) * self.shade[rows, None]
        )
        lux = np.clip(lux * rng.lognormal(0.0, 0.05, shape), 0.0, 200_000.0)
        on = lux < self.threshold[rows, None]
        burning = faults.mask("day_burning", rows, times)
        flicker = faults.mask("flicker", rows, times)
        failed = faults.mask("lamp_failure", rows, times)
        on = on | burning
        on = np.where(flicker, rng.random(shape) < 0.5, on)
        lit = on & ~failed
        power = np.where(lit, self.wattage[rows, None] * rng.normal(1.0, 0.015, shape), 0.4)
        current = np.where(lit, power / (220.0 * 0.95), 0.002)
        lit_fraction = np.where(flicker, rng.uniform(0.2, 0.8, shape), lit.astype(np.float64))
        hours = cumulative(self.hours[rows], lit_fraction * self.dt_h)
        self.hours[rows] = hours[:, -1]
        events: list[RawEvent] = []
        for i, j in zip(*np.nonzero(flicker & (rng.random(shape) < 0.8)), strict=True):
            events.append(
                (int(i), int(times[i, j]), "flicker", None, {"switches": str(int(rng.integers(3, 40)))})
            )
        values: dict[str, npt.NDArray[Any]] = {
            "lamp_on": on.astype(np.float64),
            "power": np.round(power, 1),
            "lamp_current": np.round(current, 3),
            "ambient_light": np.round(lux, 1),
            "burning_hours": np.round(hours, 3),
        }
        return Output(values, events)
