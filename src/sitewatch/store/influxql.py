"""InfluxQL text the InfluxDB store builds: quoting, tag conditions, answers' series."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..contract import DeviceKind
from .checks import EXTRA_TAG_KEYS

EVENTS_MEASUREMENT = "events"


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True, slots=True)
class Series:
    """One series of an InfluxQL answer."""

    statement: int
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]


def tag_filter(
    compound: str | None,
    devices: Sequence[str],
    tags: Mapping[str, str] | None = None,
    kind: DeviceKind | None = None,
) -> list[str]:
    """WHERE conditions on the tags."""
    where = []
    if compound is not None:
        where.append(f'"compound" = {quote_string(compound)}')
    if devices:
        where.append("(" + " OR ".join(f'"device" = {quote_string(d)}' for d in dict.fromkeys(devices)) + ")")
    if kind is not None:
        where.append(f'"kind" = {quote_string(kind.value)}')
    for key, value in sorted((tags or {}).items()):
        where.append(f"{quote_ident(key)} = {quote_string(value)}")
    return where


def time_range(start_ms: int, end_ms: int) -> list[str]:
    """WHERE conditions of a time range ``[start_ms, end_ms)``."""
    return [f"time >= {int(start_ms)}ms", f"time < {int(end_ms)}ms"]


def extra_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The hierarchy tags among a series' tags (non-empty ones)."""
    return {k: tags[k] for k in sorted(EXTRA_TAG_KEYS) if tags.get(k)}
