"""The store interface: what every stage asks of the time-series store, in the project's own types.

Two real backends implement it: ``InfluxStore`` (InfluxDB's v1 HTTP API) and ``EmbeddedStore``
(a single file). Both answer the same questions with the same results.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgspec

from ..contract import KINDS, DeviceKind, Event, Sample, Severity
from .windows import DAY_MS, DEFAULT_TIMEZONE, Window

if TYPE_CHECKING:
    import pandas as pd

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
    """How a device's values are combined within a time window."""

    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    LAST = "last"  # the value with the newest time
    COUNT = "count"  # number of readings
    # a counter's increase: each step from the previous reading (the one before the window too),
    # a drop counted as a restart from zero (as Prometheus's increase does), so windows add up
    INCREASE = "increase"
    LAST_MINUS_FIRST = "last_minus_first"  # newest minus oldest value inside the window


class Combine(StrEnum):
    """How the per-device values of a group are combined (see ``GroupQuery``)."""

    SUM = "sum"
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    COUNT = "count"  # number of devices with a value


DEFAULT_COMBINE: Mapping[Aggregation, Combine] = {
    Aggregation.MEAN: Combine.MEAN,
    Aggregation.MIN: Combine.MIN,
    Aggregation.MAX: Combine.MAX,
    Aggregation.LAST: Combine.MEAN,
    Aggregation.COUNT: Combine.SUM,
    Aggregation.INCREASE: Combine.SUM,
    Aggregation.LAST_MINUS_FIRST: Combine.SUM,
}

#: how far before a range ``increase`` looks for a device's previous reading, by default
DEFAULT_LOOKBACK_MS = DAY_MS


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """A time range of some devices' metrics, raw or one value per device, metric and window.

    ``start_ms`` is inclusive, ``end_ms`` exclusive. Without ``window`` the raw points come back;
    with it, one point per device, metric and window (windows in zone ``tz``, labelled by their
    start; the first may start before ``start_ms`` but holds only points inside the range; empty
    windows omitted). ``tags`` filters on the hierarchy tags (``district``, ``street``,
    ``community``, ``building``). ``increase`` takes the step from a device's previous reading
    when that reading is at most ``lookback_ms`` before ``start_ms``. ``limit``: at most that
    many points.
    """

    kind: DeviceKind
    metrics: tuple[str, ...]
    start_ms: int
    end_ms: int
    devices: tuple[str, ...] = ()  # empty: every device of the kind
    compound: str | None = None
    window: Window | None = None
    aggregation: Aggregation = Aggregation.MEAN
    tz: str = DEFAULT_TIMEZONE
    tags: Mapping[str, str] = field(default_factory=dict)
    lookback_ms: int = DEFAULT_LOOKBACK_MS
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class GroupQuery:
    """Per-device window values (as ``SeriesQuery``), combined across the devices of each group.

    ``group_by`` names stored tags (``TAG_KEYS``: ``compound``, ``building``, ``street``,
    ``district``, ``community``, ``kind``, ``device``); a device without a tag falls in the group
    ``""`` for it. ``kind`` None means devices of every kind that have the metric. Each device's
    value in a window is ``aggregation`` of its readings (``increase``: its counter's increase);
    ``combine`` then makes one value per group and window (default: ``DEFAULT_COMBINE``, e.g.
    the sum of increases, the mean of means). ``window`` None: one value over the whole range,
    labelled ``start_ms``.
    """

    metrics: tuple[str, ...]
    start_ms: int
    end_ms: int
    group_by: tuple[str, ...] = ("compound",)
    kind: DeviceKind | None = None
    window: Window | None = None
    aggregation: Aggregation = Aggregation.MEAN
    combine: Combine | None = None
    tz: str = DEFAULT_TIMEZONE
    devices: tuple[str, ...] = ()
    compound: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    lookback_ms: int = DEFAULT_LOOKBACK_MS
    limit: int | None = None

    @property
    def combiner(self) -> Combine:
        """``combine``, or the default for the aggregation."""
        return self.combine or DEFAULT_COMBINE[self.aggregation]


@dataclass(frozen=True, slots=True)
class Point:
    """One answer row: a device's metric at a time (a window start when aggregated)."""

    device: str
    metric: str
    ts_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class GroupPoint:
    """One group's value of a metric in a window, and how many devices gave it."""

    group: tuple[str, ...]  # the values of GroupQuery.group_by, in that order
    metric: str
    ts_ms: int
    value: float
    devices: int


