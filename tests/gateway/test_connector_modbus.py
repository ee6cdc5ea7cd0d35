"""Modbus connector: register decoding (pure) and polling real pymodbus servers."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Any

import pytest

from peertools import ListSink, wait_for
from sitewatch.contract import DeviceKind
from sitewatch.devtools.services import free_port
from sitewatch.gateway.connectors.base import ConnectorConfigError, ConnectorContext, build_connector
from sitewatch.gateway.connectors.modbus import ModbusConnector
from sitewatch.simulators.frontends.modbus_devices import (
    REGISTER_MAPS,
    ModbusDeviceServer,
    ModbusUnit,
    register_map_config,
)

CTX = ConnectorContext(compound="C001", gateway="gw1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "camera"}, "kind must be one of"),
        ({"host": ""}, r"devices\.0\.host: String should have at least 1 character"),
        ({"hots": "x"}, r"devices\.0\.hots: unknown field"),
        ({"map": [{"metric": "speed", "address": 0}]}, "has no metric 'speed'"),
        ({"map": [{"metric": "battery", "address": 0, "type": "u64"}]}, "u16|i16|u32|i32|f32"),
        ({"map": [{"metric": "battery", "address": 0, "unit": "V"}]}, "convert with scale"),
        ({"map": [{"metric": "battery", "address": -1}]}, "address must be an integer"),
        ({"map": "nope"}, "not in register_maps"),
        ({"port": 70000}, r"devices\.0\.port: Input should be less than or equal to 65535"),
    ],
)
def test_config_errors_are_clear(change: dict[str, Any], message: str) -> None:
    device = {"device": "WM-1", "kind": "water_meter", "host": "127.0.0.1", "map": "wm"}
    spec: dict[str, Any] = {
        "type": "modbus",
        "register_maps": {"wm": register_map_config(DeviceKind.WATER_METER)},
    }
    spec["devices"] = [{**device, **change}]
    with pytest.raises(ConnectorConfigError, match=message):
        build_connector(spec, CTX)


# --- against real servers --------------------------------------------------------------------------


class MeterModel:
    """A water meter whose register advances on every read."""

    def __init__(self) -> None:
        self.volume = 1234.5

    def __call__(self) -> dict[str, float]:
        self.volume += 0.01
        return {
            "volume_register": round(self.volume, 3),
            "flow": 1.25,
            "pressure": 0.32,
            "battery": 87.5,
            "tamper": 0,
            "reverse_flow": 0,
        }


def elevator_model() -> dict[str, float]:
    return {
        "trip_count": 120_000,
        "door_cycles": 250_000,
        "door_faults": 3,
        "vibration_rms": 0.25,
        "motor_current": 18.4,
        "levelling_error": -4,
        "car_load": 35.0,
        "run_state": 1,
        "entrapment": 0,
    }


async def mute_server(port: int) -> asyncio.Server:
    """Accepts connections and reads requests but never answers (a hung device)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while await reader.read(1024):
                pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


def device(local: str, kind: str, port: int, unit: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "device": local,
        "kind": kind,
        "host": "127.0.0.1",
        "port": port,
        "unit": unit,
        "map": kind,
        **extra,
    }


def connector_spec(devices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "modbus",
        "name": "meters",
        "poll_interval_s": 0.05,
        "timeout_s": 0.3,
        "backoff_max_s": 0.4,
        "register_maps": {k.value: register_map_config(k) for k in REGISTER_MAPS},
        "devices": devices,
        **extra,
    }


