"""OCPP 1.6J payloads ↔ contract samples and events (no I/O): what the gateway's central system
reads, and what the simulated charge points send.

StatusNotification gives the ``status`` and ``error_code`` metrics (their index in the contract's
OCPP_STATUSES / OCPP_ERROR_CODES) and the events ``status_changed`` and ``faulted`` (raised on
entering Faulted, cleared on leaving it). MeterValues, StartTransaction and StopTransaction give
power (kW), energy_register (kWh), voltage (V), current (A) and temperature (°C), converted from the
units the charge point states. Values the contract does not accept are refused with a reason.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..contract import OCPP_ERROR_CODES, OCPP_STATUSES, DeviceKind, Event, Sample, metric_spec

KIND = DeviceKind.CHARGER

# measurand → (contract metric, how phase values combine)
MEASURANDS: Mapping[str, tuple[str, str]] = {
    "Energy.Active.Import.Register": ("energy_register", "sum"),
    "Power.Active.Import": ("power", "sum"),
    "Voltage": ("voltage", "mean"),
    "Current.Import": ("current", "max"),
    "Temperature": ("temperature", "max"),
}
# unit → (contract unit, factor, offset)
UNITS: Mapping[str, tuple[str, float, float]] = {
    "Wh": ("kWh", 0.001, 0.0),
    "kWh": ("kWh", 1.0, 0.0),
    "W": ("kW", 0.001, 0.0),
    "kW": ("kW", 1.0, 0.0),
    "V": ("V", 1.0, 0.0),
    "A": ("A", 1.0, 0.0),
    "Celsius": ("°C", 1.0, 0.0),
    "Fahrenheit": ("°C", 5 / 9, -32 * 5 / 9),
    "K": ("°C", 1.0, -273.15),
}
DEFAULT_UNITS = {
    "energy_register": "Wh",
    "power": "W",
    "voltage": "V",
    "current": "A",
    "temperature": "Celsius",
}


# contract metric → its measurand (the reverse of MEASURANDS)
METRIC_MEASURANDS: Mapping[str, str] = {metric: measurand for measurand, (metric, _) in MEASURANDS.items()}


def sampled_values(values: Mapping[str, float]) -> list[dict[str, str]]:
    """OCPP sampledValue entries for contract metric values, in the units a charge point states by
    default (kWh sent as Wh, kW as W): the inverse of :func:`meter_samples`."""
    out = []
    for metric, value in values.items():
        unit = DEFAULT_UNITS[metric]
        _, factor, offset = UNITS[unit]
        out.append(
            {
                "value": f"{(value - offset) / factor:.3f}",
                "measurand": METRIC_MEASURANDS[metric],
                "unit": unit,
                "context": "Sample.Periodic",
            }
        )
    return out


@dataclass(frozen=True, slots=True)
class Refused:
    """A part of a payload that was not used, and why."""

    detail: str


def parse_timestamp(value: Any) -> int | None:
    """Epoch milliseconds of an OCPP (ISO 8601) timestamp, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def status_update(
    device: str,
    previous: str | None,
    status: str,
    error_code: str,
    connector_id: int,
    ts_ms: int,
    previous_error: str | None = None,
) -> tuple[Sample, list[Event]]:
    """The sample and events of one StatusNotification (``previous``: the last known status and
    ``previous_error`` its error code). ``status_changed`` fires when either changes."""
    values = {
        "status": float(OCPP_STATUSES.index(status)),
        "error_code": float(OCPP_ERROR_CODES.index(error_code)),
    }
    events: list[Event] = []
    attrs = {"status": status, "error_code": error_code, "connector": str(connector_id)}
    error_changed = previous_error is not None and error_code != previous_error
    if status != previous or error_changed:
        changed = {**attrs, "previous": previous or ""}
        if previous_error is not None:
            changed["previous_error_code"] = previous_error
        events.append(Event(device, KIND, ts_ms, "status_changed", None, changed))
    if status != previous:
        if status == "Faulted":
            events.append(Event(device, KIND, ts_ms, "faulted", True, attrs))
        elif previous == "Faulted":
            events.append(Event(device, KIND, ts_ms, "faulted", False, attrs))
    return Sample(device, KIND, ts_ms, values), events


