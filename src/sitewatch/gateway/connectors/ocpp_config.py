"""OCPP connector configuration: the chargers, their credentials, and the per-charger rate limit."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from websockets.http11 import Request

from ...i18n import _
from .base import ConnectorConfigError, ConnectorContext, config_device


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    """One charge point: its OCPP identity and the device(s) it reports as."""

    ocpp_id: str
    device: str
    connectors: Mapping[int, str] = field(default_factory=dict)  # connector id → device, when split
    password: str | None = None  # OCPP security profile 1: HTTP Basic auth (user = ocpp_id)

    def device_for(self, connector_id: int) -> str:
        """Device of a connector (the charger's own device unless the connector is mapped)."""
        return self.connectors.get(connector_id, self.device)

    @property
    def all_devices(self) -> list[str]:
        """Every device of this charge point."""
        return list(dict.fromkeys([self.device, *self.connectors.values()]))


class ChargerEntry(BaseModel):
    """One charge point of a ``type: ocpp`` entry."""

    model_config = ConfigDict(extra="forbid")

    device: str
    ocpp_id: str | None = None  # default: the device's local name
    connectors: dict[int, str] = Field(default_factory=dict)  # connector id → device, when split
    password: str | None = Field(None, min_length=16, max_length=40)  # OCPP 1.6 AuthorizationKey

    @field_validator("ocpp_id")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and (not value.isprintable() or "/" in value or not 0 < len(value) <= 64):
            raise ValueError(_("must be printable, without '/', 1 to 64 characters"))
        return value

    @field_validator("connectors")
    @classmethod
    def _connector_ids(cls, value: dict[int, str]) -> dict[int, str]:
        if any(key < 1 for key in value):
            raise ValueError(_("connector ids must be integers ≥ 1"))
        return value


class OcppConfig(BaseModel):
    """Options of a ``type: ocpp`` connector (docs/gateway-connectors.md)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["ocpp"] = "ocpp"
    name: str = "ocpp"
    host: str = Field("0.0.0.0", min_length=1)  # address to listen on
    port: int = Field(9000, ge=0, le=65535)  # 0: any free port
    chargers: list[ChargerEntry] = Field(min_length=1)
    heartbeat_interval_s: float = Field(60.0, ge=1, le=86_400)
    rate_limit_per_s: float = Field(5.0, ge=0.01, le=10_000)
    rate_burst: float = Field(20.0, ge=1, le=100_000)
    over_temperature_c: float = Field(70.0, ge=-40, le=150)
    silence_timeout_s: float | None = Field(None, ge=0, le=864_000)  # default: 3 heartbeats
    path: str = "/"  # chargers connect to <path>/<ocpp_id>
    max_message_bytes: int = Field(65_536, ge=1024, le=1_048_576)  # a larger frame closes its connection

    @field_validator("path")
    @classmethod
    def _url_path(cls, value: str) -> str:
        if not value.startswith("/") or not value.isprintable() or "?" in value or "#" in value:
            raise ValueError(_("must be a URL path such as / or /ocpp"))
        return value


def parse_chargers(config: OcppConfig, context: ConnectorContext) -> list[ChargerSpec]:
    """The charge points of a validated ``type: ocpp`` entry; ConnectorConfigError naming the bad one."""
    chargers: list[ChargerSpec] = []
    for i, entry in enumerate(config.chargers):
        at = f"chargers.{i}"
        device = config_device(entry.device, context.compound, at)
        ocpp_id = entry.ocpp_id or device.removeprefix(context.compound + "-")
        connectors = {
            key: config_device(value, context.compound, f"{at}.connectors.{key}")
            for key, value in entry.connectors.items()
        }
        chargers.append(ChargerSpec(ocpp_id, device, connectors, entry.password))
    ids = [c.ocpp_id for c in chargers]
    if len(set(ids)) != len(ids):
        raise ConnectorConfigError(_("chargers: an ocpp_id is listed twice"))
    return chargers


def authorized(spec: ChargerSpec, request: Request) -> bool:
    """Whether the request carries HTTP Basic credentials ``<ocpp_id>:<password>``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    expected = (spec.password or "").encode()
    return user == spec.ocpp_id and hmac.compare_digest(password.encode(), expected)
