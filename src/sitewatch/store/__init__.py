"""Time-series store: one interface (base.Store), an InfluxDB backend and an embedded backend."""

from .base import (
    TAG_KEYS,
    Aggregation,
    Latest,
    Point,
    SeriesKey,
    SeriesQuery,
    Store,
    StoredEvent,
    StoredSample,
    StoreUnavailable,
)

__all__ = [
    "TAG_KEYS",
    "Aggregation",
    "Latest",
    "Point",
    "SeriesKey",
    "SeriesQuery",
    "Store",
    "StoreUnavailable",
    "StoredEvent",
    "StoredSample",
]
