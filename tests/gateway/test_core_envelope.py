"""The optional ``replay`` header field of data and event messages (additive to contract v1)."""

from __future__ import annotations

import orjson

from sitewatch.contract import (
    Channel,
    DataMessage,
    DeviceKind,
    Envelope,
    RejectReason,
    Sample,
    decode_data,
    now_ms,
    topic,
)

C, GW = "330102-0007", "330102-0007-GW01"


def _message(replay: bool) -> DataMessage:
    now = now_ms()
    sample = Sample(f"{C}-WM0001", DeviceKind.WATER_METER, now, {"flow": 1.5})
    return DataMessage(Envelope(C, GW, 3, 7, now, replay=replay), (sample,))


def test_replay_flag_round_trips_and_is_omitted_when_false() -> None:
    live, replayed = _message(False), _message(True)
    assert b"replay" not in live.encode()
    assert orjson.loads(replayed.encode())["replay"] is True
    decoded = decode_data(topic(C, GW, Channel.DATA), replayed.encode())
    assert decoded.ok and decoded.message is not None and decoded.message.envelope.replay is True
    decoded = decode_data(topic(C, GW, Channel.DATA), live.encode())
    assert decoded.ok and decoded.message is not None and decoded.message.envelope.replay is False


def test_replay_flag_must_be_boolean() -> None:
    body = orjson.loads(_message(True).encode())
    body["replay"] = "yes"
    decoded = decode_data(topic(C, GW, Channel.DATA), orjson.dumps(body))
    assert decoded.message is None
    assert decoded.rejections[0].reason is RejectReason.BAD_SHAPE
    assert "replay" in decoded.rejections[0].detail
