"""What the WeCom and DingTalk robots share: a JSON POST answered with ``errcode``/``errmsg``."""

from __future__ import annotations

from typing import Any

import httpx

from .base import Outcome, answer_of, http_error


def post_robot(client: httpx.Client, url: str, body: dict[str, Any], key: str,
               rate_codes: dict[int, float]) -> Outcome:  # fmt: skip
    """POST ``body``; accepted only on HTTP 200 with ``errcode`` 0. ``rate_codes``: the errcodes
    that mean "too many messages", with the pause the robot imposes."""
    try:
        response = client.post(url, json=body, headers={"Idempotency-Key": key})
    except httpx.HTTPError as exc:
        return http_error(exc)
    answer = answer_of(response)
    if response.status_code != 200:
        return Outcome(False, answer, f"HTTP {response.status_code}")
    try:
        data = response.json()
        code = int(data.get("errcode", -1))
    except (ValueError, AttributeError, TypeError):
        return Outcome(False, answer, "not a robot's JSON answer")
    if code == 0:
        return Outcome(True, answer)
    return Outcome(
        False, answer, f"errcode {code}: {str(data.get('errmsg', ''))[:200]}", rate_codes.get(code)
    )
