"""Simulated Modbus TCP devices: a real pymodbus server whose registers follow a device model.

Each unit id on the server is one device. On every read the server asks the device's model for its
current metric values and encodes them into registers with the same register map the gateway's
Modbus connector uses, so what the connector decodes is what the model produced. A unit can be
put into a fault mode: ``exception`` (answers with Modbus exception 4, device failure),
``garbage`` (registers all 0xFFFF: out of range or NaN) or ``silent`` (the unit id disappears:
the server answers with exception 11, gateway target failed to respond).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from ...contract import DeviceKind
from ...edge.modbus_registers import DataType, RegisterSpec, RegisterType, raw_for

log = logging.getLogger(__name__)

FAULT_MODES = ("exception", "garbage", "silent")


def _r(metric: str, address: int, type_: DataType = DataType.U16, scale: float = 1.0) -> RegisterSpec:
    return RegisterSpec(metric, address, RegisterType.HOLDING, type_, "big", scale)


# The register layout of the simulated device models (the gateway.yaml written by
# ``sitewatch simulate site`` uses the same maps).
REGISTER_MAPS: Mapping[DeviceKind, tuple[RegisterSpec, ...]] = {
    DeviceKind.WATER_METER: (
        _r("volume_register", 0, DataType.U32, 0.001),
        _r("flow", 2, DataType.F32),
        _r("pressure", 4, DataType.U16, 0.001),
        _r("battery", 5, DataType.U16, 0.1),
        _r("tamper", 6),
        _r("reverse_flow", 7),
    ),
    DeviceKind.ELEVATOR: (
        _r("trip_count", 0, DataType.U32),
        _r("door_cycles", 2, DataType.U32),
        _r("door_faults", 4, DataType.U32),
        _r("vibration_rms", 6, DataType.U16, 0.001),
        _r("motor_current", 7, DataType.U16, 0.1),
        _r("levelling_error", 8, DataType.I16, 0.1),
        _r("car_load", 9, DataType.U16, 0.1),
        _r("run_state", 10),
        _r("entrapment", 11),
    ),
}


def register_map_config(registers: DeviceKind | Sequence[RegisterSpec]) -> list[dict[str, object]]:
    """A register map (a kind's full simulated map, or the given registers) as gateway.yaml entries."""
    specs = REGISTER_MAPS[registers] if isinstance(registers, DeviceKind) else registers
    return [
        {
            "metric": s.metric,
            "address": s.address,
            "register": s.register.value,
            "type": s.type.value,
            "word_order": s.word_order,
            "scale": s.scale,
        }
        for s in specs
    ]


@dataclass
class ModbusUnit:
    """One simulated device behind a unit id: its register map, its model and its fault mode."""

    unit: int
    registers: Sequence[RegisterSpec]
    values: Callable[[], Mapping[str, float]]  # the model: current metric values
    fault: str | None = None
    reads: int = field(default=0)

    def fill(self, start: int, block: list[int]) -> None:
        """Write the model's current values into the server's register block."""
        current = self.values()
        for spec in self.registers:
            if spec.metric not in current:
                continue
            words = raw_for(spec, current[spec.metric])
            if self.fault == "garbage":
                words = [0xFFFF] * len(words)
            at = spec.address - start
            block[at : at + len(words)] = words


def _size(registers: Sequence[RegisterSpec]) -> int:
    return max((s.end for s in registers), default=1)


class ModbusDeviceServer:
    """A pymodbus TCP server on ``host:port`` serving several simulated units."""

    def __init__(self, units: Sequence[ModbusUnit], host: str = "127.0.0.1", port: int = 5020) -> None:
        self.host = host
        self.port = port
        self.units = {u.unit: u for u in units}
        self._server: ModbusTcpServer | None = None

    async def _action(
        self,
        unit: ModbusUnit,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if unit.fault == "exception":
            return ExcCodes.DEVICE_FAILURE
        if unit.fault == "silent":
            return ExcCodes.GATEWAY_NO_RESPONSE
        unit.reads += 1
        unit.fill(start_address, current_registers)
        return None

    async def start(self) -> None:
        """Start listening (returns once the port accepts connections)."""
        devices = [
            SimDevice(
                id=u.unit,
                simdata=[SimData(0, count=_size(u.registers), values=0, datatype=SimType.REGISTERS)],
                action=functools.partial(self._action, u),
            )
            for u in self.units.values()
        ]
        self._server = ModbusTcpServer(devices, address=(self.host, self.port))
        await self._server.serve_forever(background=True)
        log.debug("simulated Modbus server on %s:%d with units %s", self.host, self.port, sorted(self.units))

    async def stop(self) -> None:
        """Stop listening and drop connections."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
