"""Load generator for the ingest benchmark: simulated gateways publishing contract messages at QoS 1.

Each publisher is one gateway of its own compound, run in its own process so that publishing does
not share an interpreter with the measurement, and through ``mosquitto_pub`` when it is installed.
Messages carry samples of all five kinds with valid values and distinct timestamps; ``sent`` is
stamped when the message is handed to the client.
"""

from __future__ import annotations

import math
import shutil
import subprocess
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


PACE_GRAIN_S = 0.005  # a paced publisher sleeps only when the next message is due this far ahead


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
    """The samples of message ``index``: the devices in turn, one ms per round of the device list.

    Sample ``i`` of the stream is device ``i % devices`` at ``start_ms + i // devices``, so every
    (device, ts) is distinct however many samples a message holds, and each device's clock moves on.
    """
    samples = []
    n = index * spec.samples_per_message
    for i in range(n, n + spec.samples_per_message):
        device, kind = devices[i % spec.devices]
        samples.append(Sample(device, kind, start_ms + i // spec.devices, _values(kind, i)))
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


class _PahoPublisher:
    """Publishes with paho in one thread (no network thread: each publish is written at once and
    acknowledgements are read between publishes), keeping at most ``window`` unacknowledged."""

    def __init__(self, spec: LoadSpec, data_topic: str) -> None:
        self.topic = data_topic
        self.window = spec.window
        self.sent = 0
        self.acked = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{spec.compound}", protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(spec.window)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", spec.port, 60)
        connect_by = time.monotonic() + 30
        while not self.client.is_connected() and time.monotonic() < connect_by:
            self.client.loop(0.05)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        self.acked += 1

    def send(self, payload: bytes) -> bool:
        """Publish one message once the window has room; False when it stayed full for 30 s."""
        stalled_by = time.monotonic() + 30
        while self.sent - self.acked >= self.window and time.monotonic() < stalled_by:
            self.client.loop(0.05)
        if self.sent - self.acked >= self.window:
            return False
        self.client.publish(self.topic, payload, qos=1)
        self.sent += 1
        if self.sent % 8 == 0:
            self.client.loop(0)
        return True

    def pump(self) -> None:
        """Read the acknowledgements that came meanwhile."""
        self.client.loop(0)

    def finish(self, timeout: float) -> int:
        """Wait for the outstanding acknowledgements; the number acknowledged."""
        wait_until = time.monotonic() + timeout
        while self.acked < self.sent and time.monotonic() < wait_until:
            self.client.loop(0.05)
        self.client.disconnect()
        return self.acked


class _ToolPublisher:
    """Publishes through ``mosquitto_pub -l`` (Mosquitto's own C client: one message per stdin line),
    which costs the machine less per message than a Python client."""

    def __init__(self, tool: str, spec: LoadSpec, data_topic: str) -> None:
        self.sent = 0
        self.proc = subprocess.Popen(
            [tool, "-h", "127.0.0.1", "-p", str(spec.port), "-V", "mqttv5", "-q", "1",
             "-M", str(spec.window), "-i", f"bench-{spec.compound}", "-t", data_topic, "-l"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdin is not None
        self.stdin = self.proc.stdin

    def send(self, payload: bytes) -> bool:
        """Hand one message (a JSON payload holds no newline) to the client."""
        self.stdin.write(payload + b"\n")
        self.sent += 1
        return True

    def pump(self) -> None:
        """Push out what is buffered."""
        self.stdin.flush()

    def finish(self, timeout: float) -> int:
        """Close its input and wait until it has sent everything; all acknowledged when it exits 0."""
        try:
            _, error = self.proc.communicate(timeout=timeout)  # closes its input first
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return 0
        if self.proc.returncode != 0:
            detail = error.decode(errors="replace")[-500:]
            raise RuntimeError(f"mosquitto_pub exited with {self.proc.returncode}: {detail}")
        return self.sent


def publish_load(
    spec: LoadSpec, go: Event | None = None, ready: Event | None = None, *, tool: str | None = None
) -> LoadResult:
    """Publish ``spec.messages`` (or ``rate × duration``) messages, paced or flat out; wait for the acks.

    The payloads are encoded first; ``ready`` is set then, and publishing starts when ``go`` is set.
    With ``tool`` (the path of ``mosquitto_pub``) the messages go out through it, else through paho
    in this process: either way the generator spends as little of the machine as it can on what
    real gateways would do elsewhere.
    """
    gateway = f"{spec.compound}-GW01"
    data_topic = topic(spec.compound, gateway, Channel.DATA)
    publisher = _ToolPublisher(tool, spec, data_topic) if tool else _PahoPublisher(spec, data_topic)
    start_ms = spec.start_ms or now_ms() - 30 * 86_400_000
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
            pause = started + messages / spec.rate_msgs - time.monotonic()
            if pause > PACE_GRAIN_S:  # what is due goes out in a burst, waking up once per grain
                publisher.pump()
                time.sleep(pause)
                publisher.pump()
        if not publisher.send(frame(spec, gateway, messages, bodies[messages])):
            break
        messages += 1
    publisher.pump()
    acked = publisher.finish(60)
    seconds = time.monotonic() - started
    return LoadResult(spec.compound, messages, messages * readings_per_message(spec), acked, seconds)


def publisher_process(spec: LoadSpec, go: Event, ready: Event, results: Queue[LoadResult]) -> None:
    """Entry point of a publisher process (see publish_load): through mosquitto_pub when installed."""
    results.put(publish_load(spec, go, ready, tool=shutil.which("mosquitto_pub")))
