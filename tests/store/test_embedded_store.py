"""EmbeddedStore beyond the shared suite: one writer thread, readers in other processes, crashes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sitewatch.devtools.bench.store import measure_direct_write, synthetic_samples
from sitewatch.settings import load_settings
from sitewatch.store import InvalidPoint, StoreRefused, StoreUnavailable, embedded_store, open_store
from sitewatch.store.embedded_store import EmbeddedStore

from .conftest import T0, sample

S = 1000

READER = textwrap.dedent(
    """
    import json, sys, time
    from sitewatch.store.embedded_store import EmbeddedStore
    store = EmbeddedStore(sys.argv[1], create=False, timeout_s=5)
    seen = []
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        count = store.count_readings()
        latest = store.latest()
        seen.append([count, len(latest)])
        if count >= int(sys.argv[2]):
            break
    print(json.dumps(seen), flush=True)
    """
)


def test_writer_thread_while_another_process_reads(tmp_path: Path) -> None:
    path = tmp_path / "readings.db"
    store = EmbeddedStore(path)
    store.write([sample("C1-EL000", T0, {"motor_current": 1.0})])
    batches, per_batch = 40, 500
    total = 1 + batches * per_batch
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(total)], stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for b in range(batches):
                store.write([sample(f"C1-EL{b:03d}", T0 + (i + 1) * S, {"motor_current": float(i)})
                             for i in range(per_batch)])  # fmt: skip
        except BaseException as exc:  # reported below
            errors.append(exc)

    writer = threading.Thread(target=write)  # the store was opened in another thread
    writer.start()
    writer.join(60)
    out, _ = reader.communicate(timeout=60)
    assert errors == []
    assert reader.returncode == 0
    seen = json.loads(out)
    counts = [c for c, _ in seen]
    assert counts == sorted(counts)  # a reader never sees a batch disappear
    assert all((c - 1) % per_batch == 0 for c in counts)  # nor half a batch
    assert counts[-1] == total
    assert store.count_readings() == total
    store.close()


def test_open_existing_only(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no store file"):
        EmbeddedStore(tmp_path / "missing.db", create=False)
    settings = load_settings(data_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        open_store(settings, create=False)
    open_store(settings).close()
    assert settings.store_path.exists()
    open_store(settings, create=False).close()


def test_data_survives_reopen(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "r.db") as store:
        store.write([sample("C1-EL001", T0, {"motor_current": 1.0, "car_load": 2.0})])
    with EmbeddedStore(tmp_path / "r.db") as store:
        assert store.count_readings() == 2
        # the series cache starts empty: writing the same points again still stores them once
        store.write([sample("C1-EL001", T0, {"motor_current": 1.0, "car_load": 2.0})])
        assert store.count_readings() == 2


CRASHER = textwrap.dedent(
    """
    import sys
    from sitewatch.contract import DeviceKind, Sample
    from sitewatch.store import StoredSample
    from sitewatch.store.embedded_store import EmbeddedStore
    store = EmbeddedStore(sys.argv[1])
    for b in range(1_000_000):
        store.write([StoredSample(Sample(f"C1-EL{i:03d}", DeviceKind.ELEVATOR, 1_700_000_000_000 + b, {"car_load": 1.0}), "C1")
                     for i in range(100)])
        print(b, flush=True)
    """
)


def test_committed_batches_survive_a_killed_writer(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    acknowledged = -1
    with subprocess.Popen(
        [sys.executable, "-c", CRASHER, str(path)], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            acknowledged = int(line)
            if acknowledged >= 20:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with EmbeddedStore(path) as store:
        count = store.count_readings()
    # every acknowledged batch is there, whole; at most the batches after it too
    assert count >= (acknowledged + 1) * 100
    assert count % 100 == 0


def test_the_store_changes_tags_of_a_device_that_moved(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "r.db") as store:
        store.write([sample("C1-EL001", T0, {"motor_current": 1.0}, tags={"building": "B1"})])
        store.write(
            [sample("C1-EL001", T0 + S, {"motor_current": 2.0}, compound="C2", tags={"building": "B2"})]
        )
        assert store.latest()[0].compound == "C2"
        assert store.count_readings(compound="C2") == 2


def test_measure_direct_write_counts_every_reading(tmp_path: Path) -> None:
    samples = synthetic_samples(20, 30)
    calls: list[int] = []
    with EmbeddedStore(tmp_path / "r.db") as store:
        rate = measure_direct_write(store, samples, batch_size=100, progress=calls.append)
        readings = sum(len(s.sample.values) for s in samples)
        assert store.count_readings() == readings
    assert rate > 0
    assert sum(calls) == readings
    assert all(c >= 100 for c in calls[:-1])
    with pytest.raises(ValueError, match="batch_size"):
        measure_direct_write(store, samples, batch_size=0)


def test_a_file_that_is_not_a_store_is_refused_clearly(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("not a database " * 100)
    with pytest.raises(StoreUnavailable, match="is not a usable sitewatch store"):
        EmbeddedStore(text)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreUnavailable, match="no such table: meta"):
        EmbeddedStore(other, create=False)
    newer = tmp_path / "newer.db"
    EmbeddedStore(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(StoreUnavailable, match="schema version 99, this version reads 1"):
        EmbeddedStore(newer)


OPENER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sitewatch.contract import DeviceKind, Sample
    from sitewatch.store import StoredSample
    from sitewatch.store.embedded_store import EmbeddedStore
    path, go, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    while not go.exists():
        time.sleep(0.001)
    with EmbeddedStore(path) as store:
        sample = Sample(f"C1-EL{n:03d}", DeviceKind.ELEVATOR, 1_790_000_000_000, {"motor_current": 1.0})
        store.write([StoredSample(sample, "C1")])
    """
)


