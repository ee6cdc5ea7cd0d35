"""The finding contract: analytics → alerting over MQTT, decoded and refused like every other payload."""

from __future__ import annotations

import orjson
import pytest

from sitewatch.contract import (
    FINDING_SUBSCRIPTION,
    DeviceKind,
    Finding,
    FindingState,
    Limits,
    RejectReason,
    decode_finding,
    decode_findings,
    encode_findings,
    finding_compound,
    finding_messages,
    finding_topic,
)
from sitewatch.contract.kinds import Severity

TOPIC = "sitewatch/v1/220106-0001/_analytics/finding"


def finding(**changes: object) -> Finding:
    base: dict[str, object] = {
        "id": "rule:elevator.entrapment:220106-0001-EL0001:1790000000000",
        "compound": "220106-0001",
        "device": "220106-0001-EL0001",
        "kind": DeviceKind.ELEVATOR,
        "source": "rule:elevator.entrapment",
        "fault": "entrapment",
        "severity": Severity.CRITICAL,
        "state": FindingState.ACTIVE,
        "started_ms": 1_790_000_000_000,
        "ts_ms": 1_790_000_000_400,
        "message": "Passenger trapped in {device}",
        "params": {"device": "220106-0001-EL0001", "floor": 3},
        "evidence": {"entrapment": 1.0},
    }
    base.update(changes)
    return Finding(**base)  # type: ignore[arg-type]


def test_topic_round_trip_and_subscription() -> None:
    assert finding_topic("220106-0001") == TOPIC
    assert finding_compound(TOPIC) == "220106-0001"
    assert finding_compound("sitewatch/v1/220106-0001/GW01/data") is None
    assert finding_compound("sitewatch/v1/a/b/_analytics/finding") is None
    assert FINDING_SUBSCRIPTION == "sitewatch/v1/+/_analytics/finding"
    with pytest.raises(ValueError):
        finding_topic("bad/code")


@pytest.mark.parametrize(
    "item",
    [
        finding(),
        finding(state=FindingState.CLEARED, ended_ms=1_790_000_060_000, score=3.5, fault=None),
        finding(device="220106-0001-GW01", kind=DeviceKind.GATEWAY, source="rule:gateway.offline"),
    ],
)
def test_encode_decode_round_trip(item: Finding) -> None:
    decoded = decode_finding(TOPIC, item.encode())
    assert decoded.ok and decoded.message == item


def _body(**changes: object) -> bytes:
    body = finding().to_json()
    body.update(changes)
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_body(compound="220106-0002"), RejectReason.COMPOUND_MISMATCH),
        (_body(device="220106-0002-EL0001"), RejectReason.FOREIGN_DEVICE),
        (_body(kind="toaster"), RejectReason.UNKNOWN_KIND),
        (_body(source="rules:x"), RejectReason.BAD_SHAPE),
        (_body(source="rule:x\n"), RejectReason.BAD_SHAPE),
        (_body(id="abc\n"), RejectReason.BAD_SHAPE),
        (_body(fault="Entrapment!"), RejectReason.BAD_SHAPE),
        (_body(severity="fatal"), RejectReason.BAD_SHAPE),
        (_body(state="cleared"), RejectReason.BAD_SHAPE),  # cleared without 'ended'
        (_body(ended=1), RejectReason.BAD_TIMESTAMP),
        (_body(started="yesterday"), RejectReason.BAD_TIMESTAMP),
        (_body(evidence={"x": "high"}), RejectReason.BAD_VALUE),
        (_body(evidence={f"m{i}": 1 for i in range(33)}), RejectReason.BAD_SHAPE),
        (_body(params={"x": "\x1b[31m"}), RejectReason.BAD_SHAPE),
        (_body(message="x" * 501), RejectReason.BAD_SHAPE),
        (_body(v=2), RejectReason.UNKNOWN_VERSION),
        (b'{"v": 1, "score": NaN}', RejectReason.NON_FINITE),
        (b"\xff", RejectReason.BAD_JSON),
        (b"[]", RejectReason.BAD_SHAPE),
    ],
)
def test_hostile_findings_are_refused_with_a_reason(payload: bytes, reason: RejectReason) -> None:
    decoded = decode_finding(TOPIC, payload)
    assert decoded.message is None
    assert [r.reason for r in decoded.rejections] == [reason]


def test_a_finding_on_a_data_topic_is_refused() -> None:
    decoded = decode_finding("sitewatch/v1/220106-0001/220106-0001-GW01/data", finding().encode())
    assert decoded.rejections[0].reason is RejectReason.BAD_TOPIC


# --- batches: several findings in one payload on the same topic ----------------------------------


def _many(n: int, compound: str = "220106-0001") -> list[Finding]:
    return [
        finding(id=f"rule:camera.video_loss:{compound}-CA{i:04d}:1", compound=compound,
                device=f"{compound}-CA{i:04d}", kind=DeviceKind.CAMERA, source="rule:camera.video_loss",
                fault="video_loss", severity=Severity.WARNING, params={"device": f"{compound}-CA{i:04d}"})
        for i in range(n)
    ]  # fmt: skip


