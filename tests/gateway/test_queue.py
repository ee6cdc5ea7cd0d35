"""The disk queue on its own: order, PUBACK-range deletion, the budget, persistence, bdseq."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from sitewatch.contract import DeviceKind, Event, Sample, now_ms
from sitewatch.gateway.counters import Counters
from sitewatch.gateway.queue import ROW_OVERHEAD, DiskQueue, Item, Kind
from sitewatch.gateway.sink import QueueSink

C = "330102-0007"
NOW = now_ms()
_open_queues: list[DiskQueue] = []


def _queue(path: Path, budget: int) -> DiskQueue:
    queue = DiskQueue(path, budget)
    _open_queues.append(queue)
    return queue


@pytest.fixture(autouse=True)
def _close_queues() -> Iterator[None]:
    yield
    while _open_queues:
        queue = _open_queues.pop()
        with contextlib.suppress(Exception):
            queue.close()


def _item(i: int, size: int = 100) -> Item:
    body = orjson.dumps({"device": f"{C}-D{i % 3}", "i": i, "pad": "x" * (size - len(str(i)))})
    return Item(Kind.SAMPLE, f"{C}-D{i % 3}", 2, body)


def test_fifo_claim_and_range_delete(tmp_path: Path) -> None:
    q = _queue(tmp_path / "q.db", 10**7)
    q.put([_item(i) for i in range(10)])
    assert (q.rows, q.readings) == (10, 20)
    first = q.claim(0, None, 4, 10**6)
    assert [orjson.loads(r.body)["i"] for r in first] == [0, 1, 2, 3]
    second = q.claim(first[-1].id, None, 100, 10**6)
    assert [orjson.loads(r.body)["i"] for r in second] == list(range(4, 10))
    removed = q.delete_range(second[0].id, second[-1].id)  # acknowledged out of order: fine
    assert (removed.rows, removed.readings) == (6, 12)
    assert q.rows == 4
    assert q.delete_range(first[0].id, first[-1].id).rows == 4
    assert (q.rows, q.bytes, q.readings) == (0, 0, 0)


def test_claim_respects_message_size_and_upper_bound(tmp_path: Path) -> None:
    q = _queue(tmp_path / "q.db", 10**7)
    q.put([_item(i, size=1000) for i in range(10)])
    rows = q.claim(0, None, 100, 3500)
    assert len(rows) == 3  # 3 bodies of ~1,030 bytes fit in 3,500
    ids = [r.id for r in q.claim(0, rows[1].id, 100, 10**6)]
    assert ids == [rows[0].id, rows[1].id]


def test_budget_drops_oldest_and_reports_it(tmp_path: Path) -> None:
    one = _item(0).size
    q = _queue(tmp_path / "q.db", one * 10)
    assert not q.put([_item(i) for i in range(10)]).rows
    dropped = q.put([_item(i) for i in range(10, 13)])
    assert (dropped.rows, dropped.readings) == (3, 6)
    assert q.bytes <= q.budget_bytes
    kept = [orjson.loads(r.body)["i"] for r in q.claim(0, None, 100, 10**7)]
    assert kept == list(range(3, 13))


def test_rows_in_flight_are_never_dropped(tmp_path: Path) -> None:
    one = _item(0).size
    q = _queue(tmp_path / "q.db", one * 5)
    q.put([_item(i) for i in range(5)])
    claimed = q.claim(0, None, 2, 10**6)  # rows 0 and 1 are on the wire
    dropped = q.put([_item(i) for i in range(5, 8)])
    assert dropped.rows == 3
    q.release_all()
    left = [orjson.loads(r.body)["i"] for r in q.claim(0, None, 100, 10**6)]
    assert left == [0, 1, 5, 6, 7]
    assert claimed[0].id == q.claim(0, None, 1, 10**6)[0].id


def test_newest_data_that_cannot_fit_is_dropped_too(tmp_path: Path) -> None:
    q = _queue(tmp_path / "q.db", 20_000)
    dropped = q.put([_item(i, size=1000) for i in range(40)])
    assert dropped.rows > 0 and q.bytes <= q.budget_bytes
    assert q.rows + dropped.rows == 40


def test_contents_bdseq_and_counters_survive_reopening(tmp_path: Path) -> None:
    q = _queue(tmp_path / "q.db", 10**7)
    assert q.next_bdseq() == 0
    assert q.next_bdseq() == 1
    q.put([_item(i) for i in range(7)])
    q.save_meta("counters", {"read": 5})
    q.close()
    q = _queue(tmp_path / "q.db", 10**7)
    assert (q.rows, q.readings) == (7, 14)
    assert q.bytes == sum(_item(i).size for i in range(7))
    assert q.next_bdseq() == 2
    assert q.load_meta("counters") == {"read": 5}
    assert q.claim(0, None, 1, 10**6)[0].id < q.max_id()


def test_item_size_counts_the_row_overhead() -> None:
    assert _item(0).size == len(_item(0).body) + ROW_OVERHEAD


def test_sink_refuses_foreign_devices_and_bad_values(tmp_path: Path) -> None:
    q = _queue(tmp_path / "q.db", 10**7)
    counters = Counters()
    woken: list[int] = []
    sink = QueueSink(q, counters, C, lambda: woken.append(1))
    sink.samples(
        [
            Sample(f"{C}-WM1", DeviceKind.WATER_METER, NOW, {"flow": 1.0, "battery": 80.0}),
            Sample("999999-0001-WM1", DeviceKind.WATER_METER, NOW, {"flow": 1.0}),
            Sample(f"{C}-WM2", DeviceKind.WATER_METER, NOW, {"flow": math.nan, "bogus": 1.0}),
            Sample(f"{C}-WM3", DeviceKind.WATER_METER, NOW, {"battery": 150.0, "flow": 2.0}),
            Sample(f"{C}-WM4", DeviceKind.WATER_METER, NOW, {"tamper": 0.5, "reverse_flow": 1.0}),
            Sample(f"{C}-EL1", DeviceKind.ELEVATOR, NOW, {"run_state": 2.5, "trip_count": 7}),
        ]
    )
    snap = counters.snapshot()
    assert snap["read"] == 11
    # foreign device (1), NaN and unknown metric (2), out of range (1), flag 0.5 (1), state 2.5 (1)
    assert snap["rejected"] == 6
    assert snap["buffered"] == 5
    assert q.readings == 5 and woken
    bodies = [orjson.loads(r.body) for r in q.claim(0, None, 10, 10**6)]
    assert [b["device"] for b in bodies] == [f"{C}-WM1", f"{C}-WM3", f"{C}-WM4", f"{C}-EL1"]
    assert bodies[1]["values"] == {"flow": 2.0}
    assert bodies[2]["values"] == {"reverse_flow": 1.0}
    assert bodies[3]["values"] == {"trip_count": 7.0}  # an int is accepted as a number


def test_sink_events_and_liveness(tmp_path: Path) -> None:
    q = _queue(tmp_path / "q.db", 10**7)
    counters = Counters()
    sink = QueueSink(q, counters, C)
    sink.events(
        [
            Event(f"{C}-EL1", DeviceKind.ELEVATOR, NOW + 1, "offline"),
            Event(f"{C}-EL1", DeviceKind.ELEVATOR, NOW + 2, "no_such_event"),
        ]
    )
    assert sink.offline == {f"{C}-EL1"}
    assert counters.get("events_rejected") == 1 and q.events == 1
    sink.events([Event(f"{C}-EL1", DeviceKind.ELEVATOR, NOW + 3, "online")])
    assert sink.offline == set()


@pytest.mark.parametrize("size", ["512 MiB", "2GB", 4096 * 10, "64KiB"])
def test_budget_sizes_parse(size: object, tmp_path: Path) -> None:
    from sitewatch.gateway.config import parse_config

    cfg = parse_config({"compound": C, "gateway": "GW1", "queue": {"budget_bytes": size}})
    assert cfg.queue.budget_bytes >= 16 * 1024


def test_a_second_gateway_on_the_same_queue_is_refused(tmp_path: Path) -> None:
    from sitewatch.gateway.queue import QueueLockedError

    first = DiskQueue(tmp_path / "q.db", 10**6)
    with pytest.raises(QueueLockedError, match=f"pid {os.getpid()}"):
        DiskQueue(tmp_path / "q.db", 10**6)
    first.close()
    DiskQueue(tmp_path / "q.db", 10**6).close()  # free again once the first is closed


def test_an_unreadable_queue_file_is_a_clear_error(tmp_path: Path) -> None:
    from sitewatch.gateway.queue import QueueError

    (tmp_path / "q.db").write_bytes(b"this is not a database, it is a shopping list" * 100)
    with pytest.raises(QueueError, match="move it aside"):
        DiskQueue(tmp_path / "q.db", 10**6)
    (tmp_path / "q.db").unlink()
    DiskQueue(tmp_path / "q.db", 10**6).close()  # the lock was released


_FULL_DISK = """
import resource, signal, sys, time
from pathlib import Path
from sitewatch.contract import DeviceKind, Sample
from sitewatch.gateway.counters import Counters
from sitewatch.gateway.queue import DiskQueue
from sitewatch.gateway.sink import QueueSink

