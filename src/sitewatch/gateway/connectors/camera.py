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
from typing import Any

from ...contract import DeviceInfo, DeviceKind, Event, Sample, now_ms
from ...i18n import _
from .base import ConnectorConfigError, ConnectorContext, Sink, config_device, config_number
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
        """Build from a ``type: camera`` entry of gateway.yaml."""
        name = str(spec.get("name") or "camera")
        where = f"connectors.{name}"
        entries = spec.get("cameras")
        if not isinstance(entries, list) or not entries:
            raise ConnectorConfigError(
                _("{where}.cameras: list at least one camera (device, host)", where=where)
            )
        interval = config_number(spec, "interval_s", 30, 0.01, 86_400, where)
        timeout = config_number(spec, "timeout_s", 3, 0.01, 600, where)
        offline_after = int(config_number(spec, "offline_after", 2, 1, 1000, where))
        cameras: list[CameraSpec] = []
        for i, entry in enumerate(entries):
            at = f"{where}.cameras[{i}]"
            if not isinstance(entry, Mapping):
                raise ConnectorConfigError(
                    _("{at}: must be a mapping with device and host", at=at)
                )
            device = config_device(entry.get("device"), context.compound, at)
            host = entry.get("host")
            if not isinstance(host, str) or not host:
                raise ConnectorConfigError(
                    _("{at}: host is required (IP address or name)", at=at)
                )
            try:
                mode = ProbeMode(str(entry.get("probe", "auto")))
            except ValueError:
                raise ConnectorConfigError(
                    _("{at}: probe must be auto, rtsp, onvif or tcp, got {probe}", at=at, probe=repr(entry.get('probe')))
                ) from None
            cameras.append(
                CameraSpec(
                    device=device,
                    host=host,
                    port=int(
                        config_number(entry, "port", 80 if mode is ProbeMode.ONVIF else 554, 1, 65535, at)
                    ),
                    mode=mode,
                    path=str(entry.get("path") or ""),
                    interval_s=config_number(entry, "interval_s", interval, 0.01, 86_400, at),
                    timeout_s=config_number(entry, "timeout_s", timeout, 0.01, 600, at),
                    offline_after=int(config_number(entry, "offline_after", offline_after, 1, 1000, at)),
                )
            )
        if len({c.device for c in cameras}) != len(cameras):
            raise ConnectorConfigError(_("{where}.cameras: a device is listed twice", where=where))
        return cls(name, cameras, config_number(spec, "max_clock_offset_s", 60, 1, 86_400 * 365, where))

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
