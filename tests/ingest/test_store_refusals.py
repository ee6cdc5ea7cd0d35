"""What the store refuses for good never stalls ingest (real Mosquitto, real InfluxDB, real SQLite).

Each test mixes items the store refuses with valid readings of other compounds, in the same
batches: the valid ones must be stored within seconds, the refused ones dead-lettered with the
store's reason (``store_refused``), every message acknowledged, and the refusals counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from pathlib import Path

import httpx
import orjson
import pytest

from sitewatch.contract import (
    KINDS,
    Channel,
    DataMessage,
    DeviceKind,
    Envelope,
    Sample,
    now_ms,
    topic,
)
from sitewatch.devtools.services import InfluxDBService, MosquittoService, wait_until
from sitewatch.ingest import IngestService
from sitewatch.ingest.registry import DeviceRecord, RegistryClient
from sitewatch.ingest.writer import UNKNOWN_ATTEMPTS
from sitewatch.settings import Settings, load_settings
from sitewatch.store import PreparedBatch, embedded_store, influx_store, open_store
from sitewatch.store.embedded_store import EmbeddedStore
from sitewatch.store.influx_store import InfluxStore

from .test_hostile import DeadLetters
from .traffic import Publisher, Traffic, make_traffic

pytestmark = pytest.mark.integration

STORED_WITHIN_S = 20.0  # bound on "the valid readings are stored within seconds" (a loaded CI machine)


def influx_ingest_settings(
    mosquitto: MosquittoService, influxdb: InfluxDBService, database: str, tmp_path: Path, **store: object
) -> Settings:
    return load_settings(
        data_dir=tmp_path,
        mqtt={"url": mosquitto.url},
        store={"backend": "influxdb", "influx_url": influxdb.url, "influx_database": database, **store},
        ingest={"batch_interval_s": 0.2},
    )


def bad_messages(compound: str, samples: list[Sample], *, first_seq: int = 0) -> list[tuple[str, bytes]]:
    """One data message per sample (so each refusal is its own dead letter)."""
    gateway = f"{compound}-GW01"
    return [
        (
            topic(compound, gateway, Channel.DATA),
            DataMessage(Envelope(compound, gateway, 1, (first_seq + i) % 256, now_ms()), (s,)).encode(),
        )
        for i, s in enumerate(samples)
    ]


def good_traffic(unique: Callable[[str], str], start_ms: int) -> tuple[list[str], Traffic]:
    """Valid readings of two other compounds (all five kinds)."""
    compounds = [unique("G"), unique("G")]
    traffic = Traffic()
    for compound in compounds:
        part = make_traffic(
            compound, f"{compound}-GW01", messages=10, samples_per_message=10, start_ms=start_ms
        )
        traffic.messages += part.messages
        traffic.readings += part.readings
    return compounds, traffic


def interleave(*streams: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for i in range(max(len(s) for s in streams)):
        out += [s[i] for s in streams if i < len(s)]
    return out


def run_mixed(
    settings: Settings,
    run_ingest: Callable[..., IngestService],
    unique: Callable[[str], str],
    mosquitto: MosquittoService,
    bad: list[tuple[str, bytes]],
    good_start_ms: int,
    **ingest_kwargs: object,
) -> tuple[IngestService, list[dict[str, object]], float]:
    """Publish the bad messages among valid readings of two other compounds; wait for both outcomes.

    Returns the service, the dead letters and the seconds until every valid reading was stored.
    """
    compounds, good = good_traffic(unique, good_start_ms)
    dead = DeadLetters(mosquitto.port)
    service = run_ingest(settings, unique("ingest-refusals"), **ingest_kwargs)
    publisher = Publisher(mosquitto.port, unique("pub"))
    store = open_store(settings)
    try:
        started = time.monotonic()
        publisher.publish(interleave(good.messages, bad))
        wanted = {c: sum(1 for r in good.readings if r[0].startswith(c + "-")) for c in compounds}
        wait_until(
            lambda: all(store.count_readings(compound=c) == n for c, n in wanted.items()),
            STORED_WITHIN_S,
            "the valid readings of the other compounds",
        )
        stored_after = time.monotonic() - started
        wait_until(lambda: len(dead.items) >= len(bad), STORED_WITHIN_S, "a dead letter per refused message")
        total = len(good.messages) + len(bad)
        wait_until(
            lambda: service.stats.snapshot().acked == total, STORED_WITHIN_S, "every message acknowledged"
        )
    finally:
        publisher.close()
        dead.close()
        store.close()
    stats = service.stats.snapshot()
    assert stats.in_flight == 0 and stats.received == stats.acked
    return service, list(dead.items), stored_after


def assert_refused(dead: list[dict[str, object]], count: int, words: str) -> None:
    assert len(dead) == count
    for letter in dead:
        assert letter["reason"] == "store_refused", letter
        assert words in str(letter["detail"]), letter["detail"]


def test_a_field_type_conflict_dead_letters_only_the_conflicting_samples(
    mosquitto: MosquittoService,
    influxdb: InfluxDBService,
    influx_database: str,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
) -> None:
    now = now_ms()
    with InfluxStore(influxdb.url, influx_database) as creator:
        creator.ensure_database()
    # another program wrote levelling_error as an integer into the same shard: InfluxDB keeps the type
    line = f"elevator,compound=OLD,device=OLD-EL0001,kind=elevator levelling_error=3i {now - 60_000}"
    answer = httpx.post(
        f"{influxdb.url}/write", params={"db": influx_database, "precision": "ms"}, content=line
    )
    assert answer.status_code == 204
    compound = unique("F")
    samples = [
        Sample(f"{compound}-EL{i:04d}", DeviceKind.ELEVATOR, now - 60_000 + i, {"levelling_error": 1.5})
        for i in range(6)
    ]
    settings = influx_ingest_settings(mosquitto, influxdb, influx_database, tmp_path)
    service, dead, _ = run_mixed(
        settings, run_ingest, unique, mosquitto, bad_messages(compound, samples), now - 600_000
    )
    assert_refused(dead, 6, "field type conflict")
    stats = service.stats.snapshot()
    assert stats.rejected == {"store_refused": 6} and stats.store_refusals >= 6
    with open_store(settings) as store:
        assert store.count_readings(compound=compound) == 0


def test_points_beyond_the_retention_policy_are_dead_lettered(
    mosquitto: MosquittoService,
    influxdb: InfluxDBService,
    influx_database: str,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
) -> None:
    settings = influx_ingest_settings(
        mosquitto, influxdb, influx_database, tmp_path, influx_retention_policy="hour"
    )
    with InfluxStore(influxdb.url, influx_database) as creator:
        creator.ensure_database()
    q = f'CREATE RETENTION POLICY "hour" ON "{influx_database}" DURATION 1h REPLICATION 1'
    assert "error" not in httpx.post(f"{influxdb.url}/query", data={"q": q}).json()["results"][0]
    now = now_ms()
    compound = unique("R")
    # three hours old: inside the validator's limits (90 days), beyond what the policy keeps
    samples = [
        Sample(f"{compound}-WM{i:04d}", DeviceKind.WATER_METER, now - 3 * 3_600_000 + i, {"flow": 1.0})
        for i in range(4)
    ]
    service, dead, _ = run_mixed(
        settings, run_ingest, unique, mosquitto, bad_messages(compound, samples), now - 600_000
    )
    assert_refused(dead, 4, "beyond retention policy")
    assert service.stats.snapshot().rejected == {"store_refused": 4}


class TaggingRegistry(RegistryClient):
    """A registry that knows every device; ``bad`` ones get the building ``building``."""

    def __init__(self, bad: Collection[str], building: str) -> None:
        super().__init__("http://127.0.0.1:9")
        self.bad, self.building = set(bad), building

    def lookup(self, devices: Collection[str]) -> dict[str, DeviceRecord | None]:
        def record(device: str) -> DeviceRecord:
            compound, local = device.rsplit("-", 1)
            kind = next(k for k, spec in KINDS.items() if local.startswith(spec.code))
            building = self.building if device in self.bad else "3号楼"
            return DeviceRecord(device, kind.value, compound, "西湖区", "北山街道", "小区", building)

        return {d: record(d) for d in devices}


def test_a_line_influxdb_cannot_parse_is_dead_lettered_by_name(
    mosquitto: MosquittoService,
    influxdb: InfluxDBService,
    influx_database: str,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The store's checks refuse a tag ending in a backslash before InfluxDB sees it (as they refuse
    # control characters); switched off here, InfluxDB gets a line it cannot parse ("invalid tag
    # format") and its answer, quoting the line, is what takes the item out.
    monkeypatch.setattr(influx_store, "check_batch", lambda *args, **kwargs: None)
    now = now_ms()
    compound = unique("P")
    samples = [
        Sample(f"{compound}-CA{i:04d}", DeviceKind.CAMERA, now - 60_000, {"latency": 5.0}) for i in range(3)
    ]
    registry = TaggingRegistry({s.device for s in samples}, "3号楼\\")
    settings = influx_ingest_settings(mosquitto, influxdb, influx_database, tmp_path)
    service, dead, _ = run_mixed(
        settings,
        run_ingest,
        unique,
        mosquitto,
        bad_messages(compound, samples),
        now - 600_000,
        registry=registry,
    )
    assert_refused(dead, 3, "unable to parse")
    assert service.stats.snapshot().rejected == {"store_refused": 3}


def test_device_ids_with_a_trailing_newline_never_reach_influxdb(
    mosquitto: MosquittoService,
    influxdb: InfluxDBService,
    influx_database: str,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
) -> None:
    # the case that stalled ingest: more such messages in flight than there are store writers
    now = now_ms()
    compound = unique("N")
    settings = influx_ingest_settings(mosquitto, influxdb, influx_database, tmp_path)
    gateway = f"{compound}-GW01"
    bad = []
    for i in range(6):
        body = {
            "v": 1, "compound": compound, "gateway": gateway, "bdseq": 1, "seq": i, "sent": now,
            "samples": [{"device": f"{compound}-EL{i:04d}\n", "kind": "elevator", "ts": now, "values": {"car_load": 5.0}}],
        }  # fmt: skip
        bad.append((topic(compound, gateway, Channel.DATA), orjson.dumps(body)))
    service, dead, _ = run_mixed(settings, run_ingest, unique, mosquitto, bad, now - 600_000)
    assert {d["reason"] for d in dead} == {"bad_device_id"} and len(dead) == 6
    assert service.stats.snapshot().store_refusals == 0  # refused by the validator, not by InfluxDB


class FlakyEmbeddedStore(EmbeddedStore):
    """A real embedded store whose writes fail in a way ingest does not know while they hold ``weird``."""

    weird = ""

    def write_prepared(self, batch: PreparedBatch) -> None:
        if any(s.sample.device == self.weird for s in batch.samples):
            raise RuntimeError("the backend tripped over this device")
        super().write_prepared(batch)


def test_an_unknown_failure_is_retried_then_isolated_on_the_embedded_store(
    mosquitto: MosquittoService, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        mqtt={"url": mosquitto.url},
        store={"backend": "embedded"},
        ingest={"batch_interval_s": 0.2},
    )
    compound = unique("U")
    now = now_ms()
    weird = Sample(f"{compound}-SL0001", DeviceKind.STREETLIGHT, now - 60_000, {"power": 50.0})
    store = FlakyEmbeddedStore(settings.store_path)
    store.weird = weird.device
    service = IngestService(settings, store, client_id=unique("ingest-flaky"), retry_max_s=0.2)
    service.start()
    try:
        assert service.wait_connected(10)
        _, dead, _ = run_mixed(
            settings,
            lambda *a, **k: service,
            unique,
            mosquitto,
            bad_messages(compound, [weird]),
            now - 600_000,
        )
    finally:
        service.stop()
        store.close()
    assert_refused(dead, 1, "RuntimeError: the backend tripped over this device")
    stats = service.stats.snapshot()
    assert stats.store_retries >= UNKNOWN_ATTEMPTS and stats.rejected == {"store_refused": 1}


def test_rows_sqlite_refuses_are_dead_lettered_and_the_rest_stored(
    mosquitto: MosquittoService,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a building name with a lone surrogate (a registry's JSON "\ud800" escape makes one): the
    # store's checks refuse it; switched off, SQLite refuses to bind it, and that is permanent too
    monkeypatch.setattr(embedded_store, "check_batch", lambda *args, **kwargs: None)
    settings = load_settings(
        data_dir=tmp_path,
        mqtt={"url": mosquitto.url},
        store={"backend": "embedded"},
        ingest={"batch_interval_s": 0.2},
    )
    compound = unique("S")
    now = now_ms()
    samples = [
        Sample(f"{compound}-EL{i:04d}", DeviceKind.ELEVATOR, now - 60_000, {"car_load": 5.0})
        for i in range(3)
    ]
    registry = TaggingRegistry({s.device for s in samples}, "3号楼\ud800")
    service, dead, _ = run_mixed(
        settings,
        run_ingest,
        unique,
        mosquitto,
        bad_messages(compound, samples),
        now - 600_000,
        registry=registry,
    )
    assert_refused(dead, 3, "surrogates not allowed")
    assert service.stats.snapshot().rejected == {"store_refused": 3}
