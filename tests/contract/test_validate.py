"""The validator: valid payloads pass whole, every refusal carries the precise reason."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitewatch.contract import (
    KINDS,
    Channel,
    DataMessage,
    DeviceInfo,
    DeviceKind,
    Envelope,
    Event,
    EventMessage,
    Limits,
    RejectReason,
    Sample,
    StateMessage,
    decode_data,
    decode_events,
    decode_state,
    topic,
)
from sitewatch.i18n import translate

NOW = 1_790_000_000_000
C, GW = "330102-0001", "330102-0001-GW01"
DATA = topic(C, GW, Channel.DATA)
EVENTS = topic(C, GW, Channel.EVENT)


def envelope(seq: int = 0) -> Envelope:
    return Envelope(compound=C, gateway=GW, bdseq=1, seq=seq, sent_ms=NOW)


def body(samples: list[dict[str, object]], **header: object) -> bytes:
    base: dict[str, object] = {"v": 1, "compound": C, "gateway": GW, "bdseq": 1, "seq": 0, "sent": NOW}
    base.update(header)
    base["samples"] = samples
    return orjson.dumps(base)


def sample(metric: str = "vibration_rms", value: object = 0.2, **fields: object) -> dict[str, object]:
    item: dict[str, object] = {
        "device": f"{C}-EL0001",
        "kind": "elevator",
        "ts": NOW,
        "values": {metric: value},
    }
    item.update(fields)
    return item


def reasons(payload: bytes, t: str = DATA) -> list[RejectReason]:
    return [r.reason for r in decode_data(t, payload, now=NOW).rejections]


def test_encoded_message_decodes_to_the_same_message() -> None:
    msg = DataMessage(
        envelope(7),
        (
            Sample(f"{C}-EL0001", DeviceKind.ELEVATOR, NOW, {"trip_count": 12.0, "vibration_rms": 0.3}),
            Sample(f"{C}-WM0001", DeviceKind.WATER_METER, NOW - 1000, {"volume_register": 3.5, "flow": 0.0}),
        ),
    )
    decoded = decode_data(DATA, msg.encode(), now=NOW)
    assert decoded.ok
    assert decoded.message == msg
    assert decoded.message.reading_count == 4


def test_events_and_state_round_trip() -> None:
    events = EventMessage(
        envelope(),
        (Event(f"{C}-CH0001", DeviceKind.CHARGER, NOW, "faulted", True, {"error_code": "GroundFailure"}),),
    )
    assert decode_events(EVENTS, events.encode(), now=NOW).message == events
    birth = StateMessage(C, GW, 3, True, NOW, (DeviceInfo(f"{C}-CH0001", DeviceKind.CHARGER, "ocpp1.6"),))
    assert decode_state(topic(C, GW, Channel.STATE), birth.encode()).message == birth
    death = StateMessage(C, GW, 3, False, NOW)
    assert decode_state(topic(C, GW, Channel.STATE), death.encode()).message == death


def test_state_labels_are_accepted_for_state_metrics() -> None:
    payload = body([{"device": f"{C}-CH0001", "kind": "charger", "ts": NOW, "values": {"status": "Faulted"}}])
    decoded = decode_data(DATA, payload, now=NOW)
    assert decoded.ok and decoded.message is not None
    assert decoded.message.samples[0].values["status"] == 8.0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", RejectReason.BAD_JSON),
        (b"\xff\xfe\x00garbage", RejectReason.BAD_JSON),
        (b"[1, 2]", RejectReason.BAD_SHAPE),
        (orjson.dumps({"v": 2, "samples": []}), RejectReason.UNKNOWN_VERSION),
        (orjson.dumps({"samples": []}), RejectReason.UNKNOWN_VERSION),
        (body([], compound="330102-0002"), RejectReason.COMPOUND_MISMATCH),
        (body([], gateway="other"), RejectReason.GATEWAY_MISMATCH),
        (body([], seq=256), RejectReason.BAD_SHAPE),
        (body([], bdseq="1"), RejectReason.BAD_SHAPE),
        (b'{"v": 1, "samples": [{"values": {"flow": NaN}}]}', RejectReason.NON_FINITE),
        (b'{"v": 1, "x": Infinity}', RejectReason.NON_FINITE),
    ],
)
def test_whole_message_rejections(payload: bytes, reason: RejectReason) -> None:
    decoded = decode_data(DATA, payload, now=NOW)
    assert decoded.message is None
    assert [r.reason for r in decoded.rejections] == [reason]
    assert decoded.rejections[0].detail


def test_oversized_and_too_many_samples() -> None:
    limits = Limits(max_payload_bytes=2048, max_samples=3)
    big = body([sample()] * 100)
    assert [r.reason for r in decode_data(DATA, big, limits=limits, now=NOW).rejections] == [
        RejectReason.OVERSIZED
    ]
    many = body([sample()] * 4)
    assert [r.reason for r in decode_data(DATA, many, limits=limits, now=NOW).rejections] == [
        RejectReason.TOO_MANY_SAMPLES
    ]


def test_wrong_topic_is_rejected() -> None:
    assert reasons(body([sample()]), "sitewatch/v1/x") == [RejectReason.BAD_TOPIC]
    assert reasons(body([sample()]), EVENTS) == [RejectReason.BAD_TOPIC]
    assert reasons(body([sample()]), "other/v1/a/b/data") == [RejectReason.BAD_TOPIC]


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (sample(device="330102-0002-EL0001"), RejectReason.FOREIGN_DEVICE),
        (sample(device=f"{C}-"), RejectReason.FOREIGN_DEVICE),
        (sample(device=f"{C}-bad/id"), RejectReason.BAD_DEVICE_ID),
        (sample(device=17), RejectReason.BAD_DEVICE_ID),
        (sample(kind="toaster"), RejectReason.UNKNOWN_KIND),
        (sample(ts="2026-01-01"), RejectReason.BAD_TIMESTAMP),
        (sample(ts=True), RejectReason.BAD_TIMESTAMP),
        (sample(ts=0), RejectReason.TS_PAST),  # 1970
        (sample(ts=4_102_444_800_000), RejectReason.TS_FUTURE),  # 2100
        (sample(values={}), RejectReason.BAD_SHAPE),
        ("just a string", RejectReason.BAD_SHAPE),
        (sample("no_such_metric", 1), RejectReason.UNKNOWN_METRIC),
        (sample("vibration_rms", 1e308), RejectReason.OUT_OF_RANGE),
        (sample("vibration_rms", -1), RejectReason.OUT_OF_RANGE),
        (sample("vibration_rms", "loud"), RejectReason.BAD_VALUE),
        (sample("vibration_rms", None), RejectReason.BAD_VALUE),
        (sample("entrapment", 0.5), RejectReason.OUT_OF_RANGE),
        (sample("run_state", 1.5), RejectReason.OUT_OF_RANGE),
        (sample("run_state", "flying"), RejectReason.BAD_VALUE),
    ],
)
def test_bad_samples_are_rejected_alone(item: object, reason: RejectReason) -> None:
    good = sample("trip_count", 5)
    decoded = decode_data(DATA, body([good, item, good]), now=NOW)  # type: ignore[list-item]
    assert [r.reason for r in decoded.rejections] == [reason]
    assert decoded.rejections[0].detail
    assert decoded.message is not None and len(decoded.message.samples) == 2  # neighbours kept


def test_one_bad_value_keeps_the_other_values_of_its_sample() -> None:
    item = {
        "device": f"{C}-EL0001",
        "kind": "elevator",
        "ts": NOW,
        "values": {"trip_count": 5, "car_load": 900},
    }
    decoded = decode_data(DATA, body([item]), now=NOW)
    assert [r.reason for r in decoded.rejections] == [RejectReason.OUT_OF_RANGE]
    assert "car_load" in decoded.rejections[0].detail
    assert decoded.message is not None and decoded.message.samples[0].values == {"trip_count": 5.0}


def test_unknown_event_and_bad_attrs() -> None:
    def ev(**fields: object) -> bytes:
        item = {"device": f"{C}-SL0001", "kind": "streetlight", "ts": NOW, "event": "lamp_failure"}
        item.update(fields)
        return orjson.dumps(
            {"v": 1, "compound": C, "gateway": GW, "bdseq": 0, "seq": 1, "sent": NOW, "events": [item]}
        )

    assert decode_events(EVENTS, ev(), now=NOW).ok
    assert (
        decode_events(EVENTS, ev(event="door_fault"), now=NOW).rejections[0].reason
        == RejectReason.UNKNOWN_EVENT
    )
    assert decode_events(EVENTS, ev(active="yes"), now=NOW).rejections[0].reason == RejectReason.BAD_SHAPE
    assert decode_events(EVENTS, ev(attrs={"k": 1}), now=NOW).rejections[0].reason == RejectReason.BAD_SHAPE


def test_every_kind_has_metrics_events_and_liveness() -> None:
    for kind, spec in KINDS.items():
        assert spec.metrics, kind
        assert {"online", "offline"} <= set(spec.events), kind
        for metric in spec.metrics.values():
            assert metric.minimum < metric.maximum
            assert metric.description and translate(metric.description, "zh_CN") != metric.description


# --- duplicate keys: two parsers must never read two different messages out of one payload ------

_DEVICE = f"{C}-EL0001"
_HEAD = f'"v":1,"compound":"{C}","gateway":"{GW}","bdseq":1,"seq":0,"sent":{NOW}'
_SAMPLE = f'"device":"{_DEVICE}","kind":"elevator","ts":{NOW}'


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        (
            f'{{{_HEAD},"compound":"330102-0002","samples":[{{{_SAMPLE},"values":{{"car_load":1.0}}}}]}}',
            "compound",
        ),
        (
            f'{{{_HEAD},"samples":[{{{_SAMPLE},"device":"{C}-EL0002","values":{{"car_load":1.0}}}}]}}',
            "device",
        ),
        (f'{{{_HEAD},"samples":[{{{_SAMPLE},"values":{{"car_load":1.0,"car_load":900.0}}}}]}}', "car_load"),
        (f'{{{_HEAD},"samples":[{{{_SAMPLE},"ts":1,"values":{{"car_load":1.0}}}}]}}', "ts"),
        # spaces before the colon, and a key written with an escape, are the same key
        (
            f'{{{_HEAD},"samples":[{{{_SAMPLE},"device" : "{C}-EL0002","values":{{"car_load":1.0}}}}]}}',
            "device",
        ),
        (
            f'{{{_HEAD},"samples":[{{{_SAMPLE},"dev\\u0069ce":"{C}-EL0002","values":{{"car_load":1.0}}}}]}}',
            "device",
        ),
        (f'{{{_HEAD},"seq":1,"samples":[{{{_SAMPLE},"values":{{"car_load":1.0}}}}]}}', "seq"),
        (f'{{{_HEAD},"replay":false,"replay":true,"samples":[]}}', "replay"),
    ],
)
def test_duplicate_keys_refuse_the_message_naming_the_key(payload: str, key: str) -> None:
    decoded = decode_data(DATA, payload.encode(), now=NOW)
    assert decoded.message is None
    (rejection,) = decoded.rejections
    assert rejection.reason is RejectReason.BAD_JSON and repr(key) in rejection.detail


def test_duplicate_keys_in_events_and_state_are_refused() -> None:
    event = f'"device":"{_DEVICE}","kind":"elevator","ts":{NOW},"event":"door_fault"'
    for payload, key in (
        (f'{{{_HEAD},"events":[{{{event},"event":"emergency_call"}}]}}', "event"),
        (f'{{{_HEAD},"events":[{{{event},"attrs":{{"a":"1","a":"2"}}}}]}}', "a"),
    ):
        (rejection,) = decode_events(EVENTS, payload.encode(), now=NOW).rejections
        assert rejection.reason is RejectReason.BAD_JSON and repr(key) in rejection.detail
    state = (
        f'{{"v":1,"compound":"{C}","gateway":"{GW}","bdseq":1,"state":"online","state":"offline","ts":{NOW}}}'
    )
    (rejection,) = decode_state(topic(C, GW, Channel.STATE), state.encode()).rejections
    assert rejection.reason is RejectReason.BAD_JSON and "'state'" in rejection.detail


def test_colons_inside_strings_are_not_taken_for_keys() -> None:
    # device names may hold ':' (and attributes any text): counted colons then exceed the keys,
    # and the exact check must find no duplicate
    device = f"{C}-EL:01:02"
    decoded = decode_data(DATA, body([sample(device=device)]), now=NOW)
    assert decoded.ok and decoded.message is not None and decoded.message.samples[0].device == device
    events = orjson.dumps(
        {"v": 1, "compound": C, "gateway": GW, "bdseq": 1, "seq": 0, "sent": NOW,
         "events": [{"device": device, "kind": "elevator", "ts": NOW, "event": "door_fault",
                     "attrs": {"at": "12:30:00", "note": '"k":"v"'}}]}
    )  # fmt: skip
    assert decode_events(EVENTS, events, now=NOW).ok


_keys = st.sampled_from(["device", "kind", "ts", "values", "x", "dev\\u0069ce", "a:b"])
_texts = st.sampled_from([f'"{C}-EL0001"', '"elevator"', str(NOW), '{"car_load":1.0}', '"1:2"', "null"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_keys, _texts, st.sampled_from([":", " : ", ":\n"])), min_size=1, max_size=7))
def test_a_duplicate_key_is_found_however_the_object_is_written(pairs: list[tuple[str, str, str]]) -> None:
    item = "{" + ",".join(f'"{k}"{colon}{v}' for k, v, colon in pairs) + "}"
    payload = f'{{{_HEAD},"samples":[{item}]}}'.encode()
    names = [json.loads(f'"{k}"') for k, _, _ in pairs]
    duplicate = len(set(names)) < len(names)
    refused = [r for r in decode_data(DATA, payload, now=NOW).rejections if r.reason is RejectReason.BAD_JSON]
    assert bool(refused) == duplicate
