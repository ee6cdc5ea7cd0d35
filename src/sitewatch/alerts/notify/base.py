"""The notifier interface: send one rendered notification to one channel, say what came back.

An ``Outcome`` is either accepted or not; a refusal is always worth another try later (the outbox
retries with backoff until the channel accepts it), and may say how long to wait first (a robot's
rate limit). ``answer`` is what the channel said, recorded in the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from ...settings import AlertsSettings
from ..models import Channel, ChannelType, MessageFormat

MAX_ANSWER = 2000


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """What a notifier needs of a channel (a copy, usable outside the database session)."""

    id: int
    name: str
    type: ChannelType
    url: str
    secret: str | None = None
    recipients: str | None = None
    format: MessageFormat = MessageFormat.TEXT

    @classmethod
    def of(cls, channel: Channel) -> ChannelSpec:
        """The spec of a stored channel."""
        return cls(channel.id, channel.name, ChannelType(channel.type), channel.url, channel.secret,
                   channel.recipients, MessageFormat(channel.format or "text"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a delivery attempt came to."""

    ok: bool
    answer: str = ""
    error: str | None = None
    retry_after_s: float | None = None  # the channel asked for a pause (rate limited)


class Notifier(Protocol):
    """Sends a notification to a channel."""

    def send(self, channel: ChannelSpec, payload: Mapping[str, Any], key: str) -> Outcome:
        """Deliver ``payload`` (see render.py) with idempotency key ``key``; never raises."""
        ...


def truncate(text: str, limit: int, link: str) -> str:
    """``text`` within ``limit`` UTF-8 bytes; when cut, it ends with "…" and ``link`` to the rest."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    tail = f"…\n{link}"
    room = max(0, limit - len(tail.encode("utf-8")))
    return data[:room].decode("utf-8", "ignore") + tail


def answer_of(response: httpx.Response) -> str:
    """The response as recorded in the outbox: status and body, capped."""
    return f"HTTP {response.status_code} {response.text[: MAX_ANSWER - 20]}"


def http_error(exc: Exception) -> Outcome:
    """The outcome of a request that got no answer (timeout, refused connection)."""
    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
    return Outcome(False, "", f"{kind}: {str(exc)[:300]}")


def notifier_for(kind: ChannelType, settings: AlertsSettings, client: httpx.Client) -> Notifier:
    """The notifier of a channel type."""
    from .dingtalk import DingTalkNotifier
    from .email import EmailNotifier
    from .webhook import WebhookNotifier
    from .wecom import WeComNotifier

    if kind is ChannelType.WECOM:
        return WeComNotifier(client)
    if kind is ChannelType.DINGTALK:
        return DingTalkNotifier(client)
    if kind is ChannelType.EMAIL:
        return EmailNotifier(settings)
    return WebhookNotifier(client)
