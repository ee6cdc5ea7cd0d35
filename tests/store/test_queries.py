"""Analytics, dashboard and KPI questions, on both backends: increase, zones, groups, events, uptime."""

from __future__ import annotations

from datetime import datetime

import pytest

from sitewatch.contract import DeviceKind, Severity
from sitewatch.store import (
    ActiveQuery,
    Aggregation,
    Combine,
    DeviceRef,
    EventQuery,
    GatewayStatus,
    GroupPoint,
    GroupQuery,
    Point,
    SeriesQuery,
    Store,
    StoredSample,
    Window,
)

from .conftest import event, sample

MIN, H = 60_000, 3_600_000
WM, EL, CH = DeviceKind.WATER_METER, DeviceKind.ELEVATOR, DeviceKind.CHARGER
DAY0 = int(datetime.fromisoformat("2024-03-05T00:00:00+08:00").timestamp() * 1000)  # a Shanghai midnight


def water_meter_day(device: str = "C1-WM001", reset_at: int = 50) -> tuple[list[StoredSample], float]:
    """A Shanghai day of 15-minute readings (and the one before it), the register replaced (back to
    0) at 12:30; and the day's true consumption: the water each of the day's readings adds."""
    used = [0.01 * (1 + (i * 7) % 13) + (0.2 if 28 <= i < 36 or 72 <= i < 84 else 0.0) for i in range(96)]
    register = 1234.5
    items = [sample(device, DAY0 - 15 * MIN, {"volume_register": register}, kind=WM, tags={"building": "B1"})]
    for i, step in enumerate(used):
        register = step if i == reset_at else register + step  # the new register counts from 0
        items.append(
            sample(device, DAY0 + i * 15 * MIN, {"volume_register": register}, kind=WM, tags={"building": "B1"})
        )
    return items, sum(used)


def test_water_meter_day_with_a_reset_sums_to_the_true_consumption(store: Store) -> None:
    items, truth = water_meter_day()
    store.write(items)
    day = (DAY0, DAY0 + 24 * H)
    hourly = store.query(SeriesQuery(WM, ("volume_register",), *day, window=Window.parse("1h"),
                                     aggregation=Aggregation.INCREASE, tz="Asia/Shanghai"))  # fmt: skip
    assert [p.ts_ms for p in hourly] == [DAY0 + h * H for h in range(24)]
    assert sum(p.value for p in hourly) == pytest.approx(truth)
    daily = store.query(SeriesQuery(WM, ("volume_register",), *day, window=Window.parse("1d"),
                                    aggregation=Aggregation.INCREASE, tz="Asia/Shanghai"))  # fmt: skip
    assert [(p.ts_ms, round(p.value, 9)) for p in daily] == [(DAY0, round(truth, 9))]
    # in UTC the day is cut at 08:00 Shanghai: two windows that still add up
    utc = store.query(SeriesQuery(WM, ("volume_register",), *day, window=Window.parse("1d"),
                                  aggregation=Aggregation.INCREASE, tz="UTC"))  # fmt: skip
    assert len(utc) == 2 and sum(p.value for p in utc) == pytest.approx(truth)
    # last minus first, the old "difference", knows nothing of the reset nor of the steps between windows
    wrong = store.query(SeriesQuery(WM, ("volume_register",), *day, window=Window.parse("1h"),
                                    aggregation=Aggregation.LAST_MINUS_FIRST))  # fmt: skip
    assert sum(p.value for p in wrong) < truth / 2


def test_increase_takes_the_step_from_the_previous_reading_within_the_lookback(store: Store) -> None:
    store.write([sample("C1-WM001", DAY0 - 3 * H, {"volume_register": 10.0}, kind=WM),
                 sample("C1-WM001", DAY0 + 30 * MIN, {"volume_register": 12.5}, kind=WM)])  # fmt: skip
    q = SeriesQuery(WM, ("volume_register",), DAY0, DAY0 + H, window=Window.parse("1h"), aggregation=Aggregation.INCREASE)
    assert store.query(q) == [Point("C1-WM001", "volume_register", DAY0, 2.5)]
    short = SeriesQuery(WM, ("volume_register",), DAY0, DAY0 + H, window=Window.parse("1h"),
                        aggregation=Aggregation.INCREASE, lookback_ms=2 * H)  # fmt: skip
    assert store.query(short) == [Point("C1-WM001", "volume_register", DAY0, 0.0)]


