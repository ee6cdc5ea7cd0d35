"""Checks both backends apply to a batch before writing any of it, so both refuse the same input."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from .base import TAG_KEYS, InvalidPoint, StoredEvent, StoredSample

__all__ = [
    "InvalidPoint",
    "check_batch",
    "event_problem",
    "metric_problem",
    "sample_problem",
    "tag_problem",
]

# Metric (field) names: what the contract's metric names look like; never a name the schema uses.
METRIC_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED_METRICS = frozenset({"time", "flagged", "event", "active", "attrs", *TAG_KEYS})
EXTRA_TAG_KEYS = frozenset(TAG_KEYS) - {"compound", "device", "kind"}
MAX_TAG_CHARS = 256
MAX_TS_MS = 9_223_372_036_853  # InfluxDB keeps nanoseconds in an int64: up to 2262-04-11
# Line protocol cannot carry these in a tag value, and a person never means them in a name.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# InfluxDB's line protocol cannot tell these from its own escapes (``\,`` is an escaped comma).
_BACKSLASH_RE = re.compile(r"\\([ ,=]|$)")


# Tag values and metric names already found acceptable (bounded): a device's id, its compound and
# its kind's metric names come in every batch, and their verdict never changes.
_GOOD_TAG_VALUES: set[str] = set()
_GOOD_METRICS: set[str] = set()
_GOOD_MAX = 200_000
_INF = math.inf


def _remember(good: set[str], value: str) -> None:
    if len(good) >= _GOOD_MAX:
        good.clear()
    good.add(value)


def tag_problem(key: str, value: str) -> str | None:
    """Why a tag value cannot be stored, or None when it can."""
    if type(value) is str and value in _GOOD_TAG_VALUES:
        return None
    problem = _tag_value_problem(key, value)
    if problem is None and type(value) is str:
        _remember(_GOOD_TAG_VALUES, value)
    return problem


def metric_problem(metric: str) -> str | None:
    """Why a metric (field) name cannot be stored, or None when it can."""
    if type(metric) is str and metric in _GOOD_METRICS:
        return None
    if not isinstance(metric, str) or not METRIC_RE.match(metric) or metric in RESERVED_METRICS:
        return f"metric name {metric!r} is not allowed"
    _remember(_GOOD_METRICS, metric)
    return None


def _tag_value_problem(key: str, value: str) -> str | None:
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
    return None


def _ts_problem(ts_ms: int) -> str | None:
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int) or not 0 <= ts_ms <= MAX_TS_MS:
        return f"timestamp {ts_ms!r} is not an integer of milliseconds between 1970 and 2262"
    return None


def _extra_tags_problem(tags: Mapping[str, str]) -> str | None:
    for key, value in tags.items():
        if key not in EXTRA_TAG_KEYS:
            return f"tag {key!r} is not one of {sorted(EXTRA_TAG_KEYS)}"
        problem = tag_problem(key, value)
        if problem:
            return problem
    return None


def sample_problem(item: StoredSample) -> str | None:
    """Why a stored sample cannot be written, or None when it can."""
    sample = item.sample
    for key, value in (("device", sample.device), ("compound", item.compound)):
        problem = tag_problem(key, value)
        if problem:
            return problem
    problem = _ts_problem(sample.ts_ms)
    if problem:
        return problem
    if not sample.values:
        return "no values"
    for metric, number in sample.values.items():
        problem = metric_problem(metric)
        if problem:
            return problem
        if type(number) is float and -_INF < number < _INF:
            continue  # the common case, decided without the general test below
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            return f"{metric}={number!r} is not a finite number"
    return _extra_tags_problem(item.tags) if item.tags else None


def event_problem(item: StoredEvent) -> str | None:
    """Why a stored event cannot be written, or None when it can."""
    event = item.event
    for key, value in (("device", event.device), ("compound", item.compound), ("event", event.name)):
        problem = tag_problem(key, value)
        if problem:
            return problem
    problem = _ts_problem(event.ts_ms)
    if problem:
        return problem
    for key, value in event.attrs.items():
        if not isinstance(key, str) or not isinstance(value, str):
            return "event attributes must map strings to strings"
    return _extra_tags_problem(item.tags)


def _plainly_valid(item: StoredSample) -> bool:
    """True when every part of the sample was seen valid before (no extra tags, float values).

    False means only "not decided here": sample_problem then gives the verdict and its reason.
    """
    sample = item.sample
    device, ts, values = sample.device, sample.ts_ms, sample.values
    if (
        type(device) is not str
        or device not in _GOOD_TAG_VALUES
        or type(item.compound) is not str
        or item.compound not in _GOOD_TAG_VALUES
        or type(ts) is not int
        or not 0 <= ts <= MAX_TS_MS
        or item.tags
        or not values
    ):
        return False
    for metric, number in values.items():
        if type(number) is not float or not -_INF < number < _INF or metric not in _GOOD_METRICS:
            return False
    return True


def check_batch(
    samples: Sequence[StoredSample], events: Sequence[StoredEvent], *, validated: bool = False
) -> None:
    """Raise InvalidPoint for the first item that cannot be stored.

    ``validated``: the samples were produced by the contract's validator (``decode_data``), whose
    rules for device ids, compounds, metric names and values are narrower than the store's (tests
    prove it for every kind and on random payloads). Only what the validator did not see is then
    checked: the timestamp against the store's range (the validator's depends on configuration)
    and any tags attached after decoding. Events are always checked in full.
    """
    for index, sample in enumerate(samples):
        if validated and not sample.tags and 0 <= sample.sample.ts_ms <= MAX_TS_MS:
            continue
        if _plainly_valid(sample):
            continue
        problem = sample_problem(sample)
        if problem:
            raise InvalidPoint(index, str(sample.sample.device), problem)
    for index, event in enumerate(events):
        problem = event_problem(event)
        if problem:
            raise InvalidPoint(len(samples) + index, str(event.event.device), problem)


def window_start(ts_ms: int, window_ms: int) -> int:
    """Start of the epoch-aligned window holding ``ts_ms``."""
    return ts_ms - ts_ms % window_ms
