"""Water meters: household meters with morning and evening peaks and a low night flow, building meters
with pressure; leaks, bursts, stuck registers, reverse flow and low batteries."""

from __future__ import annotations

import numpy as np

from ...contract import DeviceKind
from ..clock import water_demand
from ..faults import FaultLabel, FaultView
from ..site import Device
from .base import I64, KindModel, Output, cumulative


def is_building_meter(device: Device) -> bool:
    """Building and compound meters (总表), as opposed to household meters (户表)."""
    return device.attrs.get("meter_scope") == "building"


class WaterMeterModel(KindModel):
    """Household meters report every 900 s (NB-IoT/M-Bus readers), building meters every 300 s."""

    kind = DeviceKind.WATER_METER
    metrics = ("volume_register", "flow", "pressure", "battery", "tamper", "reverse_flow")

    @staticmethod
    def interval_for(device: Device) -> int:
        """900 s for household meters, 300 s for building meters."""
        return 300 if is_building_meter(device) else 900

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        rng, n = self.rng, self.n
        self.building = np.array([is_building_meter(d) for d in self.devices], dtype=bool)
        served = self.attr("served_households", 30.0)
        household = np.where(rng.random(n) < 0.08, 0.005, rng.lognormal(np.log(0.31), 0.45, n))  # m³/day
        self.daily = np.where(self.building, served * 0.33 * 1.06, household)
        self.leak_rate = np.where(self.building, 0.03 * served, 0.035) * rng.uniform(0.7, 1.3, n)  # m³/h
        self.burst_rate = np.where(self.building, 0.4 * served, 1.6) * rng.uniform(0.7, 1.3, n)
        self.pressure = rng.uniform(0.28, 0.38, n)
        self.volume = np.round(self.daily * self.age_days(self.start_ms) * rng.uniform(0.9, 1.1, n), 3)
        self.battery = rng.uniform(55.0, 100.0, n)

    def generate(self, rows: I64, times: I64, faults: FaultView) -> Output:
        """Volume per interval from the demand profile; faults add, hide or reverse flow."""
        rng = self.rng
        shape = times.shape
        building = self.building[rows, None]
        demand = water_demand(times)
        expected = self.daily[rows, None] / 24.0 * demand * self.dt_h  # m³ in this interval
        p_use = 1.0 - np.exp(-expected / 0.012)  # a household draws water in bursts of ~12 l
        used = rng.random(shape) < p_use
        household_v = np.where(used, expected / np.maximum(p_use, 1e-9) * rng.gamma(2.0, 0.5, shape), 0.0)
        building_v = expected * rng.lognormal(0.0, 0.12, shape)
        volume = np.where(building, building_v, household_v)
        leak = faults.mask("leak", rows, times)
        burst = faults.mask("burst", rows, times)
        stuck = faults.mask("stuck_register", rows, times)
        reverse = faults.mask("reverse_flow", rows, times)
        low = faults.mask("battery_low", rows, times)
        opened = faults.mask("meter_tamper", rows, times)
        volume = volume + np.where(leak, self.leak_rate[rows, None] * self.dt_h, 0.0)
        volume = volume + np.where(burst, self.burst_rate[rows, None] * self.dt_h, 0.0)
        for upstream in ("upstream_leak", "upstream_burst"):  # a leak or burst behind this meter
            for i, m, label in faults.spans(upstream, rows, times):
                volume[i] += np.where(m, float(label.detail["rate_m3h"]) * self.dt_h, 0.0)
        counted = np.where(stuck | reverse, 0.0, volume)
        register = cumulative(self.volume[rows], counted)
        self.volume[rows] = register[:, -1]
        flow = counted / self.dt_h
        flow = np.where(reverse, -rng.uniform(0.05, 0.3, shape) * np.where(building, 10.0, 1.0), flow)
        pressure = self.pressure[rows, None] - 0.03 * (demand - 1.0) + rng.normal(0.0, 0.004, shape)
        pressure = np.where(burst, pressure - 0.12, pressure)
        drain = np.cumsum(np.full(shape, 0.004 / 86_400 * self.interval_s), axis=1)
        battery = self.battery[rows, None] - drain
        self.battery[rows] = battery[:, -1]
        battery = np.where(low, np.minimum(battery, rng.uniform(5.0, 9.0, shape)), battery)
        values = {
            "volume_register": np.round(register, 3),
            "flow": np.round(flow, 4),
            "pressure": np.where(building, np.round(np.clip(pressure, 0.0, 2.5), 3), np.nan),
            "battery": np.round(np.clip(battery, 0.0, 100.0), 1),
            "tamper": opened.astype(np.float64),
            "reverse_flow": reverse.astype(np.float64),
        }
        return Output(values)

    def fault_ended(self, row: int, label: FaultLabel) -> None:
        """A low battery is replaced when the fault is fixed."""
        if label.fault == "battery_low":
            self.battery[row] = 100.0