def _city(store: Store) -> None:
    """Two compounds, three buildings, water meters and an elevator, over two Shanghai days."""
    items = []
    for device, compound, building, rate in (
        ("C1-WM001", "C1", "B1", 1.0), ("C1-WM002", "C1", "B2", 2.0), ("C2-WM001", "C2", "B1", 4.0),
    ):  # fmt: skip
        for i in range(49):
            items.append(sample(device, DAY0 + i * H, {"volume_register": 100.0 + rate * i, "flow": rate},
                                compound=compound, kind=WM, tags={"building": building}))  # fmt: skip
    items += [sample("C1-EL001", DAY0 + i * H, {"trip_count": 10.0 * i, "motor_current": 5.0}, kind=EL,
                     tags={"building": "B1"}) for i in range(49)]  # fmt: skip
    store.write(items)


def test_aggregates_grouped_by_compound_building_kind_and_over_all_kinds(store: Store) -> None:
    _city(store)
    two_days = (DAY0, DAY0 + 48 * H)
    daily = Window.parse("1d")
    by_compound = store.aggregate(GroupQuery(("volume_register",), *two_days, group_by=("compound",), kind=WM,
                                             window=daily, aggregation=Aggregation.INCREASE))  # fmt: skip
    assert by_compound == [
        GroupPoint(("C1",), "volume_register", DAY0, 3.0 * 23, 2),  # 23 steps inside the first day
        GroupPoint(("C1",), "volume_register", DAY0 + 24 * H, 3.0 * 24, 2),
        GroupPoint(("C2",), "volume_register", DAY0, 4.0 * 23, 1),
        GroupPoint(("C2",), "volume_register", DAY0 + 24 * H, 4.0 * 24, 1),
    ]
    by_building = store.aggregate(GroupQuery(("flow",), *two_days, group_by=("compound", "building"), kind=WM,
                                             aggregation=Aggregation.MEAN))  # fmt: skip
    assert [(p.group, p.value, p.devices) for p in by_building] == [
        (("C1", "B1"), 1.0, 1), (("C1", "B2"), 2.0, 1), (("C2", "B1"), 4.0, 1)]  # fmt: skip
    # every kind with a metric: the kind tag groups them
    counts = store.aggregate(GroupQuery(("volume_register", "trip_count"), *two_days, group_by=("kind",),
                                        aggregation=Aggregation.COUNT))  # fmt: skip
    assert [(p.group, p.metric, p.value, p.devices) for p in counts] == [
        (("elevator",), "trip_count", 48.0, 1), (("water_meter",), "volume_register", 144.0, 3)]  # fmt: skip
    # one group of everything, combined as asked
    peak = store.aggregate(GroupQuery(("flow",), *two_days, group_by=(), kind=WM, aggregation=Aggregation.MAX,
                                      combine=Combine.MAX))  # fmt: skip
    assert peak == [GroupPoint((), "flow", DAY0, 4.0, 3)]
    meters = store.aggregate(GroupQuery(("flow",), *two_days, group_by=("building",), kind=WM,
                                        aggregation=Aggregation.LAST, combine=Combine.COUNT, compound="C1"))  # fmt: skip
    assert [(p.group, p.value) for p in meters] == [(("B1",), 1.0), (("B2",), 1.0)]
    tagged = store.aggregate(GroupQuery(("flow",), *two_days, group_by=("device",), kind=WM, tags={"building": "B1"},
                                        aggregation=Aggregation.MEAN, limit=1))  # fmt: skip
    assert [p.group for p in tagged] == [("C1-WM001",)]


