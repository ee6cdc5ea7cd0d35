"""Fault tests against real processes: ingest killed, broker restarted, store stopped, shared workers.

After each, the store must hold exactly the readings published: same count, same checksum over
(device, metric, ts, value), none twice.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sitewatch.contract import HOST_STATE_TOPIC, decode_host_state
from sitewatch.devtools.services import InfluxDBService, LocalService, MosquittoService, wait_until
from sitewatch.ingest import IngestService
from sitewatch.settings import load_settings
from sitewatch.store import Store, open_store
from sitewatch.store.influx_store import InfluxStore

from .traffic import IngestProcess, Publisher, Traffic, checksum, make_traffic, retained, stored_readings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("ingest_processes")]

MESSAGES = 300  # x 20 samples x 3 metrics = 18,000 readings per run
# a 30 s InfluxDB outage by default; SITEWATCH_TEST_INFLUX_OUTAGE_S shortens it for quick runs
INFLUX_OUTAGE_S = float(os.environ.get("SITEWATCH_TEST_INFLUX_OUTAGE_S", "30"))
RATE = 100.0  # messages per second: the stream lasts ~3 s, long enough to break something in it


def ingest_env(broker: MosquittoService, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment of an ingest subprocess on the embedded store."""
    return {
        "SITEWATCH_MQTT__URL": broker.url,
        "SITEWATCH_DATA_DIR": str(data_dir),
        "SITEWATCH_STORE__BACKEND": "embedded",
        "SITEWATCH_INGEST__BATCH_INTERVAL_S": "0.2",
        **extra,
    }


def stream(publisher: Publisher, traffic: Traffic) -> threading.Thread:
    """Publish in the background at RATE."""
    thread = threading.Thread(target=publisher.publish, args=(traffic.messages, RATE), daemon=True)
    thread.start()
    return thread


def assert_exact(store: Store, traffic: Traffic, compound: str, timeout: float = 60) -> None:
    """The store ends up with exactly the published readings."""
    wait_until(
        lambda: store.count_readings(compound=compound) >= len(traffic.readings), timeout, "all readings"
    )
    time.sleep(0.5)  # anything extra would show now
    assert store.count_readings(compound=compound) == len(traffic.readings)
    start = min(r[2] for r in traffic.readings)
    end = max(r[2] for r in traffic.readings) + 1
    stored = stored_readings(store, start, end, compound)
    assert len(stored) == len(set((d, m, t) for d, m, t, _ in stored)) == len(traffic.readings)
    assert checksum(stored) == traffic.checksum


@pytest.mark.parametrize("backend", ["embedded", "influxdb"])
def test_ingest_killed_mid_stream_loses_nothing(
    service_factory: Callable[..., LocalService],
    tmp_path: Path,
    unique: Callable[[str], str],
    influx_database: str,
    backend: str,
) -> None:
    broker = service_factory("mosquitto")
    assert isinstance(broker, MosquittoService)
    compound = unique("K")
    traffic = make_traffic(compound, f"{compound}-GW01", messages=MESSAGES, samples_per_message=20)
    env = ingest_env(broker, tmp_path)
    settings = load_settings(data_dir=tmp_path)
    if backend == "influxdb":
        influx = service_factory("influxdb")
        assert isinstance(influx, InfluxDBService)
        env = influx_env(broker, influx, influx_database, tmp_path)
        settings = load_settings(
            store={"backend": "influxdb", "influx_url": influx.url, "influx_database": influx_database}
        )
    ingest = IngestProcess(tmp_path, env, "ingest-k")
    ingest.start()
    publisher = Publisher(broker.port, "pub-k")
    thread = stream(publisher, traffic)
    wait_until(lambda: ingest.stored() > 0, 30, "first stored batch")
    assert ingest.stored() < len(traffic.readings)  # mid-stream
    assert decode_host_state(HOST_STATE_TOPIC, retained(broker.port, HOST_STATE_TOPIC)).message.online  # type: ignore[union-attr]
    ingest.kill()  # SIGKILL with messages received and not yet acknowledged
    # its will tells the gateways that the host is gone
    wait_until(
        lambda: not decode_host_state(HOST_STATE_TOPIC, retained(broker.port, HOST_STATE_TOPIC)).message.online,  # type: ignore[union-attr]
        30, "host state offline",
    )  # fmt: skip
    ingest.start()  # same client id: the broker resumes the session and redelivers
    wait_until(
        lambda: decode_host_state(HOST_STATE_TOPIC, retained(broker.port, HOST_STATE_TOPIC)).message.online,  # type: ignore[union-attr]
        30, "host state online again",
    )  # fmt: skip
    thread.join()
    publisher.wait_acked()
    store = open_store(settings, create=False)
    assert_exact(store, traffic, compound)
    assert ingest.stop() == 0
    publisher.close()
    store.close()


