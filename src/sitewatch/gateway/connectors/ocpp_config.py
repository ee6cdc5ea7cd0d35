"""OCPP connector configuration: the chargers, their credentials, and the per-charger rate limit."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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


def parse_chargers(spec: Mapping[str, Any], context: ConnectorContext, where: str) -> list[ChargerSpec]:
    """The ``chargers:`` of a ``type: ocpp`` entry; raises ConnectorConfigError naming the bad field."""
    entries = spec.get("chargers")
    if not isinstance(entries, list) or not entries:
        raise ConnectorConfigError(
            _("{where}.chargers: list at least one charger (device, ocpp_id)", where=where)
        )
    chargers: list[ChargerSpec] = []
    for i, entry in enumerate(entries):
        at = f"{where}.chargers[{i}]"
        if not isinstance(entry, Mapping):
            raise ConnectorConfigError(
                _("{at}: must be a mapping with device and ocpp_id", at=at)
            )
        device = config_device(entry.get("device"), context.compound, at)
        ocpp_id = str(entry.get("ocpp_id") or device.removeprefix(context.compound + "-"))
        if not ocpp_id.isprintable() or "/" in ocpp_id or len(ocpp_id) > 64:
            raise ConnectorConfigError(
                _("{at}: ocpp_id {ocpp_id} must be printable, without '/', ≤ 64 chars", at=at, ocpp_id=repr(ocpp_id))
            )
        raw_connectors = entry.get("connectors") or {}
        if not isinstance(raw_connectors, Mapping):
            raise ConnectorConfigError(
                _("{at}.connectors: must map connector ids to device names", at=at)
            )
        connectors: dict[int, str] = {}
        for key, value in raw_connectors.items():
            if not str(key).isdigit() or int(key) < 1:
                raise ConnectorConfigError(
                    _("{at}.connectors: connector id {key} must be an integer ≥ 1", at=at, key=repr(key))
                )
            connectors[int(key)] = config_device(value, context.compound, f"{at}.connectors.{key}")
        password = entry.get("password")
        if password is not None and (not isinstance(password, str) or not 16 <= len(password) <= 40):
            raise ConnectorConfigError(
                _("{at}.password: must be 16 to 40 characters (OCPP 1.6 AuthorizationKey)", at=at)
            )
        chargers.append(ChargerSpec(ocpp_id, device, connectors, password))
    ids = [c.ocpp_id for c in chargers]
    if len(set(ids)) != len(ids):
        raise ConnectorConfigError(_("{where}.chargers: an ocpp_id is listed twice", where=where))
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
