"""Helpers of the analytics service tests: settings, a gateway-like publisher, a findings collector."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sitewatch.contract import (
    FINDING_SUBSCRIPTION,
    Channel,
    DeviceKind,
    Envelope,
    Event,
    EventMessage,
    Sample,
    StateMessage,
    topic,
)
from sitewatch.contract.messages import DataMessage
from sitewatch.devtools.services import wait_until
from sitewatch.settings import Settings, load_settings


def make_settings(broker_url: str, data_dir: Path, **analytics: object) -> Settings:
    """Settings for the given broker, state under ``data_dir``, a short checkpoint interval."""
    return load_settings(
        data_dir=data_dir,
        mqtt={"url": broker_url},
        analytics={"checkpoint_interval_s": 0.2, "tick_s": 1.0, **analytics},
    )


class Gateway:
    """A gateway-like MQTT 5 publisher of one compound: QoS 1, numbered messages."""

    def __init__(self, port: int, compound: str, client_id: str) -> None:
        self.compound, self.gateway = compound, f"{compound}-GW01"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.acked = 0
        self.sent = 0
        self.lock = threading.Lock()
        self.client.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        self.client.connect_async("127.0.0.1", port, 30, clean_start=False, properties=props)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, "publisher connection")
        self.seq = 0

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        with self.lock:
            self.acked += 1

    def envelope(self) -> Envelope:
        self.seq = (self.seq + 1) % 256
        return Envelope(self.compound, self.gateway, 1, self.seq, int(time.time() * 1000))

    def raw(self, channel: Channel, payload: bytes, *, topic_name: str | None = None) -> None:
        self.client.publish(topic_name or topic(self.compound, self.gateway, channel), payload, qos=1)
        self.sent += 1

    def events(self, events: Sequence[Event]) -> None:
        self.raw(Channel.EVENT, EventMessage(self.envelope(), tuple(events)).encode())

    def samples(self, samples: Sequence[Sample]) -> None:
        self.raw(Channel.DATA, DataMessage(self.envelope(), tuple(samples)).encode())

    def birth(self, devices: Sequence[tuple[str, DeviceKind]], ts_ms: int) -> None:
        from sitewatch.contract import DeviceInfo

        infos = tuple(DeviceInfo(d, k) for d, k in devices)
        msg = StateMessage(self.compound, self.gateway, 1, True, ts_ms, infos)
        self.client.publish(topic(self.compound, self.gateway, Channel.STATE), msg.encode(), qos=1, retain=True)
        self.sent += 1

    def wait_acked(self, timeout: float = 30) -> None:
        wait_until(lambda: self.acked >= self.sent, timeout, "broker acknowledgements")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def entrapment(device: str, ts_ms: int, active: bool) -> Event:
    """An elevator's entrapment event (critical, stateful)."""
    return Event(device, DeviceKind.ELEVATOR, ts_ms, "entrapment", active)


class Findings:
    """Every finding published on the finding topics (alone or in batches), as decoded JSON."""

    def __init__(self, port: int) -> None:
        self.items: list[dict[str, object]] = []
        self.payloads: list[tuple[str, bytes]] = []  # (topic, payload) of every message
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(FINDING_SUBSCRIPTION, qos=1)
        self.client.loop_start()
        time.sleep(0.2)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        body = orjson.loads(message.payload)
        received = time.time()
        items = body.get("findings", [body])  # a batch, or a lone finding
        for item in items:
            item["_received"] = received
        with self.lock:
            self.items.extend(items)
            self.payloads.append((message.topic, bytes(message.payload)))

    def of(self, compound: str, fault: str | None = None) -> list[dict[str, object]]:
        with self.lock:
            return [f for f in self.items if f["compound"] == compound and (fault is None or f["fault"] == fault)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