def test_a_batch_round_trips_in_order_and_a_single_finding_still_decodes() -> None:
    items = _many(5)
    decoded = decode_findings(TOPIC, encode_findings("220106-0001", items))
    assert decoded.ok and decoded.message == tuple(items)
    single = decode_findings(TOPIC, items[0].encode())
    assert single.ok and single.message == (items[0],)
    # the single-finding decoder refuses a batch rather than half-reading it
    assert (
        decode_finding(TOPIC, encode_findings("220106-0001", items)).rejections[0].reason
        is RejectReason.BAD_SHAPE
    )


def test_finding_messages_batch_per_compound_within_the_limits() -> None:
    ours, theirs = _many(7), _many(1, "220106-0002")
    out = list(finding_messages(ours + theirs, max_batch=3))
    assert [(t, n) for t, _, n in out] == [
        (TOPIC, 3),
        (TOPIC, 3),
        (TOPIC, 1),
        (finding_topic("220106-0002"), 1),
    ]
    assert out[2][1] == ours[6].encode() and out[3][1] == theirs[0].encode()  # a lone finding goes as itself
    assert [f for t, p, _ in out[:3] for f in decode_findings(t, p).message or ()] == ours
    # by size: no payload above max_bytes, every finding once, in order
    limit = 3 * len(ours[0].encode())
    sized = list(finding_messages(ours, max_bytes=limit))
    assert all(len(p) <= limit for _, p, _ in sized) and len(sized) > 2
    assert [f for t, p, _ in sized for f in decode_findings(t, p).message or ()] == ours


def test_a_batch_with_a_bad_element_keeps_the_others() -> None:
    items = [f.to_json() for f in _many(4)]
    items[1]["device"] = "220106-0002-CA0001"  # another compound's device
    items[2] = "not a finding"
    payload = orjson.dumps({"v": 1, "compound": "220106-0001", "findings": items})
    decoded = decode_findings(TOPIC, payload)
    assert [f.device for f in decoded.message or ()] == ["220106-0001-CA0000", "220106-0001-CA0003"]
    assert [(r.reason, r.device) for r in decoded.rejections] == [
        (RejectReason.FOREIGN_DEVICE, "220106-0002-CA0001"),
        (RejectReason.BAD_SHAPE, None),
    ]
    assert decoded.rejections[0].item == items[1] and "element 1" in decoded.rejections[0].detail
    assert decoded.rejections[1].item == "not a finding" and "element 2" in decoded.rejections[1].detail


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"v": 1, "compound": "220106-0001", "findings": []}', RejectReason.BAD_SHAPE),
        (b'{"v": 1, "compound": "220106-0001", "findings": {"a": 1}}', RejectReason.BAD_SHAPE),
        (b'{"v": 1, "compound": "220106-0001", "findings": [{}], "extra": 1}', RejectReason.BAD_SHAPE),
        (b'{"v": 1, "compound": "220106-0002", "findings": [{}]}', RejectReason.COMPOUND_MISMATCH),
        (b'{"v": 2, "compound": "220106-0001", "findings": [{}]}', RejectReason.UNKNOWN_VERSION),
        (b'{"v": 1, "compound": "220106-0001", "findings": [{}', RejectReason.BAD_JSON),
        (encode_findings("220106-0001", _many(1001)), RejectReason.TOO_MANY_FINDINGS),
    ],
)
def test_a_malformed_batch_is_refused_whole(payload: bytes, reason: RejectReason) -> None:
    decoded = decode_findings(TOPIC, payload)
    assert decoded.message is None and [r.reason for r in decoded.rejections] == [reason]


def test_an_oversized_batch_is_refused_whole() -> None:
    payload = encode_findings("220106-0001", _many(50))
    decoded = decode_findings(TOPIC, payload, limits=Limits(max_payload_bytes=len(payload) - 1))
    assert decoded.message is None and decoded.rejections[0].reason is RejectReason.OVERSIZED


def test_a_duplicate_key_is_refused_even_when_strings_hold_colons() -> None:
    body = finding().encode()  # its id and source hold colons: the colon count alone proves nothing
    twice = body[:-1] + b',"device":"220106-0001-EL0009"}'
    assert decode_finding(TOPIC, twice).rejections[0].reason is RejectReason.BAD_JSON
    # a colon written as an escape cannot make up for the colon the duplicate lost
    masked = twice.replace(b'"message":"Passenger', b'"message":"\\u003aPassenger')
    assert decode_finding(TOPIC, masked).rejections[0].reason is RejectReason.BAD_JSON
    batch = encode_findings("220106-0001", _many(3))
    assert (
        decode_findings(TOPIC, batch[:-2] + b',"device":"x"}]}').rejections[0].reason is RejectReason.BAD_JSON
    )


def test_numpy_values_of_a_detector_are_written_as_plain_numbers() -> None:
    np = pytest.importorskip("numpy")
    item = finding(
        params={"device": "220106-0001-EL0001", "score": np.float64(7.25), "hours": np.int64(3)},
        evidence={"score": np.float32(7.25), "hours": np.float64(3.0)},
        score=np.float64(1.5),
    )
    decoded = decode_finding(TOPIC, item.encode())
    assert decoded.ok, decoded
    got = decoded.message
    assert isinstance(got, Finding)
    assert got.params == {"device": "220106-0001-EL0001", "score": 7.25, "hours": 3}
    assert type(got.params["hours"]) is int and type(got.params["score"]) is float
    assert got.evidence == {"score": 7.25, "hours": 3.0}
    assert got.score == 1.5
