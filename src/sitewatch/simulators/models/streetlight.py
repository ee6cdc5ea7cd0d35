"""Streetlights: on from dusk to dawn by photocell; lamp failure, day burning and flicker."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ...contract import DeviceKind
from ..clock import ambient_light, local_hour
from ..site import Device
from ..view import FaultView
from .base import I64, KindModel, Output, RawEvent, cumulative

STANDBY_W = 0.4
FLICKER_ALARM = 3  # the controller reports flicker when the lamp switched this often in one report
ELEVATION_PER_HOUR = 9.0  # degrees the sun climbs in an hour near the horizon at these latitudes


class StreetlightModel(KindModel):
    """Single-lamp controllers report every 300 s: whether the lamp is switched on, the current at the
    moment of the report, the average power over the report and the photocell's reading. In half of
    the compounds the lamps dim to 50-70% from midnight to 05:00."""

    kind = DeviceKind.STREETLIGHT
    metrics = ("lamp_on", "power", "lamp_current", "ambient_light", "burning_hours")

    @staticmethod
    def interval_for(device: Device) -> int:
        """Every 300 s."""
        return 300

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rng, n = self.rng, self.n
        self.wattage = self.attr("wattage_w", 60.0)
        self.threshold = rng.uniform(20.0, 40.0, n)  # photocell switching level, lx
        self.shade = rng.uniform(0.6, 1.1, n)  # trees and buildings around each pole
        self.dim = rng.uniform(0.5, 0.7) if self.ctx.dims_at_night else 1.0
        self.hours = np.round(self.age_days(self.start_ms) * 11.5 * rng.uniform(0.95, 1.05, n), 2)

    def generate(self, rows: I64, times: I64, faults: FaultView) -> Output:
        """Lamp state from the photocell's reading of the sun and the weather; faults override it."""
        rng = self.rng
        shape = times.shape
        lux = (
            ambient_light(times, self.site.latitude, self.site.longitude, self.salt) * self.shade[rows, None]
        )
        lux = np.clip(lux * rng.lognormal(0.0, 0.08, shape), 0.0, 200_000.0)
        threshold = self.threshold[rows, None]
        normal_on = lux < threshold
        reading = lux.copy()  # what the photocell reports
        relay = np.zeros(shape, dtype=bool)
        for i, m, f in faults.faults("day_burning"):
            if f.label.detail.get("cause") == "relay":
                relay[i] |= m
                faults.visible(f, i, ~normal_on[i])
                continue
            # A dirty photocell reads too little light, so the lamp burns longer at dusk and dawn: about
            # the label's extra hours a day once the dirt has built up (over the first half of the fault).
            elevation = max(0.5, f.label.magnitude / 2.0 * ELEVATION_PER_HOUR)
            clear_sky_lux = 120_000.0 * np.sin(np.radians(elevation)) ** 1.15 * 0.6
            attenuation = float(np.clip(30.0 / clear_sky_lux, 1e-5, 1.0))
            # Two photocell faults at once on one lamp: the dirtier reading (the lower one) shows.
            ramp = np.clip((times[i] - f.start_ms) / max(1, (f.end_ms - f.start_ms) / 2), 0.0, 1.0)
            own = lux[i] * attenuation**ramp
            reading[i] = np.where(m, np.minimum(reading[i], own), reading[i])
            faults.visible(f, i, (own < threshold[i]) & ~normal_on[i])
        dark = faults.mask("power_cut")
        on = ((reading < threshold) | relay) & ~dark
        for i, m, f in faults.faults("day_burning"):
            if f.label.detail.get("cause") == "relay":
                bright = np.flatnonzero(m & on[i] & (lux[i] > 200.0))
                if bright.size:
                    faults.condition(f, int(times[i, bright[0]]))
        level = np.where((local_hour(times) < 5.0) & (self.dim < 1.0), self.dim, 1.0)
        lit_share = on.astype(np.float64)
        switches = np.zeros(shape)
        for i, m, f in faults.faults("flicker"):
            flicking = m & on[i]
            # Two at once on one lamp (or two in one grid): the worse shows, neither erases the other.
            drawn = rng.poisson(f.label.magnitude * self.dt_h, shape[1])
            switches[i] = np.where(flicking, np.maximum(switches[i], drawn), switches[i])
            off_s = switches[i] * rng.uniform(2.0, 20.0, shape[1])
            share = np.clip(1.0 - off_s / self.interval_s, 0.0, 1.0)
            lit_share[i] = np.where(flicking, np.minimum(lit_share[i], share), lit_share[i])
            faults.visible(f, i, on[i])
            alarm = np.flatnonzero(flicking & (switches[i] >= FLICKER_ALARM))
            if alarm.size:
                faults.condition(f, int(times[i, alarm[0]]))
        caught_off = (
            on & (switches > 0) & (rng.random(shape) >= lit_share)
        )  # the current sample fell on a gap
        output = np.ones(shape)  # share of the lamp's light (and power) still working
        for i, m, f in faults.faults("lamp_failure"):
            output[i] = np.where(m, np.minimum(output[i], 1.0 - f.label.magnitude / 100.0), output[i])
            faults.visible(f, i, on[i])
            dead = np.flatnonzero(m & on[i] & (output[i] < 0.1))
            if dead.size:
                faults.condition(f, int(times[i, dead[0]]))
        watts = self.wattage[rows, None] * level * output * rng.normal(1.0, 0.015, shape)
        power = np.maximum(np.where(on, watts * lit_share, 0.0), 0.0) + STANDBY_W
        current = np.where(on & ~caught_off, power / (220.0 * 0.95), 0.002)
        hours = cumulative(self.hours[rows], lit_share * on * self.dt_h)
        self.hours[rows] = hours[:, -1]
        events: list[RawEvent] = []
        for i, j in zip(*np.nonzero(switches >= FLICKER_ALARM), strict=True):
            events.append((int(i), int(times[i, j]), "flicker", None, {"switches": str(int(switches[i, j]))}))
        values: dict[str, npt.NDArray[Any]] = {
            "lamp_on": on.astype(np.float64),
            "power": np.round(power, 1),
            "lamp_current": np.round(current, 3),
            "ambient_light": np.round(reading, 1),
            "burning_hours": np.round(hours, 3),
        }
        return Output(values, events)