def _convert(sampled: Mapping[str, Any]) -> tuple[str, float, str | None] | Refused | None:
    """(metric, value in contract units, phase) of one sampledValue; None if not a contract metric."""
    measurand = str(sampled.get("measurand") or "Energy.Active.Import.Register")
    if measurand not in MEASURANDS:
        return None
    metric = MEASURANDS[measurand][0]
    unit = str(sampled.get("unit") or DEFAULT_UNITS[metric])
    if unit not in UNITS or UNITS[unit][0] != metric_spec(KIND, metric).unit:  # type: ignore[union-attr]
        return Refused(f"{measurand} in unit {unit!r} cannot be converted to {metric}")
    raw = sampled.get("value")
    try:
        number = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return Refused(f"{measurand} value {raw!r} is not a number")
    if not math.isfinite(number):
        return Refused(f"{measurand} value {raw!r} is not finite")
    _, factor, offset = UNITS[unit]
    phase = sampled.get("phase")
    return metric, number * factor + offset, str(phase) if phase else None


def _combine(metric: str, readings: list[tuple[float, str | None]]) -> float:
    whole = [v for v, phase in readings if phase is None]
    if whole:
        return whole[-1]
    how = next(h for m, h in MEASURANDS.values() if m == metric)
    # line-to-line voltages (L1-L2) are not averaged with line-to-neutral ones
    values = [v for v, phase in readings if not (metric == "voltage" and phase and "-L" in phase)] or [
        v for v, _ in readings
    ]
    if how == "sum":
        return sum(values)
    if how == "max":
        return max(values)
    return sum(values) / len(values)


def meter_samples(device: str, meter_values: Iterable[Any]) -> tuple[list[Sample], list[Refused]]:
    """Samples from the ``meterValue`` list of MeterValues (or ``transactionData`` of StopTransaction)."""
    samples: list[Sample] = []
    refused: list[Refused] = []
    for entry in meter_values:
        if not isinstance(entry, Mapping):
            refused.append(Refused("meter value is not an object"))
            continue
        ts = parse_timestamp(entry.get("timestamp"))
        if ts is None:
            refused.append(Refused(f"meter value timestamp {entry.get('timestamp')!r} is not ISO 8601"))
            continue
        grouped: dict[str, list[tuple[float, str | None]]] = defaultdict(list)
        for sampled in entry.get("sampledValue") or entry.get("sampled_value") or []:
            converted = (
                _convert(sampled) if isinstance(sampled, Mapping) else Refused("sampled value not an object")
            )
            if converted is None:
                continue
            if isinstance(converted, Refused):
                refused.append(converted)
                continue
            metric, value, phase = converted
            grouped[metric].append((value, phase))
        values: dict[str, float] = {}
        for metric, readings in grouped.items():
            value = _combine(metric, readings)
            problem = metric_spec(KIND, metric).check(value)  # type: ignore[union-attr]
            if problem:
                refused.append(Refused(problem))
            else:
                values[metric] = value
        if values:
            samples.append(Sample(device, KIND, ts, values))
    return samples, refused


def energy_sample(device: str, meter_wh: int, timestamp: Any, fallback_ms: int) -> tuple[Sample | None, int]:
    """The energy register reading of Start/StopTransaction (meterStart/meterStop are in Wh)."""
    ts = parse_timestamp(timestamp) or fallback_ms
    value = meter_wh / 1000.0
    if metric_spec(KIND, "energy_register").check(value):  # type: ignore[union-attr]
        return None, ts
    return Sample(device, KIND, ts, {"energy_register": value}), ts
