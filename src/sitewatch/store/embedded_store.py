"""EmbeddedStore: the time-series store in one SQLite file (WAL), no server.

One writer (any one thread of the owning process) and any number of readers, in this process or
others: SQLite's write-ahead log lets readers see the last committed batch while a batch is written.
Readings are keyed by (series, ts) where a series is (device, metric), so writing the same point
again replaces it: the last write wins, as in InfluxDB.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from .base import PreparedBatch, StoredEvent, StoredSample, StoreRefused, StoreUnavailable
from .checks import check_batch, store_checker
from .embedded_queries import EmbeddedQueries

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    metric TEXT NOT NULL,
    kind TEXT NOT NULL,
    compound TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    UNIQUE (device, metric)
);
CREATE INDEX IF NOT EXISTS series_compound ON series (compound, device);
CREATE INDEX IF NOT EXISTS series_kind ON series (kind, device);
CREATE TABLE IF NOT EXISTS readings (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL NOT NULL,
    flagged INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    device TEXT NOT NULL,
    ts INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    compound TEXT NOT NULL,
    active INTEGER,
    attrs TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (device, ts, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_name ON events (name, device, ts);
"""

# The same point again changes nothing unless its value or flag differs (a replay is mostly reads).
_UPSERT_READING = (
    "INSERT INTO readings VALUES (?, ?, ?, ?) ON CONFLICT (series_id, ts) DO UPDATE SET "
    "value = excluded.value, flagged = excluded.flagged "
    "WHERE value IS NOT excluded.value OR flagged IS NOT excluded.flagged"
)

_OPEN_RETRY_S = 0.02
# What SQLite (or binding a value for it) raises for the data itself: the same rows fail again.
_REFUSED = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.ProgrammingError,
    sqlite3.InterfaceError,
    OverflowError,
    UnicodeEncodeError,
    ValueError,
    TypeError,
)


def _is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class EmbeddedStore(EmbeddedQueries):
    """The Store in a single SQLite file; see the module docstring for the concurrency rules."""

    concurrent_writes = 1  # SQLite has one writer at a time: a second write would only wait

    def __init__(self, path: Path | str, *, create: bool = True, timeout_s: float = 30.0) -> None:
        """Open (with ``create``, create) the store file.

        FileNotFoundError when it is missing and ``create`` is false; StoreUnavailable when the
        file is not a store this version can read.
        """
        self.path = Path(path)
        if not create and not self.path.exists():
            raise FileNotFoundError(f"no store file at {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT)
        self._db = sqlite3.connect(
            self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._prepare(create, timeout_s)
                break
            except sqlite3.Error as exc:
                # SQLite skips its busy wait where waiting could deadlock (switching a new file to
                # WAL while another connection writes it): wait here, as it would have
                if _is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(_OPEN_RETRY_S)
                    continue
                self._db.close()
                raise StoreUnavailable(f"{self.path} is not a usable sitewatch store: {exc}") from exc
        self._series_ids: dict[tuple[str, str], int] = {}
        self._series_meta: dict[int, tuple[str, str, str]] = {}  # id -> (kind, compound, tags json)
        self.checker = store_checker()

    def _prepare(self, create: bool, timeout_s: float) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed batch survives a crash of the process (not of the OS)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        self._db.execute("PRAGMA cache_size=-65536")
        if create:
            script = (
                "BEGIN IMMEDIATE;"
                + _SCHEMA
                + f"INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
            )
            try:
                self._db.executescript(script)
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or int(row[0]) > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {row[0] if row else 'missing'}, this version reads {SCHEMA_VERSION}"
            )

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.path)!r})"

    # -- writing ---------------------------------------------------------------------------------

    def _series_id(self, device: str, metric: str, kind: str, compound: str, tags: str) -> int:
        key = (device, metric)
        sid = self._series_ids.get(key)
        if sid is not None and self._series_meta[sid] == (kind, compound, tags):
            return sid
        row = self._db.execute(
            "INSERT INTO series (device, metric, kind, compound, tags) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (device, metric) DO UPDATE SET kind=excluded.kind, "
            "compound=excluded.compound, tags=excluded.tags RETURNING id",
            (device, metric, kind, compound, tags),
        ).fetchone()
        sid = int(row[0])
        self._series_ids[key] = sid
        self._series_meta[sid] = (kind, compound, tags)
        return sid

    def write(self, samples: Sequence[StoredSample], events: Sequence[StoredEvent] = ()) -> None:
        """Store a batch in one transaction; InvalidPoint (nothing written) on input it cannot hold."""
        self.write_prepared(self.prepare(samples, events))

    def prepare(
        self, samples: Sequence[StoredSample], events: Sequence[StoredEvent] = (), *, validated: bool = False
    ) -> PreparedBatch:
        """Check the batch (its rows are built inside the write's transaction: they need series ids)."""
        if samples or events:
            check_batch(samples, events, checker=self.checker, validated=validated)
        return PreparedBatch(samples, events)

    def write_prepared(self, batch: PreparedBatch) -> None:
        """Store a checked batch in one transaction (all of it or, on an error, nothing).

        StoreUnavailable when SQLite cannot write now (locked, busy, disk full or failing: retry
        later); StoreRefused when it refused the rows themselves (a value it cannot bind, a
        constraint): the same rows would fail again.
        """
        samples, events = batch.samples, batch.events
        if not samples and not events:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._write_locked(samples, events)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    # series rows created in the failed transaction are gone: forget them
                    self._series_ids.clear()
                    self._series_meta.clear()
                    raise
            except _REFUSED as exc:
                raise StoreRefused(f"embedded store {self.path} refused the write: {exc}") from exc
            except sqlite3.Error as exc:  # OperationalError (locked, I/O, full), a damaged file
                raise StoreUnavailable(f"embedded store {self.path}: {exc}") from exc

    def _write_locked(self, samples: Sequence[StoredSample], events: Sequence[StoredEvent]) -> None:
        rows: list[tuple[int, int, float, int]] = []
        append = rows.append
        series_id = self._series_id
        ids = self._series_ids
        no_tags = "{}"
        for item in samples:
            sample = item.sample
            device = sample.device
            kind = sample.kind.value
            tags = orjson.dumps(dict(sorted(item.tags.items()))).decode() if item.tags else no_tags
            ts = sample.ts_ms
            flagged = 1 if item.flagged else 0
            for metric, value in sample.values.items():
                sid = ids.get((device, metric))
                if sid is None or self._series_meta[sid] != (kind, item.compound, tags):
                    sid = series_id(device, metric, kind, item.compound, tags)
                append((sid, ts, float(value), flagged))
        if rows:
            self._db.executemany(_UPSERT_READING, rows)
        if events:
            self._db.executemany(
                "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [_event_row(e) for e in events],
            )

    # -- reading ---------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Iterable[Any]) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, tuple(params)).fetchall()
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"embedded store {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()


def _event_row(item: StoredEvent) -> tuple[Any, ...]:
    e = item.event
    return (
        e.device,
        e.ts_ms,
        e.name,
        e.kind.value,
        item.compound,
        None if e.active is None else int(e.active),
        orjson.dumps(dict(sorted(e.attrs.items()))).decode(),
        orjson.dumps(dict(sorted(item.tags.items()))).decode(),
    )
