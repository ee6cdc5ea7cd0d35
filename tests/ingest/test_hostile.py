"""Hostile input through a real Mosquitto: every bad message dead-lettered with its reason."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sitewatch.contract import DEADLETTER_TOPIC, KINDS, Channel, now_ms, topic
from sitewatch.devtools.services import MosquittoService, wait_until
from sitewatch.ingest import IngestService
from sitewatch.ingest.registry import DeviceRecord, RegistryClient
from sitewatch.store import embedded_store, open_store
from sitewatch.store.checks import check_batch as real_check_batch

from .conftest import make_settings
from .traffic import Publisher, checksum, make_traffic, stored_readings

pytestmark = pytest.mark.integration


class DeadLetters:
    """Collects what arrives on the dead-letter topic."""

    def __init__(self, port: int) -> None:
        self.items: list[dict[str, object]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(DEADLETTER_TOPIC, qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.items.append(orjson.loads(message.payload))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_hostile_battery_dead_lettered_and_valid_readings_kept(
    mosquitto: MosquittoService,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
) -> None:
    compound, other = unique("H"), unique("O")
    gw = f"{compound}-GW01"
    data = topic(compound, gw, Channel.DATA)
    settings = make_settings(mosquitto.url, tmp_path)
    dead = DeadLetters(mosquitto.port)
    service = run_ingest(settings, unique("ingest-hostile"))
    publisher = Publisher(mosquitto.port, unique("pub"))
    now = now_ms()

    def body(seq: int, samples: list[dict[str, object]], **header: object) -> dict[str, object]:
        return {
            "v": 1,
            "compound": compound,
            "gateway": gw,
            "bdseq": 1,
            "seq": seq,
            "sent": now,
            "samples": samples,
        } | header

    def sample(device: str, kind: str, ts: int, **values: object) -> dict[str, object]:
        return {"device": device, "kind": kind, "ts": ts, "values": values}

    el = f"{compound}-EL0001"
    valid = make_traffic(compound, gw, messages=6, samples_per_message=5, start_ms=now - 60_000)
    hostile: list[tuple[bytes, str]] = [
        (b'{"v": 1, "compound": "' + compound.encode() + b'", "samples": [', "bad_json"),
        (orjson.dumps(body(1, [sample(el, "elevator", now, car_load=5.0)], v=2)), "unknown_version"),
        (orjson.dumps(body(2, [sample(f"{compound}-XX0001", "toaster", now, heat=1.0)])), "unknown_kind"),
        (
            f'{{"v": 1, "compound": "{compound}", "gateway": "{gw}", "bdseq": 1, "seq": 3, "sent": {now}, '
            f'"samples": [{{"device": "{el}", "kind": "elevator", "ts": {now}, "values": {{"car_load": NaN}}}}]}}'.encode(),
            "non_finite",
        ),
        (orjson.dumps(body(4, [sample(el, "elevator", now, car_load=1e308)])), "out_of_range"),
        (orjson.dumps(body(5, [sample(el, "elevator", 0, car_load=5.0)])), "ts_past"),
        (orjson.dumps(body(6, [sample(el, "elevator", 4_102_444_800_000, car_load=5.0)])), "ts_future"),
        (orjson.dumps(body(7, [sample(f"{other}-EL0001", "elevator", now, car_load=5.0)])), "foreign_device"),
        (b'{"v": 1, "pad": "' + b"x" * 10_000_000 + b'"}', "oversized"),
        (bytes(range(256)) * 40, "bad_json"),
    ]
    # hostile messages interleaved with valid ones
    for i, (payload, _) in enumerate(hostile):
        if i < len(valid.messages):
            publisher.publish([valid.messages[i]])
        publisher.publish_raw(data, payload)
    publisher.wait_acked()

    wait_until(lambda: len(dead.items) >= len(hostile), 30, "every dead letter")
    store = open_store(settings)
    wait_until(lambda: store.count_readings(compound=compound) == len(valid.readings), 30, "valid readings")
    assert checksum(stored_readings(store, now - 120_000, now + 1)) == valid.checksum

    by_reason = sorted(str(d["reason"]) for d in dead.items)
    assert by_reason == sorted(r for _, r in hostile)
    expected_messages = len(hostile) + len(valid.messages)
    wait_until(lambda: service.stats.snapshot().acked == expected_messages, 30, "every message acknowledged")
    stats = service.stats.snapshot()
    assert stats.rejected == {r: by_reason.count(r) for r in set(by_reason)}
    assert stats.dead_lettered == len(hostile)
    assert stats.acked == stats.received == len(hostile) + len(valid.messages) and stats.in_flight == 0
    huge = next(d for d in dead.items if d["reason"] == "oversized")
    assert int(str(huge["payload_bytes"])) > 10_000_000 and huge["payload_truncated"] is True
    garbage = next(d for d in dead.items if d["payload_encoding"] == "base64")
    assert garbage["reason"] == "bad_json" and garbage["payload_bytes"] == 256 * 40

    # still healthy: a valid message after the battery is stored
    later = make_traffic(compound, gw, messages=1, samples_per_message=3, start_ms=now - 30_000, first_seq=20)
    publisher.publish(later.messages)
    total = len(valid.readings) + len(later.readings)
    wait_until(lambda: store.count_readings(compound=compound) == total, 30, "readings after the battery")
    publisher.close()
    dead.close()
    store.close()


def test_sequence_gaps_counted_per_gateway(
    mosquitto: MosquittoService,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
) -> None:
    compound = unique("G")
    gw = f"{compound}-GW01"
    service = run_ingest(make_settings(mosquitto.url, tmp_path), unique("ingest-gaps"))
    publisher = Publisher(mosquitto.port, unique("pub"))
    traffic = make_traffic(compound, gw, messages=10, samples_per_message=1)
    kept = [m for i, m in enumerate(traffic.messages) if i not in (3, 4, 5, 8)]  # seq 3-5 and 8 lost
    for message in kept:  # one at a time: the order the gateway sent them
        publisher.publish([message])
        publisher.wait_acked()
    wait_until(lambda: service.stats.snapshot().acked == len(kept), 30, "messages stored")
    stats = service.stats.snapshot()
    assert (stats.gaps, stats.missing_messages) == (2, 4)
    assert stats.missing_by_gateway == {f"{compound}/{gw}": 4}
    assert service.tracker is not None and service.tracker.gateways()[(compound, gw)] == (1, 9)
    publisher.close()


class BrokenRegistry(RegistryClient):
    """A registry client with a bug: raises what the service does not expect."""

    def lookup(self, devices: Collection[str]) -> dict[str, DeviceRecord | None]:
        raise RuntimeError("a bug")


def test_internal_error_stops_ingest_without_acknowledging(
    mosquitto: MosquittoService,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
) -> None:
    compound = unique("E")
    settings = make_settings(mosquitto.url, tmp_path)
    service = run_ingest(settings, unique("ingest-bug"), registry=BrokenRegistry("http://127.0.0.1:9"))
    publisher = Publisher(mosquitto.port, unique("pub"))
    publisher.publish(make_traffic(compound, f"{compound}-GW01", messages=1).messages)
    publisher.wait_acked()
    assert service.failed.wait(30)
    stats = service.stats.snapshot()
    assert stats.received == 1 and stats.acked == 0 and stats.stored_readings == 0
    publisher.close()


class BadTagRegistry(RegistryClient):
    """A registry whose record of one device carries a building no store can hold (a newline in it)."""

    def __init__(self, bad_device: str) -> None:
        super().__init__("http://127.0.0.1:9")
        self.bad_device = bad_device

    def lookup(self, devices: Collection[str]) -> dict[str, DeviceRecord | None]:
        def record(device: str) -> DeviceRecord:
            building = "3\n号楼" if device == self.bad_device else "3号楼"
            compound = device.rsplit("-", 1)[0]
            kind = next(k for k, spec in KINDS.items() if device.rsplit("-", 1)[1].startswith(spec.code))
            return DeviceRecord(device, kind.value, compound, "西湖区", "北山街道", "小区", building)

        return {d: record(d) for d in devices}


def test_a_tag_the_registry_attached_is_checked_by_the_store(
    mosquitto: MosquittoService,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the store skips the checks the validator made, never the ones on tags attached after it
    checked: list[bool] = []

    def check_batch(
        samples: object, events: object, *, checker: object = None, validated: bool = False
    ) -> None:
        checked.append(validated)
        real_check_batch(samples, events, checker=checker, validated=validated)  # type: ignore[arg-type]

    monkeypatch.setattr(embedded_store, "check_batch", check_batch)
    compound = unique("T")
    traffic = make_traffic(compound, f"{compound}-GW01", messages=2, samples_per_message=5, devices=5)
    bad = f"{compound}-EL0000"
    settings = make_settings(mosquitto.url, tmp_path)
    dead = DeadLetters(mosquitto.port)
    service = run_ingest(settings, unique("ingest-tags"), registry=BadTagRegistry(bad))
    publisher = Publisher(mosquitto.port, unique("pub"))
    publisher.publish(traffic.messages)
    publisher.wait_acked()
    good = [r for r in traffic.readings if r[0] != bad]
    store = open_store(settings)
    wait_until(
        lambda: store.count_readings(compound=compound) == len(good), 30, "the other devices' readings"
    )
    wait_until(
        lambda: service.stats.snapshot().acked == len(traffic.messages), 30, "every message acknowledged"
    )
    assert {d["reason"] for d in dead.items} == {"store_refused"}
    refused = [r for d in dead.items for r in d["rejections"]]  # type: ignore[attr-defined]
    assert refused and all("control character" in r["detail"] and r["device"] == bad for r in refused)
    assert store.count_readings(compound=compound) == len(good)
    assert checked and all(checked)  # every batch ingest prepared came from the validator
    publisher.close()
    dead.close()
    store.close()
