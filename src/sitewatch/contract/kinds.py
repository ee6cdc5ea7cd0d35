"""Device kinds, the metrics each reports (with units and valid ranges) and the events each raises.

Labels and descriptions are English catalog messages (marked with ``N_``); people read them through
``sitewatch.i18n._`` in their language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from ..i18n import N_


class DeviceKind(StrEnum):
    """Kinds of device a renovated compound has, plus the site gateway itself."""

    ELEVATOR = "elevator"
    CAMERA = "camera"
    CHARGER = "charger"
    STREETLIGHT = "streetlight"
    WATER_METER = "water_meter"
    GATEWAY = "gateway"


class MetricType(StrEnum):
    """How a metric's values behave over time, which decides how they aggregate."""

    GAUGE = "gauge"  # a level: mean/min/max make sense
    COUNTER = "counter"  # a cumulative register: differences make sense
    FLAG = "flag"  # 0 or 1
    STATE = "state"  # an integer code; its labels are in MetricSpec.states


class Severity(StrEnum):
    """Severity of a device event."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: name, unit, type and the range a sane device reports."""

    name: str
    unit: str
    type: MetricType
    minimum: float
    maximum: float
    description: str  # a catalog message: shown with _(spec.description)
    states: tuple[str, ...] = ()  # for STATE metrics: code i means states[i]

    def check(self, value: float) -> str | None:
        """Return why ``value`` is not acceptable for this metric, or None when it is."""
        if not self.minimum <= value <= self.maximum:
            return f"{self.name}={value!r} outside [{self.minimum:g}, {self.maximum:g}] {self.unit}".rstrip()
        if self.type is MetricType.FLAG and value not in (0.0, 1.0):
            return f"{self.name}={value!r} must be 0 or 1"
        if self.type is MetricType.STATE and value != int(value):
            return f"{self.name}={value!r} must be an integer state code"
        return None


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One discrete event a device raises."""

    name: str
    severity: Severity
    description: str  # a catalog message: shown with _(spec.description)
    stateful: bool = False  # True: carries active=true when raised and active=false when cleared


@dataclass(frozen=True, slots=True)
class KindSpec:
    """Everything the contract says about one device kind."""

    kind: DeviceKind
    code: str  # two letters used in device ids made by simulators, e.g. "EL"
    label: str  # what people call it (a catalog message: shown with _(spec.label))
    metrics: Mapping[str, MetricSpec] = field(default_factory=dict)
    events: Mapping[str, EventSpec] = field(default_factory=dict)


OCPP_STATUSES: tuple[str, ...] = (
    "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV",
    "Finishing", "Reserved", "Unavailable", "Faulted",
)  # fmt: skip
OCPP_ERROR_CODES: tuple[str, ...] = (
    "NoError", "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature",
    "InternalError", "LocalListConflict", "OtherError", "OverCurrentFailure", "OverVoltage",
    "PowerMeterFailure", "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage",
    "WeakSignal",
)  # fmt: skip
ELEVATOR_RUN_STATES: tuple[str, ...] = (
    "idle", "running_up", "running_down", "door_open", "fault", "maintenance", "out_of_service",
)  # fmt: skip

_G, _C, _F, _S = MetricType.GAUGE, MetricType.COUNTER, MetricType.FLAG, MetricType.STATE
_I, _W, _X = Severity.INFO, Severity.WARNING, Severity.CRITICAL


def _m(name: str, unit: str, type_: MetricType, lo: float, hi: float, description: str,
       states: tuple[str, ...] = ()) -> MetricSpec:  # fmt: skip
    return MetricSpec(name, unit, type_, float(lo), float(hi), description, states)


def _e(name: str, severity: Severity, description: str, stateful: bool = False) -> EventSpec:
    return EventSpec(name, severity, description, stateful)


# Events every kind can raise: liveness reported by the gateway's connectors.
_COMMON_EVENTS = (
    _e("online", _I, N_("device reachable again")),
    _e("offline", _W, N_("device stopped answering")),
)

_SPECS: tuple[tuple[DeviceKind, str, str, tuple[MetricSpec, ...], tuple[EventSpec, ...]], ...] = (
    (
        DeviceKind.ELEVATOR,
        "EL",
        N_("elevator"),
        (
            _m("trip_count", "", _C, 0, 1e9, N_("trips since commissioning (register)")),
            _m("door_cycles", "", _C, 0, 1e9, N_("door open/close cycles (register)")),
            _m("door_faults", "", _C, 0, 1e9, N_("door faults (register)")),
            _m("vibration_rms", "m/s²", _G, 0, 50, N_("car vibration, RMS acceleration")),
            _m("motor_current", "A", _G, 0, 500, N_("traction motor current")),
            _m("levelling_error", "mm", _G, -500, 500, N_("stopping error at the landing")),
            _m("car_load", "%", _G, 0, 150, N_("car load, percent of rated load")),
            _m(
                "run_state",
                "",
                _S,
                0,
                len(ELEVATOR_RUN_STATES) - 1,
                N_("run state"),
                ELEVATOR_RUN_STATES,
            ),
            _m("entrapment", "", _F, 0, 1, N_("passenger trapped in the car")),
        ),
        (
            _e("door_fault", _W, N_("door failed to open or close")),
            _e("entrapment", _X, N_("passenger trapped"), stateful=True),
            _e("overload", _I, N_("car overloaded")),
            _e("out_of_service", _W, N_("elevator out of service"), stateful=True),
            _e("maintenance_mode", _I, N_("maintenance mode switched"), stateful=True),
            _e("emergency_call", _X, N_("alarm button pressed")),
        ),
    ),
    (
        DeviceKind.CAMERA,
        "CA",
        N_("camera"),
        (
            _m("online", "", _F, 0, 1, N_("answers its health check")),
            _m("bitrate", "kbit/s", _G, 0, 100_000, N_("video stream bitrate")),
            _m("frame_rate", "fps", _G, 0, 120, N_("video frame rate")),
            _m("storage_free", "%", _G, 0, 100, N_("free recording storage")),
            _m("latency", "ms", _G, 0, 60_000, N_("health-check round trip")),
        ),
        (
            _e("tamper", _X, N_("camera moved or covered"), stateful=True),
            _e("video_loss", _W, N_("no video signal"), stateful=True),
            _e("storage_full", _W, N_("recording storage full"), stateful=True),
        ),
    ),
    (
        DeviceKind.CHARGER,
        "CH",
        N_("charger"),
        (
            _m(
                "status",
                "",
                _S,
                0,
                len(OCPP_STATUSES) - 1,
                N_("OCPP 1.6 connector status"),
                OCPP_STATUSES,
            ),
            _m(
                "error_code",
                "",
                _S,
                0,
                len(OCPP_ERROR_CODES) - 1,
                N_("OCPP 1.6 error code"),
                OCPP_ERROR_CODES,
            ),
            _m("power", "kW", _G, 0, 400, N_("active power delivered")),
            _m("energy_register", "kWh", _C, 0, 1e9, N_("energy delivered (register)")),
            _m("voltage", "V", _G, 0, 1000, N_("supply voltage")),
            _m("current", "A", _G, 0, 1000, N_("charging current")),
            _m("temperature", "°C", _G, -40, 150, N_("internal temperature")),
        ),
        (
            _e("status_changed", _I, N_("connector status changed")),
            _e("faulted", _X, N_("charger reported Faulted"), stateful=True),
            _e("session_started", _I, N_("charging session started")),
            _e("session_stopped", _I, N_("charging session stopped")),
            _e("over_temperature", _W, N_("temperature above limit"), stateful=True),
        ),
    ),
    (
        DeviceKind.STREETLIGHT,
        "SL",
        N_("streetlight"),
        (
            _m("lamp_on", "", _F, 0, 1, N_("lamp switched on")),
            _m("power", "W", _G, 0, 2000, N_("active power")),
            _m("lamp_current", "A", _G, 0, 20, N_("lamp current")),
            _m("ambient_light", "lx", _G, 0, 200_000, N_("ambient illuminance")),
            _m("burning_hours", "h", _C, 0, 1e6, N_("hours lit (register)")),
        ),
        (
            _e("lamp_failure", _W, N_("lamp on but drawing no current"), stateful=True),
            _e("day_burning", _I, N_("lamp on in daylight"), stateful=True),
            _e("flicker", _W, N_("lamp switching rapidly")),
        ),
    ),
    (
        DeviceKind.WATER_METER,
        "WM",
        N_("water meter"),
        (
            _m("volume_register", "m³", _C, 0, 1e8, N_("cumulative volume (register)")),
            _m("flow", "m³/h", _G, -1000, 1000, N_("instantaneous flow (negative: reverse)")),
            _m("pressure", "MPa", _G, 0, 2.5, N_("pipe pressure (building meters)")),
            _m("battery", "%", _G, 0, 100, N_("battery level")),
            _m("tamper", "", _F, 0, 1, N_("tamper switch")),
            _m("reverse_flow", "", _F, 0, 1, N_("reverse flow detected")),
        ),
        (
            _e("tamper", _X, N_("meter opened or removed"), stateful=True),
            _e("reverse_flow", _W, N_("water flowing backwards"), stateful=True),
            _e("battery_low", _W, N_("battery low"), stateful=True),
        ),
    ),
    (
        DeviceKind.GATEWAY,
        "GW",
        N_("site gateway"),
        (
            _m("uptime", "s", _C, 0, 1e10, N_("seconds since the gateway started")),
            _m("queue_depth", "", _G, 0, 1e10, N_("readings waiting in the disk queue")),
            _m("queue_bytes", "B", _G, 0, 1e13, N_("disk queue size")),
            _m("read_total", "", _C, 0, 1e15, N_("readings read from devices")),
            _m("sent_total", "", _C, 0, 1e15, N_("readings published")),
            _m("acked_total", "", _C, 0, 1e15, N_("readings acknowledged by the broker")),
            _m("replayed_total", "", _C, 0, 1e15, N_("readings sent after an outage")),
            _m(
                "dropped_total",
                "",
                _C,
                0,
                1e15,
                N_("readings dropped because the disk budget was full"),
            ),
            _m("connector_errors_total", "", _C, 0, 1e15, N_("connector errors")),
            _m("devices_online", "", _G, 0, 1e6, N_("devices answering")),
        ),
        (_e("queue_overflow", _W, N_("disk budget full, oldest readings dropped")),),
    ),
)

KINDS: Mapping[DeviceKind, KindSpec] = MappingProxyType(
    {
        kind: KindSpec(
            kind=kind,
            code=code,
            label=label,
            metrics=MappingProxyType({m.name: m for m in metrics}),
            events=MappingProxyType({e.name: e for e in (*events, *_COMMON_EVENTS)}),
        )
        for kind, code, label, metrics, events in _SPECS
    }
)

KIND_BY_CODE: Mapping[str, DeviceKind] = MappingProxyType({spec.code: k for k, spec in KINDS.items()})


def metric_spec(kind: DeviceKind, metric: str) -> MetricSpec | None:
    """The spec of ``metric`` for ``kind``, or None when the kind has no such metric."""
    return KINDS[kind].metrics.get(metric)