def test_polls_real_server_and_isolates_faulty_devices() -> None:
    async def scenario() -> None:
        port, mute_port, closed_port = free_port(), free_port(), free_port()
        meter = ModbusUnit(1, REGISTER_MAPS[DeviceKind.WATER_METER], MeterModel())
        lift = ModbusUnit(2, REGISTER_MAPS[DeviceKind.ELEVATOR], elevator_model)
        broken = ModbusUnit(3, REGISTER_MAPS[DeviceKind.WATER_METER], MeterModel(), fault="exception")
        junk = ModbusUnit(4, REGISTER_MAPS[DeviceKind.WATER_METER], MeterModel(), fault="garbage")
        server = ModbusDeviceServer([meter, lift, broken, junk], port=port)
        await server.start()
        hung = await mute_server(mute_port)
        connector = build_connector(
            connector_spec(
                [
                    # answering devices get a generous timeout so a loaded machine cannot make them flap
                    device("WM-1", "water_meter", port, 1, timeout_s=2),
                    device("EL-1", "elevator", port, 2, timeout_s=2),
                    device("WM-EXC", "water_meter", port, 3, timeout_s=2),
                    device("WM-JUNK", "water_meter", port, 4, timeout_s=2),
                    device("WM-HUNG", "water_meter", mute_port, 1),
                    device("WM-GONE", "water_meter", closed_port, 1),
                ]
            ),
            CTX,
        )
        assert isinstance(connector, ModbusConnector)
        assert {d.device for d in connector.devices()} >= {"C001-WM-1", "C001-EL-1"}
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        try:
            await wait_for(
                lambda: (
                    "offline" in sink.names("C001-WM-HUNG")
                    and "offline" in sink.names("C001-WM-GONE")
                    and len(sink.of("C001-WM-1")) >= 5
                )
            )
            # the hung device takes 0.3 s per timeout; the good meter is polled every 0.05 s meanwhile
            hung_since = len(sink.of("C001-WM-1"))
            await asyncio.sleep(1.0)
            assert len(sink.of("C001-WM-1")) - hung_since >= 5
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            hung.close()
            await server.stop()

        first = sink.of("C001-WM-1")[0]
        assert first.kind is DeviceKind.WATER_METER
        assert first.values["flow"] == pytest.approx(1.25)
        assert first.values["pressure"] == pytest.approx(0.32)
        assert first.values["battery"] == pytest.approx(87.5)
        assert first.values["volume_register"] > 1234.5
        volumes = [s.values["volume_register"] for s in sink.of("C001-WM-1")]
        assert volumes == sorted(volumes) and volumes[-1] > volumes[0]
        lift_values = sink.of("C001-EL-1")[0].values
        assert lift_values["trip_count"] == 120_000
        assert lift_values["levelling_error"] == -4
        assert lift_values["motor_current"] == pytest.approx(18.4)
        assert sink.names("C001-WM-1")[0] == "online"
        assert sink.names("C001-WM-HUNG") == ["offline"]
        assert sink.names("C001-WM-GONE") == ["offline"]
        # an exception answer: counted, no sample, and the device is still reachable
        assert sink.of("C001-WM-EXC") == []
        assert sink.names("C001-WM-EXC") == ["online"]
        # garbage registers: counted and refused, never a reading (all-ones is a legal u32 volume)
        junk_samples = sink.of("C001-WM-JUNK")
        assert junk_samples and all(set(s.values) == {"volume_register"} for s in junk_samples)
        counters = connector.counters()
        assert counters["exceptions"] >= 1
        assert counters["garbage"] >= 6
        assert counters["timeouts"] >= 1
        assert counters["connect_errors"] >= 1
        assert counters["reads"] >= 10
        assert counters["events"] == len(sink.event_list)

    asyncio.run(scenario())


def test_device_goes_offline_and_comes_back() -> None:
    async def scenario() -> None:
        port = free_port()
        meter = ModbusUnit(1, REGISTER_MAPS[DeviceKind.WATER_METER], MeterModel())
        server = ModbusDeviceServer([meter], port=port)
        await server.start()
        connector = build_connector(connector_spec([device("WM-1", "water_meter", port, 1)]), CTX)
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        try:
            await wait_for(lambda: sink.names("C001-WM-1") == ["online"])
            await server.stop()
            await wait_for(lambda: sink.names("C001-WM-1") == ["online", "offline"])
            before = len(sink.of("C001-WM-1"))
            server = ModbusDeviceServer([meter], port=port)
            await server.start()
            await wait_for(lambda: sink.names("C001-WM-1") == ["online", "offline", "online"])
            await wait_for(lambda: len(sink.of("C001-WM-1")) > before)
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            await server.stop()

    asyncio.run(scenario())


def test_devices_behind_one_endpoint_share_a_connection_pool() -> None:
    async def scenario() -> None:
        port = free_port()
        units = [ModbusUnit(u, REGISTER_MAPS[DeviceKind.WATER_METER], MeterModel()) for u in range(1, 7)]
        units[5].fault = "exception"
        server = ModbusDeviceServer(units, port=port)
        await server.start()
        spec = connector_spec([device(f"WM-{u}", "water_meter", port, u) for u in range(1, 7)])
        spec["connections_per_endpoint"] = 2
        connector = build_connector(spec, CTX)
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        try:
            await wait_for(lambda: all(len(sink.of(f"C001-WM-{u}")) >= 3 for u in range(1, 6)))
            assert server._server is not None
            assert 1 <= len(server._server.active_connections) <= 2
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            await server.stop()
        assert sink.of("C001-WM-6") == []
        assert connector.counters()["exceptions"] >= 1

    asyncio.run(scenario())


