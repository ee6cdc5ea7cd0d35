"""Reachability probes for cameras: an RTSP OPTIONS request, an ONVIF call, or a plain TCP connect.

``rtsp``: connect, send ``OPTIONS``, and require an ``RTSP/1.x`` status line (any status: a 401
means the camera's RTSP service is alive and asks for credentials). ``tcp``: the connect alone.
``auto``: try RTSP; a port that accepts the connection but does not speak RTSP counts as reachable
over TCP. ``onvif``: GetSystemDateAndTime on the ONVIF device service (see camera_onvif.py), which
also gives the camera's clock offset. The latency is the time from connect start to the answer
(or to the connect, for TCP).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from enum import StrEnum

from .camera_onvif import OnvifError, get_system_date_and_time


class ProbeMode(StrEnum):
    """How a camera is probed."""

    AUTO = "auto"
    RTSP = "rtsp"
    TCP = "tcp"
    ONVIF = "onvif"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe found."""

    ok: bool
    latency_ms: float | None
    protocol: str  # "rtsp", "tcp" or "" when unreachable
    detail: str  # the RTSP status line, or why the probe failed
    timeout: bool = False
    clock_offset_s: float | None = None  # ONVIF: camera clock minus gateway clock


def rtsp_options(host: str, port: int, path: str, cseq: int = 1) -> bytes:
    """An RTSP/1.0 OPTIONS request for ``rtsp://host:port/path``."""
    url = f"rtsp://{host}:{port}/{path.lstrip('/')}"
    return f"OPTIONS {url} RTSP/1.0\r\nCSeq: {cseq}\r\nUser-Agent: sitewatch-gateway\r\n\r\n".encode("ascii")


def parse_status_line(data: bytes) -> str | None:
    """The RTSP status line of a response (e.g. ``RTSP/1.0 200 OK``), or None if it is not RTSP."""
    line = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode("latin-1", "replace").strip()
    parts = line.split(" ", 2)
    if len(parts) >= 2 and parts[0] in ("RTSP/1.0", "RTSP/1.1", "RTSP/2.0") and parts[1].isdigit():
        return line
    return None


async def probe(host: str, port: int, mode: ProbeMode, timeout_s: float, path: str = "") -> ProbeResult:
    """Probe one camera; never raises for network errors."""
    if mode is ProbeMode.ONVIF:
        return await _probe_onvif(host, port, timeout_s, path)
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except TimeoutError:
        return ProbeResult(False, None, "", f"no TCP connection within {timeout_s:g} s", timeout=True)
    except OSError as exc:
        return ProbeResult(False, None, "", f"TCP connect failed: {exc.strerror or exc}")
    connected_ms = (time.perf_counter() - started) * 1000
    try:
        if mode is ProbeMode.TCP:
            return ProbeResult(True, connected_ms, "tcp", "TCP connect")
        writer.write(rtsp_options(host, port, path))
        try:
            await writer.drain()
            data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
        except TimeoutError:
            data = b""
            if mode is ProbeMode.RTSP:
                return ProbeResult(False, None, "", f"no RTSP answer within {timeout_s:g} s", timeout=True)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
            data = getattr(exc, "partial", b"") or b""
        status = parse_status_line(data)
        if status is not None:
            return ProbeResult(True, (time.perf_counter() - started) * 1000, "rtsp", status)
        if mode is ProbeMode.RTSP:
            return ProbeResult(False, None, "", f"port does not speak RTSP (answered {data[:40]!r})")
        return ProbeResult(True, connected_ms, "tcp", "TCP connect (no RTSP answer)")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _probe_onvif(host: str, port: int, timeout_s: float, path: str) -> ProbeResult:
    try:
        latency_ms, offset = await get_system_date_and_time(host, port, path, timeout_s)
    except TimeoutError:
        return ProbeResult(False, None, "", f"no ONVIF answer within {timeout_s:g} s", timeout=True)
    except OnvifError as exc:
        return ProbeResult(False, None, "", f"ONVIF: {exc}")
    except OSError as exc:
        return ProbeResult(False, None, "", f"TCP connect failed: {exc.strerror or exc}")
    return ProbeResult(True, latency_ms, "onvif", "ONVIF GetSystemDateAndTime", clock_offset_s=offset)
