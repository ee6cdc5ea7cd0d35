"""Camera connector: RTSP/TCP probes against real sockets (an RTSP server, a plain TCP port, a closed port)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from peertools import ListSink, wait_for
from sitewatch.contract import DeviceKind
from sitewatch.devtools.services import free_port
from sitewatch.gateway.connectors.base import ConnectorConfigError, ConnectorContext, build_connector
from sitewatch.gateway.connectors.camera import CameraConnector
from sitewatch.gateway.connectors.camera_onvif import OnvifError, http_request, parse_response
from sitewatch.gateway.connectors.camera_probe import ProbeMode, parse_status_line, probe, rtsp_options
from sitewatch.simulators.frontends.onvif_cameras import _ENVELOPE, OnvifCamera, date_time_response
from sitewatch.simulators.frontends.rtsp_cameras import RtspCamera

CTX = ConnectorContext(compound="C001", gateway="gw1")


async def plain_tcp_server(greeting: bytes = b"") -> asyncio.Server:
    """A port that accepts connections but speaks no RTSP (sends ``greeting``, then waits)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(OSError):
                if greeting:
                    writer.write(greeting)
                    await writer.drain()
                while await reader.read(4096):
                    pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_rtsp_helpers() -> None:
    request = rtsp_options("10.0.0.5", 554, "/stream1", 7)
    assert request.startswith(b"OPTIONS rtsp://10.0.0.5:554/stream1 RTSP/1.0\r\nCSeq: 7\r\n")
    assert request.endswith(b"\r\n\r\n")
    assert parse_status_line(b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n\r\n") == "RTSP/1.0 401 Unauthorized"
    assert parse_status_line(b"HTTP/1.1 200 OK\r\n\r\n") is None
    assert parse_status_line(b"") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host": None}, r"cameras\.0\.host: Input should be a valid string"),
        ({"host": ""}, r"cameras\.0\.host: String should have at least 1 character"),
        ({"probe": "onvif2"}, r"cameras\.0\.probe: Input should be 'auto', 'rtsp', 'tcp' or 'onvif'"),
        ({"port": 0}, r"cameras\.0\.port: Input should be greater than or equal to 1"),
        ({"porte": 80}, r"cameras\.0\.porte: unknown field"),
        ({"device": "bad/name"}, "invalid device name"),
    ],
)
def test_config_errors(change: dict[str, Any], message: str) -> None:
    camera = {"device": "CA-1", "host": "127.0.0.1", **change}
    with pytest.raises(ConnectorConfigError, match=message):
        build_connector({"type": "camera", "cameras": [camera]}, CTX)


