"""How the gateway builds its connectors from configuration, and the helpers its own connectors share.

The connector interface itself (``Connector``, ``Sink``, ``ConnectorContext``) lives in
:mod:`sitewatch.edge.connector`, where packages that provide connectors (the simulators) can reach
it without importing the gateway.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import time
from collections.abc import Mapping
from typing import Any

from ...contract import device_id
from ...edge.connector import (
    ENTRY_POINT_GROUP,
    Connector,
    ConnectorConfigError,
    ConnectorContext,
    Sink,
    parse_config,
)
from ...i18n import _

__all__ = [
    "CONNECTOR_TYPES",
    "Connector",
    "ConnectorConfigError",
    "ConnectorContext",
    "Sink",
    "TokenBucket",
    "build_connector",
    "config_device",
    "connector_types",
    "parse_config",
]

# The gateway's own connector types in gateway.yaml → "module:class" (the class has a
# ``from_config`` classmethod). Other packages add theirs through the entry point group.
CONNECTOR_TYPES: dict[str, str] = {
    "modbus": "sitewatch.gateway.connectors.modbus:ModbusConnector",
    "ocpp": "sitewatch.gateway.connectors.ocpp:OcppConnector",
    "camera": "sitewatch.gateway.connectors.camera:CameraConnector",
    "mqtt": "sitewatch.gateway.connectors.mqtt_bridge:MqttBridgeConnector",
    "synthetic": "sitewatch.gateway.connectors.synthetic:SyntheticConnector",  # load generator
}


def connector_types() -> dict[str, str]:
    """Every connector type this installation offers: the gateway's own and the installed packages'."""
    provided = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return {**provided, **CONNECTOR_TYPES}


def config_device(raw: Any, compound: str, where: str) -> str:
    """The contract device id of a configured device name, given with or without its compound prefix."""
    text = str(raw or "")
    local = text[len(compound) + 1 :] if text.startswith(compound + "-") else text
    try:
        return device_id(compound, local)
    except ValueError:
        raise ConnectorConfigError(
            _("{where}: invalid device name {raw} (letters, digits, _ . : -)", where=where, raw=repr(raw))
        ) from None


def build_connector(spec: Mapping[str, Any], context: ConnectorContext) -> Connector:
    """Build a connector from one ``connectors:`` entry of gateway.yaml (``type`` selects the class)."""
    kind = spec.get("type")
    types = connector_types()
    if kind not in types:
        known = ", ".join(sorted(types))
        raise ConnectorConfigError(f"unknown connector type {kind!r}; use one of: {known}")
    module_name, _, class_name = types[str(kind)].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    connector: Connector = cls.from_config(spec, context)
    return connector


class TokenBucket:
    """At most ``rate`` calls per second on average, with bursts of ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """Whether one more call is allowed now."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
