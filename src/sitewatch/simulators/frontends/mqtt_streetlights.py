"""Simulated streetlight controllers that speak MQTT to the compound's own broker (paho-mqtt 2.x).

Each controller has its own MQTT connection with a retained last will: ``<prefix>/<id>/status``
is ``online`` while it is connected and ``offline`` once the broker loses it. Telemetry goes to
``<prefix>/<id>/telemetry`` (retained, with its timestamp) as JSON: ``{"ts": ms, "on": bool, "watts": W, "amps": A, "lux": lx,
"hours": h}``. The lamp is on from dusk to dawn; a ``lamp_failure`` fault keeps it on without
current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)

CST = timedelta(hours=8)  # China Standard Time: the lamps follow local dusk and dawn


# contract metric → JSON field of the controllers' telemetry
FIELDS: Mapping[str, str] = {
    "lamp_on": "on",
    "power": "watts",
    "lamp_current": "amps",
    "ambient_light": "lux",
    "burning_hours": "hours",
}


def topic_prefix(compound: str) -> str:
    """The site-broker topic prefix of a compound's streetlights."""
    return f"site/{compound}/streetlight"


def bridge_topics(compound: str) -> list[dict[str, Any]]:
    """The ``topics:`` of a gateway ``type: mqtt`` entry that reads these controllers."""
    prefix = topic_prefix(compound)
    return [
        {
            "topic": f"{prefix}/+/telemetry",
            "kind": "streetlight",
            "device": "{0}",
            "fields": {field: metric for metric, field in FIELDS.items()},
            "timestamp_field": "ts",
        },
        {"topic": f"{prefix}/+/status", "kind": "streetlight", "device": "{0}", "status": True},
    ]


@dataclass
class StreetlightModel:
    """One lamp: its wattage, its burning-hours register and an optional fault."""

    wattage_w: float = 60.0
    burning_hours: float = 1000.0
    fault: str | None = None  # "lamp_failure": on but drawing no current

    def readings(self, when: datetime, step_s: float) -> dict[str, Any]:
        """Telemetry at ``when`` (UTC), after ``step_s`` seconds since the previous report."""
        local = when + CST
        hour = local.hour + local.minute / 60
        daylight = max(0.0, math.sin(math.pi * (hour - 6) / 12.5))  # about 06:00 to 18:30
        lux = round(60_000 * daylight**1.5, 1)
        on = lux < 20
        if on:
            self.burning_hours += step_s / 3600
        failed = self.fault == "lamp_failure"
        watts = self.wattage_w * 0.97 if on and not failed else 0.0
        return {
            "ts": int(when.timestamp() * 1000),
            "on": on,
            "watts": round(watts, 1),
            "amps": round(watts / 220, 3),
            "lux": lux,
            "hours": round(self.burning_hours, 3),
        }


class StreetlightController:
    """One simulated controller: its own MQTT connection, last will and telemetry loop."""

    def __init__(
        self, host: str, port: int, compound: str, local: str, model: StreetlightModel | None = None
    ) -> None:
        self.host, self.port = host, port
        self.local = local
        self.model = model or StreetlightModel()
        prefix = topic_prefix(compound)
        self.telemetry_topic = f"{prefix}/{local}/telemetry"
        self.status_topic = f"{prefix}/{local}/status"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{compound}-{local}")
        self.client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.sent = 0
        self.announced = False  # whether telemetry was sent since the last connect

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.publish(self.status_topic, b"online", qos=1, retain=True)
            self.announced = False

    def start(self) -> None:
        """Connect (in paho's network thread; reconnects by itself)."""
        self.client.connect_async(self.host, self.port, keepalive=15)
        self.client.loop_start()

    def report(self, when: datetime, step_s: float) -> None:
        """Publish one telemetry message from the controller's own lamp model."""
        self.publish(self.model.readings(when, step_s))

    def report_values(self, values: Mapping[str, float], ts_ms: int) -> None:
        """Publish one telemetry message carrying contract metric values (from a simulator's model)."""
        body: dict[str, Any] = {"ts": ts_ms}
        for metric, value in values.items():
            if metric in FIELDS:
                body[FIELDS[metric]] = bool(value) if metric == "lamp_on" else value
        self.publish(body)

    def publish(self, body: Mapping[str, Any]) -> None:
        """Publish a telemetry payload (QoS 1, retained: a gateway that subscribes later gets the last one)."""
        self.client.publish(self.telemetry_topic, orjson.dumps(body), qos=1, retain=True)
        self.sent += 1

    def stop(self, graceful: bool = True) -> None:
        """Disconnect; ``graceful`` publishes ``offline`` first (else the broker's will does)."""
        if graceful and self.client.is_connected():
            with contextlib.suppress(RuntimeError, ValueError):
                self.client.publish(self.status_topic, b"offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()


class StreetlightFleet:
    """A compound's simulated streetlight controllers, reporting every ``interval_s``."""

    def __init__(
        self,
        host: str,
        port: int,
        compound: str,
        lamps: Sequence[str] | Mapping[str, StreetlightModel],
        interval_s: float = 10.0,
    ) -> None:
        models = lamps if isinstance(lamps, Mapping) else {name: StreetlightModel() for name in lamps}
        self.controllers = [StreetlightController(host, port, compound, n, m) for n, m in models.items()]
        self.interval_s = interval_s

    async def run(self, stop: asyncio.Event) -> None:
        """Connect every controller and report until ``stop`` is set."""
        for controller in self.controllers:
            controller.start()
        try:
            while not stop.is_set():
                now = datetime.now(UTC)
                for controller in self.controllers:
                    if controller.client.is_connected():
                        controller.report(now, self.interval_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval_s)
        finally:
            for controller in self.controllers:
                controller.stop()
