"""Decode and validate payloads at the edge: every rejection carries a precise reason.

Problems with the message as a whole (size, JSON, version, header, topic) reject the message.
Problems with one sample (device, kind, timestamp) reject that sample; problems with one value
(unknown metric, non-finite, out of range) reject that value. What remains valid is kept, so one
glitching sensor never costs the readings of its neighbours. Nothing raises past these functions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

import msgspec
import orjson

from .checker import Checker, device_problem
from .kinds import KINDS, DeviceKind, MetricType
from .messages import (
    SCHEMA_VERSION,
    DataMessage,
    DeviceInfo,
    Envelope,
    Event,
    EventMessage,
    HostState,
    Sample,
    StateMessage,
    StatsMessage,
    device_belongs_to,
    now_ms,
)
from .topics import HOST_STATE_TOPIC, Channel, TopicParts, parse_topic

T = TypeVar("T")


class RejectReason(StrEnum):
    """Why input was refused; also the label of the rejection counters."""

    OVERSIZED = "oversized"
    BAD_JSON = "bad_json"
    BAD_SHAPE = "bad_shape"
    UNKNOWN_VERSION = "unknown_version"
    BAD_TOPIC = "bad_topic"
    COMPOUND_MISMATCH = "compound_mismatch"
    GATEWAY_MISMATCH = "gateway_mismatch"
    TOO_MANY_SAMPLES = "too_many_samples"
    TOO_MANY_FINDINGS = "too_many_findings"
    BAD_DEVICE_ID = "bad_device_id"
    FOREIGN_DEVICE = "foreign_device"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_KIND = "unknown_kind"
    KIND_MISMATCH = "kind_mismatch"
    UNKNOWN_METRIC = "unknown_metric"
    UNKNOWN_EVENT = "unknown_event"
    BAD_VALUE = "bad_value"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"
    TS_FUTURE = "ts_future"
    TS_PAST = "ts_past"
    STORE_REFUSED = "store_refused"  # ingest: the store refused the item for good (its reason follows)


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused message, sample or value, with the reason and the offending part."""

    reason: RejectReason
    detail: str
    device: str | None = None
    item: Any = None  # JSON-ready offending part (a sample or event); None for the whole message


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds the validator enforces (see settings.ContractSettings)."""

    max_payload_bytes: int = 1_048_576
    max_samples: int = 10_000
    max_future_ms: int = 300_000
    max_age_ms: int = 90 * 86_400_000


@dataclass(frozen=True, slots=True)
class Decoded(Generic[T]):
    """Result of decoding: the valid message (if any part was valid) and every rejection."""

    message: T | None
    rejections: tuple[Rejection, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing was rejected."""
        return self.message is not None and not self.rejections


_KIND_OF: dict[str, DeviceKind] = {k.value: k for k in DeviceKind}
# Metrics whose only test is a finite range (gauges and counters): the hot path of decode_data
# checks these inline; every other case (and every refusal) goes through _value for its reason.
_RANGES: dict[DeviceKind, dict[str, tuple[float, float]]] = {
    kind: {
        name: (spec.minimum, spec.maximum)
        for name, spec in kspec.metrics.items()
        if spec.type in (MetricType.GAUGE, MetricType.COUNTER)
        and math.isfinite(spec.minimum)
        and math.isfinite(spec.maximum)
    }
    for kind, kspec in KINDS.items()
}
_STATE_LABELS = {
    (kind, name): {label: float(i) for i, label in enumerate(spec.states)}
    for kind, kspec in KINDS.items()
    for name, spec in kspec.metrics.items()
    if spec.type is MetricType.STATE
}


_METRIC_SPECS = {kind: kspec.metrics for kind, kspec in KINDS.items()}


class _DataWire(msgspec.Struct, gc=False):
    """A ``data`` payload as the fast path decodes it: the header typed, the samples as Samples."""

    v: int
    compound: str
    gateway: str
    bdseq: int
    seq: int
    sent: int
    samples: list[Sample]
    replay: bool | msgspec.UnsetType = msgspec.UNSET  # UNSET: absent (its key is not counted)


_DATA_DECODER = msgspec.json.Decoder(_DataWire)


