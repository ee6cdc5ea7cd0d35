"""One suite, both backends: the embedded file and InfluxDB must give the same answers."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitewatch.contract import DeviceKind
from sitewatch.contract.checker import tag_value_problem
from sitewatch.store import (
    Aggregation,
    InvalidPoint,
    Latest,
    Point,
    SeriesKey,
    SeriesQuery,
    Store,
    StoredSample,
    Window,
)

from .conftest import T0, event, sample

EL = DeviceKind.ELEVATOR
S = 1000

# (device, offset s, values); C1-EL001 has irregular gaps so some windows are empty
READINGS: list[tuple[str, int, dict[str, float]]] = [
    ("C1-EL001", 0, {"motor_current": 10.0, "trip_count": 100.0}),
    ("C1-EL001", 2, {"motor_current": 14.0, "trip_count": 103.0}),
    ("C1-EL001", 5, {"motor_current": 9.5}),
    ("C1-EL001", 11, {"motor_current": 20.0, "trip_count": 110.0}),
    ("C1-EL001", 12, {"motor_current": 21.5, "trip_count": 118.0}),
    ("C1-EL001", 35, {"motor_current": 3.25, "trip_count": 130.0}),
    ("C1-EL002", 1, {"motor_current": 7.0, "trip_count": 5.0}),
    ("C1-EL002", 9, {"motor_current": 8.0, "trip_count": 9.0}),
    ("C2-EL001", 4, {"motor_current": 50.0, "trip_count": 1.0}),
]


def _compound(device: str) -> str:
    return device.split("-")[0]


def _load(store: Store) -> None:
    store.write(
        [sample(d, T0 + s * S, v, compound=_compound(d)) for d, s, v in READINGS]
        + [sample("C1-CA001", T0 + 3 * S, {"bitrate": 2048.0, "online": 1.0}, kind=DeviceKind.CAMERA)]
    )


def _reference(
    metrics: tuple[str, ...], window_ms: int, agg: Aggregation, devices: set[str] | None = None
) -> list[Point]:
    """What an aggregated query must answer, computed the plain way."""
    groups: dict[tuple[str, str, int], list[tuple[int, float]]] = defaultdict(list)
    steps: dict[tuple[str, str, int], float] = defaultdict(float)
    previous: dict[tuple[str, str], float] = {}
    for device, s, values in sorted(READINGS, key=lambda r: r[1]):
        if devices is not None and device not in devices:
            continue
        ts = T0 + s * S
        for metric, value in values.items():
            if metric in metrics:
                key = (device, metric, ts - ts % window_ms)
                groups[key].append((ts, value))
                before = previous.get((device, metric))
                if before is not None:
                    steps[key] += value - before if value >= before else value
                previous[(device, metric)] = value
    out = []
    for (device, metric, win), pts in sorted(groups.items()):
        vals = [v for _, v in sorted(pts)]
        result = {
            Aggregation.INCREASE: steps[(device, metric, win)],
            Aggregation.MEAN: sum(vals) / len(vals),
            Aggregation.MIN: min(vals),
            Aggregation.MAX: max(vals),
            Aggregation.LAST: vals[-1],
            Aggregation.COUNT: float(len(vals)),
            Aggregation.LAST_MINUS_FIRST: vals[-1] - vals[0],
        }[agg]
        out.append(Point(device, metric, win, result))
    return out


def _q(**kwargs: object) -> SeriesQuery:
    args: dict[str, object] = {
        "kind": EL,
        "metrics": ("motor_current", "trip_count"),
        "start_ms": T0,
        "end_ms": T0 + 3600 * S,
    }
    args.update(kwargs)
    return SeriesQuery(**args)  # type: ignore[arg-type]


def test_raw_query_returns_exactly_what_was_written(store: Store) -> None:
    assert isinstance(store, Store)
    _load(store)
    got = store.query(_q(devices=("C1-EL001",), metrics=("motor_current",)))
    assert got == [
        Point("C1-EL001", "motor_current", T0 + s * S, v["motor_current"])
        for d, s, v in READINGS
        if d == "C1-EL001"
    ]


def test_raw_query_orders_by_device_metric_time(store: Store) -> None:
    _load(store)
    got = store.query(_q())
    keys = [(p.device, p.metric, p.ts_ms) for p in got]
    assert keys == sorted(keys)
    assert len(got) == sum(len(v) for _, _, v in READINGS)


def test_time_range_is_start_inclusive_end_exclusive(store: Store) -> None:
    _load(store)
    got = store.query(
        _q(devices=("C1-EL001",), metrics=("motor_current",), start_ms=T0 + 2 * S, end_ms=T0 + 11 * S)
    )
    assert [p.ts_ms for p in got] == [T0 + 2 * S, T0 + 5 * S]


@pytest.mark.parametrize("agg", list(Aggregation))
@pytest.mark.parametrize("window_s", [1, 10, 60])
def test_every_aggregation_by_epoch_aligned_window(store: Store, agg: Aggregation, window_s: int) -> None:
    _load(store)
    window = window_s * S
    # start mid-window: windows stay aligned to the epoch, not to the start of the range
    got = store.query(_q(window=Window(length_ms=window), aggregation=agg, start_ms=T0 - 7 * S))
    want = _reference(("motor_current", "trip_count"), window, agg)
    assert [(p.device, p.metric, p.ts_ms) for p in got] == [(p.device, p.metric, p.ts_ms) for p in want]
    assert [p.value for p in got] == pytest.approx([p.value for p in want], rel=1e-12)


def test_windows_aligned_to_the_epoch_not_the_range(store: Store) -> None:
    _load(store)
    got = store.query(
        _q(devices=("C1-EL001",), metrics=("motor_current",), window=Window(length_ms=10 * S),
           aggregation=Aggregation.COUNT, start_ms=T0 + 1 * S)
    )  # fmt: skip
    # the first window starts at T0 (before the range) and counts only points inside the range
    assert [(p.ts_ms, p.value) for p in got] == [(T0, 2.0), (T0 + 10 * S, 2.0), (T0 + 30 * S, 1.0)]


def test_difference_of_a_register(store: Store) -> None:
    _load(store)
    got = store.query(
        _q(
            devices=("C1-EL001",),
            metrics=("trip_count",),
            window=Window(length_ms=10 * S),
            aggregation=Aggregation.LAST_MINUS_FIRST,
        )
    )
    assert [(p.ts_ms, p.value) for p in got] == [(T0, 3.0), (T0 + 10 * S, 8.0), (T0 + 30 * S, 0.0)]


def test_filter_by_devices_and_compound(store: Store) -> None:
    _load(store)
    by_device = store.query(_q(devices=("C1-EL002", "C2-EL001"), metrics=("motor_current",)))
    assert {p.device for p in by_device} == {"C1-EL002", "C2-EL001"}
    assert len(by_device) == 3
    by_compound = store.query(_q(compound="C2"))
    assert {p.device for p in by_compound} == {"C2-EL001"}
    both = store.query(_q(compound="C1", devices=("C2-EL001",)))
    assert both == []
    aggregated = store.query(_q(devices=("C1-EL002",), window=Window(length_ms=60 * S), aggregation=Aggregation.MAX))
    assert aggregated == _reference(("motor_current", "trip_count"), 60 * S, Aggregation.MAX, {"C1-EL002"})


def test_query_only_the_asked_kind(store: Store) -> None:
    _load(store)
    cams = store.query(_q(kind=DeviceKind.CAMERA, metrics=("bitrate",)))
    assert cams == [Point("C1-CA001", "bitrate", T0 + 3 * S, 2048.0)]
    assert store.query(_q(kind=DeviceKind.CAMERA, metrics=("motor_current",))) == []


def test_latest_per_device_with_last_seen(store: Store) -> None:
    _load(store)
    got = store.latest(compound="C1", kind=EL)
    assert got == [
        Latest("C1-EL001", EL, "C1", T0 + 35 * S, {"motor_current": 3.25, "trip_count": 130.0}),
        Latest("C1-EL002", EL, "C1", T0 + 9 * S, {"motor_current": 8.0, "trip_count": 9.0}),
    ]
    everything = store.latest()
    assert [x.device for x in everything] == ["C1-CA001", "C1-EL001", "C1-EL002", "C2-EL001"]
    assert store.latest(devices=["C2-EL001"])[0].values == {"motor_current": 50.0, "trip_count": 1.0}


def test_latest_when_metrics_were_last_seen_at_different_times(store: Store) -> None:
    store.write([
        sample("C1-EL001", T0, {"motor_current": 1.0, "car_load": 40.0}),
        sample("C1-EL001", T0 + 5 * S, {"motor_current": 2.0}),
    ])  # fmt: skip
    (got,) = store.latest()
    assert got.values == {"motor_current": 2.0, "car_load": 40.0}
    assert got.last_seen_ms == T0 + 5 * S


def test_series_listing(store: Store) -> None:
    _load(store)
    assert store.series(compound="C2") == [
        SeriesKey("C2", "C2-EL001", EL, "motor_current"),
        SeriesKey("C2", "C2-EL001", EL, "trip_count"),
    ]
    assert store.series(kind=DeviceKind.CAMERA) == [
        SeriesKey("C1", "C1-CA001", DeviceKind.CAMERA, "bitrate"),
        SeriesKey("C1", "C1-CA001", DeviceKind.CAMERA, "online"),
    ]
    assert len(store.series()) == 8


def test_count_readings(store: Store) -> None:
    _load(store)
    total = sum(len(v) for _, _, v in READINGS) + 2
    assert store.count_readings() == total
    assert store.count_readings(compound="C2") == 2
    assert store.count_readings(compound="nowhere") == 0


def test_same_point_twice_is_stored_once(store: Store) -> None:
    _load(store)
    before = store.count_readings()
    _load(store)
    assert store.count_readings() == before
    # writing a point again with another value replaces it: the last write wins
    store.write([sample("C1-EL001", T0, {"motor_current": 99.0})])
    assert store.count_readings() == before
    got = store.query(_q(devices=("C1-EL001",), metrics=("motor_current",), end_ms=T0 + 1))
    assert got == [Point("C1-EL001", "motor_current", T0, 99.0)]


def test_a_prepared_batch_is_written_like_a_batch_and_may_be_written_again(store: Store) -> None:
    items = [sample("C1-EL001", T0, {"motor_current": 1.0}), sample("C1-EL002", T0, {"car_load": 2.0})]
    prepared = store.prepare(items, [event("C1-EL001", T0, "door_fault", active=True)])
    assert store.count_readings() == 0  # preparing stores nothing
    store.write_prepared(prepared)
    store.write_prepared(prepared)  # a retry after a failure: idempotent
    assert store.count_readings() == 2
    assert len(store.events(0, T0 * 2)) == 1
    assert store.prepare([], []).empty
    store.write_prepared(store.prepare([], []))
    assert store.count_readings() == 2


def test_prepare_refuses_what_write_refuses(store: Store) -> None:
    good = sample("C1-EL001", T0, {"motor_current": 2.0})
    with pytest.raises(InvalidPoint, match="finite") as info:
        store.prepare([good, sample("C1-EL001", T0 + S, {"motor_current": float("nan")})])
    assert info.value.index == 1


def test_validated_samples_still_have_their_tags_timestamps_and_events_checked(store: Store) -> None:
    # what the contract's validator already checked is skipped; what it never saw is not
    good = sample("C1-EL001", T0, {"motor_current": 2.0})
    refused = [
        (sample("C1-EL001", T0, {"motor_current": 2.0}, tags={"building": "3\n号楼"}), "control character"),
        (sample("C1-EL001", T0, {"motor_current": 2.0}, tags={"colour": "red"}), "not one of"),
        (sample("C1-EL001", -1, {"motor_current": 2.0}), "between 1970 and 2262"),
    ]
    for bad, words in refused:
        with pytest.raises(InvalidPoint, match=words) as info:
            store.prepare([good, bad], validated=True)
        assert info.value.index == 1
    with pytest.raises(InvalidPoint, match="control character") as info:
        store.prepare([good], [event("C1-EL001", T0, "door\nfault")], validated=True)
    assert info.value.index == 1
    store.write_prepared(store.prepare([good], validated=True))
    assert store.count_readings() == 1


def test_flagged_samples_are_stored_like_others(store: Store) -> None:
    store.write([sample("C9-EL001", T0, {"motor_current": 1.0}, compound="C9", flagged=True)])
    assert store.count_readings(compound="C9") == 1
    assert store.latest(compound="C9")[0].values == {"motor_current": 1.0}


def test_events_round_trip_with_filters_and_order(store: Store) -> None:
    written = [
        event("C1-EL001", T0 + 5 * S, "entrapment", active=True, attrs={"floor": "3", "说明": '困人 "紧急"'}),
        event("C1-EL001", T0 + 9 * S, "entrapment", active=False),
        event("C1-EL002", T0 + 5 * S, "door_fault", tags={"building": "3号楼"}),
        event("C2-EL001", T0 + 1 * S, "emergency_call", compound="C2"),
        event("C1-CA001", T0 + 2 * S, "tamper", kind=DeviceKind.CAMERA, active=True),
    ]
    store.write([], written)
    got = store.events(T0, T0 + 60 * S)
    assert got == sorted(written, key=lambda e: (e.event.ts_ms, e.event.device))
    assert store.events(T0, T0 + 60 * S, compound="C2") == [written[3]]
    assert store.events(T0, T0 + 60 * S, devices=["C1-EL001"]) == written[:2]
    assert store.events(T0, T0 + 60 * S, kind=DeviceKind.CAMERA) == [written[4]]
    assert store.events(T0 + 5 * S, T0 + 9 * S) == [written[0], written[2]]
    # the same event twice is stored once
    store.write([], written[:1])
    assert len(store.events(T0, T0 + 60 * S)) == len(written)


def test_empty_store_answers_empty(store: Store) -> None:
    assert store.query(_q()) == []
    assert store.query(_q(window=Window(length_ms=60 * S), aggregation=Aggregation.LAST_MINUS_FIRST)) == []
    assert store.latest() == []
    assert store.latest(compound="C1") == []
    assert store.events(0, T0 * 2) == []
    assert store.series() == []
    assert store.count_readings() == 0
    store.write([], [])
    assert store.count_readings() == 0


def test_empty_range_and_unknown_filters(store: Store) -> None:
    _load(store)
    assert store.query(_q(start_ms=T0 + 3600 * S, end_ms=T0 + 7200 * S)) == []
    assert store.query(_q(devices=("nobody",))) == []
    assert store.query(_q(compound="nowhere", window=Window(length_ms=10 * S))) == []
    assert store.query(_q(start_ms=T0 + 10 * S, end_ms=T0 + 10 * S)) == []
    assert store.latest(compound="nowhere") == []
    assert store.series(compound="nowhere") == []


HOSTILE = [
    "has space",
    "comma,inside",
    'double"quote',
    "single'quote",
    "equals=sign",
    "back\\slash",
    "小区 三号楼,东=西",
    "emoji 🚪",
    "$dollar {brace}",
    "/slash/ .* regex|chars",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_tag_values_are_stored_and_found(store: Store, value: str) -> None:
    compound = f"X{value}"
    device = f"{compound}-EL001"
    store.write(
        [
            sample(
                device,
                T0,
                {"motor_current": 1.5},
                compound=compound,
                tags={"building": value, "street": value},
            )
        ],
        [event(device, T0, "door_fault", compound=compound, attrs={value: value}, tags={"building": value})],
    )
    assert store.query(_q(devices=(device,), compound=compound)) == [Point(device, "motor_current", T0, 1.5)]
    assert store.latest(compound=compound) == [
        Latest(device, EL, compound, T0, {"motor_current": 1.5}, {"building": value, "street": value})
    ]
    assert store.series(compound=compound) == [SeriesKey(compound, device, EL, "motor_current")]
    (stored_event,) = store.events(T0, T0 + 1, devices=[device])
    assert stored_event.event.attrs == {value: value}
    assert dict(stored_event.tags) == {"building": value}
    assert store.count_readings(compound=compound) == 1


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (sample("C1-EL001", T0, {"motor_current": 1.0}, tags={"building": "a\nb"}), "control character"),
        (sample("C1-EL001\n", T0, {"motor_current": 1.0}), "control character"),
        (sample("C1-EL001", T0, {"motor_current": 1.0}, compound=""), "empty"),
        (sample("C1-EL001", T0, {"motor_current": float("nan")}), "finite"),
        (sample("C1-EL001", T0, {"motor_current": float("inf")}), "finite"),
        (sample("C1-EL001", T0, {"bad metric": 1.0}), "metric name"),
        (sample("C1-EL001", T0, {"flagged": 1.0}), "metric name"),
        (sample("C1-EL001", T0, {}), "no values"),
        (sample("C1-EL001", -5, {"motor_current": 1.0}), "timestamp"),
        (sample("C1-EL001", 10**16, {"motor_current": 1.0}), "timestamp"),
        (sample("C1-EL001", T0, {"motor_current": 1.0}, tags={"building": "a\\ b"}), "backslash"),
        (sample("C1-EL001", T0, {"motor_current": 1.0}, tags={"building": "a\\"}), "backslash"),
        (sample("C1-EL001", T0, {"device": 1.0}), "metric name"),
        (sample("C1-EL001", T0, {"motor_current": 1.0}, tags={"owner": "x"}), "not one of"),
        (sample("C1-EL001", T0, {"motor_current": 1.0}, tags={"building": "x" * 300}), "longer"),
    ],
)
def test_invalid_input_is_refused_and_nothing_of_the_batch_written(
    store: Store, item: StoredSample, reason: str
) -> None:
    good = sample("C1-EL001", T0 + S, {"motor_current": 2.0})
    with pytest.raises(InvalidPoint, match=reason) as info:
        store.write([good, item])
    assert info.value.index == 1
    assert store.count_readings() == 0


def test_event_with_newline_in_name_is_refused(store: Store) -> None:
    with pytest.raises(InvalidPoint, match="control character"):
        store.write([], [event("C1-EL001", T0, "door\nfault")])
    assert store.events(0, T0 * 2) == []


def test_huge_batch_is_stored_whole(store: Store) -> None:
    n_devices, n_steps = 50, 400
    batch = [
        sample(
            f"C1-EL{d:03d}",
            T0 + i * S,
            {"motor_current": float(i), "car_load": float(d), "trip_count": float(i)},
        )
        for i in range(n_steps)
        for d in range(n_devices)
    ]
    store.write(batch)
    assert store.count_readings() == n_devices * n_steps * 3
    got = store.query(
        _q(metrics=("car_load",), devices=("C1-EL007",), window=Window(length_ms=3600 * S), aggregation=Aggregation.COUNT)
    )
    assert [p.value for p in got] == [float(n_steps)]


_examples = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=30), number=st.floats(allow_nan=False, allow_infinity=False))
def test_any_text_is_stored_as_written_or_refused_whole(store: Store, value: str, number: float) -> None:
    compound = f"H{next(_examples)}"
    device = f"{compound}-{value}"
    item = sample(device, T0, {"motor_current": number}, compound=compound, tags={"building": value})
    happened = event(device, T0, "door_fault", compound=compound, attrs={value: value})
    if tag_value_problem("building", value) is None:
        store.write([item], [happened])
        assert store.latest(compound=compound) == [
            Latest(device, EL, compound, T0, {"motor_current": number}, {"building": value})
        ]
        assert store.query(_q(devices=(device,))) == [Point(device, "motor_current", T0, number)]
        assert store.events(T0, T0 + 1, compound=compound) == [happened]
    else:
        with pytest.raises(InvalidPoint):
            store.write([item], [happened])
        assert store.count_readings(compound=compound) == 0
        assert store.events(T0, T0 + 1, compound=compound) == []


# -- scan_frame: scan's points as columns ---------------------------------------------------------


def _frame_rows(store: Store, query: SeriesQuery) -> list[tuple[int, str, str, float]]:
    """``scan_frame``'s rows, its columns and dtypes checked."""
    frame = store.scan_frame(query)
    assert list(frame.columns) == ["ts_ms", "device", "metric", "value"]
    assert str(frame["ts_ms"].dtype) == "int64" and str(frame["value"].dtype) == "float64"
    assert pd.api.types.is_string_dtype(frame["device"]) and pd.api.types.is_string_dtype(frame["metric"])
    assert frame.index.equals(pd.RangeIndex(len(frame)))
    return list(zip(frame["ts_ms"].tolist(), frame["device"].tolist(), frame["metric"].tolist(),
                    frame["value"].tolist(), strict=True))  # fmt: skip


