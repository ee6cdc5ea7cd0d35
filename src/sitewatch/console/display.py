"""How values, kinds and statuses read on a page (through the catalog)."""

from __future__ import annotations

from typing import Any

from ..alerts.render import SEVERITY_WORDS, STATE_WORDS
from ..contract import KINDS, DeviceKind
from ..i18n import N_, _
from .health import PRESENCE

# The values shown beside each device in a compound's lists
KEY_METRICS: dict[DeviceKind, tuple[str, ...]] = {
    DeviceKind.ELEVATOR: ("run_state", "trip_count", "vibration_rms"),
    DeviceKind.CAMERA: ("online", "storage_free", "bitrate"),
    DeviceKind.CHARGER: ("status", "power", "temperature"),
    DeviceKind.STREETLIGHT: ("lamp_on", "power", "burning_hours"),
    DeviceKind.WATER_METER: ("volume_register", "flow", "battery"),
}
STATUS_WORDS = {"online": N_("reporting"), "silent": N_("silent"), "never": N_("never heard")}


def kind_label(kind: str) -> str:
    """What people call a kind, in the current language."""
    try:
        return _(KINDS[DeviceKind(kind)].label)
    except ValueError:
        return kind


def metric_label(kind: str, metric: str) -> str:
    """A metric's description, in the current language."""
    spec = KINDS[DeviceKind(kind)].metrics.get(metric)
    return _(spec.description) if spec is not None else metric


def metric_value(kind: str, metric: str, value: float | None) -> str:
    """A value with its unit, or the state a state metric's code means."""
    if value is None:
        return "—"
    spec = KINDS[DeviceKind(kind)].metrics.get(metric)
    if spec is None:
        return f"{value:g}"
    if spec.states and float(value).is_integer() and 0 <= int(value) < len(spec.states):
        return spec.states[int(value)]
    text = f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    return f"{text} {spec.unit}".strip()


def status(kind: str, last_seen_ms: int | None, now_ms: int) -> str:
    """``online`` (heard within the kind's presence window), ``silent`` or ``never``."""
    if not last_seen_ms:
        return "never"
    try:
        window = PRESENCE[DeviceKind(kind)][1]
    except (KeyError, ValueError):
        window = 31 * 60_000
    return "online" if last_seen_ms >= now_ms - window else "silent"


def describe(item: dict[str, Any]) -> str:
    """An alert's summary in the current language (its catalog message with its parameters)."""
    try:
        return _(item["message"], **item["params"])
    except (KeyError, IndexError, ValueError):
        return str(item["message"])


def percent(share: float | None) -> str:
    """A share as a percentage that never rounds a missing device away (99.7%, not 100%)."""
    if share is None:
        return "—"
    if share >= 1:
        return "100%"
    return f"{int(share * 1000) / 10:g}%"


def template_globals() -> dict[str, Any]:
    """What templates use of this module."""
    return {"kind_label": kind_label, "metric_label": metric_label, "metric_value": metric_value,
            "status_of": status, "status_words": STATUS_WORDS, "key_metrics": KEY_METRICS, "describe": describe,
            "severity_words": SEVERITY_WORDS, "state_words": STATE_WORDS, "percent": percent}  # fmt: skip
