"""Simulated cameras' ONVIF device service: answers GetSystemDateAndTime over SOAP 1.2 / HTTP.

Only what the gateway's ONVIF probe asks is implemented; any other SOAP action gets an
``ActionNotSupported`` fault. ``clock_offset_s`` makes the camera's clock drift, ``delay_s``
makes it slow, and ``available = False`` makes it close connections without answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

log = logging.getLogger(__name__)

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema" '
    'xmlns:ter="http://www.onvif.org/ver10/error">'
    "<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
)
_FAULT = (
    "<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Receiver</SOAP-ENV:Value>"
    "<SOAP-ENV:Subcode><SOAP-ENV:Value>ter:ActionNotSupported</SOAP-ENV:Value></SOAP-ENV:Subcode>"
    '</SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">action not supported</SOAP-ENV:Text>'
    "</SOAP-ENV:Reason></SOAP-ENV:Fault>"
)


def date_time_response(now: datetime) -> str:
    """The SOAP body of a GetSystemDateAndTimeResponse for the UTC time ``now``."""
    return (
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
        "<tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone>"
        f"<tt:UTCDateTime><tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
        f"<tt:Second>{now.second}</tt:Second></tt:Time><tt:Date><tt:Year>{now.year}</tt:Year>"
        f"<tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day></tt:Date></tt:UTCDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
    )


class OnvifCamera:
    """One simulated camera's ONVIF device service on ``host:port`` (path /onvif/device_service)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 8080, clock_offset_s: float = 0.0, delay_s: float = 0.0
    ) -> None:
        self.host, self.port = host, port
        self.clock_offset_s, self.delay_s = clock_offset_s, delay_s
        self.available = True
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.available:
                await self._answer(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away or sent nonsense
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (int(ln.split(":", 1)[1]) for ln in lines if ln.lower().startswith("content-length:")), 0
        )
        body = await reader.readexactly(min(length, 65_536))
        self.requests += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if not lines[0].startswith("POST "):
            status, payload = "405 Method Not Allowed", _ENVELOPE.format(body=_FAULT)
        elif b"GetSystemDateAndTime" in body:
            now = datetime.fromtimestamp(time.time() + self.clock_offset_s, UTC)
            status, payload = "200 OK", _ENVELOPE.format(body=date_time_response(now))
        else:
            status, payload = "500 Internal Server Error", _ENVELOPE.format(body=_FAULT)
        data = payload.encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/soap+xml; charset=utf-8\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode("ascii")
            + data
        )
        with contextlib.suppress(OSError):
            await writer.drain()

    async def start(self) -> None:
        """Start answering."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        if self.port == 0:
            self.port = int(self._server.sockets[0].getsockname()[1])
        log.debug("simulated camera ONVIF service on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop answering (the camera goes offline)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