def test_broker_restarted_mid_stream_loses_nothing(
    service_factory: Callable[..., LocalService], tmp_path: Path, unique: Callable[[str], str]
) -> None:
    broker = service_factory("mosquitto")
    assert isinstance(broker, MosquittoService)
    compound = unique("B")
    traffic = make_traffic(compound, f"{compound}-GW01", messages=MESSAGES, samples_per_message=20)
    ingest = IngestProcess(tmp_path, ingest_env(broker, tmp_path), "ingest-b")
    ingest.start()
    publisher = Publisher(broker.port, "pub-b")
    thread = stream(publisher, traffic)
    wait_until(lambda: ingest.stored() > 0, 30, "first stored batch")
    assert ingest.stored() < len(traffic.readings)  # mid-stream
    broker.restart()  # persistence on: sessions and queued messages survive
    thread.join()
    publisher.wait_acked(timeout=90)
    store = open_store(load_settings(data_dir=tmp_path))
    assert_exact(store, traffic, compound)
    assert ingest.stop() == 0
    publisher.close()
    store.close()


def test_two_workers_share_the_load(
    service_factory: Callable[..., LocalService], tmp_path: Path, unique: Callable[[str], str]
) -> None:
    broker = service_factory("mosquitto")
    assert isinstance(broker, MosquittoService)
    group = unique("g")
    env = ingest_env(broker, tmp_path, SITEWATCH_INGEST__SHARED_GROUP=group)
    workers = [IngestProcess(tmp_path, env, f"ingest-w{i}") for i in range(2)]
    for worker in workers:
        worker.start()
    compounds = [unique("S") for _ in range(4)]
    traffics = [
        make_traffic(c, f"{c}-GW01", messages=MESSAGES // 4, samples_per_message=20) for c in compounds
    ]
    publisher = Publisher(broker.port, "pub-s")
    for traffic in traffics:
        publisher.publish(traffic.messages)
    publisher.wait_acked()
    store = open_store(load_settings(data_dir=tmp_path))
    for compound, traffic in zip(compounds, traffics, strict=True):
        assert_exact(store, traffic, compound)
    total = sum(len(t.readings) for t in traffics)
    wait_until(lambda: sum(w.stored() for w in workers) == total, 10, "stats")
    shares = [w.stored() for w in workers]
    assert all(share > 0 for share in shares), shares  # each worker got a share
    assert sum(shares) == total  # and no message went to both
    for worker in workers:
        assert worker.stop() == 0
    publisher.close()
    store.close()


def influx_env(
    broker: MosquittoService, influx: InfluxDBService, database: str, data_dir: Path
) -> dict[str, str]:
    """Environment of an ingest subprocess on InfluxDB."""
    return ingest_env(broker, data_dir) | {
        "SITEWATCH_STORE__BACKEND": "influxdb",
        "SITEWATCH_STORE__INFLUX_URL": influx.url,
        "SITEWATCH_STORE__INFLUX_DATABASE": database,
        "SITEWATCH_STORE__INFLUX_TIMEOUT_S": "2",
    }


def test_influxdb_stopped_mid_stream_loses_nothing(
    service_factory: Callable[..., LocalService],
    tmp_path: Path,
    unique: Callable[[str], str],
    influx_database: str,
) -> None:
    broker = service_factory("mosquitto")
    influx = service_factory("influxdb")
    assert isinstance(broker, MosquittoService) and isinstance(influx, InfluxDBService)
    compound = unique("I")
    traffic = make_traffic(compound, f"{compound}-GW01", messages=MESSAGES, samples_per_message=20)
    ingest = IngestProcess(tmp_path, influx_env(broker, influx, influx_database, tmp_path), "ingest-i")
    ingest.start()
    publisher = Publisher(broker.port, "pub-i")
    thread = stream(publisher, traffic)
    wait_until(lambda: ingest.stored() > 0, 30, "first stored batch")
    influx.stop()
    time.sleep(2)  # the batch being written when it stopped, and the stats file, settle
    stopped = ingest.stored()
    assert stopped < len(traffic.readings)  # mid-stream
    thread.join()
    publisher.wait_acked()  # the broker holds what ingest may not acknowledge yet
    time.sleep(INFLUX_OUTAGE_S)
    stats = ingest.stats()
    assert int(str(stats["store_retries"])) > 0 and ingest.stored() == stopped
    assert int(str(stats["in_flight"])) <= 200  # bounded: the broker stops sending (Receive Maximum)
    influx.start()
    settings = load_settings(
        store={"backend": "influxdb", "influx_url": influx.url, "influx_database": influx_database}
    )
    store = open_store(settings, create=False)
    assert_exact(store, traffic, compound, timeout=90)
    assert ingest.stop() == 0
    publisher.close()
    store.close()


class SlowStore:
    """A real store whose every write takes ``delay_s`` longer: acknowledgements trickle back.

    It serves ``concurrent_writes`` writes at once (the delays overlap; the real store's own
    writes do what that store does) and records the most it had in flight.
    """

    def __init__(self, store: Store, delay_s: float, concurrent_writes: int = 1) -> None:
        self._store, self._delay_s = store, delay_s
        self.concurrent_writes = concurrent_writes
        self._lock = threading.Lock()
        self._active = 0
        self.most_active = 0

    def write_prepared(self, batch: object) -> None:
        with self._lock:
            self._active += 1
            self.most_active = max(self.most_active, self._active)
        try:
            time.sleep(self._delay_s)
            self._store.write_prepared(batch)  # type: ignore[arg-type]
        finally:
            with self._lock:
                self._active -= 1

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


@pytest.mark.parametrize("mqtt5", [True, False])
def test_memory_stays_bounded_when_the_broker_overruns_the_window(
    mosquitto: MosquittoService,
    tmp_path: Path,
    unique: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
    mqtt5: bool,
) -> None:
    # Mosquitto before 2.0.13 (Debian 12 ships 2.0.11) sends an MQTT 5 client more unacknowledged
    # messages than its Receive Maximum once acknowledgements flow; an MQTT 3.1.1 client has no
    # Receive Maximum at all (and the test broker sets no max_inflight_messages). Ingest must not
    # queue them without end.
    window = 4
    settings = load_settings(
        data_dir=tmp_path,
        mqtt={"url": mosquitto.url, "max_inflight": window, "protocol": "5" if mqtt5 else "3.1.1"},
        store={"backend": "embedded"},
        ingest={"batch_interval_s": 0.2},
    )
    compound = unique("W")
    traffic = make_traffic(compound, f"{compound}-GW01", messages=150, samples_per_message=5, devices=5)
    store = open_store(settings)
    service = IngestService(
        settings,
        SlowStore(store, 0.05, concurrent_writes=3),  # type: ignore[arg-type]
        client_id=unique("ingest-window"),
    )
    assert service.mqtt5 is mqtt5  # from mqtt.protocol
    service.start()
    assert service.wait_connected(10)
    held: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            held.append(service.stats.snapshot().in_flight)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    publisher = Publisher(mosquitto.port, unique("pub-window"))
    try:
        publisher.publish(traffic.messages)
        publisher.wait_acked()
        assert_exact(store, traffic, compound)
    finally:
        done.set()
        watcher.join()
        service.stop()
        publisher.close()
    # the decoder's queue (window), the batch being cut, the two waiting and one per store thread
    # (window / 2 messages each), and the one message the network thread holds while it waits
    assert service.store_writers == 3
    assert max(held) <= window + (3 + service.store_writers) * (window // 2) + 1, max(held)
    assert service.stats.snapshot().acked == len(traffic.messages)
    if not mqtt5:  # every Mosquitto overruns a window it was never told: counted, and said once
        assert service.stats.snapshot().window_overruns > 0
        warnings = [r for r in caplog.records if "unacknowledged messages (mqtt.max_inflight" in r.message]
        assert len(warnings) == 1
    store.close()


def test_concurrent_store_writes_lose_and_double_nothing(
    mosquitto: MosquittoService, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    # each store thread writes its own batch while the others write theirs; every message is
    # acknowledged once its own batch is stored, whatever order the writes end in
    settings = load_settings(
        data_dir=tmp_path,
        mqtt={"url": mosquitto.url},
        store={"backend": "embedded"},
        ingest={"batch_readings": 300, "store_writers": 3},
    )
    compound = unique("C")
    traffic = make_traffic(compound, f"{compound}-GW01", messages=200, samples_per_message=10, devices=10)
    store = open_store(settings)
    assert IngestService(settings, store).store_writers == 1  # SQLite: one writer at a time
    influx = InfluxStore("http://127.0.0.1:9", "never-contacted")
    assert IngestService(settings, influx).store_writers == 3  # InfluxDB: the setting
    influx.close()
    slow = SlowStore(store, 0.1, concurrent_writes=8)
    service = IngestService(settings, slow, client_id=unique("ingest-writers"))  # type: ignore[arg-type]
    assert service.store_writers == 3  # the setting, under what the store allows
    service.start()
    assert service.wait_connected(10)
    publisher = Publisher(mosquitto.port, unique("pub-writers"))
    try:
        publisher.publish(traffic.messages)
        publisher.wait_acked()
        assert_exact(store, traffic, compound)
        wait_until(lambda: service.stats.snapshot().acked == len(traffic.messages), 10, "every message acked")
    finally:
        service.stop()
        publisher.close()
    assert slow.most_active == 3
    assert service.stats.snapshot().in_flight == 0
    store.close()
