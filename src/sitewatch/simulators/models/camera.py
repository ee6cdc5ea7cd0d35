"""Security cameras: health check, bitrate, frame rate, storage and scene statistics."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...contract import DeviceKind
from ..clock import MS_PER_DAY, local_day, people_activity, solar_elevation
from ..site import Device
from ..view import FaultView
from .base import F64, I64, KindModel, Output

OVERWRITE_SHARE = 0.65  # recorders that overwrite the oldest footage (free space near zero)


def _night_noise(day: I64, seed: F64) -> F64:
    """A factor per camera and night (0.75-1.35): how much rain, snow or insects the IR light shows."""
    x = np.sin(day.astype(np.float64) * 12.9898 + seed * 78.233) * 43758.5453
    return np.asarray(0.75 + 0.6 * (x - np.floor(x)), dtype=np.float64)


class CameraModel(KindModel):
    """Health check every 60 s (ONVIF or vendor heartbeat) with the camera's stream statistics.

    H.264 cameras stream 2-4 Mbit/s, steady by day, 1.3-1.9x higher at night in infrared (noise);
    H.265 cameras (40%) about half that, far more variable, and 0.7-1.6x at night. ``scene_match``
    is the camera's own video-quality diagnosis: how closely the picture matches its reference
    scene (about 86-96% by day, lower in the monochrome infrared picture at night).
    """

    kind = DeviceKind.CAMERA
    metrics = ("online", "bitrate", "frame_rate", "storage_free", "latency", "scene_match")

    @staticmethod
    def interval_for(device: Device) -> int:
        """Every 60 s."""
        return 60

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rng, n = self.rng, self.n
        self.h265 = rng.random(n) < 0.4
        base = rng.choice([2048.0, 3072.0, 4096.0], n) * rng.uniform(0.9, 1.1, n)
        self.bitrate = np.where(self.h265, base * rng.uniform(0.45, 0.6, n), base)
        self.sigma = np.where(self.h265, 0.18, 0.06)
        self.night_factor = np.where(self.h265, rng.uniform(0.7, 1.6, n), rng.uniform(1.3, 1.9, n))
        self.fps = rng.choice([20.0, 25.0, 25.0, 30.0], n)
        self.overwrite = rng.random(n) < OVERWRITE_SHARE
        self.storage = np.where(self.overwrite, rng.uniform(0.5, 3.0, n), rng.uniform(8.0, 30.0, n))
        self.phase = rng.uniform(0.0, 2.0 * np.pi, n)
        self.scene_day = rng.uniform(86.0, 96.0, n)
        self.scene_night = rng.uniform(68.0, 86.0, n)
        self.seed = rng.uniform(0.0, 100.0, n)

    def describe(self) -> dict[str, F64]:
        """Codec (1: H.265) and recorder mode (1: overwrite)."""
        return {"h265": self.h265.astype(np.float64), "overwrite": self.overwrite.astype(np.float64)}

    def generate(self, rows: I64, times: I64, faults: FaultView) -> Output:
        """Bitrate with motion and the infrared night; faults blank, slow, fill or turn the camera."""
        rng = self.rng
        shape = times.shape
        night = solar_elevation(times, self.site.latitude, self.site.longitude) < -3.0
        motion = people_activity(times) * self.ctx.occupancy(times)
        ir = np.where(
            night, self.night_factor[rows, None] * _night_noise(local_day(times), self.seed[rows, None]), 1.0
        )
        for i, m, span in faults.spans("ir_surge"):
            ir[i] = np.where(m & night[i], ir[i] * float(span.detail.get("factor", "2")), ir[i])
        bitrate = self.bitrate[rows, None] * (0.8 + 0.12 * motion) * ir
        bitrate = bitrate * rng.lognormal(0.0, 1.0, shape) ** self.sigma[rows, None]
        scene = np.where(night, self.scene_night[rows, None], self.scene_day[rows, None])
        scene = scene + rng.normal(0.0, 1.5, shape) - 3.0 * np.clip(motion - 1.0, 0.0, 2.0)

        failed = faults.mask("camera_blip", "building_power_cut")
        for i, m, f in faults.faults("camera_offline"):
            share = f.label.magnitude / 100.0
            lost = m & (rng.random(times.shape[1]) < share)
            failed[i] |= lost
            faults.visible(f, i, lost)
        fps = self.fps[rows, None] - np.where(rng.random(shape) < 0.02, rng.integers(1, 4, shape), 0)
        fps = fps.astype(np.float64)
        for i, m, f in faults.faults("video_loss"):
            loss = f.label.magnitude / 100.0
            if loss >= 1.0:
                fps[i] = np.where(m, 0.0, fps[i])
                bitrate[i] = np.where(m, rng.uniform(16.0, 64.0, times.shape[1]), bitrate[i])
            else:
                kept = np.clip(1.0 - loss * rng.uniform(0.6, 1.4, times.shape[1]), 0.0, 1.0)
                fps[i] = np.where(m, np.round(fps[i] * kept), fps[i])
                bitrate[i] = np.where(m, bitrate[i] * (0.5 + 0.5 * kept), bitrate[i])
        for i, m, f in faults.faults("camera_tamper"):
            change = f.label.magnitude
            scene[i] = np.where(m, np.clip(scene[i] * (1.0 - change / 100.0), 0.0, 100.0), scene[i])
            if f.label.detail.get("mode") == "covered":  # a still, dark picture needs a fraction of the bits
                bitrate[i] = np.where(m, bitrate[i] * rng.uniform(0.08, 0.15, times.shape[1]), bitrate[i])

        week = 2.0 * np.pi * times / (7 * MS_PER_DAY)
        wave = np.where(self.overwrite[rows, None], 0.4, 1.5) * np.sin(week + self.phase[rows, None])
        storage = np.clip(self.storage[rows, None] + wave + rng.normal(0.0, 0.2, shape), 0.3, 100.0)
        for i, m, f in faults.faults("storage_full"):
            days = (times[i] - f.start_ms) / MS_PER_DAY
            level = np.clip(storage[i] - f.label.magnitude * days, 0.0, 100.0)
            storage[i] = np.where(m, level, storage[i])
            full = np.flatnonzero(m & (level <= 0.0))
            if full.size:
                faults.condition(f, int(times[i, full[0]]))
        latency = rng.lognormal(np.log(18.0), 0.35, shape)
        latency = np.where(rng.random(shape) < 0.005, rng.uniform(200.0, 1500.0, shape), latency)
        nan = np.nan
        values = {
            "online": np.where(failed, 0.0, 1.0),
            "bitrate": np.where(failed, nan, np.round(np.clip(bitrate, 0.0, 100_000.0), 0)),
            "frame_rate": np.where(failed, nan, np.clip(fps, 0.0, 120.0)),
            "storage_free": np.where(failed, nan, np.round(storage, 1)),
            "latency": np.where(failed, nan, np.round(latency, 1)),
            "scene_match": np.where(failed, nan, np.round(np.clip(scene, 0.0, 100.0), 1)),
        }
        return Output(values)