class _Reject(Exception):
    """Internal: abort decoding the whole message with a reason."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _whole(reason: RejectReason, detail: str) -> Decoded[Any]:
    return Decoded(None, (Rejection(reason, detail),))


def _parse(payload: bytes, limits: Limits) -> dict[str, Any]:
    if len(payload) > limits.max_payload_bytes:
        raise _Reject(
            RejectReason.OVERSIZED, f"payload of {len(payload)} bytes exceeds {limits.max_payload_bytes}"
        )
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise _Reject(*_explain_bad_json(payload, exc)) from None
    colons = payload.count(b":")
    if not _colons_accounted(payload, body, colons) and colons != _count_keys(body):
        duplicate = _duplicate_key(payload)  # a key lost to a duplicate, or a colon in a string
        if duplicate is not None:
            raise _Reject(
                RejectReason.BAD_JSON,
                f"key {_short(duplicate)} appears twice in one object (each key may appear once)",
            )
    if not isinstance(body, dict):
        raise _Reject(RejectReason.BAD_SHAPE, f"payload must be a JSON object, got {type(body).__name__}")
    version = body.get("v")
    if version != SCHEMA_VERSION:
        raise _Reject(
            RejectReason.UNKNOWN_VERSION,
            f"schema version {version!r} not supported (expected v={SCHEMA_VERSION})",
        )
    return body


def _count_keys(value: Any) -> int:
    """Keys of every object in a parsed JSON value."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            count += len(item)
            stack.extend(v for v in item.values() if type(v) is dict or type(v) is list)
        elif type(item) is list:
            stack.extend(v for v in item if type(v) is dict or type(v) is list)
    return count


def _colons_accounted(payload: bytes, body: Any, colons: int) -> bool:
    """Whether the payload has exactly the colons of its decoded value written out again, which
    proves that no key was there twice.

    Every colon of a JSON text is either the one after a key or a character of a string, and orjson
    writes a colon only there. Without ``\\u`` escapes (the only way to write a colon that is not
    a colon byte) every colon of the decoded strings is one of the payload, so the counts are equal
    unless a duplicate key lost its colon (and its value's). Findings carry colons in their ids
    and sources: this spares them the slow parse of ``_duplicate_key``.
    """
    if b"\\u" in payload:
        return False
    try:
        return orjson.dumps(body).count(b":") == colons
    except (TypeError, orjson.JSONEncodeError):
        return False


class _DuplicateKey(Exception):
    """Internal: a key found twice in one JSON object."""


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body = dict(pairs)
    if len(body) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return body