def test_probe_modes_against_real_sockets() -> None:
    async def scenario() -> None:
        camera = RtspCamera(port=0)
        await camera.start()
        plain = await plain_tcp_server(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")
        plain_port = int(plain.sockets[0].getsockname()[1])
        closed = free_port()
        try:
            rtsp = await probe("127.0.0.1", camera.port, ProbeMode.AUTO, 1.0, "/live")
            assert rtsp.ok and rtsp.protocol == "rtsp" and rtsp.detail == "RTSP/1.0 200 OK"
            assert rtsp.latency_ms is not None and 0 <= rtsp.latency_ms < 1000
            tcp = await probe("127.0.0.1", plain_port, ProbeMode.AUTO, 0.3)
            assert tcp.ok and tcp.protocol == "tcp"
            strict = await probe("127.0.0.1", plain_port, ProbeMode.RTSP, 0.3)
            assert not strict.ok and "does not speak RTSP" in strict.detail
            gone = await probe("127.0.0.1", closed, ProbeMode.TCP, 0.3)
            assert not gone.ok and "connect failed" in gone.detail
            assert camera.requests == 1
        finally:
            plain.close()
            await camera.stop()

    asyncio.run(scenario())


def test_connector_reports_state_latency_and_changes() -> None:
    async def scenario() -> None:
        port = free_port()
        camera = RtspCamera(port=port)
        await camera.start()
        silent = await plain_tcp_server()  # accepts, never answers: RTSP probe times out
        silent_port = int(silent.sockets[0].getsockname()[1])
        closed = free_port()
        spec = {
            "type": "camera",
            "name": "cams",
            "interval_s": 0.05,
            "timeout_s": 0.3,
            "offline_after": 2,
            "cameras": [
                {
                    "device": "CA-1",
                    "host": "127.0.0.1",
                    "port": port,
                    "probe": "rtsp",
                    "path": "/ch1",
                    "timeout_s": 2,
                },
                {"device": "CA-SILENT", "host": "127.0.0.1", "port": silent_port, "probe": "rtsp"},
                {"device": "CA-GONE", "host": "127.0.0.1", "port": closed, "probe": "tcp"},
            ],
        }
        connector = build_connector(spec, CTX)
        assert isinstance(connector, CameraConnector)
        assert [d.kind for d in connector.devices()] == [DeviceKind.CAMERA] * 3
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        try:
            await wait_for(lambda: sink.names("C001-CA-1") == ["online"] and len(sink.of("C001-CA-1")) >= 3)
            await wait_for(lambda: sink.names("C001-CA-SILENT") == ["offline"])
            await wait_for(lambda: sink.names("C001-CA-GONE") == ["offline"])
            await camera.stop()
            await wait_for(lambda: sink.names("C001-CA-1") == ["online", "offline"])
            camera = RtspCamera(port=port)
            await camera.start()
            await wait_for(lambda: sink.names("C001-CA-1") == ["online", "offline", "online"])
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            silent.close()
            await camera.stop()
        good = [s for s in sink.of("C001-CA-1") if s.values["online"] == 1.0]
        assert good and all(0 <= s.values["latency"] < 1000 for s in good)
        assert any(s.values == {"online": 0.0} for s in sink.of("C001-CA-1"))
        assert all(s.values == {"online": 0.0} for s in sink.of("C001-CA-GONE"))
        offline = next(e for e in sink.event_list if e.device == "C001-CA-SILENT")
        assert "no RTSP answer" in offline.attrs["reason"]
        counters = connector.counters()
        assert counters["timeouts"] >= 2
        assert counters["failures"] >= counters["timeouts"] + 2
        assert counters["events"] == len(sink.event_list) == 5

    asyncio.run(scenario())


def test_onvif_response_parsing() -> None:
    now = datetime(2026, 11, 25, 8, 30, 15, tzinfo=UTC)
    body = _ENVELOPE.format(body=date_time_response(now)).encode()
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\n\r\n" + body
    assert parse_response(ok) == now
    for raw, reason in [
        (b"HTTP/1.1 401 Unauthorized\r\n\r\n", "HTTP 401"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP response"),
        (b"HTTP/1.1 200 OK\r\n\r\n<not xml", "not XML"),
        (b"HTTP/1.1 200 OK\r\n\r\n<a/>", "no UTCDateTime"),
        (b'HTTP/1.1 200 OK\r\n\r\n<!DOCTYPE x [<!ENTITY a "b">]><a/>', "DOCTYPE"),
        (b"HTTP/1.1 200 OK\r\n", "no complete HTTP response"),
    ]:
        with pytest.raises(OnvifError, match=reason):
            parse_response(raw)
    request = http_request("10.0.0.9", 80, "/onvif/device_service")
    assert request.startswith(b"POST /onvif/device_service HTTP/1.1\r\nHost: 10.0.0.9:80\r\n")
    assert request.endswith(b"</s:Envelope>") and b"GetSystemDateAndTime" in request


def test_onvif_probe_against_a_real_http_server() -> None:
    async def scenario() -> None:
        good = OnvifCamera(port=0)
        drifting = OnvifCamera(port=0, clock_offset_s=-600)
        await good.start()
        await drifting.start()
        rtsp_only = RtspCamera(port=0)
        await rtsp_only.start()
        spec = {
            "type": "camera",
            "interval_s": 0.05,
            "timeout_s": 2,
            "cameras": [
                {"device": "CA-1", "host": "127.0.0.1", "port": good.port, "probe": "onvif"},
                {"device": "CA-2", "host": "127.0.0.1", "port": drifting.port, "probe": "onvif"},
                {
                    "device": "CA-3",
                    "host": "127.0.0.1",
                    "port": rtsp_only.port,
                    "probe": "onvif",
                    "offline_after": 1,
                },
            ],
        }
        connector = build_connector(spec, CTX)
        assert {d.protocol for d in connector.devices()} == {"onvif"}
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        try:
            await wait_for(
                lambda: (
                    sink.names("C001-CA-1") == ["online"]
                    and sink.names("C001-CA-2") == ["online"]
                    and sink.names("C001-CA-3") == ["offline"]
                )
            )
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            for server in (good, drifting, rtsp_only):
                await server.stop()
        online = {e.device: e.attrs for e in sink.event_list if e.name == "online"}
        assert abs(float(online["C001-CA-1"]["clock_offset_s"])) <= 2
        assert -602 <= float(online["C001-CA-2"]["clock_offset_s"]) <= -598
        assert online["C001-CA-1"]["protocol"] == "onvif"
        offline = next(e for e in sink.event_list if e.device == "C001-CA-3")
        assert "ONVIF" in offline.attrs["reason"]
        assert connector.counters()["clock_drift"] == 1
        assert all(s.values["latency"] < 2000 for s in sink.of("C001-CA-1"))
        assert good.requests >= 1

    asyncio.run(scenario())


async def hostile_server(behaviour: str) -> asyncio.Server:
    """A camera port that misbehaves: ``trickle`` sends a valid answer one byte every 0.1 s,
    ``endless`` streams bytes without ever ending a header, ``mute`` reads and never answers or
    closes; none of them ever closes the connection itself."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await reader.read(4096)
            if behaviour == "trickle":
                for byte in b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n":
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.1)
            elif behaviour == "endless":
                while True:
                    writer.write(b"HTTP/1.1 200 OK-" + b"x" * 8192)
                    await writer.drain()
            await asyncio.sleep(3600)
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize(
    ("behaviour", "mode", "words"),
    [
        ("trickle", ProbeMode.RTSP, "no RTSP answer within 0.5 s"),
        ("trickle", ProbeMode.ONVIF, "no ONVIF answer within 0.5 s"),
        ("endless", ProbeMode.RTSP, "does not speak RTSP"),
        ("endless", ProbeMode.ONVIF, "ONVIF"),
        ("mute", ProbeMode.RTSP, "no RTSP answer within 0.5 s"),
        ("mute", ProbeMode.ONVIF, "no ONVIF answer within 0.5 s"),
    ],
)
def test_a_slow_endless_or_mute_camera_costs_one_timeout_and_no_memory(
    behaviour: str, mode: ProbeMode, words: str
) -> None:
    async def scenario() -> None:
        server = await hostile_server(behaviour)
        port = int(server.sockets[0].getsockname()[1])
        try:
            started = time.monotonic()
            result = await probe("127.0.0.1", port, mode, 0.5)
            # bounded time: the connect and the answer each get the timeout, the trickle no more
            assert time.monotonic() - started < 2 * 0.5 + 0.5
            assert not result.ok and words in result.detail, result
        finally:
            server.close()

    asyncio.run(scenario())


def test_a_misbehaving_camera_does_not_delay_the_others() -> None:
    async def scenario() -> None:
        good = RtspCamera(port=0)
        await good.start()
        servers = [await hostile_server(b) for b in ("trickle", "endless", "mute")]
        cameras = [{"device": "CA-1", "host": "127.0.0.1", "port": good.port, "probe": "rtsp"}] + [
            {
                "device": f"CA-{i + 2}",
                "host": "127.0.0.1",
                "port": int(s.sockets[0].getsockname()[1]),
                "probe": "rtsp",
            }
            for i, s in enumerate(servers)
        ]
        spec = {"type": "camera", "interval_s": 0.1, "timeout_s": 0.5, "offline_after": 1, "cameras": cameras}
        connector = build_connector(spec, CTX)
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        started = time.monotonic()
        try:
            await wait_for(lambda: len(sink.of("C001-CA-1")) >= 10, timeout=20)
            elapsed = time.monotonic() - started
            await wait_for(lambda: all(sink.names(f"C001-CA-{i}") == ["offline"] for i in (2, 3, 4)))
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            for server in servers:
                server.close()
            await good.stop()
        # the good camera kept its own pace (10 probes every 0.1 s, plus their answers)
        assert elapsed < 10 * (0.1 + 0.5)
        assert sink.names("C001-CA-1") == ["online"]
        assert connector.counters()["timeouts"] >= 2

    asyncio.run(scenario())
