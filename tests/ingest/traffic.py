"""Test traffic: contract messages with known readings, a persistent QoS 1 publisher, store checksums."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sitewatch.contract import (
    KINDS,
    Channel,
    DataMessage,
    DeviceKind,
    Envelope,
    Sample,
    now_ms,
    topic,
)
from sitewatch.devtools.services import wait_until
from sitewatch.store import SeriesQuery, Store

FIVE_KINDS = (
    DeviceKind.ELEVATOR,
    DeviceKind.CAMERA,
    DeviceKind.CHARGER,
    DeviceKind.STREETLIGHT,
    DeviceKind.WATER_METER,
)
# a few gauge metrics per kind, with values that survive JSON and line protocol exactly
_METRICS = {
    DeviceKind.ELEVATOR: ("vibration_rms", "motor_current", "car_load"),
    DeviceKind.CAMERA: ("bitrate", "frame_rate", "storage_free"),
    DeviceKind.CHARGER: ("power", "voltage", "temperature"),
    DeviceKind.STREETLIGHT: ("power", "lamp_current", "ambient_light"),
    DeviceKind.WATER_METER: ("flow", "pressure", "battery"),
}
Reading = tuple[str, str, int, float]


@dataclass
class Traffic:
    """Messages to publish and the readings they carry."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)

    @property
    def checksum(self) -> str:
        """Checksum of the readings (see checksum())."""
        return checksum(self.readings)


def _value(kind: DeviceKind, metric: str, n: int) -> float:
    spec = KINDS[kind].metrics[metric]
    span = min(spec.maximum, 1000.0) - max(spec.minimum, 0.0)
    return round(max(spec.minimum, 0.0) + (n * 7 % 97) / 97 * span, 2)


def make_traffic(
    compound: str,
    gateway: str,
    *,
    messages: int,
    samples_per_message: int = 10,
    devices: int = 10,
    bdseq: int = 1,
    start_ms: int | None = None,
    first_seq: int = 0,
) -> Traffic:
    """``messages`` data messages of one gateway; every sample a distinct (device, ts)."""
    start = start_ms if start_ms is not None else now_ms() - 3_600_000
    out = Traffic()
    n = 0
    for m in range(messages):
        samples = []
        for _ in range(samples_per_message):
            kind = FIVE_KINDS[n % devices % len(FIVE_KINDS)]
            device = f"{compound}-{KINDS[kind].code}{n % devices:04d}"
            ts = start + n  # unique per sample: one ms apart
            values = {metric: _value(kind, metric, n + i) for i, metric in enumerate(_METRICS[kind])}
            samples.append(Sample(device, kind, ts, values))
            out.readings.extend((device, metric, ts, v) for metric, v in values.items())
            n += 1
        envelope = Envelope(compound, gateway, bdseq, (first_seq + m) % 256, now_ms())
        out.messages.append(
            (topic(compound, gateway, Channel.DATA), DataMessage(envelope, tuple(samples)).encode())
        )
    return out


def checksum(readings: Iterable[Reading]) -> str:
    """SHA-256 over the sorted (device, metric, ts, value) tuples."""
    digest = hashlib.sha256()
    for device, metric, ts, value in sorted(readings):
        digest.update(f"{device}|{metric}|{ts}|{value!r}\n".encode())
    return digest.hexdigest()


def stored_readings(store: Store, start_ms: int, end_ms: int, compound: str | None = None) -> list[Reading]:
    """Every stored reading of the five kinds' test metrics in a time range (of one compound)."""
    out: list[Reading] = []
    for kind, metrics in _METRICS.items():
        for p in store.query(SeriesQuery(kind, metrics, start_ms, end_ms, compound=compound)):
            out.append((p.device, p.metric, p.ts_ms, p.value))
    return out


class Publisher:
    """A gateway-like MQTT 5 publisher: persistent session, QoS 1, survives broker restarts."""

    def __init__(self, url_port: int, client_id: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 1)
        self._acked = 0
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect_async("127.0.0.1", url_port, 30, clean_start=False, properties=props)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, "publisher connection")
        self.mids: list[int] = []

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        with self._lock:
            self._acked += 1

    def publish(self, messages: Sequence[tuple[str, bytes]], rate_per_s: float | None = None) -> None:
        """Queue messages at QoS 1 (optionally paced)."""
        for i, (t, payload) in enumerate(messages):
            self.mids.append(self.client.publish(t, payload, qos=1).mid)
            if rate_per_s:
                time.sleep(10 / rate_per_s) if i % 10 == 9 else None

    def publish_raw(self, t: str, payload: bytes) -> None:
        """One message as given (for hostile input)."""
        self.mids.append(self.client.publish(t, payload, qos=1).mid)

    def wait_acked(self, timeout: float = 60) -> None:
        """Until the broker acknowledged every queued message."""

        def done() -> bool:
            with self._lock:
                return self._acked >= len(self.mids)

        wait_until(done, timeout, "broker acknowledgements of every published message")

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


class IngestProcess:
    """``sitewatch ingest run`` in a subprocess, with its counters in a stats file."""

    running: ClassVar[list[IngestProcess]] = []  # killed by the ingest_processes fixture

    def __init__(self, workdir: Path, env: dict[str, str], client_id: str, *extra: str) -> None:
        self.workdir = workdir
        self.stats_path = workdir / f"{client_id}.stats.json"
        self.log_path = workdir / f"{client_id}.log"
        self.args = [
            sys.executable, "-m", "sitewatch", "ingest", "run", "--client-id", client_id,
            "--stats-file", str(self.stats_path), "--log-interval", "1", *extra,
        ]  # fmt: skip
        self.env = {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until connected and subscribed."""
        self.stats_path.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        IngestProcess.running.append(self)
        wait_until(lambda: self._alive() and bool(self.stats().get("connected")), 30, "ingest process")

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"ingest exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}"
            )
        return True

    def stats(self) -> dict[str, object]:
        """Last counters written."""
        try:
            return dict(json.loads(self.stats_path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stored(self) -> int:
        """Readings this process has stored so far."""
        return int(str(self.stats().get("stored_readings", 0)))

    def stop(self) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)


def retained(port: int, topic_name: str, timeout: float = 10) -> bytes:
    """The retained message of a topic, read by a fresh subscriber."""
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.append(bytes(m.payload))
    client.connect("127.0.0.1", port)
    client.subscribe(topic_name, qos=1)
    client.loop_start()
    try:
        wait_until(lambda: bool(got), timeout, f"retained message on {topic_name}")
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0]
