"""Property-based: the same random data in both stores, every query answers the same.

Each example writes one random history (counters with resets, gauges, gaps that leave windows
empty, stateful events raised and cleared, devices in two compounds and buildings, two kinds)
to a fresh embedded file and a fresh InfluxDB database, then asks both the same random queries:
per-device and grouped windows in three time zones (DST-free) and every window kind, including
calendar days, weeks and months across month boundaries.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitewatch.contract import DeviceKind, Severity
from sitewatch.devtools.services import InfluxDBService
from sitewatch.store import (
    ActiveQuery,
    Aggregation,
    Combine,
    EventQuery,
    GroupQuery,
    SeriesQuery,
    Store,
    StoredEvent,
    StoredSample,
    Window,
)
from sitewatch.store.embedded_store import EmbeddedStore
from sitewatch.store.influx_store import InfluxStore

from .conftest import event, sample

pytestmark = pytest.mark.integration

MIN = 60_000
# 2024-01-31 20:00 in Shanghai: histories run into February and March
BASE = int(datetime.fromisoformat("2024-01-31T20:00:00+08:00").timestamp() * 1000)
SPAN_MIN = 40 * 24 * 60  # forty days

WM, EL = DeviceKind.WATER_METER, DeviceKind.ELEVATOR
DEVICES = [  # device, kind, compound, building
    ("C1-WM001", WM, "C1", "B1"),
    ("C1-WM002", WM, "C1", "B2"),
    ("C2-WM001", WM, "C2", "B1"),
    ("C1-EL001", EL, "C1", "B1"),
]
COUNTER = {WM: "volume_register", EL: "trip_count"}
GAUGE = {WM: "flow", EL: "motor_current"}
STATEFUL = {WM: "reverse_flow", EL: "out_of_service"}
ZONES = ["Asia/Shanghai", "UTC", "Asia/Kolkata"]
WINDOWS = [Window.parse(w) for w in ("15m", "1h", "6h", "1d", "1w", "1mo")]
GROUPS = [(), ("compound",), ("building",), ("compound", "building"), ("kind",), ("device",)]

_databases = itertools.count()


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[StoredSample], list[StoredEvent]]:
    """Readings and events of up to four devices: gaps of minutes to days, counters that reset."""
    samples: list[StoredSample] = []
    events: list[StoredEvent] = []
    for device, kind, compound, building in draw(st.lists(st.sampled_from(DEVICES), min_size=1, unique=True)):
        tags = {"building": building}
        t = draw(st.integers(0, 3 * 24 * 60))
        register = float(draw(st.integers(0, 10_000)))
        for _ in range(draw(st.integers(3, 40))):
            t += draw(st.sampled_from([15, 1, 7, 15, 60, 240, 1440, 4000]))
            if t >= SPAN_MIN:
                break
            if draw(st.integers(0, 9)) == 0:
                register = float(draw(st.integers(0, 5)))  # a reset (meter replaced, register wrapped)
            else:
                register += draw(st.integers(0, 40)) / 4
            values = {COUNTER[kind]: register, GAUGE[kind]: draw(st.integers(-40, 400)) / 4}
            samples.append(sample(device, BASE + t * MIN, values, compound=compound, kind=kind, tags=tags))
        e = draw(st.integers(0, 5 * 24 * 60))
        for _ in range(draw(st.integers(0, 6))):
            e += draw(st.integers(1, 6 * 24 * 60))
            if e >= SPAN_MIN:
                break
            active = draw(st.booleans())
            events.append(
                event(
                    device,
                    BASE + e * MIN,
                    STATEFUL[kind],
                    compound=compound,
                    kind=kind,
                    active=active,
                    tags=tags,
                )
            )
        if draw(st.booleans()):
            events.append(event(device, BASE + e * MIN + 1, "tamper" if kind is WM else "door_fault",
                                compound=compound, kind=kind, active=True if kind is WM else None, tags=tags))  # fmt: skip
    return samples, events


@st.composite
def ranges(draw: st.DrawFn) -> tuple[int, int]:
    """A range inside the span, not aligned to any window."""
    start = draw(st.one_of(st.integers(0, 4 * 24 * 60), st.integers(0, SPAN_MIN - 60)))  # often amid data
    end = draw(st.one_of(st.integers(start + 1, start + 3 * 24 * 60), st.integers(start + 1, SPAN_MIN + 60)))
    return BASE + start * MIN + draw(st.integers(0, 59_999)), BASE + end * MIN


@pytest.fixture
def stores(influxdb: InfluxDBService) -> Iterator[tuple[Path, InfluxDBService]]:
    """A directory for embedded files and the session's InfluxDB."""
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory), influxdb


