"""The site gateway's configuration file (``gateway.yaml``): compound, broker, disk queue, connectors.

Load it with :func:`load_config`; every problem is reported as one :class:`GatewayConfigError` whose
message names the offending field (``queue.budget_bytes: ...``), in the reader's language (the catalog).
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..contract import gateway_device, is_code
from ..i18n import _
from ..settings import MqttSettings, validation_problems
from .connectors.base import ConnectorConfigError, ConnectorContext, build_connector, connector_types

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9,
          "T": 10**12, "TB": 10**12, "KI": 1024, "KIB": 1024, "MI": 1024**2, "MIB": 1024**2,
          "GI": 1024**3, "GIB": 1024**3, "TI": 1024**4, "TIB": 1024**4}  # fmt: skip


class GatewayConfigError(ValueError):
    """The gateway configuration is invalid; the message names each offending field."""


def parse_size(value: Any) -> int:
    """Bytes from an integer or a string such as ``"512 MiB"`` or ``"2GB"``."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or a string like '512 MiB'")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match and match.group(2).upper() in _UNITS:
            return int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    raise ValueError(f"{value!r} is not a size; write bytes (1048576) or a string like '512 MiB'")


class SyncMode(StrEnum):
    """How hard the queue pushes each write to disk."""

    NORMAL = "normal"  # survives a process crash (SIGKILL); the last writes may be lost on power loss
    FULL = "full"  # also survives power loss, at a lower write rate


class QueueConfig(BaseModel):
    """The durable on-disk queue between the connectors and the broker."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Path("gateway-queue.db")
    budget_bytes: int = Field(1024**3, ge=16 * 1024)
    batch_rows: int = Field(500, ge=1, le=10_000)  # samples or events per MQTT message
    max_message_bytes: int = Field(256 * 1024, ge=4096, le=1_000_000)
    sync: SyncMode = SyncMode.NORMAL
    replay_readings_per_s: float = Field(0.0, ge=0)  # cap on backlog replay (0: as fast as possible)

    @field_validator("budget_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)


class GatewayConfig(BaseModel):
    """Everything ``gateway.yaml`` holds; see docs/gateway.md."""

    model_config = ConfigDict(extra="forbid")

    compound: str
    gateway: str
    mqtt: MqttSettings = MqttSettings()
    queue: QueueConfig = QueueConfig()
    counters_interval_s: float = Field(60.0, gt=0, le=86_400)
    connect_timeout_s: float = Field(10.0, gt=0, le=300)
    reconnect_max_s: float = Field(30.0, ge=0.1, le=3600)
    drain_timeout_s: float = Field(5.0, ge=0, le=3600)  # on a graceful stop: time to flush the queue
    wait_for_host: bool = False  # hold readings on disk while the central host says it is offline
    connectors: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("compound", "gateway")
    @classmethod
    def _code(cls, value: str) -> str:
        if not is_code(value):
            raise ValueError(
                f"{value!r} is not a valid code: letters, digits, '_' or '-', at most 40, starting "
                "with a letter or digit"
            )
        return value

    @field_validator("connectors")
    @classmethod
    def _connector_specs(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names: set[str] = set()
        types = connector_types()
        for i, spec in enumerate(value):
            if "type" not in spec:
                raise ValueError(f"entry {i} has no 'type'")
            if spec["type"] not in types:
                known = ", ".join(sorted(types))
                raise ValueError(f"entry {i}: unknown connector type {spec['type']!r}; use one of: {known}")
            name = str(spec.get("name", f"{spec['type']}{i}"))
            if name in names:
                raise ValueError(f"entry {i}: connector name {name!r} is used twice")
            names.add(name)
        return value

    @property
    def client_id(self) -> str:
        """MQTT client id: the gateway id unless ``mqtt.client_id`` is given."""
        return self.mqtt.client_id if "client_id" in self.mqtt.model_fields_set else self.gateway

    @property
    def device(self) -> str:
        """Device id under which the gateway reports its own counters (kind ``gateway``)."""
        return gateway_device(self.compound, self.gateway)

    def context(self) -> ConnectorContext:
        """What connectors are told about their gateway."""
        return ConnectorContext(compound=self.compound, gateway=self.gateway)


def _describe(exc: ValidationError) -> str:
    return "\n".join(f"  {problem}" for problem in validation_problems(exc, "docs/gateway.md"))


def parse_config(data: Any, source: str = "gateway.yaml", base_dir: Path | None = None) -> GatewayConfig:
    """Validate already-parsed YAML; relative queue paths are taken from ``base_dir``."""
    if not isinstance(data, dict):
        raise GatewayConfigError(
            _("{source}: the file must hold a mapping (compound: ..., gateway: ...)", source=source)
        )
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise GatewayConfigError(_("{source}: invalid configuration:\n{problems}", source=source, problems=_describe(exc))) from None
    if base_dir is not None and not config.queue.path.is_absolute():
        config.queue.path = base_dir / config.queue.path
    return config


def load_config(path: Path) -> GatewayConfig:
    """Read and validate ``gateway.yaml``; raise GatewayConfigError with the reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GatewayConfigError(_("{path}: cannot read the file: {strerror}", path=path, strerror=exc.strerror)) from None
    if len(text) > MAX_CONFIG_CHARS:
        raise GatewayConfigError(
            _("{path}: {size} characters is more than a gateway configuration holds ({limit})",
              path=path, size=len(text), limit=MAX_CONFIG_CHARS)
        )  # fmt: skip
    try:
        data = yaml.load(text, Loader=ConfigLoader)  # a SafeLoader: see ConfigLoader
    except yaml.YAMLError as exc:
        raise GatewayConfigError(_("{path}: not valid YAML: {exc}", path=path, exc=exc)) from None
    return parse_config(data, str(path), path.parent)


