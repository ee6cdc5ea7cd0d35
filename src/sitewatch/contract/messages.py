"""The typed messages every stage passes on, and their JSON encoding (schema version 1).

A *sample* is one device's values at one instant; a *reading* is one metric value of a sample,
the unit that is counted, stored once and deduplicated on (device, metric, timestamp).
Timestamps are integer milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from .kinds import DeviceKind
from .topics import DEVICE_LOCAL_PATTERN

SCHEMA_VERSION = 1
SEQ_MODULUS = 256  # Sparkplug B: per-message sequence numbers wrap at 256


def now_ms() -> int:
    """Current time as epoch milliseconds (UTC)."""
    return time.time_ns() // 1_000_000


def device_id(compound: str, local: str) -> str:
    """Globally unique device id: the compound code, a dash, then the device's local name."""
    if not re.fullmatch(DEVICE_LOCAL_PATTERN, local):
        raise ValueError(f"invalid local device name {local!r}")
    return f"{compound}-{local}"


def device_belongs_to(device: str, compound: str) -> bool:
    """Whether ``device`` is an id of ``compound`` (its id starts with ``<compound>-``)."""
    return device.startswith(compound + "-") and len(device) > len(compound) + 1


def gateway_device(compound: str, gateway: str) -> str:
    """The device id under which a gateway reports itself (kind ``gateway``): its id when that is
    already one of the compound's device ids, else ``<compound>-<gateway>``."""
    return gateway if device_belongs_to(gateway, compound) else f"{compound}-{gateway}"


class Sample(msgspec.Struct, frozen=True, gc=False):
    """One device's metric values at one instant.

    A ``msgspec.Struct`` rather than a dataclass: the validator decodes a payload's samples straight
    into it (``ts_ms`` is ``ts`` on the wire), and building one costs a fraction of a frozen
    dataclass. Its fields hold no reference cycles, so the cyclic collector need not track it.
    """

    device: str
    kind: DeviceKind
    ts_ms: int = msgspec.field(name="ts")
    values: Mapping[str, float]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form of this sample."""
        return {"device": self.device, "kind": self.kind.value, "ts": self.ts_ms, "values": dict(self.values)}


@dataclass(frozen=True, slots=True)
class Event:
    """A discrete device event; ``active`` is set for stateful events (raised / cleared)."""

    device: str
    kind: DeviceKind
    ts_ms: int
    name: str
    active: bool | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form of this event."""
        out: dict[str, Any] = {
            "device": self.device,
            "kind": self.kind.value,
            "ts": self.ts_ms,
            "event": self.name,
        }
        if self.active is not None:
            out["active"] = self.active
        if self.attrs:
            out["attrs"] = dict(self.attrs)
        return out


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who sent a message and its place in the gateway's sequence."""

    compound: str
    gateway: str
    bdseq: int  # boot sequence: incremented each time the gateway (re)connects
    seq: int  # message sequence, 0..255 wrapping, over data and event messages
    sent_ms: int
    replay: bool = False  # True: sent from the gateway's backlog after an outage (optional field)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready header fields (``replay`` only when true)."""
        out: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "compound": self.compound,
            "gateway": self.gateway,
            "bdseq": self.bdseq,
            "seq": self.seq,
            "sent": self.sent_ms,
        }
        if self.replay:
            out["replay"] = True
        return out


@dataclass(frozen=True, slots=True)
class DataMessage:
    """A batch of samples from one gateway (channel ``data``)."""

    envelope: Envelope
    samples: tuple[Sample, ...]

    @property
    def reading_count(self) -> int:
        """Number of metric values carried."""
        return sum(len(s.values) for s in self.samples)

    def encode(self) -> bytes:
        """JSON payload of this message."""
        return orjson.dumps({**self.envelope.to_json(), "samples": [s.to_json() for s in self.samples]})


@dataclass(frozen=True, slots=True)
class EventMessage:
    """A batch of events from one gateway (channel ``event``)."""

    envelope: Envelope
    events: tuple[Event, ...]

    def encode(self) -> bytes:
        """JSON payload of this message."""
        return orjson.dumps({**self.envelope.to_json(), "events": [e.to_json() for e in self.events]})


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device declared in a gateway's birth message."""

    device: str
    kind: DeviceKind
    protocol: str = "mqtt"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"device": self.device, "kind": self.kind.value, "protocol": self.protocol}


@dataclass(frozen=True, slots=True)
class StateMessage:
    """Birth (online, with the device list) or death (offline) of a gateway; retained."""

    compound: str
    gateway: str
    bdseq: int
    online: bool
    ts_ms: int
    devices: tuple[DeviceInfo, ...] = ()

    def encode(self) -> bytes:
        """JSON payload of this message."""
        body: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "compound": self.compound,
            "gateway": self.gateway,
            "bdseq": self.bdseq,
            "state": "online" if self.online else "offline",
            "ts": self.ts_ms,
        }
        if self.online:
            body["devices"] = [d.to_json() for d in self.devices]
        return orjson.dumps(body)


@dataclass(frozen=True, slots=True)
class StatsMessage:
    """A gateway's counters (channel ``stats``, retained): its own and ``<connector>.<name>`` ones."""

    compound: str
    gateway: str
    bdseq: int
    ts_ms: int
    counters: Mapping[str, int]

    def encode(self) -> bytes:
        """JSON payload of this message."""
        return orjson.dumps(
            {
                "v": SCHEMA_VERSION,
                "compound": self.compound,
                "gateway": self.gateway,
                "bdseq": self.bdseq,
                "ts": self.ts_ms,
                "counters": dict(self.counters),
            }
        )


@dataclass(frozen=True, slots=True)
class HostState:
    """Whether the central ingest is online (retained on ``sitewatch/v1/_host/state``).

    Ingest publishes ``online`` when it starts and sets ``offline`` as its MQTT will; gateways
    configured to wait for the host keep readings on disk while it is offline.
    """

    online: bool
    ts_ms: int

    def encode(self) -> bytes:
        """JSON payload of this message."""
        return orjson.dumps(
            {"v": SCHEMA_VERSION, "state": "online" if self.online else "offline", "ts": self.ts_ms}
        )


def encode_samples(envelope: Envelope, samples: Iterable[Sample]) -> bytes:
    """Encode a data message from an envelope and samples."""
    return DataMessage(envelope, tuple(samples)).encode()
