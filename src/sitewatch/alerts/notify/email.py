"""E-mail over SMTP: ``smtp://[user@]host[:587]?from=alerts@example.cn`` speaks STARTTLS and refuses
to send in clear when the server does not offer it; ``smtps://host[:465]`` is TLS from the start.
The channel's secret is the password; ``recipients`` the addresses."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ...settings import AlertsSettings
from .base import ChannelSpec, Outcome


class EmailNotifier:
    """Sends notifications as e-mail."""

    def __init__(self, settings: AlertsSettings) -> None:
        self.timeout = settings.delivery_timeout_s
        self.context = ssl.create_default_context(
            cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None
        )

    def message(self, channel: ChannelSpec, payload: Mapping[str, Any], key: str) -> EmailMessage:
        """The e-mail of one notification."""
        parts = urlsplit(channel.url)
        sender = parse_qs(parts.query).get("from", [f"sitewatch@{parts.hostname}"])[0]
        msg = EmailMessage()
        msg["Subject"] = str(payload["title"])[:200]
        msg["From"] = sender
        msg["To"] = ", ".join(
            a.strip() for a in (channel.recipients or "").replace(";", ",").split(",") if a.strip()
        )
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = f"<{key.replace(':', '.')}@sitewatch>"
        msg["X-Sitewatch-Idempotency-Key"] = key
        msg.set_content(str(payload["text"]))
        return msg

    def send(self, channel: ChannelSpec, payload: Mapping[str, Any], key: str) -> Outcome:
        """Deliver one notification."""
        parts = urlsplit(channel.url)
        host = parts.hostname or "localhost"
        try:
            if parts.scheme == "smtps":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, parts.port or 465, timeout=self.timeout, context=self.context
                )
            else:
                smtp = smtplib.SMTP(host, parts.port or 587, timeout=self.timeout)
            with smtp:
                smtp.ehlo()
                if parts.scheme != "smtps":
                    if not smtp.has_extn("starttls"):
                        return Outcome(
                            False, "", "the server does not offer STARTTLS; refusing to send in clear"
                        )
                    smtp.starttls(context=self.context)
                    smtp.ehlo()
                if parts.username:
                    smtp.login(unquote(parts.username), channel.secret or "")
                refused = smtp.send_message(self.message(channel, payload, key))
                answer = f"accepted; refused recipients: {refused}" if refused else "250 accepted"
                return Outcome(True, answer)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            return Outcome(False, "", f"{type(exc).__name__}: {str(exc)[:300]}")