def test_workers_opening_a_new_store_file_at_once_all_get_it(tmp_path: Path) -> None:
    # several ingest workers start together on one new store file (the demo, the ingest bench)
    for round_ in range(3):
        path, go = tmp_path / f"r{round_}" / "readings.db", tmp_path / f"go{round_}"
        args = [[sys.executable, "-c", OPENER, str(path), str(go), str(n)] for n in range(6)]
        openers = [subprocess.Popen(a, stderr=subprocess.PIPE, text=True) for a in args]
        go.touch()
        errors = [p.communicate(timeout=60)[1] for p in openers]
        assert [p.returncode for p in openers] == [0] * 6, errors
        with EmbeddedStore(path, create=False) as store:
            assert store.count_readings() == 6


def test_opening_waits_out_a_writer_that_holds_the_file(tmp_path: Path) -> None:
    # A connection writing in SQLite's rollback-journal mode (what a new file starts in) holds a
    # lock that makes the switch to WAL fail at once, without SQLite's busy wait: the race that
    # lost an ingest worker when several opened one new store file together.
    path = tmp_path / "readings.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE scratch (x)")
    timer = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    timer.start()
    try:
        with EmbeddedStore(path, timeout_s=10) as store:
            store.write([sample("C1-EL001", T0, {"motor_current": 1.0})])
            assert store.count_readings() == 1
    finally:
        timer.join()
        other.close()


def test_opening_gives_up_on_a_file_held_past_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "readings.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE scratch (x)")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="database is locked"):
        EmbeddedStore(path, timeout_s=0.3)
    assert time.monotonic() - started >= 0.3
    other.execute("ROLLBACK")
    other.close()


# -- the store's answers to a write: transient (retry later) or permanent (the same rows fail again) --


def test_a_write_while_another_connection_holds_the_file_is_unavailable_not_refused(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "readings.db", timeout_s=0.2)
    other = sqlite3.connect(tmp_path / "readings.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="database is locked"):
            store.write([sample("C1-EL001", T0, {"motor_current": 1.0})])
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.write([sample("C1-EL001", T0, {"motor_current": 1.0})])  # the same batch, later: stored
    assert store.count_readings() == 1
    store.close()


def test_rows_sqlite_cannot_take_are_refused_for_good_and_nothing_of_the_batch_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EmbeddedStore(tmp_path / "readings.db")
    surrogate = sample("C1-EL\ud800", T0, {"motor_current": 1.0})  # not UTF-8: a JSON escape can make it
    with pytest.raises(InvalidPoint, match="lone surrogate"):  # the checks refuse it first
        store.write([sample("C1-EL001", T0, {"motor_current": 1.0}), surrogate])
    monkeypatch.setattr(embedded_store, "check_batch", lambda *args, **kwargs: None)
    for bad in (surrogate, sample("C1-EL002", 2**70, {"motor_current": 1.0})):  # a time SQLite cannot hold
        with pytest.raises(StoreRefused, match="refused the write") as refused:
            store.write([sample("C1-EL001", T0, {"motor_current": 1.0}), bad])
        assert refused.value.index is None  # found by writing parts of the batch (ingest does it)
    assert store.count_readings() == 0  # one transaction: nothing of a refused batch
    store.write([sample("C1-EL001", T0, {"motor_current": 1.0})])
    assert store.count_readings() == 1
    store.close()