def _scan_rows(store: Store, query: SeriesQuery) -> list[tuple[int, str, str, float]]:
    return [(p.ts_ms, p.device, p.metric, p.value) for p in store.scan(query)]


@pytest.mark.parametrize(
    "query",
    [
        _q(),  # two devices; one reading of C1-EL001 has no trip_count
        _q(compound="C1"),
        _q(devices=("C1-EL002",)),  # one device
        _q(metrics=("trip_count",), compound="C1"),
        _q(metrics=("trip_count", "motor_current", "trip_count")),  # metrics repeated, not in order
        _q(start_ms=T0 + 2 * S, end_ms=T0 + 12 * S),  # start inclusive, end exclusive
        _q(start_ms=T0 + 3600 * S, end_ms=T0 + 7200 * S),  # empty
        _q(devices=("nobody",)),
        _q(start_ms=T0 + 10 * S, end_ms=T0 + 10 * S),
        _q(metrics=()),
        _q(limit=3),
        _q(window=Window(length_ms=10 * S), aggregation=Aggregation.INCREASE),
        _q(kind=DeviceKind.CAMERA, metrics=("online", "bitrate")),
    ],
)
def test_scan_frame_is_scan_as_columns(store: Store, query: SeriesQuery) -> None:
    _load(store)
    assert _frame_rows(store, query) == _scan_rows(store, query)


