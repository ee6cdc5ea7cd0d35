"""Modbus TCP polling for water meters and elevator controllers (pymodbus async client).

Every device is polled by its own task, over its own connection or, with
``connections_per_endpoint``, over a small pool of connections shared by the devices behind one
address (an RS485-to-Ethernet gateway that accepts only a few clients); a slow or dead device
delays only itself, or holds one pooled connection for at most its timeout. Register maps (see sitewatch/edge/modbus_registers.py) turn registers into contract metrics. A failed
poll backs off exponentially up to ``backoff_max_s``; after ``offline_after`` failed polls in a
row the device is reported offline, and online again on its first good poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from ...contract import DeviceInfo, DeviceKind, Event, Sample, now_ms
from ...edge.modbus_registers import (
    ReadBlock,
    RegisterMapError,
    RegisterSpec,
    RegisterType,
    decode_block,
    parse_flag_events,
    parse_register_map,
    plan_reads,
)
from ...i18n import _
from .base import ConnectorConfigError, ConnectorContext, Sink, config_device, parse_config

log = logging.getLogger(__name__)
# pymodbus logs each failed request without saying which device; this connector logs them itself
logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)

MODBUS_KINDS = (DeviceKind.WATER_METER, DeviceKind.ELEVATOR)
_EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}
_DEFAULTS: dict[str, float] = {"poll_interval_s": 10.0, "timeout_s": 2.0, "backoff_max_s": 300.0}


@dataclass(frozen=True, slots=True)
class ModbusDevice:
    """One polled device: where it is and what to read."""

    device: str
    kind: DeviceKind
    host: str
    port: int
    unit: int
    registers: tuple[RegisterSpec, ...]
    poll_interval_s: float = 10.0
    timeout_s: float = 2.0
    backoff_max_s: float = 300.0
    offline_after: int = 2
    flag_events: tuple[tuple[str, str], ...] = ()  # (flag metric, stateful event) raised as the flag changes

    @property
    def blocks(self) -> list[ReadBlock]:
        """The read requests one poll makes."""
        return plan_reads(self.registers)

    def backoff_s(self, failures: int) -> float:
        """Delay before the next attempt after ``failures`` failed polls in a row."""
        if failures <= 0:
            return self.poll_interval_s
        return float(min(self.poll_interval_s * 2 ** (failures - 1), self.backoff_max_s))


class ModbusDeviceEntry(BaseModel):
    """One polled device of a ``type: modbus`` entry; unset numbers come from the entry's own."""

    model_config = ConfigDict(extra="forbid")

    device: str
    kind: DeviceKind
    host: str = Field(min_length=1)  # IP address or name
    map: str | list[Any]  # a name in register_maps, or the registers themselves
    port: int = Field(502, ge=1, le=65535)
    unit: int = Field(1, ge=0, le=255)
    poll_interval_s: float | None = Field(None, ge=0.01, le=86_400)
    timeout_s: float | None = Field(None, ge=0.01, le=600)
    backoff_max_s: float | None = Field(None, ge=0.01, le=86_400)
    offline_after: int | None = Field(None, ge=1, le=1000)
    flag_events: dict[str, str] | None = None  # flag metric -> stateful event (default: the kind's)

    @field_validator("kind")
    @classmethod
    def _modbus_kind(cls, value: DeviceKind) -> DeviceKind:
        if value not in MODBUS_KINDS:
            raise ValueError(
                _("kind must be one of {names}", names=", ".join(k.value for k in MODBUS_KINDS))
            )
        return value


