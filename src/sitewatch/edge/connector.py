"""What every connector is to the gateway, and how a package provides one.

A connector owns the transport to its devices (Modbus TCP polling, an OCPP central system, camera
probes, a site MQTT broker, simulated devices) and the mapping from that protocol to contract
samples and events. It hands what it produces to a ``Sink``, which the gateway implements by
writing to its durable queue; ``Sink`` calls are synchronous, cheap and thread-safe, and never
block on the network.

The gateway ships its own connector types; other packages add types through the
``sitewatch.connectors`` entry point group (``name = "module:Class"``, the class having a
``from_config(spec, context)`` classmethod), as the simulators do for ``simulated``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from ..contract import DeviceInfo, Event, Sample
from ..settings import validation_problems

M = TypeVar("M", bound=BaseModel)

ENTRY_POINT_GROUP = "sitewatch.connectors"


class ConnectorConfigError(ValueError):
    """A connector's configuration is invalid; the message says which field and what to do."""


def parse_config(model: type[M], spec: Mapping[str, Any]) -> M:
    """A connector's ``connectors:`` entry validated by its pydantic model; ConnectorConfigError
    naming every field in trouble otherwise."""
    try:
        return model.model_validate(dict(spec))
    except ValidationError as exc:
        raise ConnectorConfigError("; ".join(validation_problems(exc, "docs/gateway.md"))) from None


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
