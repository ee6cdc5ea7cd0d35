"""ONVIF health probe: ``GetSystemDateAndTime`` on the camera's device service (SOAP 1.2 over HTTP).

ONVIF lets any client call GetSystemDateAndTime without credentials (clients need the camera's
clock to build their authentication), so the answer shows that the camera's ONVIF service is up,
how fast it answers, and how far its clock is from the gateway's. Nothing else of ONVIF (device
information, events, recording state) is queried.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

MAX_RESPONSE = 65_536
ACTION = "http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime"
REQUEST = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
    b'<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/>'
    b"</s:Body></s:Envelope>"
)
_TT = "{http://www.onvif.org/ver10/schema}"


class OnvifError(Exception):
    """The camera answered, but not with a usable GetSystemDateAndTime response."""


def http_request(host: str, port: int, path: str) -> bytes:
    """The HTTP POST carrying the SOAP request."""
    head = (
        f"POST /{path.lstrip('/')} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f'Content-Type: application/soap+xml; charset=utf-8; action="{ACTION}"\r\n'
        f"Content-Length: {len(REQUEST)}\r\n"
        "Connection: close\r\n"
        "User-Agent: sitewatch-gateway\r\n\r\n"
    )
    return head.encode("ascii") + REQUEST


def parse_response(raw: bytes) -> datetime:
    """The camera's UTC clock from an HTTP response carrying GetSystemDateAndTimeResponse."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise OnvifError("no complete HTTP response")
    status = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    parts = status.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise OnvifError(f"not an HTTP response: {status[:60]!r}")
    if parts[1] != "200":
        raise OnvifError(f"HTTP {status[len(parts[0]) + 1 :][:60]}")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise OnvifError("response declares a DOCTYPE or entities; refused")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise OnvifError(f"response is not XML: {exc}") from None
    utc = next((e for e in root.iter() if e.tag == f"{_TT}UTCDateTime"), None)
    if utc is None:
        raise OnvifError("no UTCDateTime in the response")

    def number(name: str) -> int:
        node = next((e for e in utc.iter() if e.tag == f"{_TT}{name}"), None)
        if node is None or not (node.text or "").strip().isdigit():
            raise OnvifError(f"UTCDateTime has no valid {name}")
        return int((node.text or "").strip())

    try:
        return datetime(
            number("Year"), number("Month"), number("Day"), number("Hour"), number("Minute"), number("Second"),
            tzinfo=UTC,
        )  # fmt: skip
    except ValueError as exc:
        raise OnvifError(f"UTCDateTime is not a date: {exc}") from None


async def get_system_date_and_time(host: str, port: int, path: str, timeout_s: float) -> tuple[float, float]:
    """(latency in ms, camera clock minus gateway clock in s); raises OSError, TimeoutError or OnvifError."""
    started = time.perf_counter()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    try:
        writer.write(http_request(host, port, path or "/onvif/device_service"))
        await writer.drain()
        raw = b""
        deadline = started + timeout_s
        while len(raw) < MAX_RESPONSE:
            chunk = await asyncio.wait_for(reader.read(8192), max(0.001, deadline - time.perf_counter()))
            if not chunk:
                break
            raw += chunk
            if _complete(raw):
                break
        latency_ms = (time.perf_counter() - started) * 1000
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    camera_clock = parse_response(raw)
    return latency_ms, camera_clock.timestamp() - time.time()


def _complete(raw: bytes) -> bool:
    """Whether ``raw`` holds a whole response (or enough to know it is not HTTP)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    if not head.startswith(b"HTTP/1."):
        return True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return False  # no length: read until the camera closes
