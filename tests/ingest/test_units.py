"""Pure parts of ingest: gaps, dead-letter encoding, registry cache, batch enrichment."""

from __future__ import annotations

import base64

import httpx
import orjson
import pytest

from sitewatch.contract import DeviceKind, Envelope, Rejection, RejectReason, Sample
from sitewatch.ingest.deadletter import dead_letter_payload, encode_payload
from sitewatch.ingest.gaps import SequenceTracker
from sitewatch.ingest.pipeline import Inbound, Processed, build_batch, drop_item
from sitewatch.ingest.registry import RegistryClient, RegistryUnavailable
from sitewatch.settings import UnknownDevicePolicy


def env(seq: int, bdseq: int = 1, gateway: str = "C1-GW01") -> Envelope:
    return Envelope("C1", gateway, bdseq, seq, 0)


def test_gaps_counted_forward_only_and_across_wrap() -> None:
    t = SequenceTracker()
    assert t.see(env(250)) is None  # first sight: baseline
    assert t.see(env(251)) is None
    gap = t.see(env(2))  # 252..255, 0, 1 missing across the wrap
    assert gap is not None and gap.missing == 6 and (gap.after_seq, gap.next_seq) == (251, 2)
    assert t.see(env(1)) is None and t.late == 1  # a late/redelivered message is not a gap
    assert t.see(env(2)) is None and t.late == 2
    assert t.see(env(9, bdseq=2)) is None  # new session: no gap across reconnects
    assert t.see(env(10, bdseq=2)) is None
    assert t.see(env(200, bdseq=1)) is None and t.late == 3  # earlier session redelivered
    assert t.see(env(5, gateway="C1-GW02")) is None  # gateways tracked separately


def test_payload_echo_text_binary_and_truncated() -> None:
    assert encode_payload(b'{"a": 1}') == {
        "payload": '{"a": 1}', "payload_encoding": "utf-8", "payload_bytes": 8, "payload_truncated": False,
    }  # fmt: skip
    binary = bytes(range(256))
    echoed = encode_payload(binary)
    assert echoed["payload_encoding"] == "base64" and base64.b64decode(echoed["payload"]) == binary
    huge = "水".encode() * 100_000  # a 3-byte character cut by the limit is still text
    echoed = encode_payload(huge, limit=1000)
    assert echoed["payload_encoding"] == "utf-8" and echoed["payload_truncated"] is True
    assert echoed["payload_bytes"] == 300_000 and len(echoed["payload"].encode()) <= 1000


def test_dead_letter_lists_reasons_and_survives_odd_items() -> None:
    rejections = [Rejection(RejectReason.NON_FINITE, "x", "C1-EL0001", {"v": 1})] * 150
    body = orjson.loads(dead_letter_payload("t", b"p", rejections, received_ms=5, worker="w"))
    assert (
        body["reason"] == "non_finite" and body["rejection_count"] == 150 and len(body["rejections"]) == 100
    )
    odd = [Rejection(RejectReason.BAD_SHAPE, "y", None, {1, 2})]  # a set is not JSON
    body = orjson.loads(dead_letter_payload("t", b"p", odd, received_ms=5, worker="w"))
    assert body["rejections"][0]["item"] == "{1, 2}"


def lookup_answer(found: dict[str, tuple[str, str]]) -> dict[str, object]:
    return {
        "found": {
            d: {
                "device_id": d, "kind": kind, "compound_code": compound, "district": "西湖区",
                "street": "北山街道", "community": "宝石社区", "building_no": "3",
            }
            for d, (kind, compound) in found.items()
        },
        "unknown": [],
    }  # fmt: skip


class FakeRegistry:
    """An httpx transport answering the lookup endpoint from a dict, counting requests."""

    def __init__(self, devices: dict[str, tuple[str, str]]) -> None:
        self.devices = devices
        self.calls = 0
        self.down = False
        self.revision = 1

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("refused")
        if request.url.path == "/api/v1/lookup/revision":
            return httpx.Response(200, json={"revision": self.revision, "changed_at": "2026-01-01T00:00:00Z"})
        self.calls += 1
        assert request.url.path == "/api/v1/lookup/devices"
        assert request.headers["authorization"] == "Bearer tok"
        ids = orjson.loads(request.content)["device_ids"]
        return httpx.Response(200, json=lookup_answer({d: self.devices[d] for d in ids if d in self.devices}))