def test_calendar_months_in_shanghai(store: Store) -> None:
    # the last hours of February and the first of March, in Shanghai time
    feb = int(datetime.fromisoformat("2024-02-29T22:00:00+08:00").timestamp() * 1000)
    store.write([sample("C1-WM001", feb + i * H, {"flow": float(i)}, kind=WM) for i in range(4)])
    q = SeriesQuery(WM, ("flow",), feb - 40 * 24 * H, feb + 10 * H, window=Window.parse("1mo"),
                    aggregation=Aggregation.COUNT, tz="Asia/Shanghai")  # fmt: skip
    march = int(datetime.fromisoformat("2024-03-01T00:00:00+08:00").timestamp() * 1000)
    february = int(datetime.fromisoformat("2024-02-01T00:00:00+08:00").timestamp() * 1000)
    assert [(p.ts_ms, p.value) for p in store.query(q)] == [(february, 2.0), (march, 2.0)]
    in_utc = store.query(SeriesQuery(WM, ("flow",), feb - 40 * 24 * H, feb + 10 * H, window=Window.parse("1mo"),
                                     aggregation=Aggregation.COUNT, tz="UTC"))  # fmt: skip
    assert [p.value for p in in_utc] == [4.0]  # 22:00-01:00 Shanghai is still February in UTC


def test_raw_points_stream_past_a_page_and_stop_at_the_limit(store: Store) -> None:
    store.write([sample("C1-WM001", DAY0 + i * 1000, {"flow": float(i)}, kind=WM) for i in range(12_000)])
    q = SeriesQuery(WM, ("flow",), DAY0, DAY0 + 24 * H)
    streamed = store.scan(q)
    assert next(streamed) == Point("C1-WM001", "flow", DAY0, 0.0)
    assert sum(1 for _ in streamed) == 11_999
    limited = store.query(SeriesQuery(WM, ("flow",), DAY0, DAY0 + 24 * H, limit=5))
    assert [p.value for p in limited] == [0.0, 1.0, 2.0, 3.0, 4.0]


def _episodes(store: Store) -> None:
    store.write(
        [sample("C1-CH001", DAY0, {"power": 7.0}, kind=CH), sample("C1-CH002", DAY0, {"power": 7.0}, kind=CH)],
        [
            event("C1-CH001", DAY0 - 2 * H, "faulted", kind=CH, active=True),  # raised before the range
            event("C1-CH001", DAY0 + 1 * H, "faulted", kind=CH, active=False),
            event("C1-CH001", DAY0 + 20 * H, "faulted", kind=CH, active=True),  # still active at the end
            event("C1-CH002", DAY0 + 5 * H, "session_started", kind=CH),
            event("C1-CH002", DAY0 + 6 * H, "over_temperature", kind=CH, active=True),
            event("C1-CH002", DAY0 + 6 * H + 30 * MIN, "over_temperature", kind=CH, active=False),
        ],
    )


def test_events_filtered_by_name_severity_state_and_limited(store: Store) -> None:
    _episodes(store)
    day = (DAY0, DAY0 + 24 * H)
    names = lambda q: [(e.event.device, e.event.name, e.event.active) for e in store.scan_events(q)]  # noqa: E731
    assert names(EventQuery(*day, names=("faulted",))) == [
        ("C1-CH001", "faulted", False), ("C1-CH001", "faulted", True)]  # fmt: skip
    assert names(EventQuery(*day, severities=(Severity.WARNING,))) == [
        ("C1-CH002", "over_temperature", True), ("C1-CH002", "over_temperature", False)]  # fmt: skip
    assert names(EventQuery(*day, active=True, kind=CH)) == [
        ("C1-CH002", "over_temperature", True), ("C1-CH001", "faulted", True)]  # fmt: skip
    assert names(EventQuery(*day, limit=2)) == [
        ("C1-CH001", "faulted", False), ("C1-CH002", "session_started", None)]  # fmt: skip
    assert names(EventQuery(*day, severities=(Severity.CRITICAL,), names=("session_started",))) == []
    # the newest state of each device's events: which chargers are faulted now
    now = [(e.event.device, e.event.name, e.event.active) for e in store.latest_events(EventQuery(0, day[1]))]
    assert now == [("C1-CH001", "faulted", True), ("C1-CH002", "over_temperature", False),
                   ("C1-CH002", "session_started", None)]  # fmt: skip
    assert len(store.events(*day, names=["faulted"], limit=1)) == 1


