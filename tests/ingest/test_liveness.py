"""Gateway liveness: births, deaths and counters stored, a stale death ignored, restarts idempotent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sitewatch.contract import Channel, DeviceKind, StateMessage, StatsMessage, topic
from sitewatch.devtools.services import MosquittoService, wait_until
from sitewatch.ingest.liveness import LivenessConsumer, LivenessTracker, counter_metric
from sitewatch.settings import load_settings
from sitewatch.store import GatewayStatus, Store, open_store

from .conftest import make_settings

T = 1_700_000_000_000


def _birth(bdseq: int, ts: int, compound: str = "C1", gateway: str = "GW01") -> StateMessage:
    return StateMessage(compound, gateway, bdseq, True, ts)


def _death(bdseq: int, ts: int, compound: str = "C1", gateway: str = "GW01") -> StateMessage:
    return StateMessage(compound, gateway, bdseq, False, ts)


def test_tracker_follows_births_and_deaths_and_ignores_a_stale_death() -> None:
    tracker = LivenessTracker()
    online = tracker.on_state(_birth(5, T), T + 20)
    assert online is not None and online.event.name == "online" and online.event.device == "C1-GW01"
    assert (online.event.ts_ms, online.event.attrs["bdseq"], online.event.kind) == (
        T,
        "5",
        DeviceKind.GATEWAY,
    )
    assert tracker.on_state(_birth(5, T + 1000), T + 1000) is None  # a rebirth: nothing new
    # the will of the previous session (bdseq 4) arrives after this session's birth
    assert tracker.on_state(_death(4, T - 60_000), T + 2000) is None
    assert tracker.stale_deaths == 1
    # this session's will: its time is when the session began, so the arrival time is used
    will = tracker.on_state(_death(5, T - 5), T + 9000)
    assert will is not None and (will.event.name, will.event.ts_ms) == ("offline", T + 9000)
    assert tracker.on_state(_death(5, T - 5), T + 9500) is None  # already offline
    # a gateway that lost its queue file starts again at bdseq 0: a birth is a birth
    again = tracker.on_state(_birth(0, T + 20_000), T + 20_001)
    assert again is not None and again.event.name == "online"
    # a graceful death carries its own time
    graceful = tracker.on_state(_death(0, T + 30_000), T + 30_050)
    assert graceful is not None and graceful.event.ts_ms == T + 30_000


def test_tracker_starts_from_the_stored_state() -> None:
    tracker = LivenessTracker.from_statuses([GatewayStatus("C1-GW01", "C1", True, T, 7)])
    assert tracker.on_state(_birth(7, T + 5), T + 5) is None  # the retained birth, seen again
    assert tracker.on_state(_death(6, T), T + 6) is None
    death = tracker.on_state(_death(7, T + 10), T + 11)
    assert death is not None and death.event.name == "offline"


def test_stats_become_a_sample_of_the_gateway_device() -> None:
    counters = {"sent": 10, "modbus.reads": 4, "flagged": 1, "acknowledged": 9}
    item = LivenessTracker.on_stats(StatsMessage("C1", "C1-GW01", 3, T, counters))
    assert item is not None
    assert (item.sample.device, item.sample.kind, item.sample.ts_ms, item.compound) == (
        "C1-GW01", DeviceKind.GATEWAY, T, "C1")  # fmt: skip
    # a name the store reserves is left out; dots become underscores
    assert item.sample.values == {"acknowledged": 9.0, "modbus_reads": 4.0, "sent": 10.0}
    assert counter_metric("x" * 80) is None


class _Publisher:
    """A gateway's retained state and stats, published as the gateway (and the broker) would."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def send(self, message: StateMessage | StatsMessage) -> None:
        channel = Channel.STATE if isinstance(message, StateMessage) else Channel.STATS
        info = self.client.publish(
            topic(message.compound, message.gateway, channel), message.encode(), 1, True
        )
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(params=["embedded", "influxdb"])
def liveness_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store: embedded, then on the session's InfluxDB."""
    if request.param == "embedded":
        settings = load_settings(data_dir=tmp_path / "store")
    else:
        service = request.getfixturevalue("influxdb")
        database = request.getfixturevalue("influx_database")
        settings = load_settings(
            store={"backend": "influxdb", "influx_url": service.url, "influx_database": database}
        )
    opened = open_store(settings)
    yield opened
    opened.close()


@pytest.mark.integration
def test_consumer_stores_liveness_and_counters_and_a_restart_adds_nothing(
    mosquitto: MosquittoService, tmp_path: Path, unique: Callable[[str], str], liveness_store: Store
) -> None:
    store = liveness_store
    compound = unique("L")
    gateway = f"{compound}-GW01"
    settings = make_settings(mosquitto.url, tmp_path)
    publisher = _Publisher(mosquitto.url)
    consumer = LivenessConsumer(settings, store, client_id=unique("liveness"))
    consumer.start()
    try:
        publisher.send(StateMessage(compound, gateway, 5, True, T))
        publisher.send(StatsMessage(compound, gateway, 5, T + 10, {"sent": 100, "opc.reads": 3}))

        def stored() -> list[GatewayStatus]:
            return [g for g in store.gateways() if g.compound == compound]

        wait_until(lambda: [g.counters_ms for g in stored()] == [T + 10], 20, "birth and stats stored")
        (status,) = stored()
        assert (status.device, status.online, status.since_ms, status.bdseq) == (gateway, True, T, 5)
        assert status.counters == {"sent": 100.0, "opc_reads": 3.0}
        # the will of an older session, delivered late: the gateway stays online
        publisher.send(StateMessage(compound, gateway, 4, False, T - 60_000))
        publisher.send(StatsMessage(compound, gateway, 5, T + 20, {"sent": 180, "opc.reads": 3}))
        wait_until(lambda: stored()[0].counters_ms == T + 20, 20, "second stats stored")
        assert consumer.tracker is not None and consumer.tracker.stale_deaths == 1
        assert stored()[0].online and stored()[0].bdseq == 5
        # this session ends
        publisher.send(StateMessage(compound, gateway, 5, False, T + 30))
        wait_until(lambda: not stored()[0].online, 20, "death stored")
        assert stored()[0].since_ms == T + 30
    finally:
        consumer.stop()
    events = store.events(0, 2 * T, compound=compound)
    assert [(e.event.name, e.event.attrs["bdseq"]) for e in events] == [("online", "5"), ("offline", "5")]

    # a restart receives the retained death and stats again: nothing new is stored
    again = LivenessConsumer(settings, store, client_id=unique("liveness"))
    again.start()
    try:
        publisher.send(StatsMessage(compound, gateway, 5, T + 40, {"sent": 200, "opc.reads": 4}))
        wait_until(lambda: stored()[0].counters_ms == T + 40 and again.drained(), 20, "restarted consumer")
    finally:
        again.stop()
    assert store.events(0, 2 * T, compound=compound) == events
    assert store.count_readings(compound=compound) == 6  # three stats samples of two counters
    assert not stored()[0].online
    for channel in (Channel.STATE, Channel.STATS):  # leave no retained message to later tests
        publisher.client.publish(topic(compound, gateway, channel), b"", 1, True).wait_for_publish(10)
    publisher.close()
