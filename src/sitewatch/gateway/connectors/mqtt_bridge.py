"""Devices that already speak MQTT (e.g. streetlight controllers), bridged from the site broker.

The connector subscribes to the topic filters of its mappings (see mqtt_bridge_map.py) on the
compound's own broker with paho-mqtt 2.x, which reconnects by itself and resubscribes on every
connect. A device is online from its first good message (or an ``online`` status payload) and
offline after ``offline_after_s`` of silence or an ``offline`` status payload (its last will).
Messages that cannot be used are counted and logged; the others keep flowing.

What one device can cost the gateway is bounded: over MQTT 5 the broker is told not to send a
packet over ``MAX_PACKET_BYTES`` (Maximum Packet Size), so a huge payload never reaches the
gateway's memory (one up to that size is read and refused as ``bad_payload``); each device's
messages are rate-limited (``rate_limit_per_s``, ``rate_burst``), so a chatty or stuck controller
cannot push the others' readings out of the disk queue; and at most ``max_devices`` device names
are learnt from the broker, so names made up by a hostile publisher cannot grow the gateway's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ...contract import DeviceInfo, DeviceKind, Event, Sample, now_ms
from ...i18n import _
from ...mqtt_client import Client
from .base import ConnectorContext, Sink, TokenBucket, parse_config
from .mqtt_bridge_map import (
    Decoded,
    StatusMapping,
    TopicEntry,
    TopicMapping,
    decode,
    device_of,
    match,
    parse_mappings,
    status_of,
)

log = logging.getLogger(__name__)

MAX_PACKET_BYTES = 1_048_576  # MQTT 5 Maximum Packet Size asked of the site broker


class MqttBridgeConfig(BaseModel):
    """Options of a ``type: mqtt`` connector (docs/gateway-connectors.md)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["mqtt"] = "mqtt"
    name: str = "mqtt"
    broker: str = "mqtt://127.0.0.1:1883"  # the compound's own broker
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    qos: Literal[0, 1, 2] = 1
    protocol: Literal["5", "3.1.1"] = "5"  # 3.1.1 only for a site broker without MQTT 5
    offline_after_s: float = Field(300.0, ge=0)  # 0: never
    rate_limit_per_s: float = Field(1.0, gt=0, le=10_000)  # messages per device, on average ...
    rate_burst: float = Field(20.0, ge=1, le=100_000)  # ... with bursts up to this
    max_devices: int = Field(1000, ge=1, le=1_000_000)  # device names learnt from the broker, at most
    topics: list[TopicEntry] = Field(min_length=1)

    @field_validator("broker")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(_("must look like mqtt://host:1883 or mqtts://host:8883"))
        return value

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(_("no such file {path}", path=repr(value)))
        return value

    @model_validator(mode="after")
    def _pair(self) -> MqttBridgeConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(_("cert_file and key_file go together"))
        return self


