"""Behaviour models, one per simulated device kind."""

from collections.abc import Mapping

from ...contract import DeviceKind
from .base import KindModel, Output
from .camera import CameraModel
from .charger import ChargerModel
from .elevator import ElevatorModel
from .streetlight import StreetlightModel
from .water import WaterMeterModel

MODELS: Mapping[DeviceKind, type[KindModel]] = {
    DeviceKind.ELEVATOR: ElevatorModel,
    DeviceKind.CAMERA: CameraModel,
    DeviceKind.CHARGER: ChargerModel,
    DeviceKind.STREETLIGHT: StreetlightModel,
    DeviceKind.WATER_METER: WaterMeterModel,
}

__all__ = ["MODELS", "CameraModel", "ChargerModel", "ElevatorModel", "KindModel", "Output",
           "StreetlightModel", "WaterMeterModel"]  # fmt: skip
