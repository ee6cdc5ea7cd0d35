"""Findings: what analytics concludes about a device or gateway, and what alerting consumes.

A *finding* is one episode of a suspected fault on one device (or gateway): it is published when it
starts (``state: active``) and again when it ends (``state: cleared``, with ``ended``), both with
the same ``id``, on ``sitewatch/v1/<compound>/_analytics/finding`` (QoS 1, not retained). An
instantaneous finding (a door fault, an emergency call) may be published once, already cleared,
with ``ended == started``. Consumers treat (``id``, ``state``) as the identity of a message: a
second copy (a redelivery after a crash) changes nothing.

The human summary travels as a catalog message id (``message``, the English text) and its
placeholders (``params``), so each reader gets it in their own language (``sitewatch.i18n``);
``evidence`` holds the values behind the conclusion (metrics or model features).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from .kinds import DeviceKind, Severity
from .messages import SCHEMA_VERSION, device_belongs_to
from .topics import TOPIC_ROOT, is_code
from .validate import Decoded, Limits, Rejection, RejectReason, _parse, _Reject, _short, _whole

ANALYTICS_LEVEL = "_analytics"  # the topic level where a gateway id would be: no gateway id starts with '_'
FINDING_CHANNEL = "finding"
FINDING_SUBSCRIPTION = f"{TOPIC_ROOT}/+/{ANALYTICS_LEVEL}/{FINDING_CHANNEL}"

SOURCE_PATTERN = r"(rule|detector):[a-z0-9][a-z0-9_.-]{0,63}"
FAULT_PATTERN = r"[a-z0-9][a-z0-9_]{0,63}"
FINDING_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"
MAX_TEXT = 500  # characters of ``message`` and of each text parameter
MAX_ENTRIES = 32  # entries of ``params`` and of ``evidence``
_SOURCE_RE = re.compile(SOURCE_PATTERN)
_FAULT_RE = re.compile(FAULT_PATTERN)
_ID_RE = re.compile(FINDING_ID_PATTERN)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0 and C1 control characters, and DEL
MAX_BATCH = 1000  # findings in one batch payload
_KIND_OF = {k.value: k for k in DeviceKind}
_SEVERITY_OF = {s.value: s for s in Severity}


class FindingState(StrEnum):
    """Whether the suspected fault is still there."""

    ACTIVE = "active"
    CLEARED = "cleared"


_STATE_OF = {s.value: s for s in FindingState}


def finding_topic(compound: str) -> str:
    """Topic of one compound's findings; raises ValueError on an invalid code."""
    if not is_code(compound):
        raise ValueError(f"invalid compound code {compound!r}")
    return f"{TOPIC_ROOT}/{compound}/{ANALYTICS_LEVEL}/{FINDING_CHANNEL}"


def finding_compound(topic: str) -> str | None:
    """The compound of a finding topic, or None if ``topic`` is not one."""
    prefix, suffix = f"{TOPIC_ROOT}/", f"/{ANALYTICS_LEVEL}/{FINDING_CHANNEL}"
    if not (topic.startswith(prefix) and topic.endswith(suffix)):
        return None
    compound = topic[len(prefix) : -len(suffix)]
    return compound if is_code(compound) else None


