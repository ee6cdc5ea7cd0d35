"""The ``stats`` channel (added to contract v1): encoding and validation of a gateway's counters."""

from __future__ import annotations

import orjson
import pytest

from sitewatch.contract import Channel, RejectReason, StatsMessage, decode_stats, topic

C, GW = "330102-0007", "330102-0007-GW01"
T = topic(C, GW, Channel.STATS)


def test_stats_round_trip() -> None:
    message = StatsMessage(C, GW, 4, 1_790_000_060_000, {"read": 10, "meters.errors": 2})
    decoded = decode_stats(T, message.encode())
    assert decoded.ok and decoded.message == message


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"compound": "330102-0008"}, RejectReason.COMPOUND_MISMATCH),
        ({"counters": [1, 2]}, RejectReason.BAD_SHAPE),
        ({"counters": {"read": 1.5}}, RejectReason.BAD_SHAPE),
        ({"counters": {"read": True}}, RejectReason.BAD_SHAPE),
        ({"counters": {"x" * 101: 1}}, RejectReason.BAD_SHAPE),
        ({"counters": {f"c{i}": i for i in range(1001)}}, RejectReason.BAD_SHAPE),
        ({"bdseq": "4"}, RejectReason.BAD_SHAPE),
        ({"v": 2}, RejectReason.UNKNOWN_VERSION),
    ],
)
def test_stats_refused_with_a_reason(change: dict[str, object], reason: RejectReason) -> None:
    body = orjson.loads(StatsMessage(C, GW, 4, 1_790_000_060_000, {"read": 10}).encode())
    body.update(change)
    decoded = decode_stats(T, orjson.dumps(body))
    assert decoded.message is None and decoded.rejections[0].reason is reason


def test_stats_only_on_the_stats_topic() -> None:
    payload = StatsMessage(C, GW, 4, 1, {}).encode()
    assert decode_stats(topic(C, GW, Channel.STATE), payload).rejections[0].reason is RejectReason.BAD_TOPIC
    assert decode_stats(T, b"\xff").rejections[0].reason is RejectReason.BAD_JSON


def test_host_state_round_trip_and_refusals() -> None:
    from sitewatch.contract import HOST_STATE_TOPIC, HostState, decode_host_state

    for online in (True, False):
        decoded = decode_host_state(HOST_STATE_TOPIC, HostState(online, 1_790_000_000_000).encode())
        assert decoded.ok and decoded.message == HostState(online, 1_790_000_000_000)
    assert decode_host_state(T, HostState(True, 1).encode()).rejections[0].reason is RejectReason.BAD_TOPIC
    bad = orjson.dumps({"v": 1, "state": "sleepy", "ts": 1})
    assert decode_host_state(HOST_STATE_TOPIC, bad).rejections[0].reason is RejectReason.BAD_SHAPE
    assert decode_host_state(HOST_STATE_TOPIC, b"online").rejections[0].reason is RejectReason.BAD_JSON
