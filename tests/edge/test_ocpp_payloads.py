"""The OCPP mapping both sides use: what a simulated charge point sends, the gateway reads back."""

from __future__ import annotations

import pytest

from sitewatch.contract import OCPP_STATUSES
from sitewatch.edge.ocpp_payloads import (
    METRIC_MEASURANDS,
    meter_samples,
    parse_timestamp,
    sampled_values,
    status_update,
)


def test_sampled_values_read_back_as_the_same_contract_values() -> None:
    values = {"energy_register": 1234.567, "power": 6.9, "voltage": 229.8, "current": 31.2, "temperature": 41.5}
    sent = sampled_values(values)
    assert {s["unit"] for s in sent} == {"Wh", "W", "V", "A", "Celsius"}  # what chargers state by default
    samples, refused = meter_samples("220106-0001-EV0001", [{"timestamp": "2026-03-01T08:00:00Z", "sampledValue": sent}])
    assert refused == [] and len(samples) == 1
    assert samples[0].values == pytest.approx(values)
    assert set(METRIC_MEASURANDS) == set(values)


def test_status_events() -> None:
    sample, events = status_update("C001-CH-1", "Charging", "Faulted", "GroundFailure", 1, 1000)
    assert sample.values == {"status": float(OCPP_STATUSES.index("Faulted")), "error_code": 3.0}
    assert [(e.name, e.active) for e in events] == [("status_changed", None), ("faulted", True)]
    assert events[0].attrs["previous"] == "Charging"
    _, events = status_update("C001-CH-1", "Faulted", "Available", "NoError", 1, 2000)
    assert [(e.name, e.active) for e in events] == [("status_changed", None), ("faulted", False)]
    _, events = status_update("C001-CH-1", "Available", "Available", "NoError", 1, 3000, "NoError")
    assert events == []
    _, events = status_update("C001-CH-1", "Available", "Available", "WeakSignal", 1, 4000, "NoError")
    assert [(e.name, e.attrs["error_code"], e.attrs["previous_error_code"]) for e in events] == [
        ("status_changed", "WeakSignal", "NoError")
    ]


def test_meter_values_units_and_phases() -> None:
    entry = {
        "timestamp": "2026-01-01T00:00:00Z",
        "sampledValue": [
            {"value": "123456", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
            {"value": "230", "measurand": "Voltage", "phase": "L1-N"},
            {"value": "232", "measurand": "Voltage", "phase": "L2-N"},
            {"value": "400", "measurand": "Voltage", "phase": "L1-L2"},
            {"value": "10", "measurand": "Current.Import", "phase": "L1"},
            {"value": "12", "measurand": "Current.Import", "phase": "L2"},
            {"value": "104", "measurand": "Temperature", "unit": "Fahrenheit"},
            {"value": "55", "measurand": "SoC", "unit": "Percent"},
        ],
    }
    samples, refused = meter_samples("C001-CH-1", [entry])
    assert refused == []
    (sample,) = samples
    assert sample.ts_ms == parse_timestamp("2026-01-01T00:00:00Z") == 1767225600000
    assert sample.values == pytest.approx(
        {"energy_register": 123.456, "power": 7.2, "voltage": 231.0, "current": 12.0, "temperature": 40.0}
    )


def test_meter_values_refusals() -> None:
    bad = [
        {"timestamp": "yesterday", "sampledValue": [{"value": "1"}]},
        {
            "timestamp": "2026-01-01T00:00:00+08:00",
            "sampledValue": [
                {"value": "abc", "measurand": "Voltage"},
                {"value": "NaN", "measurand": "Current.Import"},
                {"value": "9000000", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "5", "measurand": "Voltage", "unit": "A"},
                {"value": "10", "measurand": "Temperature"},
            ],
        },
    ]
    samples, refused = meter_samples("C001-CH-1", bad)
    assert [s.values for s in samples] == [{"temperature": 10.0}]
    assert samples[0].ts_ms == 1767196800000  # +08:00 honoured
    details = " | ".join(r.detail for r in refused)
    for part in ("ISO 8601", "not a number", "not finite", "outside", "cannot be converted"):
        assert part in details