@dataclass(frozen=True, slots=True)
class Finding:
    """One episode of a suspected fault on a device or gateway (see the module docstring)."""

    id: str  # the same for the episode's active and cleared messages
    compound: str
    device: str  # a device id, or the gateway id for a gateway finding (kind ``gateway``)
    kind: DeviceKind
    source: str  # ``rule:<name>`` or ``detector:<name>``
    fault: str | None  # the fault type suspected (the simulators' names); None: an anomaly of no known type
    severity: Severity
    state: FindingState
    started_ms: int
    ts_ms: int  # when this message was made
    message: str  # catalog message id of the summary (English)
    params: Mapping[str, str | int | float] = field(default_factory=dict)
    evidence: Mapping[str, float] = field(default_factory=dict)
    ended_ms: int | None = None  # set when cleared
    score: float | None = None  # a detector's anomaly score, when it has one

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form of this finding."""
        out: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "id": self.id,
            "compound": self.compound,
            "device": self.device,
            "kind": self.kind.value,
            "source": self.source,
            "fault": self.fault,
            "severity": self.severity.value,
            "state": self.state.value,
            "started": self.started_ms,
            "ended": self.ended_ms,
            "ts": self.ts_ms,
            "message": self.message,
            "params": {k: _plain(v) for k, v in self.params.items()},
            "evidence": {k: float(v) for k, v in self.evidence.items()},
        }
        if self.score is not None:
            out["score"] = float(self.score)
        return out

    def encode(self) -> bytes:
        """JSON payload of this finding."""
        return orjson.dumps(self.to_json())


def _plain(value: str | int | float) -> str | int | float:
    """A parameter as a plain Python value: a detector's numpy scalar (``numpy.float64``, ``numpy.int64``)
    becomes the float or int it holds, which JSON writers accept."""
    if type(value) in (str, int, float):
        return value
    item = getattr(value, "item", None)  # numpy scalars
    return item() if callable(item) else value


def _text(
    body: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None, *, optional: bool = False
) -> Any:
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise _Reject(
            RejectReason.BAD_SHAPE, f"field {name!r} must be a non-empty string of at most {MAX_TEXT}"
        )
    if pattern is not None:  # the patterns allow no control character
        if not pattern.fullmatch(value):
            raise _Reject(RejectReason.BAD_SHAPE, f"field {name!r} has forbidden characters: {_short(value)}")
    elif _CONTROL_RE.search(value):
        raise _Reject(RejectReason.BAD_SHAPE, f"field {name!r} contains control characters")
    return value


def _maybe_time(body: dict[str, Any], name: str) -> int | None:
    return None if body.get(name) is None else _time(body, name)


def _time(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**53:
        raise _Reject(
            RejectReason.BAD_TIMESTAMP, f"field {name!r} must be epoch milliseconds, got {_short(value)}"
        )
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Reject(RejectReason.BAD_VALUE, f"{where} must be a number, got {_short(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise _Reject(RejectReason.NON_FINITE, f"{where} must be finite")
    return number


def _mapping(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name, {})
    if not isinstance(value, dict) or len(value) > MAX_ENTRIES:
        raise _Reject(
            RejectReason.BAD_SHAPE, f"field {name!r} must be an object of at most {MAX_ENTRIES} entries"
        )
    for key in value:
        if not _NAME_RE.fullmatch(key):
            raise _Reject(RejectReason.BAD_SHAPE, f"{name} key {_short(key)} is not a name")
    return value


def _params(body: dict[str, Any]) -> dict[str, str | int | float]:
    out: dict[str, str | int | float] = {}
    for key, value in _mapping(body, "params").items():
        if isinstance(value, str):
            if len(value) > MAX_TEXT or _CONTROL_RE.search(value):
                raise _Reject(RejectReason.BAD_SHAPE, f"params.{key} is too long or has control characters")
            out[key] = value
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
            out[key] = value
        else:
            out[key] = _number(value, f"params.{key}")
    return out


def _topic_compound(topic: str) -> str:
    compound = finding_compound(topic)
    if compound is None:
        raise _Reject(
            RejectReason.BAD_TOPIC,
            f"topic {_short(topic)} is not a {TOPIC_ROOT}/<compound>/{ANALYTICS_LEVEL}/{FINDING_CHANNEL} topic",
        )
    return compound


def _finding(body: dict[str, Any], compound: str) -> Finding:
    """The finding of a parsed payload (or batch element) of ``compound``'s topic; raises _Reject."""
    if body.get("v") != SCHEMA_VERSION:
        raise _Reject(
            RejectReason.UNKNOWN_VERSION,
            f"schema version {_short(body.get('v'))} not supported (expected v={SCHEMA_VERSION})",
        )
    if body.get("compound") != compound:
        raise _Reject(RejectReason.COMPOUND_MISMATCH, "payload compound differs from the topic")
    kind = _KIND_OF.get(body.get("kind"))  # type: ignore[arg-type]
    if kind is None:
        raise _Reject(RejectReason.UNKNOWN_KIND, f"unknown kind {_short(body.get('kind'))}")
    device = _text(body, "device")
    if kind is DeviceKind.GATEWAY:
        if not is_code(device):
            raise _Reject(RejectReason.BAD_DEVICE_ID, f"gateway id {_short(device)} is not a code")
    elif not device_belongs_to(device, compound):
        raise _Reject(RejectReason.FOREIGN_DEVICE, f"device {_short(device)} is not of compound {compound}")
    severity = _SEVERITY_OF.get(body.get("severity"))  # type: ignore[arg-type]
    state = _STATE_OF.get(body.get("state"))  # type: ignore[arg-type]
    if severity is None or state is None:
        raise _Reject(RejectReason.BAD_SHAPE, "severity or state is not one of the known values")
    started = _time(body, "started")
    ended = _maybe_time(body, "ended")
    if state is FindingState.CLEARED and ended is None:
        raise _Reject(RejectReason.BAD_SHAPE, "a cleared finding needs 'ended'")
    if ended is not None and ended < started:
        raise _Reject(RejectReason.BAD_TIMESTAMP, "'ended' is before 'started'")
    score = body.get("score")
    return Finding(
        id=_text(body, "id", _ID_RE),
        compound=compound,
        device=device,
        kind=kind,
        source=_text(body, "source", _SOURCE_RE),
        fault=_text(body, "fault", _FAULT_RE, optional=True),
        severity=severity,
        state=state,
        started_ms=started,
        ended_ms=ended,
        ts_ms=_time(body, "ts"),
        message=_text(body, "message"),
        params=_params(body),
        evidence={k: _number(v, f"evidence.{k}") for k, v in _mapping(body, "evidence").items()},
        score=None if score is None else _number(score, "score"),
    )


