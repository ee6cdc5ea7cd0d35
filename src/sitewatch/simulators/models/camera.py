"""Security cameras: heartbeat, bitrate, frame rate and storage; offline, video loss, storage full."""

from __future__ import annotations

import numpy as np

from ...contract import DeviceKind
from ..clock import people_activity, solar_elevation
from ..faults import FaultView
from ..site import Device
from .base import I64, KindModel, Output


class CameraModel(KindModel):
    """Health check every 60 s (ONVIF or vendor heartbeat)."""

    kind = DeviceKind.CAMERA
    metrics = ("online", "bitrate", "frame_rate", "storage_free", "latency")

    @staticmethod
    def interval_for(device: Device) -> int:
        """Every 60 s."""
        return 60

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        rng, n = self.rng, self.n
        self.bitrate = rng.choice([2048.0, 3072.0, 4096.0], n) * rng.uniform(0.9, 1.1, n)
        self.fps = rng.choice([20.0, 25.0, 25.0, 30.0], n)
        self.storage = rng.uniform(8.0, 30.0, n)  # NVR in overwrite mode keeps a steady margin free
        self.phase = rng.uniform(0.0, 2.0 * np.pi, n)

    def generate(self, rows: I64, times: I64, faults: FaultView) -> Output:
        """Bitrate rises with motion and with infrared noise at night; faults blank or fill the camera."""
        rng = self.rng
        shape = times.shape
        offline = faults.mask("camera_offline", rows, times)
        lost = faults.mask("video_loss", rows, times)
        full = faults.mask("storage_full", rows, times)
        covered = faults.mask("camera_tamper", rows, times)
        night = solar_elevation(times, self.site.latitude, self.site.longitude) < -3.0
        motion = people_activity(times)
        bitrate = self.bitrate[rows, None] * (0.8 + 0.12 * motion) * np.where(night, 1.2, 1.0)
        bitrate = bitrate * rng.lognormal(0.0, 0.05, shape)
        # A covered lens sees a still, dark picture: the encoder needs a fraction of the usual bitrate.
        bitrate = np.where(covered, bitrate * rng.uniform(0.08, 0.15, shape), bitrate)
        bitrate = np.where(lost, rng.uniform(16.0, 64.0, shape), bitrate)
        fps = self.fps[rows, None] - np.where(rng.random(shape) < 0.02, rng.integers(1, 4, shape), 0)
        fps = np.where(lost, 0.0, fps)
        week = 2.0 * np.pi * times / (7 * 86_400_000)
        storage = self.storage[rows, None] + 1.5 * np.sin(week + self.phase[rows, None])
        storage = np.where(full, 0.0, np.clip(storage + rng.normal(0.0, 0.2, shape), 0.5, 100.0))
        latency = rng.lognormal(np.log(18.0), 0.35, shape)
        latency = np.where(rng.random(shape) < 0.005, rng.uniform(200.0, 1500.0, shape), latency)
        nan = np.nan
        values = {
            "online": np.where(offline, 0.0, 1.0),
            "bitrate": np.where(offline, nan, np.round(bitrate, 0)),
            "frame_rate": np.where(offline, nan, fps.astype(np.float64)),
            "storage_free": np.where(offline, nan, np.round(storage, 1)),
            "latency": np.where(offline, nan, np.round(latency, 1)),
        }
        return Output(values)
