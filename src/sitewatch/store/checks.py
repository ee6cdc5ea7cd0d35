"""Checks both backends apply to a batch before writing any of it, so both refuse the same input."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..contract.checker import Checker, number_problem, text_problem
from .base import TAG_KEYS, InvalidPoint, StoredEvent, StoredSample

__all__ = [
    "InvalidPoint",
    "check_batch",
    "event_problem",
    "sample_problem",
    "store_checker",
]

# Metric (field) names the schema uses itself: never a metric's.
RESERVED_METRICS = frozenset({"time", "flagged", "event", "active", "attrs", *TAG_KEYS})
EXTRA_TAG_KEYS = frozenset(TAG_KEYS) - {"compound", "device", "kind"}
MAX_TS_MS = 9_223_372_036_853  # InfluxDB keeps nanoseconds in an int64: up to 2262-04-11
_INF = math.inf


def store_checker() -> Checker:
    """A checker with the store's reserved metric names; each store owns one."""
    return Checker(RESERVED_METRICS)


def _ts_problem(ts_ms: int) -> str | None:
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int) or not 0 <= ts_ms <= MAX_TS_MS:
        return f"timestamp {ts_ms!r} is not an integer of milliseconds between 1970 and 2262"
    return None


def _extra_tags_problem(tags: Mapping[str, str], checker: Checker) -> str | None:
    for key, value in tags.items():
        if key not in EXTRA_TAG_KEYS:
            return f"tag {key!r} is not one of {sorted(EXTRA_TAG_KEYS)}"
        problem = checker.tag_problem(key, value)
        if problem:
            return problem
    return None


def sample_problem(item: StoredSample, checker: Checker) -> str | None:
    """Why a stored sample cannot be written, or None when it can."""
    sample = item.sample
    for key, value in (("device", sample.device), ("compound", item.compound)):
        problem = checker.tag_problem(key, value)
        if problem:
            return problem
    problem = _ts_problem(sample.ts_ms)
    if problem:
        return problem
    if not sample.values:
        return "no values"
    for metric, number in sample.values.items():
        problem = checker.metric_problem(metric)
        if problem:
            return problem
        if type(number) is float and -_INF < number < _INF:
            continue  # the common case, decided without the general test below
        problem = number_problem(metric, number)
        if problem:
            return problem
    return _extra_tags_problem(item.tags, checker) if item.tags else None


def event_problem(item: StoredEvent, checker: Checker) -> str | None:
    """Why a stored event cannot be written, or None when it can."""
    event = item.event
    for key, value in (("device", event.device), ("compound", item.compound), ("event", event.name)):
        problem = checker.tag_problem(key, value)
        if problem:
            return problem
    problem = _ts_problem(event.ts_ms)
    if problem:
        return problem
    for key, value in event.attrs.items():
        if not isinstance(key, str) or not isinstance(value, str):
            return "event attributes must map strings to strings"
        problem = text_problem("event attribute", key) or text_problem("event attribute", value)
        if problem:
            return problem
    return _extra_tags_problem(item.tags, checker)


def _plainly_valid(item: StoredSample, tags: set[str], metrics: set[str]) -> bool:
    """True when every part of the sample was seen valid before (no extra tags, float values).

    False means only "not decided here": sample_problem then gives the verdict and its reason.
    """
    sample = item.sample
    device, ts, values = sample.device, sample.ts_ms, sample.values
    if (
        type(device) is not str
        or device not in tags
        or type(item.compound) is not str
        or item.compound not in tags
        or type(ts) is not int
        or not 0 <= ts <= MAX_TS_MS
        or item.tags
        or not values
    ):
        return False
    for metric, number in values.items():
        if type(number) is not float or not -_INF < number < _INF or metric not in metrics:
            return False
    return True


def check_batch(
    samples: Sequence[StoredSample],
    events: Sequence[StoredEvent],
    *,
    checker: Checker | None = None,
    validated: bool = False,
) -> None:
    """Raise InvalidPoint for the first item that cannot be stored.

    ``checker`` (the store's: :func:`store_checker`) remembers the names it found valid, so the
    device, compound and metric names that come in every batch are checked once.

    ``validated``: the samples were produced by the contract's validator (``decode_data``), whose
    rules for device ids, compounds, metric names and values are narrower than the store's (tests
    prove it for every kind and on random payloads). Only what the validator did not see is then
    checked: the timestamp against the store's range (the validator's depends on configuration)
    and any tags attached after decoding. Events are always checked in full.
    """
    checker = store_checker() if checker is None else checker
    tags, metrics = checker.tags, checker.metrics
    for index, sample in enumerate(samples):
        if validated and not sample.tags and 0 <= sample.sample.ts_ms <= MAX_TS_MS:
            continue
        if _plainly_valid(sample, tags, metrics):
            continue
        problem = sample_problem(sample, checker)
        if problem:
            raise InvalidPoint(index, str(sample.sample.device), problem)
    for index, event in enumerate(events):
        problem = event_problem(event, checker)
        if problem:
            raise InvalidPoint(len(samples) + index, str(event.event.device), problem)


def window_start(ts_ms: int, window_ms: int) -> int:
    """Start of the epoch-aligned window holding ``ts_ms``."""
    return ts_ms - ts_ms % window_ms
