"""Anomaly detectors that score any time series, inside the pipeline or outside it.

``DETECTORS`` maps each name to its class; every class has a one-line ``description`` (a catalog
message) and the API of :class:`~.base.Detector`: ``fit(frame)``, ``score(frame)``,
``predict(frame)``. See docs/analytics-detectors.md.
"""

from __future__ import annotations

from typing import Any

from ...i18n import N_
from .base import Detector, DetectorError, numeric_frame
from .multivariate import IsolationForestDetector, PCADetector
from .night import NightFlow
from .seasonal import SeasonalBaseline
from .streaming import StreamingZScore
from .trend import TheilSenTrend

DETECTORS: dict[str, type[Detector]] = {
    cls.name: cls
    for cls in (
        StreamingZScore,
        PCADetector,
        IsolationForestDetector,
        TheilSenTrend,
        NightFlow,
        SeasonalBaseline,
    )
}


def make_detector(name: str, **params: Any) -> Detector:
    """A new detector by its registry name; raises DetectorError for an unknown one."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise DetectorError(
            N_("unknown detector {name}; known: {known}"), name=name, known=", ".join(sorted(DETECTORS))
        ) from None
    return cls(**params)


__all__ = [
    "DETECTORS",
    "Detector",
    "DetectorError",
    "IsolationForestDetector",
    "NightFlow",
    "PCADetector",
    "SeasonalBaseline",
    "StreamingZScore",
    "TheilSenTrend",
    "make_detector",
    "numeric_frame",
]