@dataclass(frozen=True, slots=True)
class Latest:
    """The last value of each metric of a device, when it was last heard, and its tags."""

    device: str
    kind: DeviceKind
    compound: str
    last_seen_ms: int
    values: Mapping[str, float]
    tags: Mapping[str, str] = field(default_factory=dict)  # hierarchy tags of its newest reading


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """One stored series: a device's metric."""

    compound: str
    device: str
    kind: DeviceKind
    metric: str


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """A device the store holds readings of, with where it is."""

    device: str
    kind: DeviceKind
    compound: str
    tags: Mapping[str, str] = field(default_factory=dict)

    def tag(self, key: str) -> str:
        """The value of any tag in ``TAG_KEYS`` (``""`` when the device has none)."""
        if key == "device":
            return self.device
        if key == "kind":
            return self.kind.value
        if key == "compound":
            return self.compound
        return self.tags.get(key, "")


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Events of a time range ``[start_ms, end_ms)``, filtered.

    ``names`` and ``severities`` (the contract's severity of each event name) narrow the event
    names; ``active`` True keeps raises, False clears, None both and stateless events.
    """

    start_ms: int
    end_ms: int
    kind: DeviceKind | None = None
    compound: str | None = None
    devices: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    severities: tuple[Severity, ...] = ()
    active: bool | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class ActiveQuery:
    """How long a stateful event was active on each device, per window.

    An event raised before the range and not cleared by then counts from the window's start; one
    still active at ``end_ms`` counts until it. ``window`` None: the whole range as one window.
    """

    event: str
    start_ms: int
    end_ms: int
    window: Window | None = None
    tz: str = DEFAULT_TIMEZONE
    kind: DeviceKind | None = None
    compound: str | None = None
    devices: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActiveTime:
    """Milliseconds a device's stateful event was active in one window (only windows with some)."""

    device: DeviceRef
    event: str
    ts_ms: int  # the window's start
    active_ms: int


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """What the store knows of a site gateway: online or not since when, its boot sequence, counters.

    ``since_ms``: when the centre saw it come online (birth) or go offline (death). ``counters``:
    its newest stored counters (``stats`` and its own ``gateway`` readings), ``counters_ms`` their time.
    """

    device: str  # the gateway's device id (kind gateway)
    compound: str
    online: bool
    since_ms: int
    bdseq: int
    counters_ms: int | None = None
    counters: Mapping[str, float] = field(default_factory=dict)


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
        """Points of a time range, ordered by device, metric, time (``list(scan(query))``)."""
        ...

    def scan(self, query: SeriesQuery) -> Iterator[Point]:
        """The points of ``query`` one by one, ordered by device, metric, time.

        Raw points are read from the store as they are iterated (one device at a time); windowed
        answers (one point per device, metric and window) are computed per request.
        """
        ...

    def scan_frame(self, query: SeriesQuery) -> pd.DataFrame:
        """The points of ``scan(query)`` as columns: one row a point, in ``scan``'s order.

        Columns ts_ms (int64), device, metric (str, object dtype), value (float64), index 0..n-1
        (``frames.SCAN_COLUMNS``; empty: the same columns and dtypes). The same rows as ``scan``;
        read without a ``Point`` per reading where the backend can (raw points: the embedded
        store reads each series' rows into arrays, InfluxDB's answer is parsed column-wise), all
        in memory at once. This default builds it from ``scan``.
        """
        from .frames import scan_columns

        return scan_columns(self.scan(query))

    def aggregate(self, query: GroupQuery) -> list[GroupPoint]:
        """Per-device window values combined per group, ordered by group, metric, time."""
        ...

    def latest(
        self, *, compound: str | None = None, devices: Sequence[str] = (), kind: DeviceKind | None = None
    ) -> list[Latest]:
        """Last values, last-seen time and tags per device, ordered by device."""
        ...

    def devices(
        self,
        *,
        kind: DeviceKind | None = None,
        compound: str | None = None,
        devices: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
    ) -> list[DeviceRef]:
        """Devices with stored readings, with their compound and tags, ordered by device."""
        ...

    def events(
        self,
        start_ms: int,
        end_ms: int,
        *,
        compound: str | None = None,
        devices: Sequence[str] = (),
        kind: DeviceKind | None = None,
        names: Sequence[str] = (),
        severities: Sequence[Severity] = (),
        active: bool | None = None,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Events in a time range, ordered by time, device, then event name (``EventQuery``)."""
        ...

    def scan_events(self, query: EventQuery) -> Iterator[StoredEvent]:
        """The events of ``query`` one by one, ordered by time, device, then event name."""
        ...

    def latest_events(self, query: EventQuery) -> list[StoredEvent]:
        """The newest event of each device and event name in the range, ordered by device, name."""
        ...

    def active_time(self, query: ActiveQuery) -> list[ActiveTime]:
        """Time each device's stateful event was active, per window; ordered by device, window."""
        ...

    def gateways(self, *, compound: str | None = None) -> list[GatewayStatus]:
        """The site gateways whose birth or death was stored, ordered by device."""
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


def event_names(
    kind: DeviceKind | None, names: Sequence[str], severities: Sequence[Severity]
) -> tuple[str, ...] | None:
    """The event names a filter allows: ``names``, narrowed to ``severities`` by the contract.

    None means any name; an empty tuple means none (no event of those severities exists).
    """
    if not severities:
        return tuple(dict.fromkeys(names)) or None
    kinds = [kind] if kind is not None else list(DeviceKind)
    allowed = {n for k in kinds for n, spec in KINDS[k].events.items() if spec.severity in severities}
    chosen = [n for n in dict.fromkeys(names) if n in allowed] if names else sorted(allowed)
    return tuple(chosen)


def check_tags(tags: Mapping[str, str], group_by: Sequence[str] = ()) -> None:
    """ValueError for a tag filter or grouping on something that is not a stored tag."""
    for key in tags:
        if key not in TAG_KEYS or key in ("device", "kind", "compound"):
            raise ValueError(
                f"cannot filter on tag {key!r}: use one of district, street, community, building "
                "(device, kind and compound have their own arguments)"
            )
    for key in group_by:
        if key not in TAG_KEYS:
            raise ValueError(f"cannot group by {key!r}: use one of {', '.join(TAG_KEYS)}")
