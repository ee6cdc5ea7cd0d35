"""Each notifier against a local server that checks what it receives: WeCom (text, markdown, the
2,048-byte limit, mentions, 20 a minute), DingTalk (the signature, verified; a wrong one refused),
e-mail over SMTP with STARTTLS (aiosmtpd), and the Alertmanager version-4 webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest
from sqlalchemy import Engine

from sitewatch.alerts.models import ChannelScope, ChannelType, DeliveryStatus
from sitewatch.alerts.notify import ChannelSpec
from sitewatch.alerts.notify.base import truncate
from sitewatch.alerts.notify.dingtalk import DingTalkNotifier, sign, signed_url
from sitewatch.alerts.notify.wecom import WeComNotifier
from sitewatch.alerts.sink import WebhookSink

from .conftest import add_channel, finding
from .harness import drain, outbox, wired
from .robots import DingTalkServer, WeComServer


@pytest.fixture
def wecom() -> Iterator[WeComServer]:
    server = WeComServer()
    yield server
    server.close()


@pytest.fixture
def dingtalk() -> Iterator[DingTalkServer]:
    server = DingTalkServer()
    yield server
    server.close()


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    server = WebhookSink().start()
    yield server
    server.stop()


def test_truncate_keeps_whole_characters_and_ends_with_the_link() -> None:
    text = "电梯困人" * 400  # 4,800 bytes
    cut = truncate(text, 2048, "http://console/alerts/7")
    assert len(cut.encode()) <= 2048 and cut.endswith("…\nhttp://console/alerts/7")
    assert truncate("short", 2048, "x") == "short"


def test_wecom_text_mentions_the_member_on_duty_and_names_the_place(
    sqlite_engine: Engine, wecom: WeComServer
) -> None:
    add_channel(sqlite_engine, "crew robot", wecom.url, type_=ChannelType.WECOM)
    with wired(sqlite_engine) as (core, delivery, _clock):
        core.apply(finding())
        assert core.tick() == 1
        delivery.run_once(wait=True)
    [body] = wecom.accepted
    content = body["text"]["content"]
    assert "幸福1小区" in content and "C0001-EL0001" in content and "严重" in content
    assert "http://127.0.0.1:8080/alerts/" in content and "号楼" in content
    assert body["text"]["mentioned_mobile_list"] == ["13800000002"]  # CR02's leader: no one on the rota
    [note] = outbox(sqlite_engine)
    assert note.status == DeliveryStatus.DELIVERED and '"errcode": 0' in (note.answer or "")


def test_wecom_markdown_and_english(sqlite_engine: Engine, wecom: WeComServer) -> None:
    add_channel(
        sqlite_engine, "crew md", wecom.url, type_=ChannelType.WECOM, format="markdown", language="en"
    )
    with wired(sqlite_engine) as (core, delivery, _clock):
        core.apply(finding())
        core.tick()
        delivery.run_once(wait=True)
    [body] = wecom.accepted
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert "Xingfu 1" in content and "alert firing" in content and "[Open in the console](" in content


def test_wecom_size_limit_is_respected_by_cutting_with_a_link(
    sqlite_engine: Engine, wecom: WeComServer
) -> None:
    add_channel(sqlite_engine, "crew robot", wecom.url, type_=ChannelType.WECOM)
    with wired(sqlite_engine, group_wait_s=10) as (core, delivery, clock):
        for n in range(1, 6):  # five devices, one group: a long message
            core.apply(
                finding(
                    f"C0001-CA000{n}",
                    fault="video_loss",
                    severity=finding().severity.WARNING,
                    started_ms=1_790_000_000_000 + n,
                    compound="C0001",
                )
            )
        clock.advance(10)
        core.tick()
        delivery.run_once(wait=True)
    [body] = wecom.accepted
    assert len(body["text"]["content"].encode()) <= 2048
    assert wecom.refused == []


def test_wecom_rate_limit_queues_beyond_twenty_a_minute(sqlite_engine: Engine) -> None:
    from .harness import START

    now = {"t": START.timestamp()}
    server = WeComServer(clock=lambda: now["t"])
    try:
        add_channel(sqlite_engine, "crew robot", server.url, type_=ChannelType.WECOM)
        with wired(sqlite_engine, group_interval_s=1) as (core, delivery, clock):
            for n in range(25):  # 25 critical alerts in 25 groups' flushes
                core.apply(finding(f"C0001-EL{n:04d}", started_ms=1_790_000_000_000 + n))
                core.tick()
                clock.advance(1)
                now["t"] += 1
            drain(delivery)
            assert len(server.accepted) == 20 and server.refused == []
            assert (
                sum(n.status == DeliveryStatus.PENDING for n in outbox(sqlite_engine)) == 5
            )  # queued, not dropped
            clock.advance(60)
            now["t"] += 60
            drain(delivery)
        assert len(server.accepted) == 25 and server.refused == []
        assert all(n.status == DeliveryStatus.DELIVERED for n in outbox(sqlite_engine))
    finally:
        server.close()


def test_dingtalk_signature_is_verified_and_a_wrong_one_refused(
    sqlite_engine: Engine, dingtalk: DingTalkServer
) -> None:
    good = ChannelSpec(1, "dt", ChannelType.DINGTALK, dingtalk.url, secret=DingTalkServer.SECRET)
    bad = ChannelSpec(2, "dt2", ChannelType.DINGTALK, dingtalk.url, secret="SECwrong")
    payload = {
        "title": "t",
        "text": "电梯困人",
        "markdown": "**电梯困人**",
        "link": "x",
        "mentions": ["13800000002"],
    }
    import httpx

    with httpx.Client(timeout=5) as client:
        notifier = DingTalkNotifier(client)
        ok = notifier.send(good, payload, "k1")
        refused = notifier.send(bad, payload, "k2")
    assert ok.ok and dingtalk.accepted[0]["at"]["atMobiles"] == ["13800000002"]
    assert not refused.ok and "310000" in (refused.error or "") and refused.retry_after_s is None
    assert dingtalk.refused == [(310000, "sign not match")]


def test_dingtalk_through_the_outbox(sqlite_engine: Engine, dingtalk: DingTalkServer) -> None:
    add_channel(sqlite_engine, "dt", dingtalk.url, type_=ChannelType.DINGTALK, secret=DingTalkServer.SECRET)
    with wired(sqlite_engine) as (core, delivery, _clock):
        core.apply(finding())
        core.tick()
        delivery.run_once(wait=True)
    [body] = dingtalk.accepted
    assert body["msgtype"] == "text" and "幸福1小区" in body["text"]["content"]


def test_signed_url_keeps_the_token_and_encodes_the_signature() -> None:
    url = signed_url("https://oapi.dingtalk.com/robot/send?access_token=T", "SEC000", 1_700_000_000_000)
    query = parse_qs(urlsplit(url).query)
    expected = base64.b64encode(
        hmac.new(b"SEC000", b"1700000000000\nSEC000", hashlib.sha256).digest()
    ).decode()
    assert query == {"access_token": ["T"], "timestamp": ["1700000000000"], "sign": [expected]}
    assert sign("SEC000", 1_700_000_000_000) == quote_plus(expected)


def test_webhook_sends_alertmanager_version_4(sqlite_engine: Engine, sink: WebhookSink) -> None:
    add_channel(sqlite_engine, "ops", sink.url)
    with wired(sqlite_engine) as (core, delivery, clock):
        core.apply(finding())
        core.tick()
        delivery.run_once(wait=True)
        core.apply(finding(state=finding().state.CLEARED))
        clock.advance(301)  # group_interval
        core.tick()
        delivery.run_once(wait=True)
    first, second = (r.body for r in sink.received)
    assert first["version"] == "4" and first["status"] == "firing" and first["receiver"] == "ops"
    assert first["groupLabels"] == {"compound": "C0001", "crew": "CR02"}
    alert = first["alerts"][0]
    assert alert["labels"]["device"] == "C0001-EL0001" and alert["labels"]["alertname"] == "entrapment"
    assert alert["startsAt"] == "2026-09-21T14:13:20Z" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert len(alert["fingerprint"]) == 16 and alert["generatorURL"].startswith(
        "http://127.0.0.1:8080/alerts/"
    )
    assert first["commonLabels"]["compound"] == "C0001"
    assert second["status"] == "resolved" and second["alerts"][0]["status"] == "resolved"
    assert sink.received[0].key != sink.received[1].key


def _hanging_server() -> tuple[socket.socket, str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)  # never answered

    threading.Thread(target=accept, daemon=True).start()
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


def test_a_hanging_webhook_times_out_and_holds_no_other_channel(
    sqlite_engine: Engine, sink: WebhookSink
) -> None:
    listener, url = _hanging_server()
    try:
        add_channel(sqlite_engine, "hangs", url)
        add_channel(sqlite_engine, "works", sink.url)
        with wired(sqlite_engine, delivery_timeout_s=1.0) as (core, delivery, _clock):
            core.apply(finding())
            core.tick()
            started = time.monotonic()
            delivery.run_once()
            deadline = time.monotonic() + 10
            while not sink.received and time.monotonic() < deadline:
                time.sleep(0.02)
            assert sink.received and time.monotonic() - started < 1.0  # not behind the hanging one
            while time.monotonic() < deadline and not any(n.last_error for n in outbox(sqlite_engine)):
                time.sleep(0.05)
        hung = next(n for n in outbox(sqlite_engine) if n.status == DeliveryStatus.PENDING)
        assert "timeout" in (hung.last_error or "") and hung.attempts == 1
    finally:
        listener.close()


def test_wecom_refusal_is_recorded_and_retried(wecom: WeComServer) -> None:
    import httpx

    spec = ChannelSpec(1, "w", ChannelType.WECOM, wecom.url.replace(WeComServer.KEY, "wrong"))
    with httpx.Client(timeout=5) as client:
        outcome = WeComNotifier(client).send(
            spec, {"text": "x", "markdown": "x", "title": "x", "link": ""}, "k"
        )
    assert not outcome.ok and "93000" in (outcome.error or "") and "invalid webhook url" in outcome.answer


def test_channel_scope_is_crew_by_default() -> None:
    assert ChannelScope.CREW.value == "crew"


def test_a_channel_that_keeps_failing_raises_its_own_alert_on_the_others(
    sqlite_engine: Engine, sink: WebhookSink
) -> None:
    from sitewatch.alerts.db import transaction
    from sitewatch.alerts.models import Alert

    down = WeComServer()
    down.down = True
    try:
        add_channel(sqlite_engine, "crew robot", down.url, type_=ChannelType.WECOM)
        add_channel(
            sqlite_engine, "ops desk", sink.url, scope=ChannelScope.ALL, target="", escalation_only=True
        )
        with wired(sqlite_engine, channel_failure_after=3, retry_min_s=1, retry_max_s=1) as (
            core,
            delivery,
            clock,
        ):
            core.apply(finding())
            core.tick()
            for _ in range(3):
                drain(delivery)
                clock.advance(2)
            drain(delivery)
            [told] = [r.body for r in sink.received]
            assert told["alerts"][0]["labels"]["fault"] == "channel_down" and told["receiver"] == "ops desk"
            assert "crew robot" in told["alerts"][0]["annotations"]["summary"]
            down.down = False  # back: the notification goes out and the channel's alert resolves
            clock.advance(2)
            drain(delivery)
        assert len(down.accepted) == 1
        with transaction(sqlite_engine) as session:
            alert = session.query(Alert).filter(Alert.fault == "channel_down").one()
            assert (
                alert.state == "resolved" and alert.resolve_reason == "the channel accepts deliveries again"
            )
    finally:
        down.close()
