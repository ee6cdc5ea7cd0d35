"""The store interface: what every stage asks of the time-series store, in the project's own types.

Two real backends implement it: ``InfluxStore`` (InfluxDB's v1 HTTP API) and ``EmbeddedStore``
(a single file). Both answer the same questions with the same results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

import msgspec

from ..contract import DeviceKind, Event, Sample

# Tags kept on every stored point (bounded cardinality): the device and where it is.
TAG_KEYS: tuple[str, ...] = ("compound", "device", "kind", "district", "street", "community", "building")


class StoredSample(msgspec.Struct, frozen=True, gc=False):
    """A validated sample with the tags ingest attached (compound always; hierarchy when known).

    A ``msgspec.Struct`` like ``Sample``: ingest builds one per sample, and a Struct costs a
    fraction of a frozen dataclass to build.
    """

    sample: Sample
    compound: str
    tags: Mapping[str, str] = msgspec.field(default_factory=dict)  # optional extra tags among TAG_KEYS
    flagged: bool = False  # accepted although the registry does not know the device

    @property
    def reading_count(self) -> int:
        """Number of metric values."""
        return len(self.sample.values)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A validated event with its compound."""

    event: Event
    compound: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch checked by a store's ``prepare``, with that store's own encoding of it (if any)."""

    samples: Sequence[StoredSample]
    events: Sequence[StoredEvent]
    # InfluxStore: the request bodies; EmbeddedStore: nothing (it builds its rows in the transaction)
    encoded: object = None

    @property
    def empty(self) -> bool:
        """True when there is nothing to write."""
        return not self.samples and not self.events


class Aggregation(StrEnum):
    """How values are combined within a time window."""

    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    LAST = "last"
    COUNT = "count"
    DIFFERENCE = "difference"  # last - first within the window: consumption of a register


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """A time range of some devices' metrics, optionally aggregated by window.

    ``start_ms`` is inclusive, ``end_ms`` exclusive. Without ``window_ms`` the raw points come
    back; with it, one point per window (windows aligned to the epoch, labelled by their start),
    empty windows omitted.
    """

    kind: DeviceKind
    metrics: tuple[str, ...]
    start_ms: int
    end_ms: int
    devices: tuple[str, ...] = ()  # empty: every device of the kind
    compound: str | None = None
    window_ms: int | None = None
    aggregation: Aggregation = Aggregation.MEAN


@dataclass(frozen=True, slots=True)
class Point:
    """One answer row: a device's metric at a time (a window start when aggregated)."""

    device: str
    metric: str
    ts_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class Latest:
    """The last value of each metric of a device, and when the device was last heard."""

    device: str
    kind: DeviceKind
    compound: str
    last_seen_ms: int
    values: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """One stored series: a device's metric."""

    compound: str
    device: str
    kind: DeviceKind
    metric: str


class StoreError(RuntimeError):
    """A write or query the store did not serve (see its two kinds below)."""


class StoreUnavailable(StoreError):
    """Transient: the store could not be reached or could not serve the request now (a timeout, a
    connection error, a 5xx, a lock, wrong credentials); the same request may succeed later, so the
    caller keeps the batch and retries."""


class StoreRefused(StoreError):
    """Permanent: the store refused a write that no retry can fix (a line it cannot parse, a field
    type conflict, a point beyond the retention policy, a database that does not exist).

    Part of the batch may be stored. ``index`` is the item the store named as the cause (samples
    first, then events), when it named one; otherwise the cause is found by writing parts of the
    batch. ``reason`` is the store's own message.
    """

    def __init__(self, reason: str, index: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


class InvalidPoint(ValueError):
    """An item of a batch the store cannot hold (see docs/store.md); nothing of the batch was written.

    ``index`` counts the samples first, then the events after them.
    """

    def __init__(self, index: int, device: str, reason: str) -> None:
        super().__init__(f"item {index} (device {device!r}): {reason}")
        self.index = index
        self.device = device
        self.reason = reason


@runtime_checkable
class Store(Protocol):
    """Time-series store. Writes are idempotent on (device, metric, timestamp)."""

    #: writes the store serves at once from one process; a caller keeps no more in flight
    concurrent_writes: int

    def write(self, samples: Sequence[StoredSample], events: Sequence[StoredEvent] = ()) -> None:
        """Store a batch durably; raise StoreUnavailable if it was not (nothing is then assumed stored).

        Raise InvalidPoint, before writing anything, for an item the store's checks refuse, and
        StoreRefused for a write the store itself refused for good.
        The same as ``write_prepared(prepare(samples, events))``.
        """
        ...

    def prepare(
        self, samples: Sequence[StoredSample], events: Sequence[StoredEvent] = (), *, validated: bool = False
    ) -> PreparedBatch:
        """Check and encode a batch for ``write_prepared``, without any I/O.

        Raise InvalidPoint for an item no retry can store. Ingest prepares the next batch while the
        previous one is being written; a prepared batch may be written again after a failure.
        ``validated`` says the samples come from the contract's validator: the checks it already
        made are not repeated (``checks.check_batch``).
        """
        ...

    def write_prepared(self, batch: PreparedBatch) -> None:
        """Store a batch this store prepared; raise StoreUnavailable (retry later) or StoreRefused
        (no retry helps) if it was not."""
        ...

    def query(self, query: SeriesQuery) -> list[Point]:
        """Points of a time range, ordered by device, metric, time."""
        ...

    def latest(
        self, *, compound: str | None = None, devices: Sequence[str] = (), kind: DeviceKind | None = None
    ) -> list[Latest]:
        """Last values and last-seen time per device, ordered by device."""
        ...

    def events(
        self,
        start_ms: int,
        end_ms: int,
        *,
        compound: str | None = None,
        devices: Sequence[str] = (),
        kind: DeviceKind | None = None,
    ) -> list[StoredEvent]:
        """Events in a time range, ordered by time then device."""
        ...

    def series(self, *, compound: str | None = None, kind: DeviceKind | None = None) -> list[SeriesKey]:
        """Stored series, ordered by device then metric."""
        ...

    def count_readings(self, *, compound: str | None = None) -> int:
        """Number of stored readings (metric values); used by tests and benchmarks to check for loss."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
