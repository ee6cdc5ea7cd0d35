"""The e-mail notifier against a real SMTP server (aiosmtpd) that requires STARTTLS."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine

from sitewatch.alerts.models import ChannelType, DeliveryStatus
from sitewatch.alerts.notify import ChannelSpec
from sitewatch.alerts.notify.email import EmailNotifier
from sitewatch.devtools.services import free_port
from sitewatch.settings import AlertsSettings

from .conftest import add_channel, finding
from .harness import outbox, wired


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.tls.append(session.ssl is not None)
        self.messages.append((envelope, message_from_bytes(envelope.original_content or b"")))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _server(inbox: Inbox, certificate: tuple[Path, Path] | None, **kwargs: Any) -> Controller:
    context = None
    if certificate is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*map(str, certificate))
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def smtp(certificate: tuple[Path, Path]) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = _server(inbox, certificate, require_starttls=True)
    yield inbox, controller.port
    controller.stop()


def test_email_over_starttls_names_the_place_and_links_the_alert(
    sqlite_engine: Engine, smtp: tuple[Inbox, int], certificate: tuple[Path, Path]
) -> None:
    inbox, port = smtp
    add_channel(sqlite_engine, "crew mail", f"smtp://127.0.0.1:{port}?from=alerts@sitewatch.example",
                type_=ChannelType.EMAIL, recipients="crew2@example.cn, lead2@example.cn")  # fmt: skip
    with wired(sqlite_engine, smtp_ca_file=certificate[0]) as (core, delivery, _clock):
        core.apply(finding())
        core.tick()
        delivery.run_once(wait=True)
    [(envelope, message)] = inbox.messages
    assert inbox.tls == [True]
    assert envelope.rcpt_tos == ["crew2@example.cn", "lead2@example.cn"]
    assert envelope.mail_from == "alerts@sitewatch.example"
    assert "幸福1小区" in str(message["Subject"]) or "幸福1小区" in message.get_payload(decode=True).decode()
    body = message.get_payload(decode=True).decode()
    assert "C0001-EL0001" in body and "/alerts/" in body
    assert message["X-Sitewatch-Idempotency-Key"].startswith("group:")
    [note] = outbox(sqlite_engine)
    assert note.status == DeliveryStatus.DELIVERED and note.answer == "250 accepted"


def test_email_refuses_a_server_without_starttls(certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    controller = _server(inbox, None)
    try:
        spec = ChannelSpec(
            1, "m", ChannelType.EMAIL, f"smtp://127.0.0.1:{controller.port}", recipients="a@b.cn"
        )
        outcome = EmailNotifier(AlertsSettings(smtp_ca_file=certificate[0])).send(
            spec, {"title": "t", "text": "x"}, "k"
        )
    finally:
        controller.stop()
    assert not outcome.ok and "STARTTLS" in (outcome.error or "") and inbox.messages == []


def test_email_refuses_an_untrusted_certificate(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    spec = ChannelSpec(1, "m", ChannelType.EMAIL, f"smtp://127.0.0.1:{port}", recipients="a@b.cn")
    outcome = EmailNotifier(AlertsSettings()).send(spec, {"title": "t", "text": "x"}, "k")  # system CAs only
    assert not outcome.ok and "SSL" in (outcome.error or "") and inbox.messages == []
