"""What every connector is to the gateway, and how the gateway builds connectors from configuration.

A connector owns the transport to its devices (Modbus TCP polling, an OCPP central system, camera
probes, a site MQTT broker) and the mapping from that protocol to contract samples and events. It
hands what it produces to a ``Sink``, which the gateway implements by writing to its durable queue;
``Sink`` calls are synchronous, cheap and thread-safe, and never block on the network.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from ...contract import DeviceInfo, Event, Sample, device_id
from ...settings import validation_problems

M = TypeVar("M", bound=BaseModel)

# Connector type name in gateway.yaml → "module:class". The class has a ``from_config`` classmethod.
CONNECTOR_TYPES: dict[str, str] = {
    "modbus": "sitewatch.gateway.connectors.modbus:ModbusConnector",
    "ocpp": "sitewatch.gateway.connectors.ocpp:OcppConnector",
    "camera": "sitewatch.gateway.connectors.camera:CameraConnector",
    "mqtt": "sitewatch.gateway.connectors.mqtt_bridge:MqttBridgeConnector",
    "synthetic": "sitewatch.gateway.connectors.synthetic:SyntheticConnector",  # load generator
    "simulated": "sitewatch.gateway.connectors.simulated:SimulatedConnector",  # simulator LiveSite
}


class ConnectorConfigError(ValueError):
    """A connector's configuration is invalid; the message says which field and what to do."""


def parse_config(model: type[M], spec: Mapping[str, Any]) -> M:
    """A connector's ``connectors:`` entry validated by its pydantic model; ConnectorConfigError
    naming every field in trouble otherwise."""
    try:
        return model.model_validate(dict(spec))
    except ValidationError as exc:
        raise ConnectorConfigError("; ".join(validation_problems(exc, "docs/gateway.md"))) from None


def config_number(
    spec: Mapping[str, Any], key: str, default: float, lo: float, hi: float, where: str
) -> float:
    """``spec[key]`` (or ``default``) as a number in [lo, hi]; ConnectorConfigError naming the field otherwise."""
    value = spec.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConnectorConfigError(
            f"{where}: {key} must be a number in [{lo:g}, {hi:g}], got {value!r} / 数值超出允许范围"
        )
    return float(value)


def config_device(raw: Any, compound: str, where: str) -> str:
    """The contract device id of a configured device name, given with or without its compound prefix."""
    text = str(raw or "")
    local = text[len(compound) + 1 :] if text.startswith(compound + "-") else text
    try:
        return device_id(compound, local)
    except ValueError:
        raise ConnectorConfigError(
            f"{where}: invalid device name {raw!r} (letters, digits, _ . : -) / 设备名称无效（仅限字母、数字及 _ . : -）"
        ) from None


class Sink(Protocol):
    """Where a connector delivers what it read (the gateway's durable queue)."""

    def samples(self, samples: Sequence[Sample]) -> None:
        """Accept readings; returns once they are on disk."""
        ...

    def events(self, events: Sequence[Event]) -> None:
        """Accept events (online/offline, faults, status changes); returns once they are on disk."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What the gateway tells a connector when building it."""

    compound: str  # the gateway's compound: device ids are "<compound>-<local>"
    gateway: str


@runtime_checkable
class Connector(Protocol):
    """One protocol's devices. ``run`` lasts until ``stop`` is set; errors per device are counted
    and logged, never raised (one bad device must not stop the others)."""

    name: str  # the connector's name in the configuration (for logs and counters)

    def devices(self) -> list[DeviceInfo]:
        """Devices this connector serves (listed in the gateway's birth message)."""
        ...

    def counters(self) -> Mapping[str, int]:
        """Monotonic counters, e.g. {"reads": .., "errors": .., "timeouts": .., "rejected": ..}."""
        ...

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Serve the devices until ``stop`` is set, then release sockets and return."""
        ...


def build_connector(spec: Mapping[str, Any], context: ConnectorContext) -> Connector:
    """Build a connector from one ``connectors:`` entry of gateway.yaml (``type`` selects the class)."""
    kind = spec.get("type")
    if kind not in CONNECTOR_TYPES:
        known = ", ".join(sorted(CONNECTOR_TYPES))
        raise ConnectorConfigError(f"unknown connector type {kind!r}; use one of: {known}")
    module_name, _, class_name = CONNECTOR_TYPES[str(kind)].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    connector: Connector = cls.from_config(spec, context)
    return connector
