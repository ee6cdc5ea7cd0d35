"""A local webhook receiver: where ``sitewatch demo`` and the alert benchmark deliver notifications,
so nothing external is needed. It accepts Alertmanager's version-4 JSON, keeps what it received
(once per idempotency key: a redelivery is counted, not kept twice) and answers 200."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class Received:
    """One webhook delivery."""

    key: str
    path: str
    body: dict[str, Any]
    at: float  # time.time() of receipt


class WebhookSink:
    """A webhook receiver on 127.0.0.1 (a free port unless given)."""

    def __init__(self, port: int = 0, on_receive: Callable[[Received], None] | None = None) -> None:
        self.received: list[Received] = []
        self.duplicates = 0
        self.on_receive = on_receive
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where to send webhooks."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/alerts"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self.send_error(413)
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_error(400, "not JSON")
                    return
                key = self.headers.get("Idempotency-Key") or f"none-{time.time_ns()}"
                sink.accept(Received(key, self.path, body if isinstance(body, dict) else {}, time.time()))
                data = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("webhook sink: " + format, *args)

        return Handler

    def accept(self, item: Received) -> None:
        """Keep a delivery (once per key)."""
        with self._lock:
            if item.key in self._keys:
                self.duplicates += 1
                return
            self._keys.add(item.key)
            self.received.append(item)
        if self.on_receive is not None:
            self.on_receive(item)

    def start(self) -> WebhookSink:
        """Serve in a thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
