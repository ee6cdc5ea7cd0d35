"""``sitewatch alerts run`` against a real Mosquitto: findings in over MQTT, notifications out to a
webhook; hostile findings dead-lettered with a reason; the outbox across a killed process and a
channel that is down for a while (every notification delivered once when it comes back)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select

from sitewatch.alerts.db import transaction
from sitewatch.alerts.models import Alert, ChannelScope, DeliveryStatus, Notification
from sitewatch.alerts.service import AlertService
from sitewatch.alerts.sink import WebhookSink
from sitewatch.contract import DEADLETTER_TOPIC, DeviceKind, Severity, encode_findings, finding_topic
from sitewatch.devtools.services import MosquittoService
from sitewatch.mqtt_client import client_for
from sitewatch.settings import AlertsSettings, MqttSettings, load_settings

from .conftest import add_channel, finding

pytestmark = pytest.mark.integration


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Publisher:
    def __init__(self, url: str) -> None:
        self.client = client_for(
            MqttSettings(url=url), f"test-pub-{os.getpid()}-{time.monotonic_ns()}", keep_session=False
        )
        self.client.connect("127.0.0.1", int(url.rsplit(":", 1)[1]))
        self.client.loop_start()
        self.dead: list[dict[str, Any]] = []
        self.client.on_message = lambda c, u, m: self.dead.append(json.loads(m.payload))
        self.client.subscribe(DEADLETTER_TOPIC, qos=1)

    def send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def publisher(mosquitto: MosquittoService) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.url)
    yield pub
    pub.close()


def test_findings_over_mqtt_reach_the_webhook_and_hostile_ones_are_dead_lettered(
    sqlite_engine: Engine, mosquitto: MosquittoService, publisher: Publisher, tmp_path: Path
) -> None:
    sink = WebhookSink().start()
    add_channel(sqlite_engine, "crew", sink.url)
    add_channel(
        sqlite_engine,
        "manager",
        sink.url + "/m",
        scope=ChannelScope.ORGANISATION,
        target="物业公司2",
        escalation_only=True,
    )
    settings = load_settings(mqtt=MqttSettings(url=mosquitto.url, client_id=f"t{time.monotonic_ns()}"),
                             alerts=AlertsSettings(group_wait_s=0))  # fmt: skip
    service = AlertService(settings, sqlite_engine, tick_s=0.1)
    service.start()
    try:
        assert service.wait_connected(20)
        publisher.send(finding_topic("C0001"), finding().encode())
        wait_for(lambda: len(sink.received) >= 1, what="the entrapment's webhook")
        body = sink.received[0].body
        assert body["alerts"][0]["labels"]["fault"] == "entrapment" and sink.received[0].path == "/alerts"
        # hostile input: not JSON; a device of another compound; an oversized finding
        publisher.send(finding_topic("C0001"), b"{not json")
        publisher.send(finding_topic("C0001"), finding("C0002-EL0001", compound="C0002").encode().replace(
            b'"compound":"C0002"', b'"compound":"C0001"'))  # fmt: skip
        publisher.send(finding_topic("C0001"), b" " * 2_000_000)
        wait_for(lambda: len(publisher.dead) >= 3, what="three dead letters")
        reasons = sorted(d["reason"] for d in publisher.dead)
        assert reasons == ["bad_json", "foreign_device", "oversized"]
        assert all(d["topic"] == finding_topic("C0001") for d in publisher.dead)
        # an unknown device of a known compound, with text too long to keep whole: still an alert,
        # routed to the compound's manager since no contract covers water meters there
        long = "维" * 500
        unknown = finding("C0001-XX9999", fault="mystery", severity=Severity.WARNING, kind=DeviceKind.WATER_METER,
                          params={"device": long, "detail": long})  # fmt: skip
        publisher.send(finding_topic("C0001"), unknown.encode())
        wait_for(lambda: any(r.path == "/alerts/m" for r in sink.received), what="the manager's webhook")
        with transaction(sqlite_engine) as session:
            alert = session.execute(select(Alert).where(Alert.device == "C0001-XX9999")).scalar_one()
            assert alert.crew is None and "asset" not in alert.labels
            assert all(len(v) <= 200 for v in alert.labels.values())
        assert service.rejected == {"bad_json": 1, "foreign_device": 1, "oversized": 1}
    finally:
        service.stop()
        sink.stop()


def test_batches_of_findings_are_applied_whole_and_a_bad_element_is_dead_lettered_alone(
    sqlite_engine: Engine, mosquitto: MosquittoService, publisher: Publisher
) -> None:
    settings = load_settings(mqtt=MqttSettings(url=mosquitto.url, client_id=f"t{time.monotonic_ns()}"),
                             alerts=AlertsSettings(group_wait_s=0))  # fmt: skip
    service = AlertService(settings, sqlite_engine, tick_s=0.1, deliver=False)
    service.start()

    def camera(n: int, episode: int, **params: str) -> Any:
        return finding(f"C0001-CA{n:04d}", fault="video_loss", kind=DeviceKind.CAMERA, severity=Severity.WARNING,
                       started_ms=1_790_000_000_000 + episode, params=params or None)  # fmt: skip

    def fed() -> list[tuple[str, int]]:
        with transaction(sqlite_engine) as session:
            rows = session.execute(select(Alert.device, Alert.findings_count).where(Alert.kind == "camera"))
            return sorted((str(d), int(c)) for d, c in rows)

    try:
        assert service.wait_connected(20)
        # 600 findings (300 cameras, two episodes each) with two bad elements among them: one batch
        # larger than a transaction's usual 500, applied whole; each bad element dead-lettered alone
        items = [camera(n, e).to_json() for e in range(2) for n in range(300)]
        foreign = camera(1, 9).to_json() | {"device": "C0002-CA0001"}
        items[100:100] = [foreign, ["not", "a", "finding"]]
        publisher.send(finding_topic("C0001"), orjson.dumps({"v": 1, "compound": "C0001", "findings": items}))
        wait_for(
            lambda: service.received >= 602 and sum(c for _, c in fed()) == 600, what="the batch applied"
        )
        assert fed() == [(f"C0001-CA{n:04d}", 2) for n in range(300)]
        wait_for(lambda: len(publisher.dead) >= 2, what="two dead letters")
        dead = {d["reason"]: orjson.loads(d["payload"]) for d in publisher.dead}
        assert dead == {"foreign_device": foreign, "bad_shape": ["not", "a", "finding"]}
        assert sorted(d["detail"].split(":")[0] for d in publisher.dead) == ["element 100", "element 101"]
        # malformed batches are refused whole, with their reason, and harm nothing
        publisher.dead.clear()
        publisher.send(finding_topic("C0001"), b'{"v": 1, "compound": "C0001", "findings": []}')
        too_many = encode_findings("C0001", [camera(n, 5) for n in range(1001)])
        publisher.send(finding_topic("C0001"), too_many)
        big = {f"p{i}": "维" * 500 for i in range(4)}  # 6 kB each: 200 of them pass the 1 MiB limit
        oversized = encode_findings("C0001", [camera(n, 6, **big) for n in range(200)])
        assert len(oversized) > settings.contract.max_payload_bytes
        publisher.send(finding_topic("C0001"), oversized)
        wait_for(lambda: len(publisher.dead) >= 3, what="three more dead letters")
        assert sorted(d["reason"] for d in publisher.dead) == ["bad_shape", "oversized", "too_many_findings"]
        assert fed() == [(f"C0001-CA{n:04d}", 2) for n in range(300)]
    finally:
        service.stop()


class FlakyHook:
    """A webhook that answers 503 while ``down``, and records each idempotency key it accepts."""

    def __init__(self) -> None:
        self.down = True
        self.keys: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                if hook.down:
                    self.send_response(503)
                else:
                    hook.keys.append(self.headers["Idempotency-Key"])
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _run_alerts(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``sitewatch alerts run`` in its own process group, once it has subscribed."""
    before = log.read_text().count("alerts subscribed") if log.exists() else 0
    with log.open("ab") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "sitewatch", "alerts", "run", "--tick", "0.1"],
            env=env, stdout=err, stderr=err, start_new_session=True,
        )  # fmt: skip
    wait_for(lambda: log.read_text().count("alerts subscribed") > before, 60, "alerts run to subscribe")
    return process


