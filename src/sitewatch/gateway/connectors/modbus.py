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
from typing import Any, NoReturn

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
from .base import ConnectorConfigError, ConnectorContext, Sink, config_device, config_number

log = logging.getLogger(__name__)
# pymodbus logs each failed request without saying which device; this connector logs them itself
logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)
_STATE = {True: ("online", "设备在线"), False: ("offline", "设备离线")}

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


def parse_devices(spec: Mapping[str, Any], context: ConnectorContext, where: str) -> list[ModbusDevice]:
    """Devices of a ``type: modbus`` configuration entry; raises ConnectorConfigError when invalid."""
    maps = spec.get("register_maps", {})
    if not isinstance(maps, Mapping):
        raise ConnectorConfigError(
            f"{where}.register_maps: must map a name to a list of registers / 须把名称映射到寄存器列表"
        )
    entries = spec.get("devices")
    if not isinstance(entries, list) or not entries:
        raise ConnectorConfigError(
            f"{where}.devices: list at least one device (device, kind, host, map) / 至少列出一台设备（device、kind、host、map）"
        )
    defaults = {k: config_number(spec, k, v, 0.01, 86_400, where) for k, v in _DEFAULTS.items()}
    offline_after = int(config_number(spec, "offline_after", 2, 1, 1000, where))
    flag_defaults = spec.get("flag_events") or {}  # kind → {flag metric: event}
    if not isinstance(flag_defaults, Mapping):
        raise ConnectorConfigError(
            f"{where}.flag_events: must map a kind to {{flag metric: event}} / 须按设备类型映射标志量与事件"
        )
    devices: list[ModbusDevice] = []
    for i, entry in enumerate(entries):
        at = f"{where}.devices[{i}]"
        if not isinstance(entry, Mapping):
            raise ConnectorConfigError(f"{at}: must be a mapping / 必须是键值映射")
        try:
            kind = DeviceKind(str(entry.get("kind")))
        except ValueError:
            kind = DeviceKind.GATEWAY  # refused just below
        if kind not in MODBUS_KINDS:
            names = ", ".join(k.value for k in MODBUS_KINDS)
            raise ConnectorConfigError(
                f"{at}: kind must be one of {names}, got {entry.get('kind')!r} / 设备类型不支持"
            )
        raw_map = entry.get("map")
        if isinstance(raw_map, str) and raw_map not in maps:
            raise ConnectorConfigError(
                f"{at}: register map {raw_map!r} is not in register_maps / 寄存器表未在 register_maps 中定义"
            )
        flag_map = entry.get("flag_events", flag_defaults.get(kind.value))
        try:
            if isinstance(raw_map, str):
                registers = parse_register_map(kind, maps[raw_map], f"{where}.register_maps.{raw_map}")
            else:
                registers = parse_register_map(kind, raw_map, f"{at}.map")
            flag_events = parse_flag_events(kind, flag_map, registers, f"{at}.flag_events")
        except RegisterMapError as exc:
            raise ConnectorConfigError(str(exc)) from None
        host = entry.get("host")
        if not isinstance(host, str) or not host:
            raise ConnectorConfigError(
                f"{at}: host is required (IP address or name) / 必须填写 host（IP 地址或主机名）"
            )
        devices.append(
            ModbusDevice(
                device=config_device(entry.get("device"), context.compound, at),
                kind=kind,
                host=host,
                port=int(config_number(entry, "port", 502, 1, 65535, at)),
                unit=int(config_number(entry, "unit", 1, 0, 255, at)),
                registers=registers,
                poll_interval_s=config_number(
                    entry, "poll_interval_s", defaults["poll_interval_s"], 0.01, 86_400, at
                ),
                timeout_s=config_number(entry, "timeout_s", defaults["timeout_s"], 0.01, 600, at),
                backoff_max_s=config_number(
                    entry, "backoff_max_s", defaults["backoff_max_s"], 0.01, 86_400, at
                ),
                offline_after=int(config_number(entry, "offline_after", offline_after, 1, 1000, at)),
                flag_events=flag_events,
            )
        )
    seen: set[str] = set()
    for dev in devices:
        if dev.device in seen:
            raise ConnectorConfigError(f"{where}.devices: device {dev.device} is listed twice / 设备重复")
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
        """Build from a ``type: modbus`` entry of gateway.yaml."""
        name = str(spec.get("name") or "modbus")
        where = f"connectors.{name}"
        shared = int(config_number(spec, "connections_per_endpoint", 0, 0, 64, where))
        return cls(name, parse_devices(spec, context, where), shared)

    def devices(self) -> list[DeviceInfo]:
        """Devices this connector polls."""
        return [DeviceInfo(d.device, d.kind, "modbus") for d in self._devices]

    def counters(self) -> Mapping[str, int]:
        """reads, readings, errors, timeouts, exceptions, connect_errors, garbage, events."""
        keys = (
            "reads",
            "readings",
            "errors",
            "timeouts",
            "exceptions",
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
                        "modbus %s: unexpected error polling %s / 轮询设备时发生意外错误",
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
        log.info("modbus %s: %s is %s / %s", self.name, dev.device, *_STATE[online])
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
                        "modbus %s: %s garbage register refused (%d times): %s / 寄存器数值异常，已丢弃",
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
                "modbus %s: %s answered %s with exception %d (%s) / 设备返回 Modbus 异常",
                self.name,
                dev.device,
                what,
                code,
                _EXCEPTION_NAMES.get(code, "unknown"),
            )
            return None
        registers = list(getattr(response, "registers", []))
        return registers

    def _fail(self, dev: ModbusDevice, counter: str, detail: str) -> NoReturn:
        self._counters[counter] += 1
        if counter != "errors":
            self._counters["errors"] += 1
        streak = self._streak[dev.device] + 1
        if streak == 1 or streak % 100 == 0:  # the first failure of a streak, then every 100th
            log.warning(
                "modbus %s: %s (%s:%d): %s (failure %d in a row) / 设备读取失败",
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
    done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if getter in done:
        return getter.result()
    getter.cancel()
    return None
