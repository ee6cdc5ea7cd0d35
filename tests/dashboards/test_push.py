"""`sitewatch dashboards push` against a small real HTTP server that plays Grafana's API."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from sitewatch.cli import main
from sitewatch.dashboards.provisioning import build_all
from sitewatch.dashboards.push import folder_uid

TOKEN = "glsa_test_token_123"


class FakeGrafana(ThreadingHTTPServer):
    """Records every request; knows the folders created through it; may answer 401 to everything."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict[str, Any]] = []
        self.folders: dict[str, str] = {"sitewatch-sitewatch-en": "sitewatch en"}  # one exists already
        self.refuse = False
        self.broken = False  # answer dashboards with a huge HTML error page, as a failing proxy might


class Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        request = {"method": self.command, "path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        self.server.requests.append(request)
        return request

    def do_GET(self) -> None:
        self._record()
        if self.server.refuse:
            self._answer(401, {"message": "invalid API key"})
        elif self.path.startswith("/api/folders/"):
            uid = self.path.rsplit("/", 1)[1]
            if uid in self.server.folders:
                self._answer(200, {"uid": uid, "title": self.server.folders[uid]})
            else:
                self._answer(404, {"message": "folder not found"})
        else:
            self._answer(404, {"message": "not found"})

    def do_POST(self) -> None:
        request = self._record()
        if self.server.refuse:
            self._answer(401, {"message": "invalid API key"})
        elif self.path == "/api/folders":
            if not re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", request["body"]["uid"]):  # as Grafana checks
                self._answer(400, {"message": "uid contains illegal characters"})
                return
            self.server.folders[request["body"]["uid"]] = request["body"]["title"]
            self._answer(200, {"uid": request["body"]["uid"], "title": request["body"]["title"]})
        elif self.path == "/api/dashboards/db" and self.server.broken:
            page = b"<html>" + b"bad gateway " * 50_000 + b"</html>"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        elif self.path == "/api/dashboards/db":
            body = request["body"]
            if body.get("folderUid") not in self.server.folders:
                self._answer(400, {"message": "folder not found"})
            else:
                self._answer(200, {"status": "success", "uid": body["dashboard"]["uid"], "version": 1})
        else:
            self._answer(404, {"message": "not found"})


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _url(server: FakeGrafana) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_push_creates_the_missing_folders_and_uploads_every_dashboard(grafana: FakeGrafana) -> None:
    result = CliRunner().invoke(main, ["--lang", "en", "dashboards", "push", "--grafana-url", _url(grafana),
                                       "--token", TOKEN])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in grafana.requests)
    created = [r["body"] for r in grafana.requests if r["method"] == "POST" and r["path"] == "/api/folders"]
    assert created == [{"title": "sitewatch zh-CN", "uid": "sitewatch-sitewatch-zh-cn"}]  # en existed
    uploads = [r["body"] for r in grafana.requests if r["path"] == "/api/dashboards/db"]
    expected = {b.model["uid"]: (b.model, b.folder) for b in build_all()}
    assert sorted(u["dashboard"]["uid"] for u in uploads) == sorted(expected)
    for upload in uploads:
        model, folder = expected[upload["dashboard"]["uid"]]
        assert upload["overwrite"] is True and upload["dashboard"]["id"] is None
        assert upload["folderUid"] == f"sitewatch-sitewatch-{folder.lower()}"
        assert upload["dashboard"]["panels"] == model["panels"]
        assert upload["dashboard"]["templating"] == model["templating"]
    assert "16 dashboards pushed" in result.output


def test_push_into_a_named_folder(grafana: FakeGrafana) -> None:
    result = CliRunner().invoke(main, ["dashboards", "push", "--grafana-url", _url(grafana), "--token", TOKEN,
                                       "--folder", "小区监控"])  # fmt: skip
    assert result.exit_code == 0, result.output
    created = {r["body"]["title"]: r["body"]["uid"] for r in grafana.requests if r["path"] == "/api/folders"}
    assert set(created) == {"小区监控 zh-CN", "小区监控 en"}
    assert len(set(created.values())) == 2  # distinct, ASCII uids
    assert all(folder_uid(title) == uid for title, uid in created.items())
    assert folder_uid("a" * 100) != folder_uid("a" * 101) and len(folder_uid("a" * 100)) <= 40


def test_a_refused_token_is_reported_and_nothing_is_written(grafana: FakeGrafana) -> None:
    grafana.refuse = True
    result = CliRunner().invoke(main, ["--lang", "en", "dashboards", "push", "--grafana-url", _url(grafana),
                                       "--token", "wrong"])  # fmt: skip
    assert result.exit_code == 1
    assert "refused" in result.output and "401" in result.output
    assert not [r for r in grafana.requests if r["path"] == "/api/dashboards/db"]


def test_an_unreachable_grafana_is_reported() -> None:
    result = CliRunner().invoke(main, ["--lang", "en", "dashboards", "push", "--grafana-url", "http://127.0.0.1:9",
                                       "--token", TOKEN])  # fmt: skip
    assert result.exit_code == 1
    assert "unreachable" in result.output or "refused" in result.output


def test_a_failing_grafana_is_reported_briefly(grafana: FakeGrafana) -> None:
    grafana.broken = True
    result = CliRunner().invoke(main, ["--lang", "en", "dashboards", "push", "--grafana-url", _url(grafana),
                                       "--token", TOKEN])  # fmt: skip
    assert result.exit_code == 1 and "refused (502)" in result.output, result.output[:300]
    assert len(result.output) < 1_000