MAX_CONFIG_CHARS = 1_048_576
MAX_CONFIG_NODES = 100_000  # values once every alias is expanded


class ConfigLoader(yaml.SafeLoader):
    """YAML as ``gateway.yaml`` is read: PyYAML's safe loader, except that only ``true``/``false``
    are booleans (YAML 1.2: a key ``on:`` or ``yes:`` stays the text, as a JSON field name in an
    MQTT mapping must), and a document whose aliases expand to more than MAX_CONFIG_NODES values
    is refused (a few lines of nested aliases can otherwise expand to billions)."""

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's own class attribute, replaced for this loader
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_CONFIG_NODES:
            raise yaml.YAMLError(f"its aliases expand to more than {MAX_CONFIG_NODES} values")
        return node


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z"), list("tTfF")
)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values in ``node`` with its aliases expanded (each shared node counted once per use)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = MAX_CONFIG_NODES + 1  # a node inside itself (a recursive alias): too big
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, sizes) for item in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = size = min(size, MAX_CONFIG_NODES + 1)
    return size


def build_connectors(config: GatewayConfig) -> list[Any]:
    """Build every connector of ``config``; raise GatewayConfigError naming the failing entry."""
    built = []
    for i, spec in enumerate(config.connectors):
        try:
            built.append(build_connector(spec, config.context()))
        except ConnectorConfigError as exc:
            raise GatewayConfigError(f"connectors.{i} (type {spec.get('type')!r}): {exc}") from None
        except (ImportError, AttributeError) as exc:
            raise GatewayConfigError(
                f"connectors.{i} (type {spec.get('type')!r}): connector not available: {exc}"
            ) from None
    return built


EXAMPLE = """\
# gateway.yaml: one site gateway of one compound (see docs/gateway.md)
compound: "330102-0007"            # compound code (小区编码)
gateway: "330102-0007-GW01"        # gateway id (网关编号); also its MQTT client id
mqtt:
  url: mqtt://127.0.0.1:1883       # mqtts://host:8883 in production
  # username: gw-330102-0007
  # password: "change me"
  # ca_file: /etc/sitewatch/ca.crt
  # cert_file: /etc/sitewatch/gw.crt
  # key_file: /etc/sitewatch/gw.key
  max_inflight: 200                # QoS 1 messages awaiting PUBACK at once
  # protocol: "3.1.1"              # only for a broker without MQTT 5 (default "5")
queue:
  path: gateway-queue.db           # SQLite (WAL) file, relative to this file
  budget_bytes: 1 GiB              # oldest readings are dropped beyond this
  batch_rows: 500                  # samples per MQTT message
counters_interval_s: 60            # how often counters are published and logged
connectors:
  - type: synthetic                # built-in load generator; real ones: modbus, ocpp, camera, mqtt
    name: demo-meters
    kind: water_meter
    devices: 5
    interval_s: 1.0
"""
