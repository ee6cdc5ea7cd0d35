"""EV chargers: charging sessions through OCPP 1.6 statuses; Faulted, cooling failure, stuck sessions."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ...contract import OCPP_ERROR_CODES, OCPP_STATUSES, DeviceKind
from ..clock import MS_PER_H, air_temperature, charging_arrivals, summer, sunshine
from ..site import Device
from ..view import FaultView
from .base import F64, I64, KindModel, Output, RawEvent

AVAILABLE, PREPARING, CHARGING, SUSPENDED_EVSE, SUSPENDED_EV, FINISHING, FAULTED = 0, 1, 2, 3, 4, 5, 8
_ERROR_INDEX = {name: i for i, name in enumerate(OCPP_ERROR_CODES)}
DERATE_C = 70.0  # the charger halves its power above this internal temperature
ALARM_C = 75.0  # and raises over_temperature above this one
TAU_S = 900.0  # thermal time constant of the cabinet


def _columns(mask: npt.NDArray[np.bool_]) -> list[bool]:
    """Per column: whether any row is set (as a list, cheap to index in the column loop)."""
    return [bool(x) for x in np.count_nonzero(mask, axis=0).tolist()]


def _code(detail: Any) -> float:
    return float(_ERROR_INDEX.get(detail.get("error_code", ""), _ERROR_INDEX["OtherError"]))


class ChargerModel(KindModel):
    """MeterValues and StatusNotification every 60 s; sessions start mostly after work.

    A session: Preparing, then (4% of plug-ins) a failed authorisation back to Finishing, or
    Charging, with (15%) a pause for the site's load management (SuspendedEVSE), then SuspendedEV
    when the car is full, Finishing when the driver unplugs (a fifth unplug before the car is
    full). The cabinet's temperature follows the air, the sun and the load with a 15-minute lag.
    """

    kind = DeviceKind.CHARGER
    metrics = ("status", "error_code", "power", "energy_register", "voltage", "current", "temperature")

    @staticmethod
    def interval_for(device: Device) -> int:
        """Every 60 s."""
        return 60

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rng, n = self.rng, self.n
        self.rated = self.attr("charger_power_kw", 7.0)
        self.three_phase = self.rated > 7.5
        self.sessions_per_day = rng.uniform(0.6, 1.4, n)
        self.sun_exposed = rng.uniform(0.0, 1.0, n)  # shade of the parking place
        self.status = np.zeros(n)
        self.remaining = np.zeros(n)  # kWh the car still wants
        self.session_power = np.zeros(n)
        self.session_energy = np.zeros(n)
        self.unplug_ms = np.zeros(n, dtype=np.int64)
        self.pause = np.zeros((n, 2), dtype=np.int64)  # load-management pause [from, to)
        self.temperature = np.full(n, np.nan)
        self.energy = np.round(self.age_days(self.start_ms) * self.sessions_per_day * 12.0, 2)

    def generate(self, rows: I64, times: I64, faults: FaultView) -> Output:
        """Step each charger's session through the grid column by column (sessions carry state)."""
        rng = self.rng
        k, n = times.shape
        dark = faults.mask("power_cut")
        broken = faults.mask("charger_faulted")  # the charger delivers nothing
        shown = faults.mask("charger_self_clear")  # status Faulted (a self-clearing fault shows at once)
        error = np.zeros((k, n))
        for i, m, f in faults.faults("charger_faulted"):
            if f.announce_ms is not None:  # the OCPP StatusNotification went out (maybe late)
                on = m & (times[i] >= f.announce_ms)
                shown[i] |= on
                error[i] = np.where(on, _code(f.label.detail), error[i])
        for i, m, span in faults.spans("charger_self_clear"):
            error[i] = np.where(m, _code(span.detail), error[i])
        stall = np.zeros((k, n))  # share of the power a stuck session does not deliver
        for i, m, f in faults.faults("stuck_session"):
            stall[i] = np.where(m, np.maximum(stall[i], f.label.magnitude / 100.0), stall[i])
        extra_c = np.zeros((k, n))  # cooling failure: extra degrees at full load (two at once: the worse)
        for i, m, f in faults.faults("over_temperature"):
            ramp = np.clip((times[i] - f.start_ms) / max(1, (f.end_ms - f.start_ms) / 2), 0.0, 1.0)
            extra_c[i] = np.where(m, np.maximum(extra_c[i], f.label.magnitude * ramp), extra_c[i])
        rate = self.sessions_per_day[rows, None] / 24.0 * charging_arrivals(times) * self.ctx.occupancy(times)
        arrive = rng.random((k, n)) < 1.0 - np.exp(-rate * self.dt_h)
        wanted = np.clip(
            rng.gamma(3.0, 4.2, (k, n)) * (1.05 - 0.05 * summer(times)), 3.0, 60.0
        )  # winter heating
        car_kw = np.minimum(self.rated[rows, None], rng.choice([3.3, 6.6, 7.0, 11.0], (k, n)))
        plugged_h = rng.uniform(1.0, 12.0, (k, n))
        auth_fail = rng.random((k, n)) < 0.04
        paused = rng.random((k, n)) < 0.15
        pause_at = (rng.uniform(0.3, 1.5, (k, n)) * MS_PER_H).astype(np.int64)
        pause_len = (rng.uniform(0.5, 2.0, (k, n)) * MS_PER_H).astype(np.int64)
        ambient = air_temperature(times, self.salt)
        sun = (
            sunshine(times, self.site.latitude, self.site.longitude, self.salt) * self.sun_exposed[rows, None]
        )
        status = np.zeros((k, n))
        power = np.zeros((k, n))
        energy = np.zeros((k, n))
        temperature = np.zeros((k, n))
        events: list[RawEvent] = []
        st = self.status[rows].copy()
        remaining = self.remaining[rows].copy()
        sp = self.session_power[rows].copy()
        se = self.session_energy[rows].copy()
        unplug = self.unplug_ms[rows].copy()
        pause = self.pause[rows].copy()
        reg = self.energy[rows].copy()
        temp = self.temperature[rows].copy()
        temp = np.where(np.isnan(temp), ambient[:, 0] + 3.0, temp)
        lag = 1.0 - np.exp(-self.interval_s / TAU_S)
        rated = self.rated[rows]
        arrive &= ~shown  # nobody plugs into a charger that shows Faulted
        any_arrival, any_shown = _columns(arrive), _columns(shown)
        any_dark, any_broken, any_stall = _columns(dark), _columns(broken), _columns(stall > 0.0)
        start_unplug = times + (plugged_h * MS_PER_H).astype(np.int64)
        base_target = ambient + 3.0 + 8.0 * sun
        for j in range(n):
            t = times[:, j]
            prev = st
            nxt = st.copy()
            preparing = st == PREPARING
            if preparing.any():  # authorisation refused, or a broken charger: back out without charging
                nxt[preparing] = np.where(auth_fail[preparing, j] | broken[preparing, j], FINISHING, CHARGING)
            nxt[(st == FINISHING) | (st == FAULTED)] = AVAILABLE
            session = (st >= CHARGING) & (st <= SUSPENDED_EV)
            if session.any():
                charging_now = st == CHARGING
                in_pause = (t >= pause[:, 0]) & (t < pause[:, 1])
                nxt[charging_now & (remaining <= 0.0)] = SUSPENDED_EV
                nxt[charging_now & in_pause] = SUSPENDED_EVSE
                resume = (st == SUSPENDED_EVSE) & ~in_pause
                nxt[resume] = np.where(remaining[resume] > 0.0, CHARGING, SUSPENDED_EV)
                nxt[session & (t >= unplug)] = FINISHING
            if any_arrival[j]:
                arriving = (st == AVAILABLE) & arrive[:, j]
                start = arriving & ~broken[:, j]
                nxt[arriving] = PREPARING
                remaining = np.where(start, wanted[:, j], remaining)
                sp = np.where(start, car_kw[:, j] * rng.uniform(0.9, 0.98, k), sp)
                se = np.where(start, 0.0, se)
                unplug = np.where(arriving, start_unplug[:, j], unplug)
                pause[:, 0] = np.where(start, np.where(paused[:, j], t + pause_at[:, j], 0), pause[:, 0])
                pause[:, 1] = np.where(start, np.where(paused[:, j], t + pause_at[:, j] + pause_len[:, j], 0),
                                       pause[:, 1])  # fmt: skip
            if any_shown[j]:
                nxt[shown[:, j]] = FAULTED
                remaining[shown[:, j]] = 0.0
            if any_dark[j]:  # a power cut ends every session (the charger reboots)
                nxt[dark[:, j]] = AVAILABLE
                remaining[dark[:, j]] = 0.0
            charging = nxt == CHARGING
            if charging.any():
                taper = np.clip(remaining / 1.5, 0.3, 1.0)
                p = np.where(charging, sp * taper * np.where(temp > DERATE_C, 0.5, 1.0), 0.0)
                if any_broken[j] or any_stall[j]:
                    p = p * (1.0 - stall[:, j]) * ~broken[:, j]
                e = np.minimum(p * self.dt_h, np.maximum(remaining, 0.0))
                if any_stall[
                    j
                ]:  # a stuck session cannot finish: the car waits (Charging) until the driver leaves
                    remaining = remaining - np.where(charging & (stall[:, j] > 0.0), 0.0, e)
                else:
                    remaining = remaining - e
                se = se + e
                reg = reg + e
                load = np.where(e > 0.0, p / rated, 0.0)
                power[:, j] = np.where(e > 0.0, p, 0.0)
                temp = temp + (base_target[:, j] + 14.0 * load**2 + extra_c[:, j] * load - temp) * lag
            else:
                temp = temp + (base_target[:, j] - temp) * lag
            st = nxt
            status[:, j], energy[:, j], temperature[:, j] = st, reg, temp
            changed = np.flatnonzero(st != prev)
            for i in changed.tolist():
                ts = int(t[i])
                events.append((i, ts, "status_changed", None, {"status": OCPP_STATUSES[int(st[i])]}))
                if st[i] == CHARGING and prev[i] == PREPARING:
                    events.append((i, ts, "session_started", None, {}))
                if CHARGING <= prev[i] <= SUSPENDED_EV and st[i] in (FINISHING, FAULTED, AVAILABLE):
                    events.append((i, ts, "session_stopped", None, {"energy_kwh": f"{se[i]:.2f}"}))
        self.status[rows], self.remaining[rows], self.session_power[rows] = st, remaining, sp
        self.session_energy[rows], self.unplug_ms[rows], self.pause[rows] = se, unplug, pause
        self.energy[rows], self.temperature[rows] = reg, temp
        for i, m, f in faults.faults("over_temperature"):
            hot = np.flatnonzero(m & (temperature[i] > ALARM_C))
            if hot.size:
                faults.condition(f, int(times[i, hot[0]]))
            faults.visible(f, i, power[i] > 0.0)  # a failing fan shows only under load
        for i, _m, f in faults.faults("stuck_session"):
            faults.visible(f, i, (status[i] == CHARGING) | (status[i] == SUSPENDED_EVSE))
        # a broken charger shows its Faulted status once announced; before (or if it never is), a plug-in
        # backing out (Preparing) and a session the fault caught, Charging at nothing. A car already full
        # (SuspendedEV) that leaves during the fault shows nothing of it: its Finishing ends any session
        for i, _m, f in faults.faults("charger_faulted"):
            faults.visible(f, i, shown[i] | (status[i] == PREPARING) | (status[i] == CHARGING))
        glitch = faults.mask("spurious_over_temperature")
        temperature = np.where(glitch, self.rng.uniform(95.0, 120.0, (k, n)), temperature)
        base_v = np.where(self.three_phase[rows], 380.0, 220.0)[:, None]
        voltage = base_v * (1.0 - 0.02 * charging_arrivals(times) / 3.0) + rng.normal(0.0, 1.2, (k, n))
        phases = np.where(self.three_phase[rows], np.sqrt(3.0), 1.0)[:, None]
        current = power * 1000.0 / (voltage * phases)
        values: dict[str, npt.NDArray[Any]] = {
            "status": status,
            "error_code": np.where(status == FAULTED, error, 0.0),
            "power": np.round(power, 2),
            "energy_register": np.round(energy, 3),
            "voltage": np.round(voltage, 1),
            "current": np.round(current, 2),
            "temperature": np.round(np.clip(temperature + rng.normal(0.0, 0.3, (k, n)), -40.0, 150.0), 1),
        }
        return Output(values, events)

    def describe(self) -> dict[str, F64]:
        """Rated power and sessions a day."""
        return {"rated_kw": self.rated, "expected_daily": self.sessions_per_day}