class ModbusConfig(BaseModel):
    """Options of a ``type: modbus`` connector (docs/gateway-connectors.md)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["modbus"] = "modbus"
    name: str = "modbus"
    devices: list[ModbusDeviceEntry] = Field(min_length=1)
    register_maps: dict[str, list[Any]] = Field(default_factory=dict)  # name -> registers (edge codec)
    poll_interval_s: float = Field(_DEFAULTS["poll_interval_s"], ge=0.01, le=86_400)
    timeout_s: float = Field(_DEFAULTS["timeout_s"], ge=0.01, le=86_400)
    backoff_max_s: float = Field(_DEFAULTS["backoff_max_s"], ge=0.01, le=86_400)
    offline_after: int = Field(2, ge=1, le=1000)
    flag_events: dict[DeviceKind, dict[str, str]] = Field(default_factory=dict)  # kind -> {flag: event}
    connections_per_endpoint: int = Field(0, ge=0, le=64)  # 0: one connection per device


def parse_devices(config: ModbusConfig, context: ConnectorContext) -> list[ModbusDevice]:
    """Devices of a validated ``type: modbus`` entry, with their register maps; ConnectorConfigError
    naming the device or register in trouble."""
    devices: list[ModbusDevice] = []
    for i, entry in enumerate(config.devices):
        at = f"devices.{i}"
        kind = entry.kind
        if isinstance(entry.map, str) and entry.map not in config.register_maps:
            raise ConnectorConfigError(
                _("{at}: register map {raw_map} is not in register_maps", at=at, raw_map=repr(entry.map))
            )
        flag_map = entry.flag_events if entry.flag_events is not None else config.flag_events.get(kind)
        try:
            if isinstance(entry.map, str):
                registers = parse_register_map(kind, config.register_maps[entry.map], f"register_maps.{entry.map}")
            else:
                registers = parse_register_map(kind, entry.map, f"{at}.map")
            flag_events = parse_flag_events(kind, flag_map, registers, f"{at}.flag_events")
        except RegisterMapError as exc:
            raise ConnectorConfigError(str(exc)) from None
        devices.append(
            ModbusDevice(
                device=config_device(entry.device, context.compound, at),
                kind=kind,
                host=entry.host,
                port=entry.port,
                unit=entry.unit,
                registers=registers,
                poll_interval_s=entry.poll_interval_s or config.poll_interval_s,
                timeout_s=entry.timeout_s or config.timeout_s,
                backoff_max_s=entry.backoff_max_s or config.backoff_max_s,
                offline_after=entry.offline_after or config.offline_after,
                flag_events=flag_events,
            )
        )
    seen: set[str] = set()
    for dev in devices:
        if dev.device in seen:
            raise ConnectorConfigError(_("devices: device {device} is listed twice", device=dev.device))
        seen.add(dev.device)
    return devices


class _PollFailed(Exception):
    """A poll failed in a way that makes the device unreachable (counted already)."""


class ModbusConnector:
    """Polls Modbus TCP devices concurrently; one task and one connection per device."""

    def __init__(self, name: str, devices: list[ModbusDevice], connections_per_endpoint: int = 0) -> None:
        self.name = name
        self.connections_per_endpoint = connections_per_endpoint  # 0: one connection per device
        self._devices = devices
        self._counters: Counter[str] = Counter()
        self._online: dict[str, bool | None] = {d.device: None for d in devices}
        self._garbage_seen: Counter[tuple[str, str]] = Counter()
        self._streak: Counter[str] = Counter()  # failed polls in a row, per device
        self._flags: dict[tuple[str, str], bool] = {}  # (device, event) → active

    @classmethod
    def from_config(cls, spec: Mapping[str, Any], context: ConnectorContext) -> ModbusConnector:
        """Build from a ``type: modbus`` entry of gateway.yaml (validated by :class:`ModbusConfig`)."""
        config = parse_config(ModbusConfig, spec)
        return cls(config.name, parse_devices(config, context), config.connections_per_endpoint)

    def devices(self) -> list[DeviceInfo]:
        """Devices this connector polls."""
        return [DeviceInfo(d.device, d.kind, "modbus") for d in self._devices]

    def counters(self) -> Mapping[str, int]:
        """reads, readings, errors, timeouts, exceptions, bad_responses, connect_errors, garbage, events."""
        keys = (
            "reads",
            "readings",
            "errors",
            "timeouts",
            "exceptions",
            "bad_responses",
            "connect_errors",
            "garbage",
            "events",
        )
        return {k: self._counters[k] for k in keys}

    def online(self) -> Mapping[str, bool | None]:
        """Each device's last known state (None before its first poll)."""
        return dict(self._online)

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Poll every device until ``stop`` is set."""
        pools: dict[tuple[str, int], asyncio.Queue[AsyncModbusTcpClient]] = {}
        if self.connections_per_endpoint:
            for (host, port), devs in self._endpoints().items():
                pool: asyncio.Queue[AsyncModbusTcpClient] = asyncio.Queue()
                timeout = max(d.timeout_s for d in devs)
                for n in range(min(self.connections_per_endpoint, len(devs))):
                    pool.put_nowait(_client(host, port, timeout, f"{host}:{port}#{n}"))
                pools[(host, port)] = pool
        try:
            await asyncio.gather(
                *(self._serve(d, sink, stop, pools.get((d.host, d.port))) for d in self._devices)
            )
        finally:
            for pool in pools.values():
                while not pool.empty():
                    pool.get_nowait().close()

    def _endpoints(self) -> dict[tuple[str, int], list[ModbusDevice]]:
        out: dict[tuple[str, int], list[ModbusDevice]] = {}
        for dev in self._devices:
            out.setdefault((dev.host, dev.port), []).append(dev)
        return out

    async def _serve(
        self,
        dev: ModbusDevice,
        sink: Sink,
        stop: asyncio.Event,
        pool: asyncio.Queue[AsyncModbusTcpClient] | None,
    ) -> None:
        own = _client(dev.host, dev.port, dev.timeout_s, dev.device) if pool is None else None
        failures = 0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                client = own or await _borrow(pool, stop)  # type: ignore[arg-type]
                if client is None:
                    break
                started = loop.time()
                try:
                    await self._poll(client, dev, sink)
                    failures = self._streak[dev.device] = 0
                    if self._online[dev.device] is not True:
                        self._liveness(dev, sink, online=True)
                except _PollFailed:
                    failures = self._streak[dev.device] = failures + 1
                    client.close()
                    if failures >= dev.offline_after and self._online[dev.device] is not False:
                        self._liveness(dev, sink, online=False)
                except Exception:  # one device's surprise must not stop the others
                    failures = self._streak[dev.device] = failures + 1
                    self._counters["errors"] += 1
                    log.exception(
                        "modbus %s: unexpected error polling %s",
                        self.name,
                        dev.device,
                    )
                    client.close()
                finally:
                    if pool is not None:
                        pool.put_nowait(client)
                delay = dev.backoff_s(failures) - (loop.time() - started if failures == 0 else 0.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(delay, 0.0))
        finally:
            if own is not None:
                own.close()

    def _liveness(self, dev: ModbusDevice, sink: Sink, *, online: bool) -> None:
        self._online[dev.device] = online
        self._counters["events"] += 1
        log.info("modbus %s: %s is %s", self.name, dev.device, "online" if online else "offline")
        sink.events([Event(dev.device, dev.kind, now_ms(), "online" if online else "offline")])

    async def _poll(self, client: AsyncModbusTcpClient, dev: ModbusDevice, sink: Sink) -> None:
        if not client.connected:
            connected = await client.connect()
            if not connected:
                self._fail(dev, "connect_errors", f"cannot connect to {dev.host}:{dev.port}")
        values: dict[str, float] = {}
        read = False
        for block in dev.blocks:
            words = await self._read(client, dev, block)
            if words is None:
                continue  # an exception answer: the device is there (online) but refused the read
            read = True
            decoded, garbage = decode_block(dev.kind, block, words)
            values.update(decoded)
            for bad in garbage:
                self._counters["garbage"] += 1
                seen = self._garbage_seen[(dev.device, bad.metric)] = (
                    self._garbage_seen[(dev.device, bad.metric)] + 1
                )
                if seen == 1 or seen % 100 == 0:  # a stuck register must not flood the log
                    log.warning(
                        "modbus %s: %s garbage register refused (%d times): %s",
                        self.name,
                        dev.device,
                        seen,
                        bad.detail,
                    )
        if not read:
            return
        self._counters["reads"] += 1
        if values:
            ts = now_ms()
            self._counters["readings"] += len(values)
            sink.samples([Sample(dev.device, dev.kind, ts, values)])
            self._flag_events(dev, values, ts, sink)

    def _flag_events(self, dev: ModbusDevice, values: Mapping[str, float], ts: int, sink: Sink) -> None:
        """Raise or clear the stateful events tied to flag registers (a flag already set at the first read raises)."""
        events: list[Event] = []
        for metric, event in dev.flag_events:
            if metric not in values:
                continue
            active = values[metric] >= 0.5
            last = self._flags.get((dev.device, event))
            if last != active and (last is not None or active):
                events.append(Event(dev.device, dev.kind, ts, event, active, {"source": metric}))
            self._flags[(dev.device, event)] = active
        if events:
            self._counters["events"] += len(events)
            sink.events(events)

    async def _read(
        self, client: AsyncModbusTcpClient, dev: ModbusDevice, block: ReadBlock
    ) -> list[int] | None:
        """Registers of one block, None after a Modbus exception; raises _PollFailed when unreachable."""
        what = f"{block.register.value} {block.address}..{block.address + block.count - 1} unit {dev.unit}"
        reader = (
            client.read_holding_registers
            if block.register is RegisterType.HOLDING
            else client.read_input_registers
        )
        try:
            # the client has its own timeout; the outer one guards against a connection that hangs
            response = await asyncio.wait_for(
                reader(block.address, count=block.count, device_id=dev.unit), dev.timeout_s * 2 + 1
            )
        except (ModbusIOException, TimeoutError):
            self._fail(dev, "timeouts", f"no answer within {dev.timeout_s:g} s reading {what}")
        except ConnectionException as exc:
            self._fail(dev, "connect_errors", f"connection lost reading {what}: {exc}")
        except ModbusException as exc:
            self._fail(dev, "errors", f"reading {what}: {exc}")
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            self._counters["exceptions"] += 1
            self._counters["errors"] += 1
            log.warning(
                "modbus %s: %s answered %s with exception %d (%s)",
                self.name,
                dev.device,
                what,
                code,
                _EXCEPTION_NAMES.get(code, "unknown"),
            )
            return None
        registers = list(getattr(response, "registers", []))
        if len(registers) != block.count:  # not the answer to this request: none of it is used
            self._counters["bad_responses"] += 1
            self._counters["errors"] += 1
            seen = self._garbage_seen[(dev.device, "")] = self._garbage_seen[(dev.device, "")] + 1
            if seen == 1 or seen % 100 == 0:
                log.warning(
                    "modbus %s: %s answered %s with %d registers instead of %d; refused (%d times)",
                    self.name, dev.device, what, len(registers), block.count, seen,
                )  # fmt: skip
            return None
        return registers

    def _fail(self, dev: ModbusDevice, counter: str, detail: str) -> NoReturn:
        self._counters[counter] += 1
        if counter != "errors":
            self._counters["errors"] += 1
        streak = self._streak[dev.device] + 1
        if streak == 1 or streak % 100 == 0:  # the first failure of a streak, then every 100th
            log.warning(
                "modbus %s: %s (%s:%d): %s (failure %d in a row)",
                self.name, dev.device, dev.host, dev.port, detail, streak,
            )  # fmt: skip
        raise _PollFailed(detail)


def _client(host: str, port: int, timeout: float, name: str) -> AsyncModbusTcpClient:
    # no retries and no automatic reconnect: the connector's own backoff decides when to try again
    return AsyncModbusTcpClient(host, port=port, timeout=timeout, retries=0, reconnect_delay=0, name=name)


async def _borrow(
    pool: asyncio.Queue[AsyncModbusTcpClient], stop: asyncio.Event
) -> AsyncModbusTcpClient | None:
    """A connection from the endpoint's pool, or None once ``stop`` is set."""
    getter = asyncio.ensure_future(pool.get())
    stopper = asyncio.ensure_future(stop.wait())
    done, _pending = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if getter in done:
        return getter.result()
    getter.cancel()
    return None
