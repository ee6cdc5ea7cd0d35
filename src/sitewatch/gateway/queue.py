"""The gateway's durable, bounded queue: an SQLite (WAL) file between the connectors and the broker.

A sample or event is written here before anything tries to send it, and removed only when the
broker has acknowledged the MQTT message that carried it (:meth:`DiskQueue.delete_range` on
PUBACK). Row ids only grow (AUTOINCREMENT), so "oldest first" is "lowest id first" and a claimed
batch is exactly the rows between its first and last id. When the disk budget is full, the oldest
rows that are not in flight go, and :meth:`DiskQueue.put` reports how many readings that cost.
The same file keeps the gateway's boot sequence number (bdseq) and its last counters.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import IO, Any

import orjson

from ..i18n import _
from .config import SyncMode

log = logging.getLogger(__name__)

ROW_OVERHEAD = 64  # bytes counted per row beyond its body: id, columns and b-tree cell, roughly
_DROP_CHUNK = 2000
DROP_LOG_EVERY_S = 10.0  # a long outage on a full budget drops on every write: log the sum


class Kind(IntEnum):
    """What a queued row carries."""

    SAMPLE = 0
    EVENT = 1


@dataclass(frozen=True, slots=True)
class Item:
    """One sample or event to enqueue: its JSON body and how many readings it holds."""

    kind: Kind
    device: str
    readings: int  # metric values of a sample; 0 for an event
    body: bytes

    @property
    def size(self) -> int:
        """Bytes this item counts against the budget."""
        return len(self.body) + ROW_OVERHEAD


@dataclass(frozen=True, slots=True)
class Row:
    """A queued item as read back for sending."""

    id: int
    kind: Kind
    readings: int
    body: bytes
    queued_ms: int = 0  # when the sink wrote it (epoch ms)


@dataclass(frozen=True, slots=True)
class Dropped:
    """What making room cost: rows, readings and events removed unsent."""

    rows: int = 0
    readings: int = 0
    events: int = 0

    def __add__(self, other: Dropped) -> Dropped:
        return Dropped(self.rows + other.rows, self.readings + other.readings, self.events + other.events)


@dataclass(frozen=True, slots=True)
class Removed:
    """What an acknowledgement removed."""

    rows: int = 0
    readings: int = 0
    events: int = 0


class QueueError(RuntimeError):
    """The queue file cannot be used; the message says why and what to do."""


class QueueLockedError(QueueError):
    """Another gateway process already uses this queue file."""


def _lock(path: Path) -> IO[str]:
    """Hold an exclusive lock on ``<queue>.lock`` for as long as the returned file stays open."""
    handle = open(f"{path}.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held until close()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "?"
        handle.close()
        raise QueueLockedError(
            _(
                "queue file {path} is in use by another gateway (pid {owner}); two gateways must not share a queue",
                path=path, owner=owner,
            )
        ) from None  # fmt: skip
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class DiskQueue:
    """SQLite-backed FIFO with a byte budget; all methods are thread-safe.

    The file is locked for the queue's lifetime: a second gateway on the same file is refused.
    """

    def __init__(self, path: Path, budget_bytes: int, sync: SyncMode = SyncMode.NORMAL) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock(self.path)
        self.budget_bytes = budget_bytes
        self._lock = threading.Lock()
        try:
            self._db = self._open(sync)
        except sqlite3.DatabaseError as exc:
            self._lock_file.close()
            raise QueueError(
                _("queue file {path} cannot be used ({exc}); move it aside to start with an empty queue (its rows are lost)", path=self.path, exc=exc)
            ) from None
        self._inflight: dict[int, int] = {}  # lo -> hi of claimed, unacknowledged ranges
        self._unlogged = Dropped()
        self._last_drop_log = -DROP_LOG_EVERY_S

    def _open(self, sync: SyncMode) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            pages = max(64, min(1000, self.budget_bytes // 8 // 4096))
            for pragma in (
                "journal_mode=WAL",
                f"synchronous={'FULL' if sync is SyncMode.FULL else 'NORMAL'}",
                f"wal_autocheckpoint={pages}",
                f"journal_size_limit={pages * 4096}",
                "busy_timeout=5000",
            ):
                db.execute(f"PRAGMA {pragma}")
            db.executescript(
                "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " kind INTEGER NOT NULL, device TEXT NOT NULL, readings INTEGER NOT NULL,"
                " size INTEGER NOT NULL, body BLOB NOT NULL, queued_ms INTEGER NOT NULL DEFAULT 0);"
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB);"
            )
            columns = {row[1] for row in db.execute("PRAGMA table_info(items)")}
            if "queued_ms" not in columns:  # a queue file written before the column existed
                db.execute("ALTER TABLE items ADD COLUMN queued_ms INTEGER NOT NULL DEFAULT 0")
            row = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(readings), 0),"
                " COALESCE(SUM(kind = 1), 0) FROM items"
            ).fetchone()
        except BaseException:
            db.close()
            raise
        self._rows, self._bytes, self._readings, self._events = (int(v) for v in row)
        return db

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        """Rows (samples plus events) waiting."""
        return self._rows

    @property
    def bytes(self) -> int:
        """Bytes counted against the budget."""
        return self._bytes

    @property
    def readings(self) -> int:
        """Readings (metric values) waiting."""
        return self._readings

    @property
    def events(self) -> int:
        """Events waiting."""
        return self._events

    def file_bytes(self) -> int:
        """Size of the database and its write-ahead log on disk."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{self.path}{suffix}")
            if path.exists():
                total += path.stat().st_size
        return total

    # ---- writing -----------------------------------------------------------------------------
    def put(self, items: Sequence[Item]) -> Dropped:
        """Append ``items`` durably (returns once committed); drop the oldest first if over budget."""
        if not items:
            return Dropped()
        incoming = list(items)
        with self._lock:
            dropped = Dropped()
            need = self._bytes + sum(i.size for i in incoming) - self.budget_bytes
            if need > 0:
                dropped = self._drop_oldest(need)
                need = self._bytes + sum(i.size for i in incoming) - self.budget_bytes
                while need > 0 and incoming:  # rows in flight cannot go: the newest data can't fit
                    first = incoming.pop(0)
                    need -= first.size
                    dropped = dropped + Dropped(1, first.readings, int(first.kind is Kind.EVENT))
            if incoming:
                now = time.time_ns() // 1_000_000
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(
                        "INSERT INTO items (kind, device, readings, size, body, queued_ms)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        [(int(i.kind), i.device, i.readings, i.size, i.body, now) for i in incoming],
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._rows += len(incoming)
                self._bytes += sum(i.size for i in incoming)
                self._readings += sum(i.readings for i in incoming)
                self._events += sum(1 for i in incoming if i.kind is Kind.EVENT)
        if dropped.rows:
            self._log_drops(dropped)
        return dropped

    def _log_drops(self, dropped: Dropped) -> None:
        """One warning at the first drop, then at most one per DROP_LOG_EVERY_S with the totals."""
        now = time.monotonic()
        with self._lock:
            self._unlogged = self._unlogged + dropped
            if now - self._last_drop_log < DROP_LOG_EVERY_S:
                return
            total, self._unlogged, self._last_drop_log = self._unlogged, Dropped(), now
        log.warning(
            "disk queue over its budget of %s bytes: dropped the %s oldest rows (%s readings, %s events)"
            " since the last report",
            self.budget_bytes,
            total.rows,
            total.readings,
            total.events,
        )

    def _in_flight(self, row_id: int) -> bool:
        return any(lo <= row_id <= hi for lo, hi in self._inflight.items())

    def _drop_oldest(self, need: int) -> Dropped:
        victims: list[tuple[int]] = []
        freed = readings = events = 0
        after = 0
        while freed < need:
            chunk = self._db.execute(
                "SELECT id, kind, readings, size FROM items WHERE id > ? ORDER BY id LIMIT ?",
                (after, _DROP_CHUNK),
            ).fetchall()
            if not chunk:
                break
            for row_id, kind, n, size in chunk:
                after = row_id
                if self._in_flight(row_id):
                    continue
                victims.append((row_id,))
                freed += size
                readings += n
                events += kind == Kind.EVENT
                if freed >= need:
                    break
        if victims:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM items WHERE id = ?", victims)
            self._db.execute("COMMIT")
            self._rows -= len(victims)
            self._bytes -= freed
            self._readings -= readings
            self._events -= events
        return Dropped(len(victims), readings, events)

    # ---- sending -----------------------------------------------------------------------------
    def max_id(self) -> int:
        """Highest id ever queued that is still waiting (0 when empty)."""
        with self._lock:
            value = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM items").fetchone()[0]
        return int(value)

    def claim(self, after: int, upto: int | None, limit_rows: int, max_bytes: int) -> list[Row]:
        """The oldest rows with ``after < id <= upto``, at most ``limit_rows`` rows / ``max_bytes``.

        The rows are marked in flight (never dropped for space) until acknowledged or released.
        """
        with self._lock:
            query = "SELECT id, kind, readings, body, queued_ms FROM items WHERE id > ?"
            args: list[Any] = [after]
            if upto is not None:
                query += " AND id <= ?"
                args.append(upto)
            rows = self._db.execute(query + " ORDER BY id LIMIT ?", (*args, limit_rows)).fetchall()
            out: list[Row] = []
            total = 0
            for row_id, kind, readings, body, queued_ms in rows:
                total += len(body)
                if out and total > max_bytes:
                    break
                out.append(Row(row_id, Kind(kind), readings, body, queued_ms))
            if out:
                self._inflight[out[0].id] = out[-1].id
            return out

    def delete_range(self, lo: int, hi: int) -> Removed:
        """Remove rows ``lo..hi`` (a claimed batch the broker acknowledged)."""
        with self._lock:
            self._inflight.pop(lo, None)
            self._db.execute("BEGIN IMMEDIATE")
            gone = self._db.execute(
                "DELETE FROM items WHERE id BETWEEN ? AND ? RETURNING kind, readings, size", (lo, hi)
            ).fetchall()
            self._db.execute("COMMIT")
            readings = sum(r[1] for r in gone)
            events = sum(1 for r in gone if r[0] == Kind.EVENT)
            self._rows -= len(gone)
            self._bytes -= sum(r[2] for r in gone)
            self._readings -= readings
            self._events -= events
            return Removed(len(gone), readings, events)

    def release_all(self) -> None:
        """Forget every claim (the connection dropped; unacknowledged rows will be sent again)."""
        with self._lock:
            self._inflight.clear()

    # ---- metadata ----------------------------------------------------------------------------
    def next_bdseq(self) -> int:
        """Increment and return the persisted boot sequence number (0 on the very first call)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT value FROM meta WHERE key = 'bdseq'").fetchone()
            value = 0 if row is None else int(row[0]) + 1
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('bdseq', ?)", (value,))
            self._db.execute("COMMIT")
            return value

    def save_meta(self, key: str, value: Any) -> None:
        """Store a JSON-ready value under ``key`` (e.g. the last counters)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, orjson.dumps(value))
            )

    def load_meta(self, key: str) -> Any:
        """The value stored under ``key``, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value = row[0]
        return orjson.loads(value) if isinstance(value, bytes) else value

    def close(self) -> None:
        """Report drops not yet logged, checkpoint and close the file."""
        self._last_drop_log = -DROP_LOG_EVERY_S
        if self._unlogged.rows:
            self._log_drops(Dropped())
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()
                self._lock_file.close()  # releases the lock
