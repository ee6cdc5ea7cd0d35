"""Dead letters: what ingest refused, why, and the original payload, published for a person to read."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson

from ..contract import SCHEMA_VERSION, Rejection

MAX_PAYLOAD_ECHO = 64 * 1024  # bytes of the original payload copied into a dead letter
MAX_REJECTIONS_LISTED = 100  # rejections listed per dead letter; the total is always given


def encode_payload(payload: bytes, limit: int = MAX_PAYLOAD_ECHO) -> dict[str, Any]:
    """The original payload as text (UTF-8) or base64 (binary), cut to ``limit`` bytes, size recorded."""
    head = payload[:limit]
    try:
        text: str = head.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the limit is not binary: drop the partial character
        if len(payload) > limit and exc.start >= limit - 3 and exc.reason == "unexpected end of data":
            text, encoding = head[: exc.start].decode("utf-8"), "utf-8"
        else:
            text, encoding = base64.b64encode(head).decode("ascii"), "base64"
    return {
        "payload": text,
        "payload_encoding": encoding,
        "payload_bytes": len(payload),
        "payload_truncated": len(payload) > limit,
    }


def dead_letter_payload(
    topic: str,
    payload: bytes,
    rejections: Sequence[Rejection],
    *,
    received_ms: int,
    worker: str,
    limit: int = MAX_PAYLOAD_ECHO,
) -> bytes:
    """JSON dead letter for one MQTT message: the first reason, every rejection, the original payload."""
    listed = [
        {"reason": str(r.reason), "detail": r.detail, "device": r.device, "item": r.item}
        for r in rejections[:MAX_REJECTIONS_LISTED]
    ]
    body: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "reason": str(rejections[0].reason) if rejections else "unknown",
        "detail": rejections[0].detail if rejections else "",
        "topic": topic,
        "received": received_ms,
        "worker": worker,
        "rejection_count": len(rejections),
        "rejections": listed,
        **encode_payload(payload, limit),
    }
    try:
        return orjson.dumps(body)
    except TypeError:  # an item the validator echoed is not JSON-ready: keep its text form
        for entry in listed:
            entry["item"] = repr(entry["item"])[:4096]
        return orjson.dumps(body)
