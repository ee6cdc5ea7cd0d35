"""Simulated cameras: a minimal RTSP/1.0 server that answers OPTIONS (and refuses other methods).

Enough for the gateway's health probe: the answer carries the request's CSeq and the methods a
camera offers. ``delay_s`` makes the camera slow; ``available = False`` makes it hang up without
answering (its RTSP service is down), and stopping the server takes it off the network.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class RtspCamera:
    """One simulated camera's RTSP service on ``host:port``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8554, delay_s: float = 0.0) -> None:
        self.host, self.port, self.delay_s = host, port, delay_s
        self.requests = 0
        self.available = True
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.available:
                await self._answer(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            lines = head.decode("latin-1").split("\r\n")
            method = lines[0].split(" ", 1)[0]
            cseq = next((ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("cseq:")), "0")
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if method == "OPTIONS":
                reply = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
            else:
                reply = f"RTSP/1.0 405 Method Not Allowed\r\nCSeq: {cseq}\r\nAllow: OPTIONS\r\n\r\n"
            writer.write(reply.encode("latin-1"))
            await writer.drain()

    async def start(self) -> None:
        """Start answering."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        if self.port == 0:
            self.port = int(self._server.sockets[0].getsockname()[1])
        log.debug("simulated camera RTSP service on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop answering (the camera goes offline)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
