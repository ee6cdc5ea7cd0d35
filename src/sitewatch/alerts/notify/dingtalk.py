"""DingTalk (钉钉) custom robot with signing: ``POST <webhook>?access_token=T&timestamp=MS&sign=S``,
S = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{MS}\\n{secret}"))); text or markdown, the members
on duty in ``at.atMobiles``. A robot takes 20 messages a minute, then refuses for 10 minutes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, urlsplit, urlunsplit

import httpx

from ..models import MessageFormat
from .base import ChannelSpec, Outcome, truncate
from .robot import post_robot

MAX_BYTES = 20_000
RATE_LIMITED = {130101: 600.0}  # "send too fast": throttled for 10 minutes


def sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` parameter for ``timestamp_ms`` (already URL-encoded)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """The robot URL with ``timestamp`` and ``sign`` appended."""
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(
        parts._replace(query=f"{query}timestamp={timestamp_ms}&sign={sign(secret, timestamp_ms)}")
    )


def dingtalk_body(channel: ChannelSpec, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The robot's JSON for a rendered notification."""
    link = str(payload.get("link", ""))
    mentions = [str(m) for m in payload.get("mentions", [])]
    at = {"atMobiles": mentions, "isAtAll": False}
    if channel.format is MessageFormat.MARKDOWN:
        text = str(payload["markdown"]) + "".join(f" @{m}" for m in mentions)
        return {"msgtype": "markdown", "markdown": {"title": str(payload["title"])[:100],
                "text": truncate(text, MAX_BYTES, link)}, "at": at}  # fmt: skip
    return {"msgtype": "text", "text": {"content": truncate(str(payload["text"]), MAX_BYTES, link)}, "at": at}


class DingTalkNotifier:
    """Sends to a DingTalk robot, signing each request."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def send(self, channel: ChannelSpec, payload: Mapping[str, Any], key: str) -> Outcome:
        """Deliver one notification."""
        if not channel.secret:
            return Outcome(False, "", "the DingTalk channel has no signing secret")
        url = signed_url(channel.url, channel.secret, int(time.time() * 1000))
        return post_robot(self.client, url, dingtalk_body(channel, payload), key, RATE_LIMITED)
