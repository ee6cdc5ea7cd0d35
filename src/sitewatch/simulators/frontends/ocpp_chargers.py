"""Simulated EV chargers: OCPP 1.6J charge points (the ``ocpp`` library's client side) over websockets.

:class:`SimChargePoint` sends the calls a real charge point sends (BootNotification, Heartbeat,
StatusNotification, Start/StopTransaction, MeterValues). :class:`ChargerDevice` drives one charge
point from a simple charging-session model: sessions start at random (seeded), draw about the
rated power and advance the energy register, and send meter values every ``interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import ClientConnection, connect

from ...contract import OCPP_ERROR_CODES, OCPP_STATUSES
from ...edge.ocpp_payloads import METRIC_MEASURANDS, sampled_values

log = logging.getLogger(__name__)
wire_log = logging.getLogger(__name__ + ".wire")  # the ocpp library logs every frame at INFO
wire_log.setLevel(logging.WARNING)

def iso(ts: datetime | None = None) -> str:
    """An OCPP timestamp (UTC, ISO 8601 with Z)."""
    return (ts or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SimChargePoint(ChargePoint):
    """The charge point side of OCPP 1.6J, with one method per call a charger makes."""

    async def boot(self, vendor: str = "sitewatch-sim", model: str = "AC7") -> str:
        """BootNotification; returns the registration status."""
        result = await self.call(call.BootNotification(charge_point_model=model, charge_point_vendor=vendor))
        return str(result.status)

    async def heartbeat(self) -> str:
        """Heartbeat; returns the central system's time."""
        result = await self.call(call.Heartbeat())
        return str(result.current_time) if result else ""

    async def status(self, connector_id: int, status: str, error_code: str = "NoError") -> None:
        """StatusNotification."""
        await self.call(
            call.StatusNotification(
                connector_id=connector_id, error_code=error_code, status=status, timestamp=iso()
            )
        )

    async def meter(
        self, connector_id: int, values: Mapping[str, float], transaction_id: int | None = None
    ) -> None:
        """MeterValues with the given contract metric values."""
        await self.call(
            call.MeterValues(
                connector_id=connector_id,
                transaction_id=transaction_id,
                meter_value=[{"timestamp": iso(), "sampledValue": sampled_values(values)}],
            )
        )

    async def start_transaction(
        self, connector_id: int, meter_start_wh: int, id_tag: str = "SIMCARD01"
    ) -> int:
        """StartTransaction; returns the transaction id the central system gave."""
        result = await self.call(
            call.StartTransaction(
                connector_id=connector_id, id_tag=id_tag, meter_start=meter_start_wh, timestamp=iso()
            )
        )
        return int(result.transaction_id)

    async def stop_transaction(self, transaction_id: int, meter_stop_wh: int, reason: str = "Local") -> None:
        """StopTransaction."""
        await self.call(
            call.StopTransaction(
                meter_stop=meter_stop_wh, timestamp=iso(), transaction_id=transaction_id, reason=reason
            )
        )


