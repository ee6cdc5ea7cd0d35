"""Device kinds, the metrics each reports (with units and valid ranges) and the events each raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


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
    description: str
    description_zh: str
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
    description: str
    description_zh: str
    stateful: bool = False  # True: carries active=true when raised and active=false when cleared


@dataclass(frozen=True, slots=True)
class KindSpec:
    """Everything the contract says about one device kind."""

    kind: DeviceKind
    code: str  # two letters used in device ids made by simulators, e.g. "EL"
    label_zh: str
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


def _m(name: str, unit: str, type_: MetricType, lo: float, hi: float, en: str, zh: str,
       states: tuple[str, ...] = ()) -> MetricSpec:  # fmt: skip
    return MetricSpec(name, unit, type_, float(lo), float(hi), en, zh, states)


def _e(name: str, severity: Severity, en: str, zh: str, stateful: bool = False) -> EventSpec:
    return EventSpec(name, severity, en, zh, stateful)


# Events every kind can raise: liveness reported by the gateway's connectors.
_COMMON_EVENTS = (
    _e("online", _I, "device reachable again", "设备恢复在线"),
    _e("offline", _W, "device stopped answering", "设备离线"),
)

_SPECS: tuple[tuple[DeviceKind, str, str, tuple[MetricSpec, ...], tuple[EventSpec, ...]], ...] = (
    (
        DeviceKind.ELEVATOR,
        "EL",
        "加装电梯",
        (
            _m("trip_count", "", _C, 0, 1e9, "trips since commissioning (register)", "累计运行次数"),
            _m("door_cycles", "", _C, 0, 1e9, "door open/close cycles (register)", "累计开关门次数"),
            _m("door_faults", "", _C, 0, 1e9, "door faults (register)", "累计门故障次数"),
            _m("vibration_rms", "m/s²", _G, 0, 50, "car vibration, RMS acceleration", "轿厢振动有效值"),
            _m("motor_current", "A", _G, 0, 500, "traction motor current", "曳引电机电流"),
            _m("levelling_error", "mm", _G, -500, 500, "stopping error at the landing", "平层误差"),
            _m("car_load", "%", _G, 0, 150, "car load, percent of rated load", "轿厢载重率"),
            _m(
                "run_state",
                "",
                _S,
                0,
                len(ELEVATOR_RUN_STATES) - 1,
                "run state",
                "运行状态",
                ELEVATOR_RUN_STATES,
            ),
            _m("entrapment", "", _F, 0, 1, "passenger trapped in the car", "困人"),
        ),
        (
            _e("door_fault", _W, "door failed to open or close", "门故障"),
            _e("entrapment", _X, "passenger trapped", "困人", stateful=True),
            _e("overload", _I, "car overloaded", "超载"),
            _e("out_of_service", _W, "elevator out of service", "停梯", stateful=True),
            _e("maintenance_mode", _I, "maintenance mode switched", "检修模式", stateful=True),
            _e("emergency_call", _X, "alarm button pressed", "紧急呼叫"),
        ),
    ),
    (
        DeviceKind.CAMERA,
        "CA",
        "安防摄像头",
        (
            _m("online", "", _F, 0, 1, "answers its health check", "在线"),
            _m("bitrate", "kbit/s", _G, 0, 100_000, "video stream bitrate", "码率"),
            _m("frame_rate", "fps", _G, 0, 120, "video frame rate", "帧率"),
            _m("storage_free", "%", _G, 0, 100, "free recording storage", "存储剩余"),
            _m("latency", "ms", _G, 0, 60_000, "health-check round trip", "响应时延"),
            _m("scene_match", "%", _G, 0, 100, "picture's match with the reference scene (video diagnosis)",
               "画面与基准场景相似度(视频诊断)"),
        ),
        (
            _e("tamper", _X, "camera moved or covered", "遮挡/移位", stateful=True),
            _e("video_loss", _W, "no video signal", "视频丢失", stateful=True),
            _e("storage_full", _W, "recording storage full", "存储已满", stateful=True),
        ),
    ),
    (
        DeviceKind.CHARGER,
        "CH",
        "充电桩",
        (
            _m(
                "status",
                "",
                _S,
                0,
                len(OCPP_STATUSES) - 1,
                "OCPP 1.6 connector status",
                "充电接口状态",
                OCPP_STATUSES,
            ),
            _m(
                "error_code",
                "",
                _S,
                0,
                len(OCPP_ERROR_CODES) - 1,
                "OCPP 1.6 error code",
                "故障代码",
                OCPP_ERROR_CODES,
            ),
            _m("power", "kW", _G, 0, 400, "active power delivered", "输出功率"),
            _m("energy_register", "kWh", _C, 0, 1e9, "energy delivered (register)", "累计电量"),
            _m("voltage", "V", _G, 0, 1000, "supply voltage", "电压"),
            _m("current", "A", _G, 0, 1000, "charging current", "电流"),
            _m("temperature", "°C", _G, -40, 150, "internal temperature", "内部温度"),
        ),
        (
            _e("status_changed", _I, "connector status changed", "状态变化"),
            _e("faulted", _X, "charger reported Faulted", "充电桩故障", stateful=True),
            _e("session_started", _I, "charging session started", "开始充电"),
            _e("session_stopped", _I, "charging session stopped", "结束充电"),
            _e("over_temperature", _W, "temperature above limit", "过温", stateful=True),
        ),
    ),
    (
        DeviceKind.STREETLIGHT,
        "SL",
        "路灯",
        (
            _m("lamp_on", "", _F, 0, 1, "lamp switched on", "开灯"),
            _m("power", "W", _G, 0, 2000, "active power", "功率"),
            _m("lamp_current", "A", _G, 0, 20, "lamp current", "灯电流"),
            _m("ambient_light", "lx", _G, 0, 200_000, "ambient illuminance", "环境照度"),
            _m("burning_hours", "h", _C, 0, 1e6, "hours lit (register)", "累计亮灯时长"),
        ),
        (
            _e("lamp_failure", _W, "lamp on but drawing no current", "灯具故障", stateful=True),
            _e("day_burning", _I, "lamp on in daylight", "白天亮灯", stateful=True),
            _e("flicker", _W, "lamp switching rapidly", "闪烁"),
        ),
    ),
    (
        DeviceKind.WATER_METER,
        "WM",
        "水表",
        (
            _m("volume_register", "m³", _C, 0, 1e8, "cumulative volume (register)", "累计用水量"),
            _m("flow", "m³/h", _G, -1000, 1000, "instantaneous flow (negative: reverse)", "瞬时流量"),
            _m("pressure", "MPa", _G, 0, 2.5, "pipe pressure (building meters)", "管网压力"),
            _m("battery", "%", _G, 0, 100, "battery level", "电池电量"),
            _m("tamper", "", _F, 0, 1, "tamper switch", "防拆开关"),
            _m("reverse_flow", "", _F, 0, 1, "reverse flow detected", "反向流"),
        ),
        (
            _e("tamper", _X, "meter opened or removed", "水表被拆", stateful=True),
            _e("reverse_flow", _W, "water flowing backwards", "反向流", stateful=True),
            _e("battery_low", _W, "battery low", "电池电量低", stateful=True),
        ),
    ),
    (
        DeviceKind.GATEWAY,
        "GW",
        "站点网关",
        (
            _m("uptime", "s", _C, 0, 1e10, "seconds since the gateway started", "运行时长"),
            _m("queue_depth", "", _G, 0, 1e10, "readings waiting in the disk queue", "待发送队列长度"),
            _m("queue_bytes", "B", _G, 0, 1e13, "disk queue size", "队列占用空间"),
            _m("read_total", "", _C, 0, 1e15, "readings read from devices", "累计采集"),
            _m("sent_total", "", _C, 0, 1e15, "readings published", "累计发送"),
            _m("acked_total", "", _C, 0, 1e15, "readings acknowledged by the broker", "累计确认"),
            _m("replayed_total", "", _C, 0, 1e15, "readings sent after an outage", "累计补发"),
            _m(
                "dropped_total",
                "",
                _C,
                0,
                1e15,
                "readings dropped because the disk budget was full",
                "累计丢弃",
            ),
            _m("connector_errors_total", "", _C, 0, 1e15, "connector errors", "累计连接错误"),
            _m("devices_online", "", _G, 0, 1e6, "devices answering", "在线设备数"),
        ),
        (_e("queue_overflow", _W, "disk budget full, oldest readings dropped", "缓存已满，丢弃最旧数据"),),
    ),
)

KINDS: Mapping[DeviceKind, KindSpec] = MappingProxyType(
    {
        kind: KindSpec(
            kind=kind,
            code=code,
            label_zh=label_zh,
            metrics=MappingProxyType({m.name: m for m in metrics}),
            events=MappingProxyType({e.name: e for e in (*events, *_COMMON_EVENTS)}),
        )
        for kind, code, label_zh, metrics, events in _SPECS
    }
)

KIND_BY_CODE: Mapping[str, DeviceKind] = MappingProxyType({spec.code: k for k, spec in KINDS.items()})


def metric_spec(kind: DeviceKind, metric: str) -> MetricSpec | None:
    """The spec of ``metric`` for ``kind``, or None when the kind has no such metric."""
    return KINDS[kind].metrics.get(metric)