def test_active_time_per_window_counts_from_the_window_start_and_until_the_end(store: Store) -> None:
    _episodes(store)
    q = ActiveQuery("faulted", DAY0, DAY0 + 24 * H, window=Window.parse("6h"), tz="Asia/Shanghai")
    got = [(a.device.device, a.ts_ms - DAY0, a.active_ms) for a in store.active_time(q)]
    # active since before the range: counts from 00:00; raised again at 20:00 and still active at 24:00
    assert got == [("C1-CH001", 0, 1 * H), ("C1-CH001", 18 * H, 4 * H)]
    whole = store.active_time(ActiveQuery("faulted", DAY0 + 30 * MIN, DAY0 + 21 * H))
    assert [(a.ts_ms, a.active_ms) for a in whole] == [(DAY0 + 30 * MIN, 30 * MIN + H)]
    assert whole[0].device == DeviceRef("C1-CH001", CH, "C1", {})
    assert store.active_time(ActiveQuery("over_temperature", DAY0, DAY0 + 24 * H))[0].active_ms == 30 * MIN


def test_devices_and_latest_carry_tags(store: Store) -> None:
    _city(store)
    found = store.devices(kind=WM, compound="C1")
    assert found == [DeviceRef("C1-WM001", WM, "C1", {"building": "B1"}),
                     DeviceRef("C1-WM002", WM, "C1", {"building": "B2"})]  # fmt: skip
    assert [d.device for d in store.devices(tags={"building": "B1"})] == ["C1-EL001", "C1-WM001", "C2-WM001"]
    assert store.latest(devices=["C2-WM001"])[0].tags == {"building": "B1"}
    with pytest.raises(ValueError, match="cannot filter"):
        store.devices(tags={"owner": "x"})
    with pytest.raises(ValueError, match="cannot group"):
        store.aggregate(GroupQuery(("flow",), DAY0, DAY0 + H, group_by=("owner",)))


def test_gateways_from_stored_births_deaths_and_counters(store: Store) -> None:
    gw = DeviceKind.GATEWAY
    store.write(
        [sample("C1-GW01", DAY0 + 5 * MIN, {"sent": 10.0}, kind=gw)],
        [
            event("C1-GW01", DAY0, "online", kind=gw, attrs={"bdseq": "3"}),
            event("C2-GW01", DAY0, "online", kind=gw, compound="C2", attrs={"bdseq": "1"}),
            event("C2-GW01", DAY0 + H, "offline", kind=gw, compound="C2", attrs={"bdseq": "1"}),
        ],
    )
    assert store.gateways() == [
        GatewayStatus("C1-GW01", "C1", True, DAY0, 3, DAY0 + 5 * MIN, {"sent": 10.0}),
        GatewayStatus("C2-GW01", "C2", False, DAY0 + H, 1),
    ]
    assert [g.device for g in store.gateways(compound="C2")] == ["C2-GW01"]


def test_answers_as_data_frames(store: Store) -> None:
    from sitewatch.store.frames import events_frame, points_frame

    _city(store)
    _episodes(store)
    frame = points_frame(store.scan(SeriesQuery(WM, ("flow", "volume_register"), DAY0, DAY0 + 2 * H)))
    assert list(frame.columns) == ["flow", "volume_register"]
    assert frame.loc[("C1-WM002", DAY0 + H)].tolist() == [2.0, 102.0]
    assert len(frame) == 3 * 2
    assert points_frame([]).empty
    events = events_frame(store.scan_events(EventQuery(DAY0, DAY0 + 24 * H, names=("faulted",))))
    assert events[["device", "active"]].values.tolist() == [["C1-CH001", False], ["C1-CH001", True]]


def test_unicode_line_separators_in_tags_survive_streamed_answers(store: Store) -> None:
    # InfluxDB writes U+2028 and U+0085 unescaped in its JSON; the answer is split at newlines only
    odd = "3\u2028号楼\x85东"
    store.write([sample("C1-WM001", DAY0, {"flow": 1.0}, kind=WM, tags={"building": odd})])
    assert store.devices() == [DeviceRef("C1-WM001", WM, "C1", {"building": odd})]
    assert [p.value for p in store.scan(SeriesQuery(WM, ("flow",), DAY0, DAY0 + 1, tags={"building": odd}))] == [1.0]
