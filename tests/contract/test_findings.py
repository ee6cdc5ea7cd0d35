"""The finding contract: analytics → alerting over MQTT, decoded and refused like every other payload."""

from __future__ import annotations

import orjson
import pytest

from sitewatch.contract import (
    FINDING_SUBSCRIPTION,
    DeviceKind,
    Finding,
    FindingState,
    RejectReason,
    decode_finding,
    finding_compound,
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