def test_scan_frame_of_an_empty_store(store: Store) -> None:
    assert _frame_rows(store, _q()) == []


def test_scan_frame_of_a_device_whose_tags_changed(store: Store) -> None:
    """InfluxDB holds it in two series (a point written under both tags is one point)."""
    store.write([sample("C1-EL001", T0 + i * S, {"motor_current": float(i), "trip_count": float(i)},
                        tags={"building": "B1"}) for i in range(5)])  # fmt: skip
    store.write([sample("C1-EL001", T0 + i * S, {"motor_current": 10.0 + i},
                        tags={"building": "B2"}) for i in range(3, 8)])  # fmt: skip
    store.write([sample("C1-EL002", T0, {"motor_current": 1.0}, tags={"building": "B2"})])
    rows = _frame_rows(store, _q())
    assert rows == _scan_rows(store, _q())
    assert [r[0] for r in rows if r[1:3] == ("C1-EL001", "motor_current")] == [T0 + i * S for i in range(8)]


def test_scan_frame_of_many_pages(store: Store) -> None:
    """More points than a page (embedded) or a chunk (InfluxDB) of one series, values with fractions."""
    n = 12_345
    store.write([sample(f"C1-EL00{d}", T0 + i * S, {"motor_current": i / 7 + d, "trip_count": float(i * d)})
                 for i in range(n) for d in (1, 2)])  # fmt: skip
    rows = _frame_rows(store, _q(end_ms=T0 + n * S))
    assert len(rows) == 4 * n
    assert rows == _scan_rows(store, _q(end_ms=T0 + n * S))


