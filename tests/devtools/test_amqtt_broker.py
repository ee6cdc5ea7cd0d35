"""The demo's embedded broker (amqtt) sends a retained message only to the sessions subscribed to it."""

from __future__ import annotations

import queue

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sitewatch.devtools.amqtt_broker import EmbeddedBroker


def _client(broker: EmbeddedBroker, client_id: str, topic: str, clean: bool) -> tuple[mqtt.Client, queue.Queue[str]]:
    host, port = broker.url.removeprefix("mqtt://").split(":")
    received: queue.Queue[str] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=clean)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *args: subscribed.put(True)
    client.on_message = lambda c, u, m: received.put(m.topic)
    client.connect(host, int(port))
    client.loop_start()
    assert subscribed.get(timeout=10)
    return client, received


def test_a_client_gets_only_the_retained_messages_it_subscribed_to() -> None:
    broker = EmbeddedBroker()
    broker.start()
    clients = []
    try:
        # a consumer of gateways' retained state subscribes; a gateway's birth is retained
        state, state_got = _client(broker, "liveness", "sitewatch/v1/+/+/state", True)
        clients.append(state)
        state.publish("sitewatch/v1/C1/C1-GW01/state", b"{}", 1, True).wait_for_publish(10)
        assert state_got.get(timeout=10) == "sitewatch/v1/C1/C1-GW01/state"
        # a consumer of something else connects afterwards (amqtt 0.12.1 sent it the birth)
        other, other_got = _client(broker, "findings", "sitewatch/v1/+/_analytics/finding", False)
        clients.append(other)
        other.publish("sitewatch/v1/C1/_analytics/finding", b"{}", 1, False).wait_for_publish(10)
        assert other_got.get(timeout=10) == "sitewatch/v1/C1/_analytics/finding"
        assert other_got.empty()
        # and a late subscriber to the state still gets the retained birth
        late, late_got = _client(broker, "late", "sitewatch/v1/+/+/state", True)
        clients.append(late)
        assert late_got.get(timeout=10) == "sitewatch/v1/C1/C1-GW01/state"
    finally:
        for client in clients:
            client.loop_stop()
            client.disconnect()
        broker.stop()
