"""Helpers for the gateway core tests: a recording subscriber, a gateway in a thread, journals."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sitewatch.contract import Limits, decode_data, decode_events, decode_state, parse_topic
from sitewatch.contract.topics import Channel
from sitewatch.devtools.services import wait_until
from sitewatch.gateway.config import GatewayConfig, parse_config
from sitewatch.gateway.runtime import Gateway

COMPOUND = "330102-0007"
GATEWAY = "330102-0007-GW01"
# replayed data may be far older than the validator's defaults allow in tests that mock nothing
LIMITS = Limits(max_age_ms=10**12)


@dataclass(frozen=True, slots=True)
class Reading:
    device: str
    metric: str
    ts: int
    value: float
    replay: bool
    bdseq: int
    seq: int


class Recorder:
    """A subscriber with a persistent session that records every message under a topic filter."""

    def __init__(
        self, url_port: int, topic_filter: str, client_id: str, *, mqtt5: bool = True, **auth: str
    ) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.arrived_ms: list[int] = []  # wall-clock arrival of each message, same order
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.mqtt5 = mqtt5
        if mqtt5:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        else:  # brokers without MQTT 5 (amqtt)
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False
            )
        if auth:
            self.client.username_pw_set(auth["username"], auth["password"])
        self.client.reconnect_delay_set(1, 2)
        self.topic_filter = topic_filter

        def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
            if not reason.is_failure:
                c.subscribe(topic_filter, qos=1)

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, props: Any) -> None:
            self.subscribed.set()

        def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            with self.lock:
                self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
                self.arrived_ms.append(time.time_ns() // 1_000_000)

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        if mqtt5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            self.client.connect("127.0.0.1", url_port, 10, clean_start=False, properties=props)
        else:
            self.client.connect("127.0.0.1", url_port, 10)
        self.client.loop_start()
        assert self.subscribed.wait(10), "recorder could not subscribe"

    def close(self) -> None:
        """Disconnect and end the persistent session (MQTT 5), so the broker stops queueing for it."""
        if self.mqtt5:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
            self.client.disconnect(properties=props)
        else:
            self.client.disconnect()
        self.client.loop_stop()

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return list(self.messages)

    def readings(self) -> list[Reading]:
        """Every reading of every data message, in arrival order (the gateway's own samples too)."""
        out = []
        for topic, payload, _ in self.snapshot():
            parts = parse_topic(topic)
            if parts is None or parts.channel is not Channel.DATA:
                continue
            decoded = decode_data(topic, payload, limits=LIMITS)
            assert decoded.ok, decoded.rejections
            assert decoded.message is not None
            env = decoded.message.envelope
            for s in decoded.message.samples:
                for metric, value in s.values.items():
                    out.append(Reading(s.device, metric, s.ts_ms, value, env.replay, env.bdseq, env.seq))
        return out

    def states(self, retained: bool = False) -> list[Any]:
        """Birth/death messages seen live (and the retained one found at subscription if asked)."""
        out = []
        for topic, payload, was_retained in self.snapshot():
            parts = parse_topic(topic)
            if parts is not None and parts.channel is Channel.STATE and (retained or not was_retained):
                decoded = decode_state(topic, payload)
                assert decoded.ok, decoded.rejections
                out.append(decoded.message)
        return out

    def events(self) -> list[Any]:
        out: list[Any] = []
        for topic, payload, _ in self.snapshot():
            parts = parse_topic(topic)
            if parts is not None and parts.channel is Channel.EVENT:
                decoded = decode_events(topic, payload, limits=LIMITS)
                assert decoded.ok, decoded.rejections
                assert decoded.message is not None
                out.extend(decoded.message.events)
        return out


def device_readings(readings: list[Reading]) -> list[Reading]:
    """Readings of simulated devices (not the gateway's own counter samples)."""
    return [r for r in readings if r.device != GATEWAY]


def first_arrivals(readings: list[Reading]) -> list[Reading]:
    """Dedup on (device, metric, ts), keeping the first arrival."""
    seen: set[tuple[str, str, int]] = set()
    out = []
    for r in readings:
        key = (r.device, r.metric, r.ts)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def assert_per_device_order(readings: list[Reading]) -> None:
    """After dedup, each device's readings arrive in timestamp order within the live and replayed streams."""
    last: dict[tuple[str, str, bool], int] = defaultdict(lambda: -1)
    for r in first_arrivals(readings):
        key = (r.device, r.metric, r.replay)
        assert r.ts > last[key], f"{r.device} {r.metric}: ts {r.ts} after {last[key]} (replay={r.replay})"
        last[key] = r.ts


def read_journal(path: Path) -> list[tuple[str, int, int]]:
    """(device, k, ts) of every sample the gateway accepted, from a synthetic connector's journal."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            out.append((parts[0], int(parts[1]), int(parts[2])))
    return out


def config(tmp_path: Path, port: int, **overrides: Any) -> GatewayConfig:
    """A gateway configuration for tests: one synthetic connector unless ``connectors`` is given."""
    data: dict[str, Any] = {
        "compound": COMPOUND,
        "gateway": GATEWAY,
        "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "max_inflight": 50},
        "queue": {"path": str(tmp_path / "queue.db"), "budget_bytes": 64 * 1024**2, "batch_rows": 100},
        "counters_interval_s": 0.5,
        "connect_timeout_s": 3,
        "reconnect_max_s": 0.5,
        "drain_timeout_s": 10,
        "connectors": [
            {"type": "synthetic", "name": "meters", "devices": 4, "interval_s": 0.01, "count": 200,
             "journal": str(tmp_path / "journal.tsv")}
        ],
    }  # fmt: skip
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_config(data)


class GatewayThread:
    """A Gateway running in its own thread and event loop."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None
        ready = threading.Event()

        def target() -> None:
            asyncio.set_event_loop(self.loop)

            async def main() -> None:
                self.stop_event = asyncio.Event()
                ready.set()
                await gateway.run(self.stop_event)

            try:
                self.loop.run_until_complete(main())
            except BaseException as exc:  # surfaced by stop()
                self.error = exc
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        if self.thread.is_alive():
            assert self.stop_event is not None
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.thread.join(60)
        assert not self.thread.is_alive(), "gateway did not stop"
        if self.error is not None:
            raise self.error


def wait_for(check: Any, timeout: float, what: str) -> None:
    wait_until(check, timeout, what)


def explain_missing(expected: set[tuple[str, str, int]], arrived: set[tuple[str, str, int]]) -> str:
    """A short account of what did not arrive, for assertion messages."""
    missing = sorted(expected - arrived, key=lambda k: k[2])
    if not missing:
        return "nothing missing"
    stamps = sorted({k[2] for k in missing})
    return (
        f"{len(missing)} of {len(expected)} readings missing, {len(stamps)} timestamps from {stamps[0]} "
        f"to {stamps[-1]}; devices {sorted({k[0] for k in missing})[:5]}"
    )