def test_scan_frame_default_keeps_what_scan_gives() -> None:
    """The Store contract's default (a store with ``scan`` alone): NaN values and order kept as given."""
    from sitewatch.store.derived import DerivedQueries

    points = [Point("C1-EL002", "motor_current", T0, float("nan")), Point("C1-EL001", "motor_current", T0, 1.5)]

    class ScanOnly(DerivedQueries):
        def scan(self, query: SeriesQuery) -> Iterator[Point]:
            return iter(points)

    frame = ScanOnly().scan_frame(_q())
    assert frame["device"].tolist() == ["C1-EL002", "C1-EL001"]
    assert math.isnan(frame["value"][0]) and frame["value"][1] == 1.5
    assert str(frame["ts_ms"].dtype) == "int64"
    assert Store.scan_frame(ScanOnly(), _q()).equals(frame)  # type: ignore[arg-type]


def test_repeated_names_are_the_column_pandas_makes_of_objects() -> None:
    """``repeated`` (a series' names built from codes): the column, dtype included, that pandas makes
    of the same names as an object array; no rows, an object column as before."""
    from sitewatch.store.frames import repeated

    names, counts = ["C1-EL002", "C1-EL001", "C1-EL002", "ü-名"], [3, 0, 2, 1]
    objects = np.repeat(np.array(names, dtype=object), counts)
    pd.testing.assert_series_equal(pd.Series(repeated(names, counts)), pd.Series(objects))
    pd.testing.assert_series_equal(pd.Series(repeated([], [])), pd.Series(np.empty(0, dtype=object)))
