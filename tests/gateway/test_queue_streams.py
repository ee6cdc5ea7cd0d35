"""The sending policy on its own: backlog oldest-first, live rows as they come, the replay cap."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from sitewatch.gateway.queue import DiskQueue, Item, Kind, Row
from sitewatch.gateway.streams import Streams


def _items(first: int, n: int) -> list[Item]:
    return [Item(Kind.SAMPLE, "C-D1", 2, orjson.dumps({"i": i})) for i in range(first, first + n)]


def _numbers(rows: list[Row]) -> list[int]:
    return [orjson.loads(r.body)["i"] for r in rows]


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[DiskQueue]:
    q = DiskQueue(tmp_path / "q.db", 10**8)
    yield q
    q.close()


def test_backlog_and_live_are_separate_ordered_streams(queue: DiskQueue) -> None:
    queue.put(_items(0, 10))  # queued during the outage
    streams = Streams.start(queue, batch_rows=4, max_bytes=10**6)
    queue.put(_items(100, 3))  # arrives after the reconnect
    assert streams.replaying
    assert _numbers(streams.next_live()) == [100, 101, 102]  # live does not wait for the backlog
    assert _numbers(streams.next_backlog()) == [0, 1, 2, 3]
    queue.put(_items(200, 1))
    assert _numbers(streams.next_live()) == [200]
    assert _numbers(streams.next_backlog()) == [4, 5, 6, 7]
    assert _numbers(streams.next_backlog()) == [8, 9]
    assert streams.next_backlog() == [] and not streams.replaying
    assert streams.next_live() == []


def test_the_replay_cap_spreads_the_backlog(queue: DiskQueue) -> None:
    queue.put(_items(0, 100))  # 200 readings
    streams = Streams.start(queue, batch_rows=10, max_bytes=10**6, rate=50.0)  # 50 readings/s
    sent = 0
    while rows := streams.next_backlog():
        sent += sum(r.readings for r in rows)
    assert sent == 60  # a second's worth of burst (50) lets three 20-reading batches through
    assert 0 < streams.pause_s() <= 0.25
    time.sleep(0.45)  # refills ~22 readings
    assert sum(r.readings for r in streams.next_backlog()) == 20
    assert streams.next_backlog() == []


def test_rows_held_while_the_host_was_offline_become_backlog(queue: DiskQueue) -> None:
    streams = Streams.start(queue, batch_rows=10, max_bytes=10**6)
    assert not streams.replaying
    queue.put(_items(0, 5))  # queued while held
    streams.restart_backlog()
    assert streams.next_live() == []
    assert _numbers(streams.next_backlog()) == [0, 1, 2, 3, 4]
