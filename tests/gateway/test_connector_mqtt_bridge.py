"""MQTT bridge: topic maps (pure) and bridging a real Mosquitto (the session ``mosquitto`` fixture)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from peertools import ListSink, make_certificates, wait_for
from sitewatch.contract import DeviceKind
from sitewatch.devtools.services import LocalService, MosquittoService, free_port
from sitewatch.gateway.connectors.base import ConnectorConfigError, ConnectorContext, build_connector
from sitewatch.gateway.connectors.mqtt_bridge import MqttBridgeConnector
from sitewatch.gateway.connectors.mqtt_bridge_map import TopicMapping, decode, match
from sitewatch.simulators.frontends.mqtt_streetlights import (
    StreetlightController,
    StreetlightModel,
    bridge_topics,
)

CTX = ConnectorContext(compound="C001", gateway="gw1")


LIGHT = TopicMapping(
    "site/+/lights/+/telemetry",
    DeviceKind.STREETLIGHT,
    "SL-{1}",
    {"on": "lamp_on", "power.watts": "power", "amps": "lamp_current"},
    {"lamp_current": 0.001},
    "ts",
)


def test_match_and_decode() -> None:
    assert match("site/+/lights/+/telemetry", "site/C001/lights/7/telemetry") == ["C001", "7"]
    assert match("site/+/lights/+/telemetry", "site/C001/lights/7/status") is None
    assert match("site/#", "site/a/b") == ["a/b"]
    ok = decode(LIGHT, b'{"on": true, "power": {"watts": 61.5}, "amps": 270, "ts": 1767225600}')
    assert not isinstance(ok, str)
    assert ok.values == {"lamp_on": 1.0, "power": 61.5, "lamp_current": pytest.approx(0.27)}
    assert ok.ts_ms == 1767225600000 and ok.refused == []
    partial = decode(LIGHT, b'{"on": 3, "power": {"watts": "hot"}, "amps": 100, "ts": "soon"}')
    assert not isinstance(partial, str)
    assert partial.values == {"lamp_current": pytest.approx(0.1)} and partial.ts_ms is None
    assert len(partial.refused) == 3
    assert decode(LIGHT, b"{not json") == decode(LIGHT, b"{not json")
    assert "not JSON" in str(decode(LIGHT, b"{not json"))
    assert "instead of an object" in str(decode(LIGHT, b"[1, 2]"))
    assert "exceeds" in str(decode(LIGHT, b" " * 70_000))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"topic": "site/li+ghts"}, "MQTT filter"),
        ({"kind": "toaster"}, r"topics\.0\.kind: Input should be 'elevator'"),
        ({"kind": "gateway"}, "kind must be one of"),
        ({"colour": "red"}, r"topics\.0\.colour: unknown field"),
        ({"fields": {"x": "speed"}}, "has no metric 'speed'"),
        ({"device": "SL-{3}"}, "must name a device"),
        ({"fields": {}}, "map JSON fields"),
        ({"scale": {"power": 0}}, "non-zero"),
    ],
)
def test_config_errors(change: dict[str, Any], message: str) -> None:
    topic = {"topic": "site/lights/+/t", "kind": "streetlight", "device": "SL-{0}", "fields": {"w": "power"}}
    with pytest.raises(ConnectorConfigError, match=message):
        build_connector({"type": "mqtt", "topics": [{**topic, **change}]}, CTX)
    with pytest.raises(ConnectorConfigError, match="broker: must look like mqtt://host:1883"):
        build_connector({"type": "mqtt", "broker": "http://x", "topics": [topic]}, CTX)
    with pytest.raises(ConnectorConfigError, match="qos: Input should be 0, 1 or 2"):
        build_connector({"type": "mqtt", "qos": 3, "topics": [topic]}, CTX)
    with pytest.raises(ConnectorConfigError, match="cert_file and key_file go together"):
        build_connector({"type": "mqtt", "cert_file": __file__, "topics": [topic]}, CTX)


def publisher(broker: MosquittoService) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def test_bridges_real_broker(mosquitto: MosquittoService) -> None:
    compound = f"T{uuid.uuid4().hex[:6]}"  # a topic space no other test uses
    ctx = ConnectorContext(compound=compound, gateway="gw1")

    async def scenario() -> None:
        spec = {
            "type": "mqtt",
            "name": "lights",
            "broker": mosquitto.url,
            "offline_after_s": 0.5,
            "topics": [
                *bridge_topics(compound),
                {
                    "topic": f"site/{compound}/meters/+",
                    "kind": "water_meter",
                    "device": "WM-{0}",
                    "fields": {"m3": "volume_register"},
                    "devices": ["WM-1"],
                },
            ],
        }
        connector = build_connector(spec, ctx)
        assert isinstance(connector, MqttBridgeConnector)
        assert [d.device for d in connector.devices()] == [f"{compound}-WM-1"]
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        pub = publisher(mosquitto)
        lamp = StreetlightController(
            "127.0.0.1", mosquitto.port, compound, "SL-1", StreetlightModel(wattage_w=100)
        )
        try:
            await wait_for(connector.connected.is_set)
            lamp.start()
            await wait_for(lambda: lamp.client.is_connected())
            night = datetime(2026, 1, 1, 14, 0, tzinfo=UTC)  # 22:00 in China
            lamp.report(night, 60)
            device = f"{compound}-SL-1"
            await wait_for(lambda: len(sink.of(device)) == 1)
            values = sink.of(device)[0].values
            assert values["lamp_on"] == 1.0 and values["power"] == pytest.approx(97.0)
            assert sink.of(device)[0].ts_ms == int(night.timestamp() * 1000)
            assert sink.names(device)[0] == "online"

            prefix = f"site/{compound}/streetlight"
            for payload in (b"{oops", b"42", b'{"on": "yes"}', b'{"watts": 1e9, "on": false}'):
                pub.publish(f"{prefix}/SL-2/telemetry", payload, qos=1).wait_for_publish(5)
            pub.publish(f"site/{compound}/meters/1", b'{"m3": 12.5}', qos=1).wait_for_publish(5)
            pub.publish(f"site/{compound}/meters/99", b'{"m3": 1}', qos=1).wait_for_publish(5)
            pub.publish(f"{prefix}/SL-2/status", b"maybe", qos=1).wait_for_publish(5)
            await wait_for(lambda: len(sink.of(f"{compound}-WM-1")) == 1)
            await wait_for(lambda: connector.counters()["unknown_device"] == 1)
            await wait_for(lambda: connector.counters()["bad_payload"] == 3)
            # only the valid part of the last SL-2 message was used
            assert [s.values for s in sink.of(f"{compound}-SL-2")] == [{"lamp_on": 0.0}]
            assert connector.counters()["rejected"] == 2

            # the lamp's connection dies without a goodbye: the broker publishes its last will
            sock = lamp.client.socket()
            assert sock is not None
            lamp.client.loop_stop()
            sock.close()
            await wait_for(lambda: sink.names(device) == ["online", "offline"], timeout=30)
            # a silent device is reported offline after offline_after_s
            await wait_for(lambda: sink.names(f"{compound}-WM-1") == ["online", "offline"])
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            pub.disconnect()
            pub.loop_stop()
        counters = connector.counters()
        assert counters["connects"] == 1
        assert counters["status"] >= 2  # online on connect, offline from the will
        assert counters["events"] == len(sink.event_list)
        assert {d.device for d in connector.devices()} >= {device, f"{compound}-WM-1"}

    asyncio.run(scenario())


def test_retained_messages(mosquitto: MosquittoService) -> None:
    compound = f"T{uuid.uuid4().hex[:6]}"
    ctx = ConnectorContext(compound=compound, gateway="gw1")
    pub = publisher(mosquitto)
    prefix = f"site/{compound}/streetlight"
    old = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    pub.publish(
        f"{prefix}/SL-1/telemetry", orjson.dumps({"ts": old, "watts": 55.0}), qos=1, retain=True
    ).wait_for_publish(5)
    pub.publish(f"{prefix}/SL-2/telemetry", b'{"watts": 40.0}', qos=1, retain=True).wait_for_publish(5)
    pub.publish(f"site/{compound}/meters/7", b'{"m3": 3.5}', qos=1, retain=True).wait_for_publish(5)

    async def scenario() -> None:
        spec = {
            "type": "mqtt",
            "broker": mosquitto.url,
            "topics": [
                *bridge_topics(compound),
                {
                    "topic": f"site/{compound}/meters/+",
                    "kind": "water_meter",
                    "device": "WM-{0}",
                    "fields": {"m3": "volume_register"},
                },
            ],
        }
        connector = build_connector(spec, ctx)
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        try:
            await wait_for(lambda: connector.counters()["stale"] == 2 and len(sink.sample_list) == 1)
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
        # the retained report with its own timestamp is used, at that timestamp, and proves nothing about now
        (sample,) = sink.sample_list
        assert (sample.device, sample.ts_ms, sample.values) == (f"{compound}-SL-1", old, {"power": 55.0})
        assert sink.event_list == []

    try:
        asyncio.run(scenario())
    finally:
        for topic in (f"{prefix}/SL-1/telemetry", f"{prefix}/SL-2/telemetry", f"site/{compound}/meters/7"):
            pub.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)  # clear the retained copies
        pub.disconnect()
        pub.loop_stop()


def test_site_broker_over_tls(service_factory: Callable[..., LocalService], tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    tls_port = free_port()
    broker = service_factory(
        "mosquitto",
        extra_config=f"listener {tls_port} 127.0.0.1\ncafile {certs['ca.crt']}\n"
        f"certfile {certs['server.crt']}\nkeyfile {certs['server.key']}\n",
    )
    assert isinstance(broker, MosquittoService)
    topics = [
        {"topic": "site/lights/+/t", "kind": "streetlight", "device": "SL-{0}", "fields": {"w": "power"}}
    ]

    async def scenario() -> None:
        trusting = build_connector(
            {"type": "mqtt", "broker": f"mqtts://127.0.0.1:{tls_port}", "ca_file": str(certs["ca.crt"]),
             "topics": topics},
            CTX,
        )  # fmt: skip
        doubting = build_connector(
            {"type": "mqtt", "name": "doubting", "broker": f"mqtts://127.0.0.1:{tls_port}", "topics": topics},
            CTX,
        )
        assert isinstance(trusting, MqttBridgeConnector) and isinstance(doubting, MqttBridgeConnector)
        sink, stop = ListSink(), asyncio.Event()
        tasks = [asyncio.create_task(c.run(sink, stop)) for c in (trusting, doubting)]
        try:
            await wait_for(trusting.connected.is_set)
            pub = publisher(broker)  # plain listener of the same broker
            pub.publish("site/lights/9/t", b'{"w": 42.0}', qos=1).wait_for_publish(5)
            await wait_for(lambda: len(sink.of("C001-SL-9")) == 1)
            pub.disconnect()
            pub.loop_stop()
            assert doubting.counters()["connects"] == 0  # an untrusted certificate: never connected
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert sink.of("C001-SL-9")[0].values == {"power": 42.0}

    asyncio.run(scenario())
    with pytest.raises(ConnectorConfigError, match="no such file"):
        build_connector(
            {"type": "mqtt", "broker": "mqtts://h", "ca_file": "/nope.crt", "topics": topics}, CTX
        )


def _lights(compound: str, **extra: Any) -> dict[str, Any]:
    topic = {
        "topic": f"site/{compound}/lights/+",
        "kind": "streetlight",
        "device": "SL-{0}",
        "fields": {"watts": "power"},
    }
    return {"type": "mqtt", "name": "lights", "broker": "", "topics": [topic], **extra}


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_garbage_huge_chatty_and_made_up_devices_cost_the_others_nothing(
    mosquitto: MosquittoService, protocol: str
) -> None:
    compound = f"T{uuid.uuid4().hex[:6]}"
    spec = _lights(compound, broker=mosquitto.url, protocol=protocol, max_devices=5, rate_burst=10)

    async def scenario() -> None:
        connector = build_connector(spec, ConnectorContext(compound=compound, gateway="gw1"))
        assert isinstance(connector, MqttBridgeConnector)
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        pub = publisher(mosquitto)
        prefix = f"site/{compound}/lights"

        def send(device: str, payload: bytes, retain: bool = False) -> None:
            pub.publish(f"{prefix}/{device}", payload, qos=1, retain=retain).wait_for_publish(10)

        try:
            await wait_for(connector.connected.is_set)
            for i in range(3):  # the calm lamp reports now and then
                send("1", orjson.dumps({"watts": 50.0 + i}))
            for _ in range(30):  # a controller gone mad: garbage, fast
                send("2", b"\x00\xff garbage {")
            for i in range(30):  # another, stuck in a loop of valid reports
                send("3", orjson.dumps({"watts": float(i)}))
            send("4", b"{" + b" " * 200_000 + b"}")  # over the 64 KiB payload limit
            send("4", b"[" + b"0," * 2_500_000 + b"0]", retain=True)  # 5 MB, and kept by the broker
            for i in range(10):  # names made up on the fly
                send(f"X{i}", orjson.dumps({"watts": 1.0}))
            send("1", orjson.dumps({"watts": 60.0}))
            await wait_for(lambda: len(sink.of(f"{compound}-SL-1")) == 4)
            await wait_for(lambda: connector.counters()["rate_limited"] >= 40)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            pub.publish(f"site/{compound}/lights/4", b"", qos=1, retain=True).wait_for_publish(10)
            pub.disconnect()
            pub.loop_stop()
        counters = connector.counters()
        assert [s.values["power"] for s in sink.of(f"{compound}-SL-1")] == [50.0, 51.0, 52.0, 60.0]
        assert len(sink.of(f"{compound}-SL-3")) == 10  # its burst; the rest dropped and counted
        assert counters["rate_limited"] == 20 + 20  # SL-2's garbage past its burst, and SL-3's reports
        assert counters["bad_payload"] >= 10 + 1  # SL-2's garbage in its burst, SL-4's 200 KB
        # over MQTT 5 the broker never sends the 5 MB message (Maximum Packet Size); over 3.1.1 it
        # arrives, and is refused like the 200 KB one
        assert counters["bad_payload"] == (11 if protocol == "5" else 12)
        assert counters["too_many_devices"] == 10 - (5 - 4)  # room for one made-up name
        assert len(connector.devices()) == 5

    asyncio.run(scenario())