NOW = int(time.time() * 1000)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
queue = DiskQueue(Path(sys.argv[1]), 10**9)
resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
counters = Counters()
sink = QueueSink(queue, counters, "C1")
for i in range(200):
    sink.samples([Sample("C1-WM%d" % d, DeviceKind.WATER_METER, NOW + i, {"flow": 1.0, "battery": 50.0})
                  for d in range(50)])
print(counters.get("buffered"), counters.get("dropped"), counters.get("queue_errors"), queue.readings)
"""


def test_a_full_disk_loses_the_batch_counted_and_the_gateway_goes_on(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(tmp_path / "q.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    buffered, dropped, errors, queued = (int(v) for v in result.stdout.split())
    assert errors > 0 and dropped > 0  # writes failed, and said so
    assert buffered + dropped == 200 * 50 * 2  # every reading is either on disk or counted as lost
    assert queued == buffered
    assert "disk queue write failed" in result.stderr


def test_rows_carry_their_queue_time_and_old_files_are_upgraded(tmp_path: Path) -> None:
    import sqlite3
    import time

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the schema before queued_ms existed
        db.execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL,"
            " device TEXT NOT NULL, readings INTEGER NOT NULL, size INTEGER NOT NULL, body BLOB NOT NULL)"
        )
        db.execute(
            "INSERT INTO items (kind, device, readings, size, body) VALUES (0, 'C-D1', 1, 70, x'7b7d')"
        )
    q = _queue(path, 10**6)
    before = time.time_ns() // 1_000_000
    q.put([_item(1)])
    old, new = q.claim(0, None, 10, 10**6)
    assert old.queued_ms == 0 and before <= new.queued_ms <= time.time_ns() // 1_000_000
    assert q.rows == 2


def test_drops_are_logged_as_sums_not_once_per_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import re as regex

    q = DiskQueue(tmp_path / "q.db", _item(0).size * 10)
    total = 0
    with caplog.at_level(logging.WARNING, logger="sitewatch.gateway.queue"):
        for i in range(300):
            total += q.put([_item(i)]).readings
        q.close()
    lines = [r.getMessage() for r in caplog.records if "over its budget" in r.getMessage()]
    assert total == 290 * 2 and 1 <= len(lines) <= 3  # the first drop, then sums (and one at close)
    found = [regex.search(r"\((\d+) readings", line) for line in lines]
    reported = sum(int(m.group(1)) for m in found if m is not None)
    assert reported == total


def test_sink_refuses_timestamps_the_centre_would_refuse(tmp_path: Path) -> None:
    q = _queue(tmp_path / "q.db", 10**7)
    counters = Counters()
    sink = QueueSink(q, counters, C)
    day = 86_400_000
    sink.samples(
        [
            Sample(f"{C}-WM1", DeviceKind.WATER_METER, NOW - 89 * day, {"flow": 1.0}),  # old but kept
            Sample(f"{C}-WM1", DeviceKind.WATER_METER, NOW - 91 * day, {"flow": 1.0}),  # past max age
            Sample(f"{C}-WM1", DeviceKind.WATER_METER, NOW + 3_600_000, {"flow": 1.0}),  # clock an hour fast
        ]
    )
    assert counters.get("rejected") == 2 and q.readings == 1