def test_flag_registers_raise_and_clear_stateful_events() -> None:
    async def scenario() -> None:
        port = free_port()
        lift_values = elevator_model()
        meter = MeterModel()
        tampered = {"tamper": 1}
        units = [
            ModbusUnit(1, REGISTER_MAPS[DeviceKind.ELEVATOR], lambda: lift_values),
            ModbusUnit(2, REGISTER_MAPS[DeviceKind.WATER_METER], lambda: {**meter(), **tampered}),
        ]
        server = ModbusDeviceServer(units, port=port)
        await server.start()
        spec = connector_spec(
            [
                device("EL-1", "elevator", port, 1, timeout_s=2),
                device("WM-1", "water_meter", port, 2, timeout_s=2),
            ],
            flag_events={"elevator": {"entrapment": "entrapment"}, "water_meter": {"tamper": "tamper"}},
        )
        connector = build_connector(spec, CTX)
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))

        def flags(device: str, name: str) -> list[bool | None]:
            return [e.active for e in sink.event_list if e.device == device and e.name == name]

        try:
            # a flag already set at the first read raises its event; a clear flag raises nothing
            await wait_for(lambda: flags("C001-WM-1", "tamper") == [True] and len(sink.of("C001-EL-1")) >= 2)
            assert flags("C001-EL-1", "entrapment") == []
            lift_values["entrapment"] = 1
            await wait_for(lambda: flags("C001-EL-1", "entrapment") == [True])
            lift_values["entrapment"] = 0
            tampered["tamper"] = 0
            await wait_for(
                lambda: (
                    flags("C001-EL-1", "entrapment") == [True, False]
                    and flags("C001-WM-1", "tamper") == [True, False]
                )
            )
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            await server.stop()
        raised = next(e for e in sink.event_list if e.name == "entrapment")
        assert raised.attrs == {"source": "entrapment"} and raised.kind is DeviceKind.ELEVATOR

    asyncio.run(scenario())
    base = connector_spec([device("EL-1", "elevator", 1502, 1)])
    with pytest.raises(ConnectorConfigError, match="no flag metric"):
        build_connector({**base, "flag_events": {"elevator": {"car_load": "overload"}}}, CTX)
    with pytest.raises(ConnectorConfigError, match="not a stateful"):
        build_connector({**base, "flag_events": {"elevator": {"entrapment": "emergency_call"}}}, CTX)


class HostileModbusServer:
    """A Modbus TCP peer that answers each unit in its own wrong way (raw frames, no library).

    Unit 1 answers correctly (every register 1); 2 with two registers too few; 3 with two too many;
    4 with another unit's id (an RS485 gateway handing it another unit's answer); 5 with the
    previous request's transaction id (a late answer); 6 with bytes that are not Modbus at all;
    7 byte by byte, slower than any timeout.
    """

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            tid, _, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
            function, _, count = struct.unpack(">BHH", (await reader.readexactly(length - 1))[:5])
            n = {2: count - 2, 3: count + 2}.get(unit, count)
            body = struct.pack(">BB", function, 2 * n) + b"\x00\x01" * n
            answer_unit = unit + 10 if unit == 4 else unit
            answer_tid = (tid - 1 or 65000) if unit == 5 else tid
            frame = struct.pack(">HHHB", answer_tid, 0, len(body) + 1, answer_unit) + body
            if unit == 6:
                frame = b"\xff\xfe\x00\x01" * 8
            if unit == 7:
                for byte in frame:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.2)
                continue
            writer.write(frame)
            await writer.drain()


def test_a_peer_that_answers_wrongly_never_gives_a_reading_and_harms_no_other_device() -> None:
    async def scenario() -> None:
        server = HostileModbusServer()
        await server.start()
        devices = [device(f"WM-{u}", "water_meter", server.port, u) for u in range(1, 8)]
        connector = build_connector(connector_spec(devices), CTX)
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        try:
            await wait_for(
                lambda: len(sink.of("C001-WM-1")) >= 5 and connector.counters()["bad_responses"] >= 4
            )
            await wait_for(lambda: all(sink.names(f"C001-WM-{u}") == ["offline"] for u in (4, 5, 6, 7)))
            good = len(sink.of("C001-WM-1"))
            await wait_for(lambda: len(sink.of("C001-WM-1")) >= good + 5)  # still polled at its pace
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            await server.stop()
        assert sink.of("C001-WM-1")[0].values["battery"] == pytest.approx(0.1)
        for unit in range(2, 8):  # none of their answers became a reading
            assert sink.of(f"C001-WM-{unit}") == [], unit
        # too few or too many registers: refused as a whole, counted; the device did answer (online)
        assert sink.names("C001-WM-2") == sink.names("C001-WM-3") == ["online"]
        # another unit's id, a late answer, garbage, a trickle: never taken as this unit's answer
        # (pymodbus discards what does not match the request); the read times out, the device goes offline
        counters = connector.counters()
        assert counters["timeouts"] >= 4 and counters["garbage"] == 0

    asyncio.run(scenario())
