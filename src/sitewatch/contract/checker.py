"""The one checker of identifiers, names and values: the validator and the store both use it.

The rules are plain functions; a :class:`Checker` adds a bounded memory of what it already found
valid (a device's id, its compound and its metric names come in every message, and their verdict
never changes), held by whoever owns the checker (ingest's validator, each store), never by a
module. Every pattern matches the whole string (``re.fullmatch``): ``$`` would also match before
a final newline, and a device id ending in ``\\n`` would pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection

from .messages import device_belongs_to
from .topics import DEVICE_LOCAL_PATTERN

MAX_DEVICE_CHARS = 128
MAX_TAG_CHARS = 256
METRIC_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
REMEMBERED = 200_000  # verdicts a Checker keeps per kind of name; then it starts afresh

_DEVICE_LOCAL_RE = re.compile(DEVICE_LOCAL_PATTERN)
_METRIC_RE = re.compile(METRIC_NAME_PATTERN)
# Line protocol cannot carry these in a tag value, and a person never means them in a name.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# InfluxDB's line protocol cannot tell these from its own escapes (``\,`` is an escaped comma).
_BACKSLASH_RE = re.compile(r"\\(?:[ ,=]|\Z)")


def tag_value_problem(key: str, value: object) -> str | None:
    """Why ``value`` cannot be a stored name (a tag: device, compound, event, building ...), or None."""
    if not isinstance(value, str):
        return f"tag {key!r} must be a string, got {type(value).__name__}"
    if not value:
        return f"tag {key!r} is empty"
    if len(value) > MAX_TAG_CHARS:
        return f"tag {key!r} is longer than {MAX_TAG_CHARS} characters"
    if _CONTROL_RE.search(value):
        return f"tag {key!r} contains a control character (newline, tab, ...)"
    if _BACKSLASH_RE.search(value):
        return f"tag {key!r} has a backslash before a space, comma, equals sign or at its end"
    return text_problem(key, value)


def text_problem(what: str, value: str) -> str | None:
    """Why ``value`` cannot be written as UTF-8 (a lone surrogate, which a JSON parser may let
    through from a ``\\ud800`` escape), or None."""
    if value.isascii():
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return f"{what} {value!r:.80} is not valid Unicode text (a lone surrogate)"
    return None


def metric_name_problem(metric: object, reserved: Collection[str] = ()) -> str | None:
    """Why ``metric`` cannot be a metric (field) name, or None."""
    if not isinstance(metric, str) or not _METRIC_RE.fullmatch(metric) or metric in reserved:
        return f"metric name {metric!r} is not allowed"
    return None


def number_problem(metric: str, value: object) -> str | None:
    """Why ``value`` cannot be a metric's value (a finite number, not a boolean), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"{metric}={value!r} is not a finite number"
    return None


def device_problem(device: object, compound: str) -> str | None:
    """Why ``device`` is not a device id of ``compound`` (``<compound>-<local name>``), or None.

    The contract's rule is narrower than the store's rule for a name, and includes it: an id the
    validator accepts is always one the store can hold.
    """
    if not isinstance(device, str) or len(device) > MAX_DEVICE_CHARS:
        return f"invalid device id {device!r:.60}"
    if not device_belongs_to(device, compound):
        return f"device {device!r} is not a device of compound {compound!r}"
    if not _DEVICE_LOCAL_RE.fullmatch(device, len(compound) + 1):
        return f"invalid device id {device!r}"
    return tag_value_problem("device", device)


class Checker:
    """The rules above with a memory of the names found valid (bounded). One per validator or store;
    threads may share one: the memory is only a cache of verdicts that never change."""

    __slots__ = ("devices", "metrics", "reserved", "tags")

    def __init__(self, reserved_metrics: Collection[str] = ()) -> None:
        self.reserved = frozenset(reserved_metrics)
        self.devices: dict[str, str] = {}  # device id -> the compound it was found valid for
        self.tags: set[str] = set()  # tag values found valid
        self.metrics: set[str] = set()  # metric names found valid

    def device_problem(self, device: object, compound: str) -> str | None:
        """:func:`device_problem`, remembered once valid."""
        if type(device) is str and self.devices.get(device) == compound:
            return None
        problem = device_problem(device, compound)
        if problem is None:
            self.remember_device(device, compound)  # type: ignore[arg-type]
        return problem

    def remember_device(self, device: str, compound: str) -> None:
        """Note a device id found valid for ``compound``."""
        if len(self.devices) >= REMEMBERED:
            self.devices.clear()
        self.devices[device] = compound

    def tag_problem(self, key: str, value: object) -> str | None:
        """:func:`tag_value_problem`, remembered once valid."""
        if type(value) is str and value in self.tags:
            return None
        problem = tag_value_problem(key, value)
        if problem is None:
            _add(self.tags, value)  # type: ignore[arg-type]
        return problem

    def metric_problem(self, metric: object) -> str | None:
        """:func:`metric_name_problem` (with this checker's reserved names), remembered once valid."""
        if type(metric) is str and metric in self.metrics:
            return None
        problem = metric_name_problem(metric, self.reserved)
        if problem is None:
            _add(self.metrics, metric)  # type: ignore[arg-type]
        return problem


def _add(good: set[str], value: str) -> None:
    if len(good) >= REMEMBERED:
        good.clear()
    good.add(value)
