"""Local robot servers that check what they receive, as WeCom and DingTalk do: the JSON shape, the
2,048-byte content limit, 20 messages a minute, DingTalk's HMAC-SHA256 signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit


class RobotServer:
    """A robot endpoint on 127.0.0.1; ``check`` returns (errcode, errmsg) for each request."""

    def __init__(
        self, clock: Callable[[], float] = time.time, rate_per_min: int = 20, rate_code: int = 45009
    ) -> None:
        self.clock = clock
        self.rate_per_min = rate_per_min
        self.rate_code = rate_code
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[tuple[int, str]] = []
        self.times: list[float] = []
        self.down = False  # answer 502 to everything
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if server.down:
                    self.send_response(502)
                    self.end_headers()
                    return
                code, msg = server.handle(self.path, body)
                data = json.dumps({"errcode": code, "errmsg": msg}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        with self.lock:
            now = self.clock()
            recent = [t for t in self.times if now - t < 60]
            if len(recent) >= self.rate_per_min:
                self.refused.append((self.rate_code, "rate"))
                return self.rate_code, "api freq out of limit"
            code, msg = self.check(path, body)
            if code == 0:
                self.times.append(now)
                self.accepted.append(body)
            else:
                self.refused.append((code, msg))
            return code, msg

    def check(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        raise NotImplementedError

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class WeComServer(RobotServer):
    """WeCom's group robot: ``/cgi-bin/webhook/send?key=KEY``."""

    KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"

    @property
    def url(self) -> str:
        return f"{self.base}/cgi-bin/webhook/send?key={self.KEY}"

    def check(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        if parse_qs(urlsplit(path).query).get("key") != [self.KEY]:
            return 93000, "invalid webhook url"
        kind = body.get("msgtype")
        if kind not in ("text", "markdown") or not isinstance(body.get(kind), dict):
            return 40008, "invalid message type"
        content = body[kind].get("content")
        if not isinstance(content, str) or not content:
            return 44004, "empty content"
        if len(content.encode("utf-8")) > 2048:
            return 40058, "content exceed max length 2048"
        mentions = body[kind].get("mentioned_mobile_list", [])
        if not isinstance(mentions, list) or not all(isinstance(m, str) for m in mentions):
            return 40063, "invalid mentioned_mobile_list"
        return 0, "ok"


class DingTalkServer(RobotServer):
    """DingTalk's custom robot with signing: ``/robot/send?access_token=T&timestamp=MS&sign=S``."""

    TOKEN = "c0ffee"
    SECRET = "SEC1234567890abcdef"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(rate_code=130101, **kwargs)

    @property
    def url(self) -> str:
        return f"{self.base}/robot/send?access_token={self.TOKEN}"

    def check(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        query = parse_qs(urlsplit(path).query)
        if query.get("access_token") != [self.TOKEN]:
            return 300001, "token is not exist"
        try:
            timestamp = int(query["timestamp"][0])
            sign = unquote_plus(urlsplit(path).query.split("sign=")[1].split("&")[0])
        except (KeyError, ValueError, IndexError):
            return 310000, "sign not match: missing timestamp or sign"
        if abs(time.time() * 1000 - timestamp) > 3_600_000:
            return 310000, "sign not match: timestamp is more than one hour away"
        expected = base64.b64encode(
            hmac.new(self.SECRET.encode(), f"{timestamp}\n{self.SECRET}".encode(), hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(sign, expected):
            return 310000, "sign not match"
        kind = body.get("msgtype")
        if kind not in ("text", "markdown") or not isinstance(body.get("at", {}), dict):
            return 40035, "invalid msgtype"
        return 0, "ok"
