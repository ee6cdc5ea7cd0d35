"""One simulated compound behind real protocols, and the gateway configuration that reads it.

:class:`SimulatedSite` steps a :class:`~sitewatch.simulators.live.LiveSite` in real time and
exposes every device the way the real one would be reached:

- elevators and water meters: pymodbus TCP servers, one per building (its RS485-to-Ethernet
  gateway), one unit id per device, registers as in ``REGISTER_MAPS``;
- chargers: OCPP 1.6J charge points that connect to the gateway's central system;
- cameras: an RTSP service per camera (down while the model says the camera is offline);
- streetlights: MQTT controllers on the site broker, each with its own last will.

:meth:`SimulatedSite.gateway_config` returns the matching ``gateway.yaml`` content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ...contract import DeviceKind, now_ms
from ...edge.modbus_registers import RegisterSpec
from ...ports import free_port
from ..live import LiveSite
from ..site import Device, Site
from .modbus_devices import REGISTER_MAPS, ModbusDeviceServer, ModbusUnit, register_map_config
from .mqtt_streetlights import StreetlightController, bridge_topics
from .ocpp_chargers import ChargerDevice
from .onvif_cameras import OnvifCamera
from .rtsp_cameras import RtspCamera

log = logging.getLogger(__name__)
MAX_UNITS = 240  # unit ids per Modbus server (1..247 are valid)


@dataclass
class SiteStats:
    """What the simulated devices have served so far."""

    steps: int = 0
    samples: int = 0
    modbus_reads: int = 0
    ocpp_reports: int = 0
    camera_requests: int = 0
    mqtt_messages: int = 0
    chargers_connected: int = 0


@dataclass
class SiteOptions:
    """Where the simulated devices listen and how often the gateway should read them."""

    host: str = "127.0.0.1"
    site_broker: str = "mqtt://127.0.0.1:1883"
    ocpp_port: int = 0  # 0: pick a free port
    modbus_poll_s: float = 10.0
    camera_interval_s: float = 30.0
    camera_probe: str = "rtsp"  # what the simulated cameras serve and the gateway probes: rtsp or onvif
    charger_interval_s: float = 10.0
    step_s: float = 1.0
    kinds: tuple[DeviceKind, ...] = field(
        default=(
            DeviceKind.ELEVATOR,
            DeviceKind.WATER_METER,
            DeviceKind.CHARGER,
            DeviceKind.CAMERA,
            DeviceKind.STREETLIGHT,
        )
    )


class SimulatedSite:
    """A compound's simulated devices, each behind its real protocol."""

    def __init__(self, live: LiveSite, options: SiteOptions | None = None) -> None:
        self.live = live
        self.site: Site = live.site
        self.options = options or SiteOptions()
        self.latest: dict[str, dict[str, float]] = {}
        self.stats = SiteStats()
        opts = self.options
        self.cameras: dict[str, tuple[Device, RtspCamera | OnvifCamera]] = {}
        self.lights: dict[str, StreetlightController] = {}
        self.step()  # the first step gives every device its current values (and shows which it has)
        self.ocpp_port = opts.ocpp_port or free_port()
        wanted = [d for d in self.site.devices if d.kind in opts.kinds]
        self.modbus: list[tuple[ModbusDeviceServer, dict[int, Device]]] = []
        groups: dict[str, list[Device]] = {}
        for d in wanted:
            if d.kind in REGISTER_MAPS:
                groups.setdefault(d.building_no or "site", []).append(d)
        for devices in groups.values():
            for start in range(0, len(devices), MAX_UNITS):
                chunk = devices[start : start + MAX_UNITS]
                units = {i + 1: d for i, d in enumerate(chunk)}
                server = ModbusDeviceServer(
                    [
                        ModbusUnit(u, self.registers_of(d), self._values_of(d.device))
                        for u, d in units.items()
                    ],
                    host=opts.host,
                    port=free_port(),
                )
                self.modbus.append((server, units))
        self.cameras = {d.device: (d, self._camera(opts)) for d in wanted if d.kind is DeviceKind.CAMERA}
        url = f"ws://{opts.host}:{self.ocpp_port}"
        self.chargers = {
            d.device: (
                d,
                ChargerDevice(url, d.local, interval_s=opts.charger_interval_s, source=self._maybe(d.device)),
            )
            for d in wanted
            if d.kind is DeviceKind.CHARGER
        }
        broker = urlsplit(opts.site_broker)
        self.lights = {
            d.device: StreetlightController(
                broker.hostname or "127.0.0.1", broker.port or 1883, self.site.compound, d.local
            )
            for d in wanted
            if d.kind is DeviceKind.STREETLIGHT
        }

    def registers_of(self, device: Device) -> tuple[RegisterSpec, ...]:
        """The registers a simulated device has: its kind's map, less metrics its model lacks
        (a household water meter has no pressure sensor)."""
        have = self.latest.get(device.device)
        specs = REGISTER_MAPS[device.kind]
        return tuple(s for s in specs if have is None or s.metric in have) or tuple(specs)

    def map_name(self, device: Device) -> str:
        """Name of the device's register map in gateway.yaml (kind, plus the metrics it lacks)."""
        missing = [s.metric for s in REGISTER_MAPS[device.kind] if s not in self.registers_of(device)]
        return device.kind.value + "".join(f"_no_{m}" for m in missing)

    @staticmethod
    def _camera(opts: SiteOptions) -> RtspCamera | OnvifCamera:
        if opts.camera_probe == "onvif":
            return OnvifCamera(opts.host, free_port())
        return RtspCamera(opts.host, free_port())

    def _values_of(self, device: str) -> Callable[[], Mapping[str, float]]:
        return lambda: self.latest.get(device, {})

    def _maybe(self, device: str) -> Callable[[], Mapping[str, float] | None]:
        return lambda: self.latest.get(device)

    def device_count(self) -> dict[str, int]:
        """Simulated devices per protocol (camera: RTSP or ONVIF, as configured)."""
        return {
            "modbus": sum(len(units) for _, units in self.modbus),
            "ocpp": len(self.chargers),
            "camera": len(self.cameras),
            "mqtt": len(self.lights),
        }

    def gateway_config(self, broker: str, queue_path: str | Path = "gateway-queue.db") -> dict[str, Any]:
        """``gateway.yaml`` content for a gateway reading these simulated devices."""
        opts = self.options
        compound = self.site.compound
        connectors: list[dict[str, Any]] = []
        if self.modbus:
            devices = [
                {
                    "device": d.local,
                    "kind": d.kind.value,
                    "host": opts.host,
                    "port": server.port,
                    "unit": unit,
                    "map": self.map_name(d),
                }
                for server, units in self.modbus
                for unit, d in units.items()
            ]
            maps = {
                self.map_name(d): register_map_config(self.registers_of(d))
                for _, units in self.modbus
                for d in units.values()
            }
            connectors.append(
                {
                    "type": "modbus",
                    "name": "modbus",
                    "poll_interval_s": opts.modbus_poll_s,
                    "timeout_s": 2.0,
                    "backoff_max_s": 300.0,
                    "offline_after": 2,
                    "connections_per_endpoint": 4,  # a building's RS485 gateway takes few clients
                    "flag_events": {
                        "elevator": {"entrapment": "entrapment"},
                        "water_meter": {"tamper": "tamper", "reverse_flow": "reverse_flow"},
                    },
                    "register_maps": dict(sorted(maps.items())),
                    "devices": devices,
                }
            )
        if self.chargers:
            connectors.append(
                {
                    "type": "ocpp",
                    "name": "ocpp",
                    "host": opts.host,
                    "port": self.ocpp_port,
                    "heartbeat_interval_s": 60,
                    "rate_limit_per_s": 5,
                    "rate_burst": 20,
                    "chargers": [{"device": d.local, "ocpp_id": d.local} for d, _ in self.chargers.values()],
                }
            )
        if self.cameras:
            connectors.append(
                {
                    "type": "camera",
                    "name": "cameras",
                    "interval_s": opts.camera_interval_s,
                    "timeout_s": 3.0,
                    "offline_after": 2,
                    "cameras": [
                        {
                            "device": d.local,
                            "host": opts.host,
                            "port": cam.port,
                            "probe": opts.camera_probe,
                            "path": "/onvif/device_service" if opts.camera_probe == "onvif" else "/stream1",
                        }
                        for d, cam in self.cameras.values()
                    ],
                }
            )
        if self.lights:
            topics = bridge_topics(compound)
            topics[0]["devices"] = [c.local for c in self.lights.values()]
            connectors.append(
                {
                    "type": "mqtt",
                    "name": "streetlights",
                    "broker": opts.site_broker,
                    "client_id": f"sitewatch-{self.site.gateway}-streetlights",
                    "offline_after_s": 600,
                    "topics": topics,
                }
            )
        return {
            "compound": compound,
            "gateway": self.site.gateway,
            "mqtt": {"url": broker},
            "queue": {"path": str(queue_path)},
            "connectors": connectors,
        }

    def step(self) -> None:
        """Advance the compound's models to now and hand the new values to the protocol fronts."""
        samples, _events = self.live.step(now_ms())
        self.stats.steps += 1
        self.stats.samples += len(samples)
        fresh: set[str] = set()
        for sample in samples:
            current = self.latest.setdefault(sample.device, {})
            current.update(sample.values)
            if sample.device in self.lights:
                fresh.add(sample.device)
            elif sample.device in self.cameras:
                _, camera = self.cameras[sample.device]
                camera.available = current.get("online", 1.0) >= 0.5
                camera.delay_s = min(current.get("latency", 0.0), 500.0) / 1000
        for device, light in self.lights.items():
            # a controller reports when its lamp has news, and right after it (re)connects
            if light.client.is_connected() and (device in fresh or not light.announced):
                light.report_values(self.latest.get(device, {}), now_ms())
                light.announced = True

    def _refresh_stats(self) -> None:
        s = self.stats
        s.modbus_reads = sum(u.reads for server, _ in self.modbus for u in server.units.values())
        s.ocpp_reports = sum(c.sent for _, c in self.chargers.values())
        s.chargers_connected = sum(c.connected for _, c in self.chargers.values())
        s.camera_requests = sum(cam.requests for _, cam in self.cameras.values())
        s.mqtt_messages = sum(c.sent for c in self.lights.values())

    async def start(self) -> None:
        """Start every device's server or client (chargers start in :meth:`run`)."""
        for server, _ in self.modbus:
            await server.start()
        for _, camera in self.cameras.values():
            await camera.start()
        for light in self.lights.values():
            light.start()

    async def run(self, stop: asyncio.Event, tick: Callable[[SiteStats], None] | None = None) -> SiteStats:
        """Serve until ``stop`` is set (call :meth:`start` first); ``tick`` sees the stats every step."""
        chargers = [asyncio.create_task(c.run(stop)) for _, c in self.chargers.values()]
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.options.step_s)
                self.step()
                self._refresh_stats()
                if tick is not None:
                    tick(self.stats)
        finally:
            await asyncio.gather(*chargers, return_exceptions=True)
            await self.close()
        return self.stats

    async def close(self) -> None:
        """Stop every server and client."""
        for server, _ in self.modbus:
            await server.stop()
        for _, camera in self.cameras.values():
            await camera.stop()
        for light in self.lights.values():
            light.stop()
        self._refresh_stats()
