"""Site-broker topic maps: topic pattern → device, JSON field → metric (no I/O).

A mapping's ``topic`` is an MQTT filter whose ``+`` levels capture parts of the topic; the
``device`` template names the device from them (``{0}`` is the first ``+``). ``fields`` maps a
JSON field (dotted path for nested objects) to a contract metric of the mapping's kind; ``scale``
converts a field's unit. Booleans become 1/0. Anything else that is not a finite number in the
metric's range is refused with a reason; the rest of the message is still used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...contract import DeviceKind, device_id, metric_spec
from ...i18n import _
from .base import ConnectorConfigError

MAX_PAYLOAD = 65_536


@dataclass(frozen=True, slots=True)
class TopicMapping:
    """How messages on one topic filter become samples."""

    topic: str
    kind: DeviceKind
    device: str  # template, e.g. "SL-{0}"
    fields: Mapping[str, str]  # JSON path → metric
    scale: Mapping[str, float] = field(default_factory=dict)  # metric → factor
    timestamp_field: str | None = None
    devices: frozenset[str] = frozenset()  # allowed device ids; empty: any


@dataclass(frozen=True, slots=True)
class StatusMapping:
    """A topic whose payload says whether a device is online (e.g. its MQTT last will)."""

    topic: str
    kind: DeviceKind
    device: str
    online: frozenset[str] = frozenset({"online", "1", "true", "connected"})
    offline: frozenset[str] = frozenset({"offline", "0", "false", "disconnected", "lost"})


@dataclass(frozen=True, slots=True)
class Decoded:
    """One message decoded: metric values, their timestamp (None: use arrival time) and refusals."""

    values: dict[str, float]
    ts_ms: int | None
    refused: list[str]


def match(pattern: str, topic: str) -> list[str] | None:
    """Values of the wildcard levels when ``topic`` matches the filter ``pattern``, else None."""
    want, have = pattern.split("/"), topic.split("/")
    captured: list[str] = []
    for i, level in enumerate(want):
        if level == "#":
            captured.append("/".join(have[i:]))
            return captured
        if i >= len(have):
            return None
        if level == "+":
            captured.append(have[i])
        elif level != have[i]:
            return None
    return captured if len(want) == len(have) else None


def device_of(template: str, captured: list[str], compound: str) -> str | None:
    """The device id a template gives for the captured topic levels, or None if it is not valid."""
    try:
        local = template.format(*captured)
    except (IndexError, KeyError, ValueError):
        return None
    if local.startswith(compound + "-"):
        local = local[len(compound) + 1 :]
    try:
        return device_id(compound, local)
    except ValueError:
        return None


def _lookup(body: Mapping[str, Any], path: str) -> Any:
    node: Any = body
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _timestamp(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)) and math.isfinite(raw):
        return int(raw * 1000) if raw < 1e11 else int(raw)  # seconds or milliseconds
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp() * 1000)
    return None


def decode(mapping: TopicMapping, payload: bytes) -> Decoded | str:
    """The values of one message, or why the whole message is refused."""
    if len(payload) > MAX_PAYLOAD:
        return f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}"
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if not isinstance(body, dict):
        return f"JSON {type(body).__name__} instead of an object"
    values: dict[str, float] = {}
    refused: list[str] = []
    for path, metric in mapping.fields.items():
        raw = _lookup(body, path)
        if raw is None:
            continue
        if isinstance(raw, bool):
            raw = 1.0 if raw else 0.0
        if not isinstance(raw, (int, float)):
            refused.append(f"{path}={str(raw)[:40]!r} is not a number")
            continue
        value = float(raw) * mapping.scale.get(metric, 1.0)
        if not math.isfinite(value):
            refused.append(f"{path} is not finite")
            continue
        problem = metric_spec(mapping.kind, metric).check(value)  # type: ignore[union-attr]
        if problem:
            refused.append(problem)
            continue
        values[metric] = value
    ts = None
    if mapping.timestamp_field:
        raw_ts = _lookup(body, mapping.timestamp_field)
        if raw_ts is not None:
            ts = _timestamp(raw_ts)
            if ts is None:
                refused.append(
                    f"{mapping.timestamp_field}={str(raw_ts)[:40]!r} is not a timestamp; arrival time used"
                )
    if not values and not refused:
        refused.append(f"none of the mapped fields ({', '.join(mapping.fields)}) is present")
    return Decoded(values, ts, refused)


def status_of(mapping: StatusMapping, payload: bytes) -> bool | None:
    """True/False for an online/offline status payload (plain word or JSON), None when unclear."""
    text = payload.decode("utf-8", "replace").strip()
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        body = text
    if isinstance(body, dict):
        body = body.get("online", body.get("status", body.get("state")))
    word = str(body).strip().lower()
    if word in mapping.online:
        return True
    if word in mapping.offline:
        return False
    return None


def _kind(raw: Any, at: str) -> DeviceKind:
    try:
        kind = DeviceKind(str(raw))
    except ValueError:
        kind = DeviceKind.GATEWAY
    if kind is DeviceKind.GATEWAY:
        names = ", ".join(k.value for k in DeviceKind if k is not DeviceKind.GATEWAY)
        raise ConnectorConfigError(_("{at}: kind must be one of {names}, got {raw}", at=at, names=names, raw=repr(raw)))
    return kind


def _filter(raw: Any, at: str) -> str:
    topic = str(raw or "")
    levels = topic.split("/")
    if (
        not topic
        or any(("+" in lv or "#" in lv) and lv not in ("+", "#") for lv in levels)
        or "#" in levels[:-1]
    ):
        raise ConnectorConfigError(
            _("{at}: topic must be an MQTT filter like site/lights/+/telemetry, got {raw}", at=at, raw=repr(raw))
        )
    return topic


class TopicEntry(BaseModel):
    """One topic mapping of a ``type: mqtt`` entry (docs/gateway-connectors.md)."""

    model_config = ConfigDict(extra="forbid")

    topic: str  # an MQTT filter; its wildcard levels fill {0}, {1}, ... of ``device``
    kind: DeviceKind
    device: str  # device name template
    status: bool = False  # the payload says online/offline (e.g. the device's last will)
    fields: dict[str, str] = Field(default_factory=dict)  # JSON path -> metric
    scale: dict[str, float] = Field(default_factory=dict)  # metric -> factor
    devices: list[str] = Field(default_factory=list)  # only these devices (default: any)
    timestamp_field: str | None = None

    @field_validator("scale")
    @classmethod
    def _non_zero(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not math.isfinite(v) or v == 0 for v in value.values()):
            raise ValueError(_("map metrics to non-zero numbers"))
        return value


def parse_mappings(
    entries: list[TopicEntry], compound: str
) -> tuple[list[TopicMapping], list[StatusMapping]]:
    """Topic and status mappings of validated ``topics:``; raises ConnectorConfigError when one
    does not fit the contract (kind, metrics, device names)."""
    mappings: list[TopicMapping] = []
    statuses: list[StatusMapping] = []
    for i, entry in enumerate(entries):
        at = f"topics.{i}"
        topic = _filter(entry.topic, at)
        kind = _kind(entry.kind, at)
        template = entry.device
        wildcards = topic.split("/").count("+") + topic.split("/").count("#")
        probe = device_of(template, ["x"] * wildcards, compound)
        if probe is None:
            raise ConnectorConfigError(
                _("{at}: device {template} must name a device, using {{0}}..{{{last}}} for the topic's wildcard levels", at=at, template=repr(template), last=max(wildcards - 1, 0))
            )
        if entry.status:
            statuses.append(StatusMapping(topic, kind, template))
            continue
        if not entry.fields:
            raise ConnectorConfigError(
                _("{at}.fields: map JSON fields to {kind} metrics, e.g. {{watts: power}}", at=at, kind=kind.value)
            )
        for path, metric in entry.fields.items():
            if metric_spec(kind, metric) is None:
                raise ConnectorConfigError(
                    _("{at}.fields.{path}: {kind} has no metric {metric}", at=at, path=path, kind=kind.value, metric=repr(metric))
                )
        ids = frozenset(device_of(d, [], compound) or "" for d in entry.devices)
        if "" in ids:
            raise ConnectorConfigError(
                _("{at}.devices: invalid device name in {allowed}", at=at, allowed=repr(entry.devices))
            )
        mappings.append(
            TopicMapping(topic, kind, template, dict(entry.fields), dict(entry.scale), entry.timestamp_field, ids)
        )
    return mappings, statuses