def _pair(where: tuple[Path, InfluxDBService]) -> tuple[Store, Store, str]:
    n = next(_databases)
    database = f"equivalence_{os.getpid()}_{n}"
    return EmbeddedStore(where[0] / f"{n}.db"), InfluxStore(where[1].url, database), database


def _drop(service: InfluxDBService, database: str) -> None:
    httpx.post(f"{service.url}/query", data={"q": f'DROP DATABASE "{database}"'}, timeout=30)


def _same(a: list[object], b: list[object]) -> None:
    """Equal, up to the rounding of sums done in a different order."""
    assert len(a) == len(b), (a, b)
    for x, y in zip(a, b, strict=True):
        fields = x.__dataclass_fields__  # type: ignore[attr-defined]
        for name in fields:
            u, v = getattr(x, name), getattr(y, name)
            if isinstance(u, float):
                assert u == pytest.approx(v, rel=1e-9, abs=1e-9), (name, x, y)
            else:
                assert u == v, (name, x, y)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=histories(),
    span=ranges(),
    window=st.sampled_from(WINDOWS),
    tz=st.sampled_from(ZONES),
    group_by=st.sampled_from(GROUPS),
    combine=st.one_of(st.none(), st.sampled_from(list(Combine))),
    kind=st.sampled_from([WM, EL, None]),
    lookback_min=st.sampled_from([0, 60, 24 * 60]),
)
def test_both_stores_answer_every_query_the_same(
    stores: tuple[Path, InfluxDBService],
    history: tuple[list[StoredSample], list[StoredEvent]],
    span: tuple[int, int],
    window: Window,
    tz: str,
    group_by: tuple[str, ...],
    combine: Combine | None,
    kind: DeviceKind | None,
    lookback_min: int,
) -> None:
    embedded, influx, database = _pair(stores)
    try:
        samples, events = history
        for store in (embedded, influx):
            store.write(samples, events)
        start, end = span
        lookback = lookback_min * MIN
        metric_kind = kind or WM
        metrics = (COUNTER[metric_kind], GAUGE[metric_kind])
        for aggregation in Aggregation:
            for cut in (window, None):
                per_device = SeriesQuery(metric_kind, metrics, start, end, window=cut, aggregation=aggregation,
                                         tz=tz, lookback_ms=lookback)  # fmt: skip
                _same(embedded.query(per_device), influx.query(per_device))
                grouped = GroupQuery(metrics if kind else ("volume_register", "trip_count"), start, end,
                                     group_by=group_by, kind=kind, window=cut, aggregation=aggregation,
                                     combine=combine, tz=tz, lookback_ms=lookback)  # fmt: skip
                _same(embedded.aggregate(grouped), influx.aggregate(grouped))
            filtered = GroupQuery(metrics, start, end, group_by=("device",), kind=metric_kind, compound="C1",
                                  tags={"building": "B1"}, window=window, aggregation=aggregation, tz=tz,
                                  limit=3)  # fmt: skip
            _same(embedded.aggregate(filtered), influx.aggregate(filtered))

        # the windows of a range add up to the range
        by_window = SeriesQuery(metric_kind, metrics, start, end, window=window, aggregation=Aggregation.INCREASE,
                                tz=tz, lookback_ms=lookback)  # fmt: skip
        total: dict[tuple[str, str], float] = defaultdict(float)
        for p in influx.query(by_window):
            total[(p.device, p.metric)] += p.value
        assert total == pytest.approx(_whole(embedded, by_window, start, end))

        for q in (
            EventQuery(start, end),
            EventQuery(start, end, kind=kind, names=(STATEFUL[metric_kind],), active=True),
            EventQuery(start, end, severities=(Severity.CRITICAL,), compound="C1", limit=2),
            EventQuery(start, end, tags={"building": "B2"}, active=False),
        ):
            assert list(embedded.scan_events(q)) == list(influx.scan_events(q))
            assert embedded.latest_events(q) == influx.latest_events(q)
        for cut in (window, None):
            active = ActiveQuery(STATEFUL[metric_kind], start, end, window=cut, tz=tz, kind=kind)
            assert embedded.active_time(active) == influx.active_time(active)
        assert embedded.devices(kind=kind) == influx.devices(kind=kind)
        assert embedded.latest(kind=kind) == influx.latest(kind=kind)
    finally:
        embedded.close()
        influx.close()
        _drop(stores[1], database)


def _whole(store: Store, query: SeriesQuery, start: int, end: int) -> dict[tuple[str, str], float]:
    """Increase over the whole range, one window: the range as a single group per device."""
    rows = store.aggregate(
        GroupQuery(query.metrics, start, end, group_by=("device",), kind=query.kind, aggregation=Aggregation.INCREASE,
                   lookback_ms=query.lookback_ms)
    )  # fmt: skip
    return {(p.group[0], p.metric): p.value for p in rows}
