"""Retrofitted elevators: trips follow residents' routines; door faults, bearing wear, entrapments."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ...contract import DeviceKind
from ..clock import local_day, local_hour, people_activity
from ..site import Device
from ..view import FaultView
from .base import F64, I64, KindModel, Output, RawEvent, cumulative

MAINTENANCE_EVERY_DAYS = 15
RUN_S = 28.0  # one run, doors included
IDLE, UP, DOWN, DOOR_OPEN, FAULT, MAINTENANCE, OUT_OF_SERVICE = range(7)


class ElevatorModel(KindModel):
    """One elevator per renovated entrance; reports every 60 s (Modbus poll of the controller).

    Residents above the ground floor ride about twice a day each (a manufacturer's planning rule);
    the contractor's half-monthly maintenance takes each elevator out of use for an hour. The
    vibration is the RMS over the poll: near zero at rest, 0.12-0.28 m/s² while the car runs.
    """

    kind = DeviceKind.ELEVATOR
    metrics = ("trip_count", "door_cycles", "door_faults", "vibration_rms", "motor_current",
               "levelling_error", "car_load", "run_state", "entrapment")  # fmt: skip

    @staticmethod
    def interval_for(device: Device) -> int:
        """Every 60 s."""
        return 60

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rng, n = self.rng, self.n
        households = (self.attr("floors_served", 7.0) - 1.0) * 2.0  # two flats per landing above the ground
        self.residents = households * rng.uniform(2.0, 2.8, n)
        self.daily_trips = self.residents * rng.uniform(1.6, 2.4, n)
        self.trips = np.round(self.daily_trips * self.age_days(self.start_ms) * rng.uniform(0.9, 1.1, n))
        self.doors = np.round(self.trips * 2.1)
        self.door_faults = np.round(self.trips * rng.uniform(2e-4, 6e-4, n))
        self.vibration_run = rng.uniform(0.12, 0.28, n)
        self.vibration_rest = rng.uniform(0.01, 0.03, n)
        self.rated_current = self.attr("rated_load_kg", 800.0) / 800.0 * rng.uniform(14.0, 18.0, n)
        # Maintenance at least every 15 days (TSG T5002): each elevator has its day in the cycle and its hour.
        self.service_day = rng.integers(0, MAINTENANCE_EVERY_DAYS, n)
        self.service_hour = rng.choice([9.0, 10.0, 14.0, 15.0], n)
        self.in_service = np.zeros(n, dtype=bool)

    def describe(self) -> dict[str, F64]:
        """Residents served and their expected runs a day."""
        return {"residents": self.residents, "expected_daily": self.daily_trips}

    def generate(self, rows: I64, times: I64, faults: FaultView) -> Output:
        """Trips as a Poisson process driven by residents' activity; faults change doors, vibration, state."""
        rng = self.rng
        shape = times.shape
        expected = self.daily_trips[rows, None] / 24.0 * people_activity(times) * self.ctx.occupancy(times)
        unpowered = faults.mask("power_cut", "building_power_cut")
        trapped = faults.mask("entrapment")
        latched = np.zeros(shape, dtype=bool)  # the controller has set its entrapment flag
        for i, m, f in faults.faults("entrapment"):
            if f.announce_ms is not None:
                latched[i] |= m & (times[i] >= f.announce_ms)
        false_latch = faults.mask("spurious_entrapment")
        stopped = faults.mask("out_of_service") & ~trapped
        flagged_out = np.zeros(shape, dtype=bool)
        for i, m, f in faults.faults("out_of_service"):
            if f.announce_ms is not None:
                flagged_out[i] |= m & (times[i] >= f.announce_ms)
            # unannounced, a stop shows only as trips missing: where at least one trip an hour was due
            # (``expected`` is trips per hour)
            faults.visible(f, i, (times[i] >= (f.announce_ms or f.end_ms)) | (expected[i] >= 1.0))
        day, hour = local_day(times), local_hour(times)
        service = (np.mod(day + self.service_day[rows, None], MAINTENANCE_EVERY_DAYS) == 0) & (
            (hour >= self.service_hour[rows, None]) & (hour < self.service_hour[rows, None] + 1.0)
        )
        service &= ~trapped & ~stopped & ~unpowered
        halted = trapped | service | stopped | unpowered | false_latch
        trips = np.where(halted, 0.0, rng.poisson(expected * self.dt_h).astype(np.float64))
        door_rate = 3e-4 * trips
        burst_clear = np.zeros(shape, dtype=bool)
        worst = np.zeros(shape)  # two bursts at once on one car: the worse shows
        for i, m, f in faults.faults("door_fault_burst"):
            rate = f.label.magnitude / 86_400.0 * self.interval_s
            door_rate[i] = np.where(m, rate, door_rate[i])
            worst[i] = np.where(m, np.maximum(worst[i], rate), worst[i])
            burst_clear[i] |= m & (f.label.band == "clear")
        base = rng.poisson(door_rate).astype(np.float64)
        # Where a later burst has the lower rate, the worse one's surplus is drawn from a generator of
        # its own, so that the model's stream (and every other reading) is what it was without it.
        extra = np.zeros(shape)
        side = None
        surplus = np.where(worst > door_rate, worst - door_rate, 0.0)
        if surplus.any():
            side = np.random.default_rng([*self.ctx.seed, 7919, int(times.min())])
            extra = side.poisson(surplus).astype(np.float64)
        door_faults = base + extra
        # the controller reports maintenance, out of service or its fault state instead of the doors (below)
        doors_hidden = service | flagged_out | latched | false_latch
        for i, m, f in faults.faults("door_fault_burst"):
            # A burst shows from its second door fault on: at a low rate for a few hours it may bring one
            # fault or none, and one alone is what any door does every few months. A clear burst's door
            # also sticks open (below), seen from its start where the run state is the doors'.
            so_far = f.state.get("door_faults", 0.0) + np.cumsum(np.where(m, door_faults[i], 0.0))
            f.state["door_faults"] = float(so_far[-1])
            faults.visible(f, i, (so_far >= 2.0) | ((f.label.band == "clear") & ~doors_hidden[i]))
        doors = 2.0 * trips + rng.poisson(0.15 * trips + base) + extra
        trip_count = cumulative(self.trips[rows], trips)
        door_cycles = cumulative(self.doors[rows], doors)
        door_fault_count = cumulative(self.door_faults[rows], door_faults)
        self.trips[rows] = trip_count[:, -1]
        self.doors[rows] = door_cycles[:, -1]
        self.door_faults[rows] = door_fault_count[:, -1]

        busy = np.clip(trips * RUN_S / self.interval_s, 0.0, 0.95)
        u = rng.random(shape)
        run_state = np.where(
            u < busy, np.where(u < busy * 0.4, UP, np.where(u < busy * 0.8, DOWN, DOOR_OPEN)), IDLE
        )
        run_state = np.where(
            burst_clear & (rng.random(shape) < 0.35), DOOR_OPEN, run_state
        )  # door stuck open
        run_state = np.where(service, MAINTENANCE, run_state)
        run_state = np.where(flagged_out, OUT_OF_SERVICE, run_state)
        run_state = np.where(latched | false_latch, FAULT, run_state).astype(np.float64)
        moving = (run_state == UP) | (run_state == DOWN)
        load = np.where(busy > 0.0, np.clip(rng.gamma(2.0, 11.0, shape), 5.0, 95.0), 0.0)
        overload = (run_state == DOOR_OPEN) & (rng.random(shape) < 2e-4)
        load = np.where(overload, rng.uniform(101.0, 115.0, shape), load)
        load = np.where(trapped, np.clip(rng.gamma(2.0, 11.0, shape), 8.0, 90.0), load)  # passengers inside

        wear = np.ones(shape)
        for i, m, f in faults.faults("bearing_wear"):
            # Wear grows with use: the share of the fault's expected trips made so far, squared.
            expected_total = max(1.0, self.daily_trips[rows[i]] * (f.end_ms - f.start_ms) / 86_400_000)
            used = f.state.get("trips", 0.0) + np.cumsum(np.where(m, trips[i], 0.0))
            f.state["trips"] = float(used[-1])
            progress = np.clip(used / expected_total, 0.0, 1.0)
            own = 1.0 + (f.label.magnitude - 1.0) * progress**2
            wear[i] = np.where(m, np.maximum(wear[i], own), wear[i])  # two at once: the worse shows
            faults.visible(f, i, trips[i] > 0)  # a worn bearing is felt only while the car runs
        load_factor = 0.9 + 0.2 * load / 100.0
        run_v = self.vibration_run[rows, None] * wear * load_factor
        vibration = np.sqrt(busy * run_v**2 + (1.0 - busy) * self.vibration_rest[rows, None] ** 2)
        vibration = vibration + rng.normal(0.0, 0.004, shape)
        current = np.where(moving, self.rated_current[rows, None] * (0.35 + 0.6 * load / 100.0), 0.8)
        current = current * (1.0 + 0.08 * (wear - 1.0)) + rng.normal(0.0, 0.15, shape)
        levelling = rng.normal(0.0, 1.6, shape) * (1.0 + 0.8 * (wear - 1.0))
        values: dict[str, npt.NDArray[Any]] = {
            "trip_count": trip_count,
            "door_cycles": door_cycles,
            "door_faults": door_fault_count,
            "vibration_rms": np.round(np.clip(vibration, 0.005, 50.0), 3),
            "motor_current": np.round(np.clip(current, 0.0, 500.0), 2),
            "levelling_error": np.round(np.clip(levelling, -500.0, 500.0), 1),
            "car_load": np.round(load, 1),
            "run_state": run_state,
            "entrapment": (latched | false_latch).astype(np.float64),
        }
        events: list[RawEvent] = []
        before = np.concatenate([self.in_service[rows, None], service[:, :-1]], axis=1)
        for i, j in zip(*np.nonzero(service != before), strict=True):
            events.append((int(i), int(times[i, j]), "maintenance_mode", bool(service[i, j]), {}))
        self.in_service[rows] = service[:, -1]
        for i, j in zip(*np.nonzero(base), strict=True):
            for _ in range(int(base[i, j])):
                ts = int(times[i, j]) - int(rng.integers(0, self.interval_ms))
                events.append((int(i), ts, "door_fault", None, {}))
        if side is not None:
            for i, j in zip(*np.nonzero(extra), strict=True):
                for _ in range(int(extra[i, j])):
                    ts = int(times[i, j]) - int(side.integers(0, self.interval_ms))
                    events.append((int(i), ts, "door_fault", None, {}))
        for i, j in zip(*np.nonzero(overload), strict=True):
            events.append((int(i), int(times[i, j]), "overload", None, {"car_load": f"{load[i, j]:.0f}"}))
        return Output(values, events)