def _duplicate_key(payload: bytes) -> str | None:
    """The first key found twice in one object of ``payload`` (valid JSON), or None.

    Every key is followed by a colon, so a payload with as many colons as its parsed objects have
    keys has none twice; only when the counts differ (a colon inside a string, or a duplicate) does
    this slower parse look at each object's keys.
    """
    try:
        json.loads(payload, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey as exc:
        return str(exc.args[0])
    return None


def _explain_bad_json(payload: bytes, exc: Exception) -> tuple[RejectReason, str]:
    """Tell NaN/Infinity (which strict JSON forbids but some encoders emit) from other garbage."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return RejectReason.BAD_JSON, "payload is not UTF-8 text"
    found: list[str] = []

    def constant(name: str) -> float:
        found.append(name)
        return math.nan

    try:
        json.loads(text, parse_constant=constant)
    except (ValueError, RecursionError):
        return RejectReason.BAD_JSON, f"not valid JSON: {str(exc)[:200]}"
    if found:
        return (
            RejectReason.NON_FINITE,
            f"payload contains non-finite numbers ({', '.join(sorted(set(found)))})",
        )
    return RejectReason.BAD_JSON, f"not valid JSON: {str(exc)[:200]}"


def _int_field(body: dict[str, Any], name: str, lo: int, hi: int) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _Reject(
            RejectReason.BAD_SHAPE, f"header field {name!r} must be an integer in [{lo}, {hi}], got {value!r}"
        )
    return value


def _envelope(body: dict[str, Any], parts: TopicParts) -> Envelope:
    compound, gateway = body.get("compound"), body.get("gateway")
    if compound != parts.compound:
        raise _Reject(
            RejectReason.COMPOUND_MISMATCH,
            f"payload compound {compound!r} differs from topic compound {parts.compound!r}",
        )
    if gateway != parts.gateway:
        raise _Reject(
            RejectReason.GATEWAY_MISMATCH,
            f"payload gateway {gateway!r} differs from topic gateway {parts.gateway!r}",
        )
    return Envelope(
        compound=parts.compound,
        gateway=parts.gateway,
        bdseq=_int_field(body, "bdseq", 0, 2**53),
        seq=_int_field(body, "seq", 0, 255),
        sent_ms=_int_field(body, "sent", 0, 2**53),
        replay=_replay_field(body),
    )


def _replay_field(body: dict[str, Any]) -> bool:
    value = body.get("replay", False)
    if not isinstance(value, bool):
        raise _Reject(
            RejectReason.BAD_SHAPE, f"header field 'replay' must be true or false, got {_short(value)}"
        )
    return value


def _topic(topic: str, expected: Channel) -> TopicParts:
    parts = parse_topic(topic)
    if parts is None or parts.channel is not expected:
        raise _Reject(
            RejectReason.BAD_TOPIC,
            f"topic {topic!r} is not a sitewatch/v1/<compound>/<gateway>/{expected} topic",
        )
    return parts


def _items(body: dict[str, Any], name: str, limits: Limits) -> list[Any]:
    items = body.get(name)
    if not isinstance(items, list):
        raise _Reject(RejectReason.BAD_SHAPE, f"field {name!r} must be a list")
    if len(items) > limits.max_samples:
        raise _Reject(
            RejectReason.TOO_MANY_SAMPLES, f"{len(items)} {name} exceed the limit of {limits.max_samples}"
        )
    return items


def _device_kind_ts(
    item: Any, compound: str, now: int, limits: Limits, checker: Checker
) -> tuple[str, DeviceKind, int] | Rejection:
    """Check the identity and timestamp part shared by samples and events."""
    if not isinstance(item, dict):
        return Rejection(
            RejectReason.BAD_SHAPE, f"item must be an object, got {type(item).__name__}", item=_safe(item)
        )
    device = item.get("device")
    if not isinstance(device, str) or not device_belongs_to(device, compound) or len(device) > 128:
        if isinstance(device, str) and not device_belongs_to(device, compound) and len(device) <= 128:
            return Rejection(
                RejectReason.FOREIGN_DEVICE,
                f"device {device!r} is not a device of compound {compound!r} (ids start with '{compound}-')",
                device=device,
                item=_safe(item),
            )
        return Rejection(RejectReason.BAD_DEVICE_ID, f"invalid device id {_short(device)}", item=_safe(item))
    if checker.device_problem(device, compound) is not None:
        return Rejection(
            RejectReason.BAD_DEVICE_ID, f"invalid device id {_short(device)}", device, _safe(item)
        )
    try:
        kind = DeviceKind(str(item.get("kind")))
    except ValueError:
        return Rejection(
            RejectReason.UNKNOWN_KIND, f"unknown device kind {_short(item.get('kind'))}", device, _safe(item)
        )
    ts = item.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int):
        return Rejection(
            RejectReason.BAD_TIMESTAMP,
            f"ts must be integer epoch milliseconds, got {_short(ts)}",
            device,
            _safe(item),
        )
    if ts > now + limits.max_future_ms:
        return Rejection(
            RejectReason.TS_FUTURE, f"ts {ts} is {(ts - now) / 1000:.0f} s in the future", device, _safe(item)
        )
    if ts < now - limits.max_age_ms:
        return Rejection(
            RejectReason.TS_PAST, f"ts {ts} is {(now - ts) / 86_400_000:.1f} days old", device, _safe(item)
        )
    return device, kind, ts


def _known_head(
    item: Any, compound: str, oldest: int, newest: int, devices: dict[str, str]
) -> tuple[str, DeviceKind, int] | None:
    """(device, kind, ts) when the item is plainly valid: a device already checked, a known kind,
    a timestamp in range; None when anything needs the full check of _device_kind_ts."""
    if type(item) is not dict:
        return None
    device, kind, ts = item.get("device"), item.get("kind"), item.get("ts")
    if type(kind) is not str or type(ts) is not int or not oldest <= ts <= newest:
        return None
    if type(device) is not str or devices.get(device) != compound:
        return None
    found = _KIND_OF.get(kind)
    return None if found is None else (device, found, ts)


def _value(kind: DeviceKind, metric: str, raw: Any) -> float | str:
    """The metric value as a float, or a reason string when it is refused."""
    spec = KINDS[kind].metrics.get(metric)
    if spec is None:
        return f"{RejectReason.UNKNOWN_METRIC}:{kind} has no metric {_short(metric)}"
    if isinstance(raw, str) and spec.type is MetricType.STATE:
        code = _STATE_LABELS[(kind, metric)].get(raw)
        if code is None:
            return f"{RejectReason.BAD_VALUE}:{metric}={_short(raw)} is not one of {', '.join(spec.states)}"
        return code
    if not isinstance(raw, int | float):
        return f"{RejectReason.BAD_VALUE}:{metric} must be a number, got {_short(raw)}"
    value = float(raw)
    if not math.isfinite(value):
        return f"{RejectReason.NON_FINITE}:{metric}={value!r} is not finite"
    problem = spec.check(value)
    if problem is not None:
        return f"{RejectReason.OUT_OF_RANGE}:{problem}"
    return value


def _plainly_valid_data(
    topic: str, payload: bytes, limits: Limits, now: int, checker: Checker
) -> Decoded[DataMessage] | None:
    """The decoded message when every part of it is plainly valid; None when anything needs a look.

    One typed decode (msgspec) builds the header and the Samples in C; what is left here are the
    checks a type cannot say: the topic, version and header ranges, each device (remembered once
    valid), each timestamp and each value against its metric. None sends the payload through the
    full path of decode_data, which finds every reason; so this path decides only what the full
    path would accept whole, and gives it the same result. A duplicate key is ruled out by
    counting: every key of the payload is followed by a colon, so as many colons as the decoded
    header, samples and values have keys means no key was there twice (and no colon elsewhere).
    """
    if len(payload) > limits.max_payload_bytes:
        return None
    try:
        wire = _DATA_DECODER.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    parts = parse_topic(topic)
    if (
        parts is None
        or parts.channel is not Channel.DATA
        or wire.v != SCHEMA_VERSION
        or wire.compound != parts.compound
        or wire.gateway != parts.gateway
        or not 0 <= wire.bdseq <= 2**53
        or not 0 <= wire.seq <= 255
        or not 0 <= wire.sent <= 2**53
        or len(wire.samples) > limits.max_samples
    ):
        return None
    compound = parts.compound
    oldest, newest = now - limits.max_age_ms, now + limits.max_future_ms
    valid_devices = checker.devices
    keys = 7 if wire.replay is msgspec.UNSET else 8  # the header's
    for sample in wire.samples:
        device, values = sample.device, sample.values
        if not oldest <= sample.ts_ms <= newest or not values:
            return None
        if valid_devices.get(device) != compound and checker.device_problem(device, compound) is not None:
            return None
        keys += 4 + len(values)
        ranges = _RANGES[sample.kind]
        for metric, value in values.items():
            bounds = ranges.get(metric)
            if bounds is not None:
                if bounds[0] <= value <= bounds[1]:
                    continue
                return None
            spec = _METRIC_SPECS[sample.kind].get(metric)
            if spec is None or not math.isfinite(value) or spec.check(value) is not None:
                return None
    if payload.count(b":") != keys:
        return None
    envelope = Envelope(compound, parts.gateway, wire.bdseq, wire.seq, wire.sent, wire.replay is True)
    return Decoded(DataMessage(envelope, tuple(wire.samples)))


def decode_data(
    topic: str,
    payload: bytes,
    *,
    limits: Limits = Limits(),
    now: int | None = None,
    checker: Checker | None = None,
) -> Decoded[DataMessage]:
    """Decode a ``data`` payload: the valid samples and a rejection for every refused part.

    ``checker`` remembers the device ids it found valid; a long-lived consumer (ingest) passes the
    same one to every call, which spares each known device its full check.
    """
    now = now_ms() if now is None else now
    checker = Checker() if checker is None else checker
    try:
        fast = _plainly_valid_data(topic, payload, limits, now, checker)
    except Exception:  # the full path gives the verdict
        fast = None
    return fast if fast is not None else _decode_data_full(topic, payload, limits, now, checker)


def _decode_data_full(
    topic: str, payload: bytes, limits: Limits, now: int, checker: Checker
) -> Decoded[DataMessage]:
    """decode_data for any payload: what is valid, and a precise rejection for every refused part."""
    try:
        parts = _topic(topic, Channel.DATA)
        body = _parse(payload, limits)
        envelope = _envelope(body, parts)
        items = _items(body, "samples", limits)
    except _Reject as exc:
        return _whole(exc.reason, exc.detail)
    except Exception as exc:  # a validator bug must not take the consumer down
        return _whole(RejectReason.BAD_SHAPE, f"undecodable payload: {type(exc).__name__}")
    samples: list[Sample] = []
    rejections: list[Rejection] = []
    compound = envelope.compound
    oldest, newest = now - limits.max_age_ms, now + limits.max_future_ms
    devices = checker.devices
    for item in items:
        head = _known_head(item, compound, oldest, newest, devices)
        if head is None:  # not plainly valid: the full check finds the precise reason, if any
            full = _device_kind_ts(item, compound, now, limits, checker)
            if isinstance(full, Rejection):
                rejections.append(full)
                continue
            head = full
        device, kind, ts = head
        raw_values = item.get("values")
        if type(raw_values) is not dict or not raw_values:
            rejections.append(
                Rejection(
                    RejectReason.BAD_SHAPE, "sample needs a non-empty 'values' object", device, _safe(item)
                )
            )
            continue
        ranges = _RANGES[kind]
        for metric, raw in raw_values.items():
            bounds = ranges.get(metric)
            if bounds is None or type(raw) is not float or not bounds[0] <= raw <= bounds[1]:
                break
        else:  # every value a float gauge or counter inside its range: the decoded dict is the values
            samples.append(Sample(device, kind, ts, raw_values))
            continue
        values: dict[str, float] = {}
        for metric, raw in raw_values.items():
            bounds = ranges.get(metric)
            if bounds is not None:
                # a finite-range gauge or counter: a float (or int) inside the range is all it needs
                if type(raw) is float:
                    if bounds[0] <= raw <= bounds[1]:
                        values[metric] = raw
                        continue
                elif type(raw) is int and bounds[0] <= raw <= bounds[1]:
                    values[metric] = float(raw)
                    continue
            value = _value(kind, metric, raw)
            if isinstance(value, str):
                reason, _, detail = value.partition(":")
                rejections.append(Rejection(RejectReason(reason), f"{device}: {detail}", device, _safe(item)))
            else:
                values[metric] = value
        if values:
            samples.append(Sample(device, kind, ts, values))
    message = DataMessage(envelope, tuple(samples)) if samples or not rejections else None
    return Decoded(message, tuple(rejections))


def decode_events(
    topic: str,
    payload: bytes,
    *,
    limits: Limits = Limits(),
    now: int | None = None,
    checker: Checker | None = None,
) -> Decoded[EventMessage]:
    """Decode an ``event`` payload: the valid events and a rejection for every refused one."""
    now = now_ms() if now is None else now
    checker = Checker() if checker is None else checker
    try:
        parts = _topic(topic, Channel.EVENT)
        body = _parse(payload, limits)
        envelope = _envelope(body, parts)
        items = _items(body, "events", limits)
    except _Reject as exc:
        return _whole(exc.reason, exc.detail)
    except Exception as exc:
        return _whole(RejectReason.BAD_SHAPE, f"undecodable payload: {type(exc).__name__}")
    events: list[Event] = []
    rejections: list[Rejection] = []
    for item in items:
        head = _device_kind_ts(item, envelope.compound, now, limits, checker)
        if isinstance(head, Rejection):
            rejections.append(head)
            continue
        device, kind, ts = head
        name = item.get("event")
        if not isinstance(name, str) or name not in KINDS[kind].events:
            rejections.append(
                Rejection(
                    RejectReason.UNKNOWN_EVENT, f"{kind} has no event {_short(name)}", device, _safe(item)
                )
            )
            continue
        active = item.get("active")
        attrs = item.get("attrs", {})
        if active is not None and not isinstance(active, bool):
            rejections.append(
                Rejection(RejectReason.BAD_SHAPE, "'active' must be true or false", device, _safe(item))
            )
            continue
        if (
            not isinstance(attrs, dict)
            or len(attrs) > 32
            or not all(
                isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 256
                for k, v in attrs.items()
            )
        ):
            rejections.append(
                Rejection(
                    RejectReason.BAD_SHAPE,
                    "'attrs' must map at most 32 short strings to strings",
                    device,
                    _safe(item),
                )
            )
            continue
        events.append(Event(device, kind, ts, name, active, dict(attrs)))
    message = EventMessage(envelope, tuple(events)) if events or not rejections else None
    return Decoded(message, tuple(rejections))


def decode_state(topic: str, payload: bytes, *, limits: Limits = Limits()) -> Decoded[StateMessage]:
    """Decode a retained ``state`` payload (gateway birth or death)."""
    try:
        parts = _topic(topic, Channel.STATE)
        body = _parse(payload, limits)
        if body.get("compound") != parts.compound or body.get("gateway") != parts.gateway:
            raise _Reject(RejectReason.COMPOUND_MISMATCH, "payload compound/gateway differ from the topic")
        state = body.get("state")
        if state not in ("online", "offline"):
            raise _Reject(RejectReason.BAD_SHAPE, f"state must be 'online' or 'offline', got {_short(state)}")
        devices: list[DeviceInfo] = []
        for item in body.get("devices", []) if state == "online" else []:
            if not isinstance(item, dict) or not isinstance(item.get("device"), str):
                raise _Reject(RejectReason.BAD_SHAPE, "each birth device needs a 'device' id")
            if not device_belongs_to(item["device"], parts.compound):
                raise _Reject(
                    RejectReason.FOREIGN_DEVICE, f"device {_short(item['device'])} is not in {parts.compound}"
                )
            if device_problem(item["device"], parts.compound) is not None:
                raise _Reject(RejectReason.BAD_DEVICE_ID, f"invalid device id {_short(item['device'])}")
            try:
                kind = DeviceKind(str(item.get("kind")))
            except ValueError:
                raise _Reject(
                    RejectReason.UNKNOWN_KIND, f"unknown device kind {_short(item.get('kind'))}"
                ) from None
            devices.append(DeviceInfo(item["device"], kind, str(item.get("protocol", "mqtt"))[:32]))
        message = StateMessage(
            compound=parts.compound,
            gateway=parts.gateway,
            bdseq=_int_field(body, "bdseq", 0, 2**53),
            online=state == "online",
            ts_ms=_int_field(body, "ts", 0, 2**53),
            devices=tuple(devices),
        )
    except _Reject as exc:
        return _whole(exc.reason, exc.detail)
    except Exception as exc:
        return _whole(RejectReason.BAD_SHAPE, f"undecodable payload: {type(exc).__name__}")
    return Decoded(message)


def decode_host_state(topic: str, payload: bytes, *, limits: Limits = Limits()) -> Decoded[HostState]:
    """Decode the central host's retained state (``sitewatch/v1/_host/state``)."""
    try:
        if topic != HOST_STATE_TOPIC:
            raise _Reject(RejectReason.BAD_TOPIC, f"topic {topic!r} is not {HOST_STATE_TOPIC}")
        body = _parse(payload, limits)
        state = body.get("state")
        if state not in ("online", "offline"):
            raise _Reject(RejectReason.BAD_SHAPE, f"state must be 'online' or 'offline', got {_short(state)}")
        message = HostState(online=state == "online", ts_ms=_int_field(body, "ts", 0, 2**53))
    except _Reject as exc:
        return _whole(exc.reason, exc.detail)
    except Exception as exc:
        return _whole(RejectReason.BAD_SHAPE, f"undecodable payload: {type(exc).__name__}")
    return Decoded(message)


MAX_STATS_COUNTERS = 1000


def decode_stats(topic: str, payload: bytes, *, limits: Limits = Limits()) -> Decoded[StatsMessage]:
    """Decode a retained ``stats`` payload (a gateway's counters)."""
    try:
        parts = _topic(topic, Channel.STATS)
        body = _parse(payload, limits)
        if body.get("compound") != parts.compound or body.get("gateway") != parts.gateway:
            raise _Reject(RejectReason.COMPOUND_MISMATCH, "payload compound/gateway differ from the topic")
        counters = body.get("counters")
        if not isinstance(counters, dict) or len(counters) > MAX_STATS_COUNTERS:
            raise _Reject(
                RejectReason.BAD_SHAPE,
                f"'counters' must be an object of at most {MAX_STATS_COUNTERS} entries",
            )
        for name, value in counters.items():
            if (
                len(name) > 100
                or isinstance(value, bool)
                or not isinstance(value, int)
                or abs(value) >= 2**63
            ):
                raise _Reject(RejectReason.BAD_SHAPE, f"counter {_short(name)} must be a 64-bit integer")
        message = StatsMessage(
            compound=parts.compound,
            gateway=parts.gateway,
            bdseq=_int_field(body, "bdseq", 0, 2**53),
            ts_ms=_int_field(body, "ts", 0, 2**53),
            counters=dict(counters),
        )
    except _Reject as exc:
        return _whole(exc.reason, exc.detail)
    except Exception as exc:
        return _whole(RejectReason.BAD_SHAPE, f"undecodable payload: {type(exc).__name__}")
    return Decoded(message)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _safe(item: Any) -> Any:
    """The offending item if it is small enough to echo in a dead letter, else a summary."""
    try:
        size = len(orjson.dumps(item))
    except TypeError:
        return _short(item)
    return item if size <= 4096 else f"<{type(item).__name__} of {size} bytes>"
