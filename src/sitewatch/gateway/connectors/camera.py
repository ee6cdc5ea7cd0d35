"""Camera health: periodic RTSP, ONVIF or TCP reachability probes (see camera_probe.py).

Each probe gives a sample with ``online`` (1/0) and, when reachable, ``latency`` (ms). After
``offline_after`` failed probes in a row the camera is reported offline; its first good probe
reports it online. Every camera is probed by its own task, so a camera that times out only
delays itself. The ONVIF probe calls GetSystemDateAndTime only (and reports a drifting camera
clock); recording storage, tamper and video-loss alarms are not queried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...contract import DeviceInfo, DeviceKind, Event, Sample, now_ms
from ...i18n import _
from .base import ConnectorConfigError, ConnectorContext, Sink, config_device, parse_config
from .camera_probe import ProbeMode, ProbeResult, probe

log = logging.getLogger(__name__)
KIND = DeviceKind.CAMERA


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """One probed camera."""

    device: str
    host: str
    port: int = 554
    mode: ProbeMode = ProbeMode.AUTO
    path: str = ""
    interval_s: float = 30.0
    timeout_s: float = 3.0
    offline_after: int = 2


class CameraEntry(BaseModel):
    """One camera of a ``type: camera`` entry; unset numbers come from the entry's own."""

    model_config = ConfigDict(extra="forbid")

    device: str
    host: str = Field(min_length=1)  # IP address or name
    probe: ProbeMode = ProbeMode.AUTO
    port: int | None = Field(None, ge=1, le=65535)  # default 554 (RTSP) or 80 (ONVIF)
    path: str = ""
    interval_s: float | None = Field(None, ge=0.01, le=86_400)
    timeout_s: float | None = Field(None, ge=0.01, le=600)
    offline_after: int | None = Field(None, ge=1, le=1000)


class CameraConfig(BaseModel):
    """Options of a ``type: camera`` connector (docs/gateway-connectors.md)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["camera"] = "camera"
    name: str = "camera"
    cameras: list[CameraEntry] = Field(min_length=1)
    interval_s: float = Field(30.0, ge=0.01, le=86_400)
    timeout_s: float = Field(3.0, ge=0.01, le=600)
    offline_after: int = Field(2, ge=1, le=1000)
    max_clock_offset_s: float = Field(60.0, ge=1, le=86_400 * 365)


class CameraConnector:
    """Probes cameras concurrently and reports online state and latency."""

    def __init__(self, name: str, cameras: list[CameraSpec], max_clock_offset_s: float = 60.0) -> None:
        self.name = name
        self.cameras = cameras
        self._counters: Counter[str] = Counter()
        self._online: dict[str, bool | None] = {c.device: None for c in cameras}
        self._drifting: set[str] = set()
        self.max_clock_offset_s = max_clock_offset_s

    @classmethod
    def from_config(cls, spec: Mapping[str, Any], context: ConnectorContext) -> CameraConnector:
        """Build from a ``type: camera`` entry of gateway.yaml (validated by :class:`CameraConfig`)."""
        config = parse_config(CameraConfig, spec)
        cameras: list[CameraSpec] = []
        for i, entry in enumerate(config.cameras):
            mode = entry.probe
            cameras.append(
                CameraSpec(
                    device=config_device(entry.device, context.compound, f"cameras.{i}"),
                    host=entry.host,
                    port=entry.port or (80 if mode is ProbeMode.ONVIF else 554),
                    mode=mode,
                    path=entry.path,
                    interval_s=entry.interval_s or config.interval_s,
                    timeout_s=entry.timeout_s or config.timeout_s,
                    offline_after=entry.offline_after or config.offline_after,
                )
            )
        if len({c.device for c in cameras}) != len(cameras):
            raise ConnectorConfigError(_("cameras: a device is listed twice"))
        return cls(config.name, cameras, config.max_clock_offset_s)

    def devices(self) -> list[DeviceInfo]:
        """Every probed camera."""
        return [
            DeviceInfo(c.device, KIND, c.mode.value if c.mode is not ProbeMode.AUTO else "rtsp")
            for c in self.cameras
        ]

    def counters(self) -> Mapping[str, int]:
        """probes, failures, timeouts, readings, events, clock_drift."""
        keys = ("probes", "failures", "timeouts", "readings", "events", "clock_drift")
        return {k: self._counters[k] for k in keys}

    def online(self) -> Mapping[str, bool | None]:
        """Each camera's last known state (None before its first probe)."""
        return dict(self._online)

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Probe every camera until ``stop`` is set."""
        await asyncio.gather(*(self._watch(c, sink, stop) for c in self.cameras))

    async def _watch(self, cam: CameraSpec, sink: Sink, stop: asyncio.Event) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            try:
                result = await probe(cam.host, cam.port, cam.mode, cam.timeout_s, cam.path)
            except Exception as exc:  # a probe bug must not stop the other cameras
                log.exception(
                    "camera %s: probing %s failed unexpectedly", self.name, cam.device
                )
                result = ProbeResult(False, None, "", f"probe error: {exc}")
            failures = 0 if result.ok else failures + 1
            self._record(cam, result, failures, sink)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, cam.interval_s - (loop.time() - started)))

    def _record(self, cam: CameraSpec, result: ProbeResult, failures: int, sink: Sink) -> None:
        self._counters["probes"] += 1
        values: dict[str, float] = {"online": 1.0 if result.ok else 0.0}
        if result.ok and result.latency_ms is not None:
            values["latency"] = round(min(result.latency_ms, 60_000.0), 3)
            self._check_clock(cam, result)
        else:
            self._counters["failures"] += 1
            self._counters["timeouts"] += int(result.timeout)
            if failures == 1 or failures % 100 == 0:
                log.warning(
                    "camera %s: %s (%s:%d) probe failed: %s",
                    self.name,
                    cam.device,
                    cam.host,
                    cam.port,
                    result.detail,
                )
        self._counters["readings"] += len(values)
        sink.samples([Sample(cam.device, KIND, now_ms(), values)])
        state = self._online[cam.device]
        if result.ok and state is not True:
            self._liveness(cam, sink, True, result)
        elif not result.ok and failures >= cam.offline_after and state is not False:
            self._liveness(cam, sink, False, result)

    def _check_clock(self, cam: CameraSpec, result: ProbeResult) -> None:
        """Warn when an ONVIF camera's clock drifts past ``max_clock_offset_s`` (its recordings' times are off)."""
        offset = result.clock_offset_s
        if offset is None:
            return
        drifting = abs(offset) > self.max_clock_offset_s
        if drifting and cam.device not in self._drifting:
            self._counters["clock_drift"] += 1
            log.warning(
                "camera %s: %s clock is %+.0f s off the gateway's",
                self.name, cam.device, offset,
            )  # fmt: skip
        (self._drifting.add if drifting else self._drifting.discard)(cam.device)

    def _liveness(self, cam: CameraSpec, sink: Sink, online: bool, result: ProbeResult) -> None:
        self._online[cam.device] = online
        self._counters["events"] += 1
        name = "online" if online else "offline"
        log.info("camera %s: %s is %s (%s)", self.name, cam.device, name, result.detail)
        attrs = {"protocol": result.protocol} if online else {"reason": result.detail[:200]}
        if online and result.clock_offset_s is not None:
            attrs["clock_offset_s"] = f"{result.clock_offset_s:.0f}"
        sink.events([Event(cam.device, KIND, now_ms(), name, None, attrs)])
