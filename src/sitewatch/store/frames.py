"""Store answers as pandas DataFrames, for feature engineering and reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .base import Point, StoredEvent

if TYPE_CHECKING:
    import pandas as pd


def points_frame(points: Iterable[Point]) -> pd.DataFrame:
    """Points (from ``Store.scan`` or ``query``) as one row per device and time, one column per metric.

    The index is (device, ts_ms), sorted; a metric a device did not report at a time is NaN.
    """
    import pandas as pd

    rows = [(p.device, p.ts_ms, p.metric, p.value) for p in points]
    long = pd.DataFrame(rows, columns=["device", "ts_ms", "metric", "value"])
    if long.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=["device", "ts_ms"]))
    wide = long.pivot_table(index=["device", "ts_ms"], columns="metric", values="value", aggfunc="last")
    wide.columns.name = None
    return wide.sort_index()


def events_frame(events: Iterable[StoredEvent]) -> pd.DataFrame:
    """Events as rows: ts_ms, device, kind, compound, event, active (None for stateless), attrs."""
    import pandas as pd

    return pd.DataFrame(
        [
            (e.event.ts_ms, e.event.device, e.event.kind.value, e.compound, e.event.name, e.event.active,
             dict(e.event.attrs))
            for e in events
        ],
        columns=["ts_ms", "device", "kind", "compound", "event", "active", "attrs"],
    )  # fmt: skip
