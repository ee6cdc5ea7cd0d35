"""Modbus register maps: configuration parsing, read planning and register decoding (no I/O).

A register map lists, for one device model, where each contract metric lives: the register type
(holding or input), the address, the data type (u16/i16/u32/i32/f32) and word order of multi-word
values, and a linear conversion ``value = raw * scale + offset``. Decoding checks every value
against the metric's range in the contract, so a garbage register never becomes a reading.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..contract import KINDS, DeviceKind, MetricType, metric_spec
from ..i18n import _

MAX_BLOCK = 125  # registers per read request (Modbus limit for function codes 3 and 4)


class RegisterMapError(ValueError):
    """A register map in a configuration is invalid; the message names the field and what to do."""


class RegisterType(StrEnum):
    """Which Modbus table a value is read from."""

    HOLDING = "holding"  # function code 3
    INPUT = "input"  # function code 4


class DataType(StrEnum):
    """How the raw 16-bit words encode a value."""

    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    F32 = "f32"

    @property
    def words(self) -> int:
        """Number of 16-bit registers the value occupies."""
        return 1 if self in (DataType.U16, DataType.I16) else 2


_STRUCT = {DataType.U16: ">H", DataType.I16: ">h", DataType.U32: ">I", DataType.I32: ">i", DataType.F32: ">f"}


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """Where one metric is stored on the device and how to convert it."""

    metric: str
    address: int
    register: RegisterType = RegisterType.HOLDING
    type: DataType = DataType.U16
    word_order: str = "big"  # "big": high word first; "little": low word first
    scale: float = 1.0
    offset: float = 0.0

    @property
    def end(self) -> int:
        """First address after this value."""
        return self.address + self.type.words


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: ``count`` registers of one type from ``address``, and the values in it."""

    register: RegisterType
    address: int
    count: int
    specs: tuple[RegisterSpec, ...]


def decode_words(words: Sequence[int], type_: DataType, word_order: str = "big") -> float:
    """Decode 16-bit register words into a number (big-endian bytes within each word)."""
    if len(words) != type_.words:
        raise ValueError(f"{type_.value} needs {type_.words} registers, got {len(words)}")
    ordered = list(words) if word_order == "big" else list(reversed(words))
    raw = b"".join(int(w & 0xFFFF).to_bytes(2, "big") for w in ordered)
    return float(struct.unpack(_STRUCT[type_], raw)[0])


def encode_value(value: float, type_: DataType, word_order: str = "big") -> list[int]:
    """Encode a number into register words (the inverse of :func:`decode_words`)."""
    raw = struct.pack(">f", value) if type_ is DataType.F32 else struct.pack(_STRUCT[type_], round(value))
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words if word_order == "big" else list(reversed(words))


def raw_for(spec: RegisterSpec, value: float) -> list[int]:
    """Register words a device holds for the metric value ``value`` under ``spec``."""
    return encode_value((value - spec.offset) / spec.scale, spec.type, spec.word_order)


def plan_reads(specs: Sequence[RegisterSpec]) -> list[ReadBlock]:
    """Group values into as few read requests as possible (same register type, span ≤ 125)."""
    blocks: list[ReadBlock] = []
    for register in RegisterType:
        group = sorted((s for s in specs if s.register is register), key=lambda s: s.address)
        current: list[RegisterSpec] = []
        for spec in group:
            if current and spec.end - current[0].address > MAX_BLOCK:
                blocks.append(_block(register, current))
                current = []
            current.append(spec)
        if current:
            blocks.append(_block(register, current))
    return blocks


def _block(register: RegisterType, specs: list[RegisterSpec]) -> ReadBlock:
    start = specs[0].address
    return ReadBlock(register, start, max(s.end for s in specs) - start, tuple(specs))


@dataclass(frozen=True, slots=True)
class Garbage:
    """A register value refused, with the reason."""

    metric: str
    detail: str


def decode_block(
    kind: DeviceKind, block: ReadBlock, words: Sequence[int]
) -> tuple[dict[str, float], list[Garbage]]:
    """Metric values from the words one read returned; out-of-range or non-finite values refused."""
    values: dict[str, float] = {}
    refused: list[Garbage] = []
    if len(words) < block.count:
        return values, [
            Garbage(s.metric, f"short response: {len(words)} of {block.count} registers") for s in block.specs
        ]
    for spec in block.specs:
        at = spec.address - block.address
        raw = decode_words(words[at : at + spec.type.words], spec.type, spec.word_order)
        value = raw * spec.scale + spec.offset
        if not math.isfinite(value):
            refused.append(Garbage(spec.metric, f"{spec.metric} is not a finite number ({raw!r})"))
            continue
        metric = metric_spec(kind, spec.metric)
        problem = metric.check(value) if metric is not None else f"unknown metric {spec.metric}"
        if problem:
            refused.append(
                Garbage(spec.metric, f"{problem} (raw {raw:g} at {spec.register.value} {spec.address})")
            )
            continue
        values[spec.metric] = value
    return values, refused


