"""The project's paho client: what it changes in paho, against a real Mosquitto."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from peertools import cyclic_garbage
from sitewatch.devtools.services import MosquittoService, wait_until
from sitewatch.mqtt_client import Client

pytestmark = pytest.mark.integration


def test_a_message_leaves_no_garbage_and_topic_callbacks_still_match(mosquitto: MosquittoService) -> None:
    plain: list[str] = []
    filtered: list[str] = []
    subscribed = threading.Event()
    client = Client(CallbackAPIVersion.VERSION2, client_id="mqtt-client-gc", protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: plain.append(m.topic)
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    client.subscribe("gc/#", qos=1)
    wait_until(subscribed.is_set, 10, "subscribed")
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    try:
        with cyclic_garbage() as left:
            for i in range(50):
                publisher.publish(f"gc/{i}", b"x", qos=1)
            wait_until(lambda: len(plain) == 50, 10, "the messages")
        # paho's own matcher left a function, its cells and a list per message
        assert left.count("builtins.function") < 5, left[:20]
        # with a per-topic callback the matcher still matches, and on_message gets the rest
        client.message_callback_add("gc/special/+", lambda c, u, m: filtered.append(m.topic))
        publisher.publish("gc/special/1", b"x", qos=1)
        publisher.publish("gc/other", b"x", qos=1)
        wait_until(lambda: filtered == ["gc/special/1"] and plain[-1] == "gc/other", 10, "routed messages")
        assert "gc/special/1" not in plain
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        client.disconnect()
        client.loop_stop()