@contextlib.asynccontextmanager
async def charge_point(
    url: str, ocpp_id: str, response_timeout: float = 10, password: str | None = None
) -> AsyncIterator[SimChargePoint]:
    """Connect a simulated charge point to ``url/<ocpp_id>`` and serve its socket while in use.

    With ``password`` the charger authenticates with HTTP Basic auth (OCPP 1.6 security profile 1).
    """
    target = f"{url.rstrip('/')}/{ocpp_id}"
    if password is not None:
        scheme, _, rest = target.partition("://")
        target = f"{scheme}://{quote(ocpp_id, safe='')}:{quote(password, safe='')}@{rest}"
    async with connect(target, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        point = SimChargePoint(ocpp_id, ws, response_timeout=response_timeout, logger=wire_log)
        task = asyncio.create_task(point.start())
        try:
            yield point
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def connection_of(point: SimChargePoint) -> ClientConnection:
    """The websocket under a simulated charge point (tests send raw frames through it)."""
    connection: ClientConnection = point._connection
    return connection


@dataclass
class ChargerModel:
    """A charger's state: idle or charging, its energy register and its temperature."""

    rated_kw: float = 7.0
    energy_kwh: float = 1000.0
    charging: bool = False
    temperature: float = 25.0
    voltage: float = 230.0
    fault: str | None = None  # an OCPP error code to report as Faulted, e.g. "GroundFailure"

    def readings(self) -> dict[str, float]:
        """The metrics a MeterValues call carries now."""
        power = self.rated_kw if self.charging else 0.0
        return {
            "energy_register": round(self.energy_kwh, 3),
            "power": power,
            "voltage": self.voltage,
            "current": round(power * 1000 / self.voltage, 2),
            "temperature": self.temperature,
        }

    def advance(self, seconds: float) -> None:
        """Let time pass: energy flows while charging, the charger warms and cools."""
        if self.charging:
            self.energy_kwh += self.rated_kw * seconds / 3600
        target = 40.0 if self.charging else 25.0
        self.temperature += (target - self.temperature) * min(1.0, seconds / 600)


Source = Callable[[], Mapping[str, float] | None]


class ChargerDevice:
    """Runs one simulated charge point against a central system until stopped (reconnecting).

    Without ``source`` the charger follows its own :class:`ChargerModel`; with ``source`` (a function
    returning the charger's current contract metric values, e.g. from a simulated compound) it
    reports those: status changes as StatusNotification, Charging as a transaction, and the
    electrical values as MeterValues.
    """

    def __init__(
        self,
        url: str,
        ocpp_id: str,
        model: ChargerModel | None = None,
        *,
        interval_s: float = 10.0,
        session_probability: float = 0.05,
        seed: int = 0,
        source: Source | None = None,
    ) -> None:
        self.url, self.ocpp_id = url, ocpp_id
        self.model = model or ChargerModel()
        self.interval_s = interval_s
        self.session_probability = session_probability
        self.random = random.Random(seed)
        self.source = source
        self.sent = 0
        self.connected = False
        self._status: str | None = None
        self._tx: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, boot, and report until ``stop`` is set; reconnect after a lost connection."""
        booted = False
        while not stop.is_set():
            try:
                async with charge_point(self.url, self.ocpp_id) as point:
                    if not booted:  # a real charger boots once, then only reconnects
                        await point.boot()
                        booted = True
                    self.connected = True
                    if self.source is None:
                        await point.status(1, "Charging" if self.model.charging else "Available")
                        await self._report(point, stop)
                    else:
                        self._status = None  # tell the central system the status again
                        await self._follow(point, stop)
            except Exception as exc:  # a simulated device never dies of a network error
                log.debug("simulated charger %s: %s; reconnecting", self.ocpp_id, exc)
            self.connected = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def _follow(self, point: SimChargePoint, stop: asyncio.Event) -> None:
        assert self.source is not None
        while not stop.is_set():
            values = self.source()
            if values:
                await self._send(point, values)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)

    async def _send(self, point: SimChargePoint, values: Mapping[str, float]) -> None:
        code = int(values.get("status", 0))
        status = OCPP_STATUSES[code] if 0 <= code < len(OCPP_STATUSES) else "Available"
        err = int(values.get("error_code", 0))
        error = OCPP_ERROR_CODES[err] if 0 <= err < len(OCPP_ERROR_CODES) else "NoError"
        energy_wh = int(values.get("energy_register", 0) * 1000)
        if status != self._status:
            if status == "Charging" and self._tx is None:
                self._tx = await point.start_transaction(1, energy_wh)
            elif status != "Charging" and self._tx is not None:
                await point.stop_transaction(self._tx, energy_wh)
                self._tx = None
            await point.status(1, status, error)
            self._status = status
        meter = {k: values[k] for k in METRIC_MEASURANDS if k in values}
        if meter:
            await point.meter(1, meter, self._tx)
        self.sent += 1

    async def _report(self, point: SimChargePoint, stop: asyncio.Event) -> None:
        tx: int | None = None
        m = self.model
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
            if stop.is_set():
                break
            m.advance(self.interval_s)
            if m.fault:
                await point.status(1, "Faulted", m.fault)
                continue
            if not m.charging and self.random.random() < self.session_probability:
                await point.status(1, "Preparing")
                tx = await point.start_transaction(1, int(m.energy_kwh * 1000))
                m.charging = True
                await point.status(1, "Charging")
            elif m.charging and self.random.random() < self.session_probability * 2:
                m.charging = False
                if tx is not None:
                    await point.stop_transaction(tx, int(m.energy_kwh * 1000))
                tx = None
                await point.status(1, "Available")
            await point.meter(1, m.readings(), tx)
            await point.heartbeat()
            self.sent += 1
