"""Retrofitted elevators: trips follow residents' routines; door faults, bearing wear and entrapments."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ...contract import DeviceKind
from ..clock import local_day, local_hour, people_activity
from ..faults import FaultView
from ..site import Device
from .base import I64, KindModel, Output, RawEvent, cumulative

MAINTENANCE_EVERY_DAYS = 15


class ElevatorModel(KindModel):
    """One elevator per renovated entrance; reports every 60 s (Modbus poll of the controller).

    Trips follow residents' routines; the contractor's half-monthly maintenance takes each elevator
    out of use for an hour (run state ``maintenance``, event ``maintenance_mode``).
    """

    kind = DeviceKind.ELEVATOR
    metrics = ("trip_count", "door_cycles", "door_faults", "vibration_rms", "motor_current",
               "levelling_error", "car_load", "run_state", "entrapment")  # fmt: skip

    @staticmethod
    def interval_for(device: Device) -> int:
        """Every 60 s."""
        return 60

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        rng, n = self.rng, self.n
        floors = self.attr("floors_served", 7.0) - 1.0
        households = floors * 2.0  # two flats per landing in a typical walk-up entrance
        # Upper floors ride, ground floor mostly walks: about 1.4 trips per resident-household and hour.
        self.daily_trips = households * rng.uniform(5.0, 8.0, n)
        age = self.age_days(self.start_ms)
        self.trips = np.round(self.daily_trips * age * rng.uniform(0.9, 1.1, n))
        self.doors = np.round(self.trips * 2.1)
        self.door_faults = np.round(self.trips * rng.uniform(2e-4, 6e-4, n))
        self.vibration = rng.uniform(0.12, 0.28, n)
        self.rated_current = self.attr("rated_load_kg", 800.0) / 800.0 * rng.uniform(14.0, 18.0, n)
        # Maintenance at least every 15 days (TSG T5002): each elevator has its day in the cycle and its hour.
        self.service_day = rng.integers(0, MAINTENANCE_EVERY_DAYS, n)
        self.service_hour = rng.choice([9.0, 10.0, 14.0, 15.0], n)
        self.in_service = np.zeros(n, dtype=bool)

    def generate(self, rows: I64, times: I64, faults: FaultView) -> Output:
        """Trips as a Poisson process driven by residents' activity; faults change doors, vibration, state."""
        rng = self.rng
        shape = times.shape
        act = people_activity(times)
        entrapped = faults.mask("entrapment", rows, times)
        burst = faults.mask("door_fault_burst", rows, times)
        wear = faults.progress("bearing_wear", rows, times)
        day, hour = local_day(times), local_hour(times)
        service = (np.mod(day + self.service_day[rows, None], MAINTENANCE_EVERY_DAYS) == 0) & (
            (hour >= self.service_hour[rows, None]) & (hour < self.service_hour[rows, None] + 1.0)
        )
        stopped = faults.mask("out_of_service", rows, times) & ~entrapped
        service &= ~entrapped & ~stopped
        trips = rng.poisson(self.daily_trips[rows, None] / 24.0 * act * self.dt_h).astype(np.float64)
        trips[entrapped | service | stopped] = 0.0
        door_faults = rng.poisson(np.where(burst, self.interval_s / 420.0, 3e-4 * trips)).astype(np.float64)
        doors = 2.0 * trips + rng.poisson(0.15 * trips + door_faults)
        trip_count = cumulative(self.trips[rows], trips)
        door_cycles = cumulative(self.doors[rows], doors)
        door_fault_count = cumulative(self.door_faults[rows], door_faults)
        self.trips[rows] = trip_count[:, -1]
        self.doors[rows] = door_cycles[:, -1]
        self.door_faults[rows] = door_fault_count[:, -1]

        busy = np.clip(trips * 28.0 / self.interval_s, 0.0, 0.95)
        u = rng.random(shape)
        run_state = np.where(u < busy, np.where(u < busy * 0.4, 1.0, np.where(u < busy * 0.8, 2.0, 3.0)), 0.0)
        run_state = np.where(burst & (rng.random(shape) < 0.35), 3.0, run_state)  # door stuck open
        run_state = np.where(service, 5.0, run_state)
        run_state = np.where(stopped, 6.0, run_state)
        run_state = np.where(entrapped, 4.0, run_state)
        moving = (run_state == 1.0) | (run_state == 2.0)
        load = np.where(run_state > 0.0, np.clip(rng.gamma(2.0, 11.0, shape), 5.0, 95.0), 0.0)
        overload = (run_state == 3.0) & (rng.random(shape) < 2e-4)
        load = np.where(overload, rng.uniform(101.0, 115.0, shape), load)
        load = np.where(entrapped, np.clip(rng.gamma(2.0, 11.0, shape), 8.0, 90.0), load)
        wear_factor = 1.0 + 3.0 * wear**2
        current = np.where(moving, self.rated_current[rows, None] * (0.35 + 0.6 * load / 100.0), 0.8)
        current = current * (1.0 + 0.25 * wear**2) + rng.normal(0.0, 0.15, shape)
        vibration = self.vibration[rows, None] * wear_factor + rng.normal(0.0, 0.02, shape)
        levelling = rng.normal(0.0, 1.6, shape) + rng.normal(0.0, 6.0, shape) * wear
        values: dict[str, npt.NDArray[Any]] = {
            "trip_count": trip_count,
            "door_cycles": door_cycles,
            "door_faults": door_fault_count,
            "vibration_rms": np.round(np.clip(vibration, 0.01, 50.0), 3),
            "motor_current": np.round(np.clip(current, 0.0, 500.0), 2),
            "levelling_error": np.round(np.clip(levelling, -500.0, 500.0), 1),
            "car_load": np.round(load, 1),
            "run_state": run_state,
            "entrapment": entrapped.astype(np.float64),
        }
        events: list[RawEvent] = []
        before = np.concatenate([self.in_service[rows, None], service[:, :-1]], axis=1)
        for i, j in zip(*np.nonzero(service != before), strict=True):
            events.append((int(i), int(times[i, j]), "maintenance_mode", bool(service[i, j]), {}))
        self.in_service[rows] = service[:, -1]
        for i, j in zip(*np.nonzero(door_faults), strict=True):
            for _ in range(int(door_faults[i, j])):
                ts = int(times[i, j]) - int(rng.integers(0, self.interval_ms))
                events.append((int(i), ts, "door_fault", None, {}))
        for i, j in zip(*np.nonzero(overload), strict=True):
            events.append((int(i), int(times[i, j]), "overload", None, {"car_load": f"{load[i, j]:.0f}"}))
        return Output(values, events)
