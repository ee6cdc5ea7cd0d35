"""Store answers as pandas DataFrames, for feature engineering and reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING

from .base import Point, StoredEvent

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: the columns of ``Store.scan_frame``, one row per point
SCAN_COLUMNS = ("ts_ms", "device", "metric", "value")


def scan_columns(points: Iterable[Point]) -> pd.DataFrame:
    """Points (from ``Store.scan``) as ``Store.scan_frame`` gives them: one row a point, in their order.

    Columns ``SCAN_COLUMNS``: ts_ms int64, device and metric str (object), value float64, the
    index 0..n-1; empty, the same columns and dtypes.
    """
    ts: list[int] = []
    devices: list[str] = []
    metrics: list[str] = []
    values: list[float] = []
    for p in points:
        ts.append(p.ts_ms)
        devices.append(p.device)
        metrics.append(p.metric)
        values.append(p.value)
    import numpy as np

    return scan_frame_of(
        np.array(ts, dtype=np.int64), np.array(devices, dtype=object), np.array(metrics, dtype=object),
        np.array(values, dtype=np.float64),
    )  # fmt: skip


def scan_frame_of(
    ts: np.ndarray,
    devices: np.ndarray | pd.api.extensions.ExtensionArray,
    metrics: np.ndarray | pd.api.extensions.ExtensionArray,
    values: np.ndarray,
) -> pd.DataFrame:
    """The frame of ``Store.scan_frame`` from its four columns (arrays of one length)."""
    import numpy as np
    import pandas as pd

    def strings(column: np.ndarray | pd.api.extensions.ExtensionArray) -> object:
        return (
            column
            if isinstance(column, pd.api.extensions.ExtensionArray)
            else np.asarray(column, dtype=object)
        )

    return pd.DataFrame(
        {
            "ts_ms": np.asarray(ts, dtype=np.int64),
            "device": strings(devices),
            "metric": strings(metrics),
            "value": np.asarray(values, dtype=np.float64),
        },
        copy=False,
    )


def repeated(names: Sequence[str], counts: Sequence[int]) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """Each of ``names`` repeated its count of times (a column of series names): the column pandas
    makes of such an object array (its ``str`` dtype), built from the names' codes without a Python
    string per row; where pandas keeps strings as objects (and for no rows), that object array."""
    import numpy as np
    import pandas as pd

    repeats = np.asarray(counts, dtype=np.int64)
    dtype = _inferred_string_dtype()
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow" and int(repeats.sum()):
        import pyarrow as pa

        codes = pa.array(np.repeat(np.arange(len(names), dtype=np.int32), repeats))
        column = pa.DictionaryArray.from_arrays(codes, pa.array(list(names), type=pa.string()))
        return pd.array(column.cast(pa.string()), dtype=dtype)
    objects = np.empty(len(names), dtype=object)
    objects[:] = list(names)
    return np.repeat(objects, repeats)


@cache
def _inferred_string_dtype() -> object:
    """The dtype pandas gives a column of strings made from an object array (``str`` since pandas 3)."""
    import numpy as np
    import pandas as pd

    return pd.Series(np.array(["x"], dtype=object)).dtype


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
