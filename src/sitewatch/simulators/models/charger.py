"""EV chargers: charging sessions with OCPP 1.6 statuses; Faulted, over-temperature, stuck sessions."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ...contract import OCPP_ERROR_CODES, OCPP_STATUSES, DeviceKind
from ..clock import MS_PER_H, air_temperature, charging_arrivals
from ..faults import FaultView
from ..site import Device
from .base import I64, KindModel, Output, RawEvent

AVAILABLE, PREPARING, CHARGING, SUSPENDED_EV, FINISHING, FAULTED = 0, 1, 2, 4, 5, 8
_ERROR_INDEX = {name: i for i, name in enumerate(OCPP_ERROR_CODES)}


class ChargerModel(KindModel):
    """MeterValues and StatusNotification every 60 s; sessions start mostly after work."""

    kind = DeviceKind.CHARGER
    metrics = ("status", "error_code", "power", "energy_register", "voltage", "current", "temperature")

    @staticmethod
    def interval_for(device: Device) -> int:
        """Every 60 s."""
        return 60

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        rng, n = self.rng, self.n
        self.rated = self.attr("charger_power_kw", 7.0)
        self.three_phase = self.rated > 7.5
        self.sessions_per_day = rng.uniform(0.6, 1.6, n)
        self.status = np.zeros(n)
        self.remaining = np.zeros(n)  # kWh the car still wants
        self.session_power = np.zeros(n)
        self.session_energy = np.zeros(n)
        self.unplug_ms = np.zeros(n, dtype=np.int64)
        self.stuck = np.zeros(n, dtype=bool)
        self.energy = np.round(self.age_days(self.start_ms) * self.sessions_per_day * 12.0, 2)

    def generate(self, rows: I64, times: I64, faults: FaultView) -> Output:
        """Step each charger's session through the grid column by column (sessions carry state)."""
        rng = self.rng
        k, n = times.shape
        faulted = faults.mask("charger_faulted", rows, times)
        stuck = faults.mask("stuck_session", rows, times)
        hot = faults.mask("over_temperature", rows, times)
        error = np.zeros((k, n))
        for i, m, label in faults.spans("charger_faulted", rows, times):
            error[i] = np.where(m, float(_ERROR_INDEX.get(label.detail.get("error_code", ""), 7)), error[i])
        arrivals = 1.0 - np.exp(
            -self.sessions_per_day[rows, None] / 24.0 * charging_arrivals(times) * self.dt_h
        )
        arrive = rng.random((k, n)) < arrivals
        wanted = np.clip(rng.gamma(3.0, 5.0, (k, n)), 3.0, 60.0)
        car_kw = np.minimum(self.rated[rows, None], rng.choice([3.3, 6.6, 7.0, 11.0], (k, n)))
        plugged_h = rng.uniform(1.0, 12.0, (k, n))
        ambient = air_temperature(times, self.salt)
        status = np.zeros((k, n))
        power = np.zeros((k, n))
        energy = np.zeros((k, n))
        events: list[RawEvent] = []
        st = self.status[rows].copy()
        remaining = self.remaining[rows].copy()
        sp = self.session_power[rows].copy()
        se = self.session_energy[rows].copy()
        unplug = self.unplug_ms[rows].copy()
        was_stuck = self.stuck[rows].copy()
        reg = self.energy[rows].copy()
        for j in range(n):
            t = times[:, j]
            prev = st.copy()
            nxt = st.copy()
            nxt = np.where(st == PREPARING, CHARGING, nxt)
            nxt = np.where(st == FINISHING, AVAILABLE, nxt)
            nxt = np.where((st == SUSPENDED_EV) & (t >= unplug), FINISHING, nxt)
            nxt = np.where((st == CHARGING) & (remaining <= 0.0), SUSPENDED_EV, nxt)
            start = (st == AVAILABLE) & arrive[:, j]
            nxt = np.where(start, PREPARING, nxt)
            remaining = np.where(start, wanted[:, j], remaining)
            sp = np.where(start, car_kw[:, j] * rng.uniform(0.9, 0.98, k), sp)
            se = np.where(start, 0.0, se)
            unplug = np.where(start, t + (plugged_h[:, j] * MS_PER_H).astype(np.int64), unplug)
            nxt = np.where(st == FAULTED, AVAILABLE, nxt)  # a cleared fault leaves the connector free
            unstuck = was_stuck & ~stuck[:, j]
            nxt = np.where(unstuck, FINISHING, nxt)
            remaining = np.where(unstuck, 0.0, remaining)
            nxt = np.where(stuck[:, j], CHARGING, nxt)
            nxt = np.where(faulted[:, j], FAULTED, nxt)
            remaining = np.where(faulted[:, j], 0.0, remaining)
            charging = (nxt == CHARGING) & ~stuck[:, j]
            taper = np.clip(remaining / 1.5, 0.3, 1.0)
            p = np.where(charging, sp * taper * np.where(hot[:, j], 0.5, 1.0), 0.0)
            e = np.minimum(p * self.dt_h, np.maximum(remaining, 0.0))
            remaining = remaining - e
            se = se + e
            reg = reg + e
            st = nxt
            was_stuck = stuck[:, j].copy()
            status[:, j], power[:, j], energy[:, j] = st, np.where(e > 0, p, 0.0), reg
            for i in np.flatnonzero(st != prev).tolist():
                ts = int(t[i])
                events.append((int(i), ts, "status_changed", None, {"status": OCPP_STATUSES[int(st[i])]}))
                if st[i] == PREPARING:
                    events.append((int(i), ts, "session_started", None, {}))
                if prev[i] in (CHARGING, SUSPENDED_EV) and st[i] in (FINISHING, FAULTED):
                    events.append((int(i), ts, "session_stopped", None, {"energy_kwh": f"{se[i]:.2f}"}))
        self.status[rows], self.remaining[rows], self.session_power[rows] = st, remaining, sp
        self.session_energy[rows], self.unplug_ms[rows], self.stuck[rows] = se, unplug, was_stuck
        self.energy[rows] = reg
        base_v = np.where(self.three_phase[rows], 380.0, 220.0)[:, None]
        voltage = base_v * (1.0 - 0.02 * charging_arrivals(times) / 3.0) + rng.normal(0.0, 1.2, (k, n))
        phases = np.where(self.three_phase[rows], np.sqrt(3.0), 1.0)[:, None]
        current = power * 1000.0 / (voltage * phases)
        load = power / self.rated[rows, None]
        temperature = ambient + 4.0 + 14.0 * load + rng.normal(0.0, 0.4, (k, n))
        temperature = np.where(
            hot, rng.uniform(72.0, 85.0, (k, n)) + 0.3 * np.maximum(ambient, 0.0), temperature
        )
        values: dict[str, npt.NDArray[Any]] = {
            "status": status,
            "error_code": error,
            "power": np.round(power, 2),
            "energy_register": np.round(energy, 3),
            "voltage": np.round(voltage, 1),
            "current": np.round(current, 2),
            "temperature": np.round(np.clip(temperature, -40.0, 150.0), 1),
        }
        return Output(values, events)
