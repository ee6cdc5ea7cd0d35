"""Water meters: household meters (户表) and building and compound meters (总表) reading one water network."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...contract import DeviceKind
from ..clock import MS_PER_DAY
from ..planning import is_building_meter
from ..site import Device
from ..view import FaultView, Injected
from .base import F64, I64, KindModel, Output, cumulative
from .network import WaterNetwork

BATTERY_LOW = 20.0  # the meter raises battery_low below this level
REVERSE_FLAG_L = 1.0  # and sets its reverse-flow flag when this much ran back in one report
BACKFLOW_DIP = 0.02  # MPa below normal: low enough for a failed check valve to let water back
STARTING_FLOW_LPH = 2.0  # a DN15 meter's mechanism starts turning at about this flow


def _reported(battery: F64) -> F64:
    """The battery level as the meter reports it (0-100%, to 0.1%)."""
    return np.asarray(np.round(np.clip(battery, 0.0, 100.0), 1), dtype=np.float64)


class WaterMeterModel(KindModel):
    """Household meters report every 900 s (NB-IoT/M-Bus readers), building meters every 300 s.

    Every meter reads the compound's :class:`WaterNetwork`; the meter itself adds only what it
    gets wrong (a slow or stuck register, a magnet, backflow through a failed check valve) and its
    battery (6-8 years of life: about 0.04% a day).
    """

    kind = DeviceKind.WATER_METER
    metrics = ("volume_register", "flow", "pressure", "battery", "tamper", "reverse_flow")

    @staticmethod
    def interval_for(device: Device) -> int:
        """900 s for household meters, 300 s for building meters."""
        return 300 if is_building_meter(device) else 900

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rng, n = self.rng, self.n
        net = self.ctx.shared.get("water")
        if net is None:
            meters = self.site.of_kind(DeviceKind.WATER_METER)
            net = WaterNetwork(self.ctx, meters, np.random.default_rng([*self.ctx.seed, 77]), self.start_ms)
            self.ctx.shared["water"] = net
        self.net: WaterNetwork = net
        self.building = np.array([is_building_meter(d) for d in self.devices], dtype=bool)
        self.column = np.array([net.column(d.device) for d in self.devices], dtype=np.int64)
        self.pressure_of = np.array(
            [net.building_index.get(d.device, net.b) for d in self.devices], dtype=np.int64
        )  # the building whose pressure a meter shows (the compound meter: the inlet)
        self.home = np.array(
            [int(net.home_building[c]) if c < net.h else -1 for c in self.column], dtype=np.int64
        )
        daily_m3 = net.mean_lph[self.column] * 24.0 / 1000.0
        self.volume = np.round(daily_m3 * self.age_days(self.start_ms) * rng.uniform(0.9, 1.1, n), 3)
        self.battery = rng.uniform(55.0, 100.0, n)

    def describe(self) -> dict[str, F64]:
        """Residents of a flat (0: vacant) and the litres a meter sees on an average day."""
        persons = np.array([self.net.persons[c] if c < self.net.h else np.nan for c in self.column])
        return {"residents": persons, "expected_daily": self.net.mean_lph[self.column] * 24.0}

    def window(self, a: int, b: int) -> None:
        """Draw the compound's water up to ``b`` (once per window, whichever meter block asks first)."""
        self.net.advance(a, b)

    def generate(self, rows: I64, times: I64, faults: FaultView) -> Output:
        """Volumes from the network; the meter's own faults change what it registers and reports."""
        rng = self.rng
        shape = times.shape
        litres = np.stack([self.net.litres(int(c), times[i], self.interval_ms)
                           for i, c in enumerate(self.column[rows])])  # fmt: skip
        lost = np.zeros(shape)  # share of the water the register misses
        for name in ("stuck_register", "meter_tamper"):
            for i, m, f in faults.faults(name):
                lost[i] = np.where(m, np.maximum(lost[i], f.label.magnitude / 100.0), lost[i])
                faults.visible(f, i, (litres[i] > 0.0) | self._flagged(f, times[i]))
        backflow = np.zeros(shape)
        for i, m, f in faults.faults("reverse_flow"):
            dip = self.net.dip(int(self.home[rows[i]]), times[i])
            low = self.net.pressure_at(max(0, int(self.home[rows[i]])), times[i]) < (
                self.net.pressure[max(0, int(self.home[rows[i]]))] - BACKFLOW_DIP
            )
            # Below its starting flow a meter's mechanism does not turn: such a trickle back goes unseen.
            back = m & (litres[i] == 0.0) & (low | (dip > 0.0)) & (f.label.magnitude >= STARTING_FLOW_LPH)
            backflow[i] = np.where(back, np.maximum(backflow[i], f.label.magnitude * self.dt_h), backflow[i])
            faults.visible(f, i, back)
            flagged = np.flatnonzero(back & (backflow[i] >= REVERSE_FLAG_L))
            if flagged.size:
                faults.condition(f, int(times[i, flagged[0]]))
        counted = litres * (1.0 - lost) / 1000.0  # m³
        register = cumulative(self.volume[rows], counted)
        self.volume[rows] = register[:, -1]
        flow = np.where(backflow > 0.0, -backflow / 1000.0, counted) / self.dt_h
        tamper = faults.mask("spurious_meter_tamper")
        for i, m, f in faults.faults("meter_tamper"):
            tamper[i] |= m & self._flagged(f, times[i])
        pressure = np.full(shape, np.nan)
        for i, row in enumerate(rows.tolist()):
            if self.building[row]:
                pressure[i] = self.net.pressure_at(int(self.pressure_of[row]), times[i])
        pressure = pressure + rng.normal(0.0, 0.006, shape)
        battery = self._battery(rows, times, faults)
        values = {
            "volume_register": np.round(register, 3),
            "flow": np.round(flow, 4),
            "pressure": np.round(np.clip(pressure, 0.0, 2.5), 3),
            "battery": _reported(battery),
            "tamper": tamper.astype(np.float64),
            "reverse_flow": (backflow >= REVERSE_FLAG_L).astype(np.float64),
        }
        return Output(values)

    @staticmethod
    def _flagged(fault: Injected, times: I64) -> Any:
        return (
            times >= fault.announce_ms if fault.announce_ms is not None else np.zeros(times.shape, dtype=bool)
        )

    def _battery(self, rows: I64, times: I64, faults: FaultView) -> F64:
        """Battery level: slow normal drain, fast drain of a failing battery, dips in the cold."""
        drain = np.cumsum(np.full(times.shape, 0.04 / 86_400 * self.interval_s), axis=1)
        battery = self.battery[rows, None] - drain
        self.battery[rows] = battery[:, -1]
        healthy: dict[int, F64] = {}  # row -> what a healthy battery would read, for the faults' visibility
        for i, m, f in faults.faults("battery_low"):
            healthy.setdefault(i, battery[i].copy())
            level = f.state.setdefault("level", float(battery[i, np.argmax(m)]))
            days = (times[i] - f.start_ms) / MS_PER_DAY
            battery[i] = np.where(m, np.minimum(battery[i], level - f.label.magnitude * days), battery[i])
            below = np.flatnonzero(m & (battery[i] < BATTERY_LOW))
            if below.size:
                faults.condition(f, int(times[i, below[0]]))
        for i, m, _span in faults.spans("spurious_battery_low"):
            cold = self.rng.uniform(15.0, 19.5)
            battery[i] = np.where(m, np.minimum(battery[i], cold), battery[i])
            if i in healthy:
                healthy[i] = np.where(m, np.minimum(healthy[i], cold), healthy[i])
        battery = np.maximum(battery, 0.0)
        # The meter reports its battery to 0.1%: a failing battery shows only in the reports that differ from
        # a healthy one's (its extra fall past a step of the reading; a cold dip reads the same either way).
        for i, _m, f in faults.faults("battery_low"):
            faults.visible(f, i, _reported(battery[i]) != _reported(np.maximum(healthy[i], 0.0)))
        return battery

    def fault_ended(self, row: int, fault: Injected) -> None:
        """A failing battery is replaced when the fault is fixed."""
        if fault.name == "battery_low":
            self.battery[row] = 100.0
