"""Generic webhook: Alertmanager's version-4 JSON, POSTed with an ``Idempotency-Key`` header;
any 2xx is accepted, anything else (or no answer in time) is retried."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .base import ChannelSpec, Outcome, answer_of, http_error


class WebhookNotifier:
    """Sends Alertmanager-compatible webhooks."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def send(self, channel: ChannelSpec, payload: Mapping[str, Any], key: str) -> Outcome:
        """Deliver one notification."""
        try:
            response = self.client.post(
                channel.url, json=payload["webhook"], headers={"Idempotency-Key": key}
            )
        except httpx.HTTPError as exc:
            return http_error(exc)
        if 200 <= response.status_code < 300:
            return Outcome(True, answer_of(response))
        return Outcome(False, answer_of(response), f"HTTP {response.status_code}")