def test_registry_cache_refresh_and_outage() -> None:
    fake = FakeRegistry({"C1-EL0001": ("elevator", "C1")})
    clock = [0.0]
    client = RegistryClient(
        "http://reg", "tok", ttl_s=100, unknown_ttl_s=10, clock=lambda: clock[0],
        transport=httpx.MockTransport(fake),
    )  # fmt: skip
    got = client.lookup(["C1-EL0001", "C1-EL0002"])
    assert got["C1-EL0001"] is not None and got["C1-EL0001"].tags()["building"] == "3"
    assert got["C1-EL0002"] is None and fake.calls == 1
    client.lookup(["C1-EL0001", "C1-EL0002"])
    assert fake.calls == 1  # both cached
    clock[0] = 11  # the unknown one is asked again, the known one not
    fake.devices["C1-EL0002"] = ("elevator", "C1")
    assert client.lookup(["C1-EL0001", "C1-EL0002"])["C1-EL0002"] is not None and fake.calls == 2
    clock[0] = 500
    fake.down = True  # stale answers are used rather than nothing
    assert client.lookup(["C1-EL0001"])["C1-EL0001"] is not None
    with pytest.raises(RegistryUnavailable):
        client.lookup(["C1-EL0003"])


def processed(*samples: Sample) -> Processed:
    inbound = Inbound(1, 1, 1, "sitewatch/v1/C1/C1-GW01/data", b"", 0)
    return Processed(inbound, env(0), samples=samples)


def test_batch_enrichment_policies() -> None:
    fake = FakeRegistry({"C1-EL0001": ("elevator", "C1"), "C1-CA0001": ("elevator", "C1")})
    client = RegistryClient("http://reg", "tok", transport=httpx.MockTransport(fake))
    samples = (
        Sample("C1-EL0001", DeviceKind.ELEVATOR, 1, {"car_load": 1.0, "motor_current": 2.0}),
        Sample("C1-CA0001", DeviceKind.CAMERA, 1, {"bitrate": 1.0}),  # registered as an elevator
        Sample("C1-WM0001", DeviceKind.WATER_METER, 1, {"flow": 1.0}),  # not registered
    )
    p = processed(*samples)
    batch = build_batch([p], client, UnknownDevicePolicy.DEADLETTER)
    assert [s.sample.device for s in batch.samples] == ["C1-EL0001"] and batch.readings == 2
    assert batch.samples[0].tags == {
        "district": "西湖区",
        "street": "北山街道",
        "community": "宝石社区",
        "building": "3",
    }
    assert [r.reason for r in p.rejections] == [RejectReason.KIND_MISMATCH, RejectReason.UNKNOWN_DEVICE]

    p = processed(*samples)
    batch = build_batch([p], client, UnknownDevicePolicy.FLAG)
    assert [(s.sample.device, s.flagged) for s in batch.samples] == [
        ("C1-EL0001", False),
        ("C1-WM0001", True),
    ]
    assert batch.flagged_readings == 1

    fake.down = True
    fresh = RegistryClient("http://reg", "tok", transport=httpx.MockTransport(fake))
    batch = build_batch([processed(*samples)], fresh, UnknownDevicePolicy.DEADLETTER)
    assert batch.registry_error and all(s.flagged for s in batch.samples) and batch.readings == 4

    p = processed(*samples)
    batch = build_batch([p], None, UnknownDevicePolicy.DEADLETTER)
    drop_item(batch, 1, "tag contains a newline")
    assert batch.readings == 3 and p.rejections[0].reason is RejectReason.STORE_REFUSED


def test_registry_change_empties_the_cache() -> None:
    fake = FakeRegistry({"C1-EL0001": ("elevator", "C1")})
    clock = [0.0]
    client = RegistryClient(
        "http://reg", "tok", ttl_s=1000, revision_check_s=5, clock=lambda: clock[0],
        transport=httpx.MockTransport(fake),
    )  # fmt: skip
    client.lookup(["C1-EL0001"])
    clock[0] = 6
    client.lookup(["C1-EL0001"])
    assert fake.calls == 1  # same revision: cached
    fake.revision = 2  # e.g. the device was rebound to another compound
    fake.devices["C1-EL0001"] = ("elevator", "C9")
    clock[0] = 12
    record = client.lookup(["C1-EL0001"])["C1-EL0001"]
    assert fake.calls == 2 and record is not None and record.compound == "C9"
