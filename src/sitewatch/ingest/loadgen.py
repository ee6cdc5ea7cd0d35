"""Load generator for the ingest benchmark: simulated gateways publishing contract messages at QoS 1.

Each publisher is one gateway of its own compound, run in its own process so that publishing does
not share an interpreter with the measurement. Messages carry samples of all five kinds with
valid values and distinct timestamps; ``sent`` is stamped when the message is published.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ..contract import KINDS, Channel, DeviceKind, Envelope, Sample, now_ms, topic

_KINDS = (
    DeviceKind.ELEVATOR,
    DeviceKind.CAMERA,
    DeviceKind.CHARGER,
    DeviceKind.STREETLIGHT,
    DeviceKind.WATER_METER,
)
# the gauges each kind reports in the load: 3-5 readings per sample, as in the simulators
_METRICS = {
    DeviceKind.ELEVATOR: ("vibration_rms", "motor_current", "car_load", "levelling_error"),
    DeviceKind.CAMERA: ("bitrate", "frame_rate", "storage_free", "latency"),
    DeviceKind.CHARGER: ("power", "voltage", "current", "temperature"),
    DeviceKind.STREETLIGHT: ("power", "lamp_current", "ambient_light"),
    DeviceKind.WATER_METER: ("flow", "pressure", "battery"),
}


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What one publisher sends."""

    port: int
    compound: str
    samples_per_message: int = 100
    devices: int = 200
    rate_msgs: float | None = None  # messages per second; None: as fast as the broker acknowledges
    duration_s: float = 10.0
    start_ms: int = 0  # first sample timestamp; 0: 30 days ago
    window: int = 200  # messages published and not yet acknowledged
    messages: int | None = None  # stop after this many (within duration_s)


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one publisher did."""

    compound: str
    messages: int
    readings: int
    acked: int
    seconds: float


def _values(kind: DeviceKind, n: int) -> dict[str, float]:
    out = {}
    for i, metric in enumerate(_METRICS[kind]):
        spec = KINDS[kind].metrics[metric]
        lo, hi = max(spec.minimum, 0.0), min(spec.maximum, 1000.0)
        out[metric] = round(lo + ((n + i) * 7919 % 1000) / 1000 * (hi - lo), 3)
    return out


def device_list(spec: LoadSpec) -> list[tuple[str, DeviceKind]]:
    """The devices of the publisher's compound, all five kinds in turn."""
    return [
        (f"{spec.compound}-{KINDS[_KINDS[d % 5]].code}{d:05d}", _KINDS[d % 5]) for d in range(spec.devices)
    ]


def message_samples(
    spec: LoadSpec, devices: list[tuple[str, DeviceKind]], index: int, start_ms: int
) -> list[Sample]:
    """The samples of message ``index``: one ms per message, so every (device, ts) is distinct."""
    samples = []
    n = index * spec.samples_per_message
    for i in range(n, n + spec.samples_per_message):
        device, kind = devices[i % spec.devices]
        samples.append(Sample(device, kind, start_ms + index, _values(kind, i)))
    return samples


def readings_per_message(spec: LoadSpec) -> int:
    """Readings one message of ``spec`` carries."""
    return sum(len(_METRICS[_KINDS[(i % spec.devices) % 5]]) for i in range(spec.samples_per_message))


def encoded_bodies(spec: LoadSpec, count: int, start_ms: int) -> list[bytes]:
    """The ``samples`` arrays of ``count`` messages, encoded ahead so that publishing costs little."""
    devices = device_list(spec)
    return [
        orjson.dumps([s.to_json() for s in message_samples(spec, devices, i, start_ms)]) for i in range(count)
    ]


def frame(spec: LoadSpec, gateway: str, seq: int, body: bytes) -> bytes:
    """A complete data payload around a pre-encoded samples array, ``sent`` stamped now."""
    header = Envelope(spec.compound, gateway, 1, seq % 256, now_ms()).to_json()
    return orjson.dumps(header)[:-1] + b',"samples":' + body + b"}"


def publish_load(spec: LoadSpec, go: Event | None = None, ready: Event | None = None) -> LoadResult:
    """Publish ``spec.messages`` (or ``rate × duration``) messages, paced or flat out; wait for the acks.

    The payloads are encoded first; ``ready`` is set then, and publishing starts when ``go`` is set.
    """
    gateway = f"{spec.compound}-GW01"
    data_topic = topic(spec.compound, gateway, Channel.DATA)
    acked = 0
    window = threading.Semaphore(spec.window)
    lock = threading.Lock()

    def on_publish(client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        nonlocal acked
        with lock:
            acked += 1
        window.release()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-{spec.compound}", protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(spec.window)
    client.on_publish = on_publish
    client.connect("127.0.0.1", spec.port, 60)
    client.loop_start()
    start_ms = spec.start_ms or now_ms() - 30 * 86_400_000
    per_message = readings_per_message(spec)
    count = (
        spec.messages if spec.messages is not None else math.ceil((spec.rate_msgs or 1000) * spec.duration_s)
    )
    bodies = encoded_bodies(spec, count, start_ms)
    if ready is not None:
        ready.set()
    if go is not None:
        go.wait(120)
    messages = 0
    started = time.monotonic()
    deadline = started + spec.duration_s
    while messages < count and time.monotonic() < deadline:
        if spec.rate_msgs:
            due = started + messages / spec.rate_msgs
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        if not window.acquire(timeout=30):
            break
        client.publish(data_topic, frame(spec, gateway, messages, bodies[messages]), qos=1)
        messages += 1
    wait_until = time.monotonic() + 60
    while time.monotonic() < wait_until:
        with lock:
            if acked >= messages:
                break
        time.sleep(0.05)
    seconds = time.monotonic() - started
    client.disconnect()
    client.loop_stop()
    return LoadResult(spec.compound, messages, messages * per_message, acked, seconds)


def publisher_process(spec: LoadSpec, go: Event, ready: Event, results: Queue[LoadResult]) -> None:
    """Entry point of a publisher process (see publish_load)."""
    results.put(publish_load(spec, go, ready))
