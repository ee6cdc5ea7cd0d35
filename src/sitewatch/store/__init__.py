"""Time-series store: one interface (base.Store), an InfluxDB backend and an embedded backend."""

from .base import (
    TAG_KEYS,
    Aggregation,
    InvalidPoint,
    Latest,
    Point,
    PreparedBatch,
    SeriesKey,
    SeriesQuery,
    Store,
    StoredEvent,
    StoredSample,
    StoreError,
    StoreRefused,
    StoreUnavailable,
)
from .factory import open_store

__all__ = [
    "TAG_KEYS",
    "Aggregation",
    "InvalidPoint",
    "Latest",
    "Point",
    "PreparedBatch",
    "SeriesKey",
    "SeriesQuery",
    "Store",
    "StoreError",
    "StoreRefused",
    "StoreUnavailable",
    "StoredEvent",
    "StoredSample",
    "open_store",
]