def decode_finding(topic: str, payload: bytes, *, limits: Limits = Limits()) -> Decoded[Finding]:  # noqa: B008
    """Decode and check a single finding; never raises (a refusal names its reason, like the other
    decoders). A batch payload is refused here: :func:`decode_findings` takes both forms."""
    try:
        compound = _topic_compound(topic)
        body = _parse(payload, limits)
        if "findings" in body:
            raise _Reject(RejectReason.BAD_SHAPE, "a batch of findings (decode it with decode_findings)")
        finding = _finding(body, compound)
    except _Reject as exc:
        return _whole(exc.reason, exc.detail)
    except Exception as exc:
        return _whole(RejectReason.BAD_SHAPE, f"undecodable finding: {type(exc).__name__}")
    return Decoded(finding)


def decode_findings(
    topic: str,
    payload: bytes,
    *,
    limits: Limits = Limits(),  # noqa: B008
    max_batch: int = MAX_BATCH,
) -> Decoded[tuple[Finding, ...]]:
    """Decode a finding topic's payload, a single finding or a batch, into its valid findings.

    A problem with the payload as a whole (size, JSON, version, topic, compound, the batch's shape
    or length) refuses it whole (``message`` None). In a batch, an element that is not a valid
    finding is refused alone: a ``Rejection`` with its reason, its device and the element
    (``item``), while the other elements are kept, in order. Never raises.
    """
    try:
        compound = _topic_compound(topic)
        body = _parse(payload, limits)
        if "findings" not in body:
            return Decoded((_finding(body, compound),))
        if body.get("compound") != compound:
            raise _Reject(RejectReason.COMPOUND_MISMATCH, "payload compound differs from the topic")
        items = body["findings"]
        if type(items) is not list or not items or len(body) != 3:
            raise _Reject(
                RejectReason.BAD_SHAPE,
                'a batch is {"v", "compound", "findings": [a finding, ...]} (not empty)',
            )
        if len(items) > max_batch:
            raise _Reject(
                RejectReason.TOO_MANY_FINDINGS, f"{len(items)} findings in one batch (at most {max_batch})"
            )
    except _Reject as exc:
        return _whole(exc.reason, exc.detail)
    except Exception as exc:
        return _whole(RejectReason.BAD_SHAPE, f"undecodable findings: {type(exc).__name__}")
    findings: list[Finding] = []
    rejections: list[Rejection] = []
    for n, item in enumerate(items):
        try:
            if type(item) is not dict:
                raise _Reject(RejectReason.BAD_SHAPE, f"element {n} of the batch is not an object")
            findings.append(_finding(item, compound))
        except _Reject as exc:
            device = item.get("device") if type(item) is dict else None
            detail = f"element {n}: {exc.detail}"
            rejections.append(Rejection(exc.reason, detail, device if type(device) is str else None, item))
        except Exception as exc:
            rejections.append(Rejection(RejectReason.BAD_SHAPE, f"element {n}: undecodable: {type(exc).__name__}",
                                        None, item))  # fmt: skip
    return Decoded(tuple(findings), tuple(rejections))


def encode_findings(compound: str, findings: Sequence[Finding]) -> bytes:
    """The batch payload of several findings of ``compound`` (each element a finding's own payload)."""
    return orjson.dumps(
        {"v": SCHEMA_VERSION, "compound": compound, "findings": [f.to_json() for f in findings]}
    )


def finding_messages(
    findings: Iterable[Finding], *, max_bytes: int = 1_048_576, max_batch: int = MAX_BATCH
) -> Iterator[tuple[str, bytes, int]]:
    """(topic, payload, findings in it) to publish ``findings``: per compound, in their order, a
    single finding as itself and several as batches of at most ``max_batch`` findings and
    ``max_bytes`` bytes (a finding too big for any batch goes alone, to be refused as oversized)."""
    by_compound: dict[str, list[Finding]] = {}
    for finding in findings:
        by_compound.setdefault(finding.compound, []).append(finding)
    for compound, items in by_compound.items():
        topic = finding_topic(compound)
        if len(items) == 1:
            yield topic, items[0].encode(), 1
            continue
        head = len(encode_findings(compound, []))
        chunk: list[bytes] = []
        size = head
        for finding in items:
            element = finding.encode()
            if chunk and (len(chunk) >= max_batch or size + 1 + len(element) > max_bytes):
                yield topic, _join(compound, chunk), len(chunk)
                chunk, size = [], head
            chunk.append(element)
            size += len(element) + 1
        yield topic, _join(compound, chunk), len(chunk)


def _join(compound: str, elements: list[bytes]) -> bytes:
    """A batch payload from its elements' payloads (one element: that finding's own payload)."""
    if len(elements) == 1:
        return elements[0]
    head = orjson.dumps({"v": SCHEMA_VERSION, "compound": compound})[:-1]
    return head + b',"findings":[' + b",".join(elements) + b"]}"