@pytest.mark.slow
def test_outbox_survives_a_killed_process_and_a_channel_down_for_a_while(
    sqlite_engine: Engine, mosquitto: MosquittoService, publisher: Publisher, tmp_path: Path
) -> None:
    hook = FlakyHook()
    add_channel(sqlite_engine, "crew", hook.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SITEWATCH_")} | {
        "SITEWATCH_DATABASE__URL": sqlite_engine.url.render_as_string(hide_password=False),
        "SITEWATCH_MQTT__URL": mosquitto.url,
        "SITEWATCH_MQTT__CLIENT_ID": f"outbox{time.monotonic_ns()}",
        "SITEWATCH_ALERTS__GROUP_WAIT_S": "0",
        "SITEWATCH_ALERTS__GROUP_INTERVAL_S": "0.2",
        "SITEWATCH_ALERTS__RETRY_MIN_S": "0.2",
        "SITEWATCH_ALERTS__RETRY_MAX_S": "1",
        "SITEWATCH_ALERTS__ESCALATION_MINUTES": "{}",
    }
    log = tmp_path / "alerts.log"

    def notes() -> list[Notification]:
        with transaction(sqlite_engine) as session:
            return list(session.execute(select(Notification)).scalars())

    process = _run_alerts(env, log)
    try:
        for n in range(1, 6):  # five critical alerts, each flushed at once: five notifications
            publisher.send(
                finding_topic("C0001"), finding(f"C0001-EL{n:04d}", started_ms=1_790_000_000_000 + n).encode()
            )
            wait_for(lambda n=n: len(notes()) >= n, what=f"notification {n} in the outbox")
        wait_for(lambda: all(x.attempts >= 1 for x in notes()), what="failed attempts")
        os.killpg(process.pid, signal.SIGKILL)  # killed mid-retry
        process.wait(10)
        hook.down = False  # the channel comes back while alerting is down
        with transaction(sqlite_engine) as session:
            assert session.scalar(select(func.count()).select_from(Notification).where(
                Notification.status == DeliveryStatus.PENDING)) == 5  # fmt: skip
        process = _run_alerts(env, log)  # restart: delivery resumes
        wait_for(
            lambda: all(x.status == DeliveryStatus.DELIVERED for x in notes()), timeout=60, what="delivery"
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        hook.close()
    delivered = notes()
    assert sorted(hook.keys) == sorted(x.key for x in delivered) and len(set(hook.keys)) == 5  # each once
    assert all(
        x.attempts >= 2 and (x.answer or "").startswith("HTTP 200") for x in delivered
    )  # refused, then taken
