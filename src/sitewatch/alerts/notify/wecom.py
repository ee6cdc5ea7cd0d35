"""WeCom (企业微信) group robot: ``POST <webhook>?key=KEY``, text or markdown, content at most 2,048
bytes (cut with a link to the console), the members on duty mentioned by phone (text only: WeCom's
markdown cannot mention)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ..models import MessageFormat
from .base import ChannelSpec, Outcome, truncate
from .robot import post_robot

MAX_BYTES = 2048
RATE_LIMITED = {45009: 60.0}  # "api freq out of limit": 20 messages a minute per robot


def wecom_body(channel: ChannelSpec, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The robot's JSON for a rendered notification."""
    link = str(payload.get("link", ""))
    if channel.format is MessageFormat.MARKDOWN:
        return {
            "msgtype": "markdown",
            "markdown": {"content": truncate(str(payload["markdown"]), MAX_BYTES, link)},
        }
    text: dict[str, Any] = {"content": truncate(str(payload["text"]), MAX_BYTES, link)}
    mentions = [str(m) for m in payload.get("mentions", [])]
    if mentions:
        text["mentioned_mobile_list"] = mentions
    return {"msgtype": "text", "text": text}


class WeComNotifier:
    """Sends to a WeCom group robot."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def send(self, channel: ChannelSpec, payload: Mapping[str, Any], key: str) -> Outcome:
        """Deliver one notification."""
        return post_robot(self.client, channel.url, wecom_body(channel, payload), key, RATE_LIMITED)
