"""The benchmark's load generator: every message it counts reaches a subscriber, once, valid."""

from __future__ import annotations

import shutil
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sitewatch.contract import Channel, decode_data, subscription
from sitewatch.devtools.loadgen import (
    LoadSpec,
    device_list,
    message_samples,
    publish_load,
    readings_per_message,
)
from sitewatch.devtools.services import MosquittoService, wait_until

pytestmark = pytest.mark.integration

CLIENTS = ["paho", pytest.param("mosquitto_pub", marks=pytest.mark.skipif(
    shutil.which("mosquitto_pub") is None, reason="mosquitto_pub (Debian's mosquitto-clients) is not installed"
))]  # fmt: skip


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("rate", [None, 400.0])
def test_every_published_message_arrives_once_and_decodes(
    mosquitto: MosquittoService, client: str, rate: float | None
) -> None:
    compound = f"LG{client[:4].upper()}{int(rate or 0)}"
    received: list[bytes] = []
    lock = threading.Lock()

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with lock:
            received.append(bytes(message.payload))

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe(subscription(Channel.DATA, compound), qos=1)
    sub.loop_start()
    try:
        spec = LoadSpec(mosquitto.port, compound, samples_per_message=20, devices=40, rate_msgs=rate,
                        duration_s=1.0 if rate else 30.0, messages=None if rate else 300, window=50)  # fmt: skip
        tool = shutil.which("mosquitto_pub") if client == "mosquitto_pub" else None
        result = publish_load(spec, tool=tool)
        assert result.messages == result.acked == (400 if rate else 300)
        assert result.readings == result.messages * readings_per_message(spec)
        wait_until(lambda: len(received) >= result.messages, 20, "the messages at the subscriber")
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert len(received) == result.messages
    data_topic = f"sitewatch/v1/{compound}/{compound}-GW01/data"
    decoded = [decode_data(data_topic, payload, now=None) for payload in received]
    assert all(d.ok for d in decoded), [d.rejections for d in decoded if not d.ok][:1]
    seqs = [d.message.envelope.seq for d in decoded if d.message]
    assert seqs == [i % 256 for i in range(result.messages)]  # in order, none twice


@pytest.mark.parametrize(("per_message", "devices"), [(20, 40), (500, 200), (7, 3)])
def test_every_reading_is_a_distinct_point(per_message: int, devices: int) -> None:
    # a message larger than the device list must not send a device twice at one timestamp: the
    # store keeps one point per (device, metric, ts), and the bench counts every reading as stored
    spec = LoadSpec(0, "LGDIST", samples_per_message=per_message, devices=devices)
    device_kinds = device_list(spec)
    points = [(s.device, s.ts_ms) for i in range(12) for s in message_samples(spec, device_kinds, i, 1_000)]
    assert len(points) == 12 * per_message
    assert len(set(points)) == len(points)
    per_device = {d: sorted(ts for dd, ts in points if dd == d) for d, _ in device_kinds}
    assert all(ts == sorted(set(ts)) for ts in per_device.values())  # each device's clock moves forward