class MqttBridgeConnector:
    """Subscribes to a site broker and turns device messages into samples."""

    def __init__(
        self,
        name: str,
        context: ConnectorContext,
        mappings: list[TopicMapping],
        statuses: list[StatusMapping],
        *,
        url: str = "mqtt://127.0.0.1:1883",
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        qos: int = 1,
        offline_after_s: float = 300.0,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        protocol: str = "5",
        rate_limit_per_s: float = 1.0,
        rate_burst: float = 20.0,
        max_devices: int = 1000,
    ) -> None:
        self.name = name
        self.mqtt5 = protocol == "5"
        self.rate_limit_per_s, self.rate_burst = rate_limit_per_s, rate_burst
        self.max_devices = max_devices
        self._buckets: dict[str, TokenBucket] = {}
        self.compound = context.compound
        self.mappings, self.statuses = mappings, statuses
        parts = urlsplit(url)
        self.tls = parts.scheme == "mqtts"
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or (8883 if self.tls else 1883)
        self.ca_file, self.cert_file, self.key_file = ca_file, cert_file, key_file
        self.username, self.password = username, password
        self.client_id = client_id or f"sitewatch-{context.gateway}-{name}"
        self.qos = qos
        self.offline_after_s = offline_after_s
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._counters: Counter[str] = Counter()
        self._logged: Counter[str] = Counter()
        self._kinds: dict[str, DeviceKind] = {d: m.kind for m in mappings for d in m.devices}
        self._last_seen: dict[str, float] = {}
        self._online: dict[str, bool] = {}
        self._sink: Sink | None = None

    @classmethod
    def from_config(cls, spec: Mapping[str, Any], context: ConnectorContext) -> MqttBridgeConnector:
        """Build from a ``type: mqtt`` entry of gateway.yaml (validated by :class:`MqttBridgeConfig`)."""
        config = parse_config(MqttBridgeConfig, spec)
        mappings, statuses = parse_mappings(config.topics, context.compound)
        return cls(
            config.name,
            context,
            mappings,
            statuses,
            url=config.broker,
            username=config.username,
            password=config.password,
            client_id=config.client_id,
            qos=config.qos,
            offline_after_s=config.offline_after_s,
            ca_file=config.ca_file,
            cert_file=config.cert_file,
            key_file=config.key_file,
            protocol=config.protocol,
            rate_limit_per_s=config.rate_limit_per_s,
            rate_burst=config.rate_burst,
            max_devices=config.max_devices,
        )

    def devices(self) -> list[DeviceInfo]:
        """Devices listed in the mappings, plus any seen on the broker."""
        with self._lock:
            return [DeviceInfo(d, k, "mqtt") for d, k in sorted(self._kinds.items())]

    def counters(self) -> Mapping[str, int]:
        """messages, readings, bad_payload, rejected (values), unknown_device, too_many_devices,
        rate_limited, stale, status, events, connects."""
        keys = (
            "messages",
            "readings",
            "bad_payload",
            "rejected",
            "unknown_device",
            "too_many_devices",
            "rate_limited",
            "stale",
            "status",
            "events",
            "connects",
        )
        with self._lock:
            return {k: self._counters[k] for k in keys}

    def _count(self, counter: str, detail: str) -> None:
        with self._lock:
            self._counters[counter] += 1
            self._logged[counter] += 1
            n = self._logged[counter]
        if n == 1 or n % 100 == 0:
            log.warning("mqtt %s: %s (%s #%d)", self.name, detail, counter, n)

    # --- transport ---------------------------------------------------------------------------

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Bridge until ``stop`` is set; offline events for silent devices are checked once a second."""
        self._sink = sink
        if self.mqtt5:
            client = Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        else:
            client = Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True)
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:  # the broker's certificate is checked against ca_file (or the system's CAs)
            client.tls_set(ca_certs=self.ca_file, certfile=self.cert_file, keyfile=self.key_file)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        if self.mqtt5:
            properties = Properties(PacketTypes.CONNECT)
            properties.MaximumPacketSize = MAX_PACKET_BYTES  # the broker drops larger ones for us
            client.connect_async(self.host, self.port, keepalive=30, clean_start=True, properties=properties)
        else:
            client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()
        try:
            while not stop.is_set():
                self._expire(sink)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(1.0, max(self.offline_after_s / 4, 0.05)))
        finally:
            client.disconnect()
            client.loop_stop()
            self.connected.clear()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Properties | None
    ) -> None:
        if reason.is_failure:
            log.warning(
                "mqtt %s: site broker %s:%d refused the connection: %s",
                self.name,
                self.host,
                self.port,
                reason,
            )
            return
        with self._lock:
            self._counters["connects"] += 1
        topics = [(m.topic, self.qos) for m in self.mappings] + [(s.topic, self.qos) for s in self.statuses]
        client.subscribe(topics)
        log.info(
            "mqtt %s: connected to %s:%d, subscribed to %d topic filters",
            self.name,
            self.host,
            self.port,
            len(topics),
        )
        self.connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Properties | None
    ) -> None:
        self.connected.clear()
        if reason.is_failure:
            log.warning(
                "mqtt %s: lost the site broker (%s); reconnecting",
                self.name,
                reason,
            )

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        sink = self._sink
        if sink is None:
            return
        try:
            self.handle(message.topic, bytes(message.payload), sink, retained=bool(message.retain))
        except Exception:  # a surprise in one message must not kill paho's network thread
            log.exception(
                "mqtt %s: failed to handle a message on %s", self.name, message.topic
            )

    # --- mapping -----------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, sink: Sink, *, retained: bool = False) -> None:
        """Turn one site-broker message into samples and events.

        A retained telemetry message (the broker's copy of a device's last report, sent on
        subscribe) is used only when it carries its own timestamp, and does not prove the device
        is online now.
        """
        with self._lock:
            self._counters["messages"] += 1
        for status in self.statuses:
            captured = match(status.topic, topic)
            if captured is not None:
                self._status(status, captured, topic, payload, sink)
                return
        for mapping in self.mappings:
            captured = match(mapping.topic, topic)
            if captured is None:
                continue
            device = self._device(mapping.device, captured, mapping.devices, mapping.kind, topic)
            if device is None or not self._allowed(device, topic):
                return
            if retained and mapping.timestamp_field is None:
                self._count("stale", f"{topic}: retained message without a timestamp field ignored")
                return
            decoded = decode(mapping, payload)
            if isinstance(decoded, str):
                self._count("bad_payload", f"{topic}: {decoded}")
                return
            if retained and decoded.ts_ms is None:
                self._count("stale", f"{topic}: retained message without a usable timestamp ignored")
                return
            self._deliver(device, mapping.kind, decoded, topic, sink, live=not retained)
            return

    def _device(
        self, template: str, captured: list[str], allowed: frozenset[str], kind: DeviceKind, topic: str
    ) -> str | None:
        device = device_of(template, captured, self.compound)
        if device is None or (allowed and device not in allowed):
            self._count(
                "unknown_device", f"{topic}: no configured device for this topic ({device or 'invalid name'})"
            )
            return None
        with self._lock:
            known = device in self._kinds or len(self._kinds) < self.max_devices
            if known:
                self._kinds.setdefault(device, kind)
        if not known:
            self._count("too_many_devices", f"{topic}: {device} refused: already {self.max_devices} devices")
            return None
        return device

    def _allowed(self, device: str, topic: str) -> bool:
        """Whether the device's message is within its rate limit (else counted and dropped)."""
        with self._lock:
            bucket = self._buckets.get(device)
            if bucket is None:
                bucket = self._buckets[device] = TokenBucket(self.rate_limit_per_s, self.rate_burst)
            allowed = bucket.take()
        if not allowed:
            self._count("rate_limited", f"{topic}: over {self.rate_limit_per_s:g} messages/s; dropped")
        return allowed

    def _deliver(
        self, device: str, kind: DeviceKind, decoded: Decoded, topic: str, sink: Sink, *, live: bool = True
    ) -> None:
        for problem in decoded.refused:
            self._count("rejected", f"{topic}: {problem}")
        if not decoded.values:
            return
        with self._lock:
            self._counters["readings"] += len(decoded.values)
        sink.samples([Sample(device, kind, decoded.ts_ms or now_ms(), decoded.values)])
        if live:
            self._seen(device, kind, sink)

    def _status(
        self, status: StatusMapping, captured: list[str], topic: str, payload: bytes, sink: Sink
    ) -> None:
        device = self._device(status.device, captured, frozenset(), status.kind, topic)
        if device is None or not self._allowed(device, topic):
            return
        state = status_of(status, payload)
        if state is None:
            self._count("bad_payload", f"{topic}: status {payload[:40]!r} is neither online nor offline")
            return
        with self._lock:
            self._counters["status"] += 1
        if state:
            self._seen(device, status.kind, sink)
        else:
            self._change(device, status.kind, False, sink, "reported offline")

    def _seen(self, device: str, kind: DeviceKind, sink: Sink) -> None:
        with self._lock:
            self._last_seen[device] = time.monotonic()
            was = self._online.get(device)
        if was is not True:
            self._change(device, kind, True, sink, "sending again")

    def _change(self, device: str, kind: DeviceKind, online: bool, sink: Sink, why: str) -> None:
        with self._lock:
            if self._online.get(device) is online:
                return
            self._online[device] = online
            self._counters["events"] += 1
        name = "online" if online else "offline"
        log.info("mqtt %s: %s is %s (%s)", self.name, device, name, why)
        sink.events([Event(device, kind, now_ms(), name, None, {"reason": why})])

    def _expire(self, sink: Sink) -> None:
        if self.offline_after_s <= 0:
            return
        limit = time.monotonic() - self.offline_after_s
        with self._lock:
            silent = [d for d, seen in self._last_seen.items() if seen < limit and self._online.get(d)]
            kinds = {d: self._kinds[d] for d in silent}
        for device in silent:
            self._change(device, kinds[device], False, sink, f"silent for {self.offline_after_s:g} s")
