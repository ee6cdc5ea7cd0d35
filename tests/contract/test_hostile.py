"""Hostile input (hypothesis): nothing raises past the validator, every rejection has a reason."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from sitewatch.contract import Channel, RejectReason, decode_data, decode_events, decode_state, topic

NOW = 1_790_000_000_000
C, GW = "330102-0001", "330102-0001-GW01"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
kinds = st.sampled_from(
    ["elevator", "camera", "charger", "streetlight", "water_meter", "gateway", "x", 1, None]
)
metric_names = st.sampled_from(["trip_count", "flow", "status", "lamp_on", "online", "power", "zzz", ""])
samples = st.fixed_dictionaries(
    {
        "device": st.one_of(st.just(f"{C}-EL0001"), st.text(max_size=30), st.integers()),
        "kind": kinds,
        "ts": st.one_of(st.integers(NOW - 10**12, NOW + 10**12), json_values),
        "values": st.one_of(st.dictionaries(metric_names, json_values, max_size=4), json_values),
    }
)
payloads = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 1, 1, 2, "1", None])},
    optional={
        "compound": st.sampled_from([C, "330102-0002", None]),
        "gateway": st.sampled_from([GW, "x"]),
        "bdseq": st.integers(-5, 2**60),
        "seq": st.integers(-5, 300),
        "sent": st.integers(-5, 2**60),
        "samples": st.lists(samples | json_values, max_size=6),
        "events": st.lists(json_values, max_size=4),
        "state": st.sampled_from(["online", "offline", "dead"]),
        "devices": st.lists(json_values, max_size=3),
        "ts": st.integers(),
    },
)


def _check(decoded: object) -> None:
    rejections = decoded.rejections  # type: ignore[attr-defined]
    message = decoded.message  # type: ignore[attr-defined]
    assert message is not None or rejections
    for rejection in rejections:
        assert isinstance(rejection.reason, RejectReason)
        assert rejection.detail.strip()


@settings(max_examples=300, deadline=None)
@given(payload=payloads)
def test_structured_garbage_never_raises(payload: dict[str, object]) -> None:
    raw = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS) if _encodable(payload) else b"{}"
    for channel, decode in ((Channel.DATA, decode_data), (Channel.EVENT, decode_events)):
        _check(decode(topic(C, GW, channel), raw, now=NOW))
    _check(decode_state(topic(C, GW, Channel.STATE), raw))


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=512), path=st.text(max_size=40))
def test_random_bytes_and_topics_never_raise(raw: bytes, path: str) -> None:
    for t in (topic(C, GW, Channel.DATA), path):
        _check(decode_data(t, raw, now=NOW))
        _check(decode_events(t, raw, now=NOW))
        _check(decode_state(t, raw))


def test_deep_nesting_is_refused_with_a_reason() -> None:
    raw = b'{"v": 1, "samples": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    decoded = decode_data(topic(C, GW, Channel.DATA), raw, now=NOW)
    assert decoded.message is None and decoded.rejections[0].reason == RejectReason.BAD_JSON


def _encodable(payload: object) -> bool:
    try:
        orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return False
    return True