def parse_register_map(kind: DeviceKind, entries: Any, where: str) -> tuple[RegisterSpec, ...]:
    """Register specs from a configuration list; raises RegisterMapError naming the bad field."""
    if not isinstance(entries, list) or not entries:
        raise RegisterMapError(
            _("{where}: a register map must be a non-empty list of registers", where=where)
        )
    specs: list[RegisterSpec] = []
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            raise RegisterMapError(
                _("{at}: each register must be a mapping with metric and address", at=at)
            )
        specs.append(_parse_spec(kind, entry, at))
    seen: dict[str, int] = {}
    for spec in specs:
        if spec.metric in seen:
            raise RegisterMapError(_("{where}: metric {metric} is mapped twice", where=where, metric=repr(spec.metric)))
        seen[spec.metric] = spec.address
    return tuple(specs)


def _parse_spec(kind: DeviceKind, entry: Mapping[str, Any], at: str) -> RegisterSpec:
    unknown = set(entry) - {"metric", "address", "register", "type", "word_order", "scale", "offset", "unit"}
    if unknown:
        raise RegisterMapError(_("{at}: unknown key(s) {keys}", at=at, keys=', '.join(sorted(map(str, unknown)))))
    metric = entry.get("metric")
    spec = metric_spec(kind, str(metric))
    if spec is None:
        raise RegisterMapError(_("{at}: {kind} has no metric {metric}", at=at, kind=kind.value, metric=repr(metric)))
    unit = entry.get("unit")
    if unit is not None and str(unit) != spec.unit:
        raise RegisterMapError(
            _("{at}: metric {metric} is in {contract_unit}, not {unit}; convert with scale/offset and state the contract unit", at=at, metric=metric, contract_unit=repr(spec.unit or "no unit"), unit=repr(unit))
        )
    address = entry.get("address")
    if not isinstance(address, int) or isinstance(address, bool) or not 0 <= address <= 65535:
        raise RegisterMapError(
            _("{at}: address must be an integer 0..65535, got {address}", at=at, address=repr(address))
        )
    try:
        register = RegisterType(str(entry.get("register", "holding")))
        type_ = DataType(str(entry.get("type", "u16")))
    except ValueError as exc:
        raise RegisterMapError(
            _("{at}: {exc}; register is holding|input, type is u16|i16|u32|i32|f32", at=at, exc=exc)
        ) from None
    word_order = str(entry.get("word_order", "big"))
    if word_order not in ("big", "little"):
        raise RegisterMapError(
            _("{at}: word_order must be big or little, got {word_order}", at=at, word_order=repr(word_order))
        )
    scale, offset = entry.get("scale", 1.0), entry.get("offset", 0.0)
    for name, number in (("scale", scale), ("offset", offset)):
        if not isinstance(number, (int, float)) or isinstance(number, bool) or not math.isfinite(number):
            raise RegisterMapError(_("{at}: {name} must be a finite number, got {number}", at=at, name=name, number=repr(number)))
    if scale == 0:
        raise RegisterMapError(_("{at}: scale must not be 0", at=at))
    if address + type_.words - 1 > 65535:
        raise RegisterMapError(
            _("{at}: {type} at {address} runs past register 65535", at=at, type=type_.value, address=address)
        )
    return RegisterSpec(str(metric), address, register, type_, word_order, float(scale), float(offset))


def parse_flag_events(
    kind: DeviceKind, raw: Any, registers: tuple[RegisterSpec, ...], where: str
) -> tuple[tuple[str, str], ...]:
    """``{flag metric: stateful event}`` pairs: the event is raised and cleared as the flag changes."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise RegisterMapError(_("{where}: must map flag metrics to events", where=where))
    mapped = {s.metric for s in registers}
    pairs: list[tuple[str, str]] = []
    for metric, event in raw.items():
        spec = metric_spec(kind, str(metric))
        if spec is None or spec.type is not MetricType.FLAG:
            raise RegisterMapError(
                _("{where}.{metric}: {kind} has no flag metric {name}", where=where, metric=metric, kind=kind.value, name=repr(metric))
            )
        if metric not in mapped:
            continue  # this device's map has no such register: nothing to watch
        event_spec = KINDS[kind].events.get(str(event))
        if event_spec is None or not event_spec.stateful:
            raise RegisterMapError(
                _("{where}.{metric}: {event} is not a stateful {kind} event", where=where, metric=metric, event=repr(event), kind=kind.value)
            )
        pairs.append((str(metric), str(event)))
    return tuple(pairs)
