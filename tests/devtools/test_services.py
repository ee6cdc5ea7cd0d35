"""Each real-service fixture works: a client talks to it, and it survives a kill and restart."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sitewatch.devtools.services import InfluxDBService, LocalService, MosquittoService, PostgresService

pytestmark = pytest.mark.integration


def _roundtrip(port: int, topic: str, *, publish: bool = True) -> bytes | None:
    """Subscribe to ``topic`` (publishing a retained b"hello" first unless ``publish`` is False)
    and return the first message, or None when nothing came within 5 s."""
    got = threading.Event()
    received: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fixture-{port}")

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append(msg.payload)
        got.set()

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.subscribe(topic, qos=1)
        # a retained message is delivered whenever the subscription lands, so no race here
        if publish:
            client.publish(topic, b"hello", qos=1, retain=True).wait_for_publish(5)
        if not got.wait(5):
            return None
    finally:
        client.loop_stop()
        client.disconnect()
    return received[0]


def test_mosquitto_delivers(mosquitto: MosquittoService) -> None:
    assert _roundtrip(mosquitto.port, "fixture/check") == b"hello"


def test_influxdb_accepts_and_answers(influxdb: InfluxDBService, influx_database: str) -> None:
    httpx.post(
        f"{influxdb.url}/query", params={"q": f'CREATE DATABASE "{influx_database}"'}
    ).raise_for_status()
    httpx.post(
        f"{influxdb.url}/write",
        params={"db": influx_database, "precision": "ms"},
        content=b"m,t=a v=1.5 1000",
    ).raise_for_status()
    reply = httpx.get(f"{influxdb.url}/query", params={"db": influx_database, "q": "SELECT v FROM m"}).json()
    assert reply["results"][0]["series"][0]["values"] == [["1970-01-01T00:00:01Z", 1.5]]


def test_postgres_answers(postgres_url: str) -> None:
    dsn = postgres_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 40 + 2").fetchone() == (42,)


def test_killed_broker_restarts_on_same_port_with_retained_state(
    service_factory: Callable[..., LocalService],
) -> None:
    broker = service_factory("mosquitto")
    assert isinstance(broker, MosquittoService)
    _roundtrip(broker.port, "fixture/persist")
    broker.stop()  # a clean stop writes the persistence file
    assert (broker.workdir / "mosquitto.db").is_file()
    broker.start()
    # the retained message came back from disk (nothing publishes it again)
    assert _roundtrip(broker.port, "fixture/persist", publish=False) == b"hello"
    broker.kill()
    assert not broker.running


def test_postgres_service_kill_and_restart(service_factory: Callable[..., LocalService]) -> None:
    pg = service_factory("postgres")
    assert isinstance(pg, PostgresService)
    pg.kill()
    pg.start()
    assert pg.ready()


def test_influxdb_keeps_data_across_restart(service_factory: Callable[..., LocalService]) -> None:
    influx = service_factory("influxdb")
    assert isinstance(influx, InfluxDBService)
    httpx.post(f"{influx.url}/query", params={"q": "CREATE DATABASE d"}).raise_for_status()
    httpx.post(f"{influx.url}/write", params={"db": "d"}, content=b"m v=2 5").raise_for_status()
    influx.kill()
    influx.start()
    reply = httpx.get(f"{influx.url}/query", params={"db": "d", "q": "SELECT count(v) FROM m"}).json()
    assert reply["results"][0]["series"][0]["values"][0][1] == 1
