"""The alerting engine: the registry's database, with write transactions that never deadlock on SQLite.

SQLite's default (deferred) transactions read first and take the write lock when they first write;
a concurrent writer can then make that upgrade fail at once ("database is locked") however long the
busy timeout. Alerting reads and writes in one transaction (the open alert of a fingerprint, then
its update), so on SQLite each transaction begins IMMEDIATE (the write lock up front, waiting up to
the busy timeout for it), the recipe SQLAlchemy documents for pysqlite. PostgreSQL needs nothing:
its row locks and the partial unique index do the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..assets.db import create_engine_for, upgrade
from ..settings import Settings

BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")


def alerts_engine(settings: Settings | str) -> Engine:
    """An engine on the registry's database (``settings`` or a URL) for alerting's transactions."""
    engine = create_engine_for(settings)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_autocommit_driver)
        event.listen(engine, "begin", _begin_immediate)
    return engine


def _sqlite_autocommit_driver(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN itself
    dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def migrate(engine: Engine) -> None:
    """Bring the registry's and alerting's schemas to their heads."""
    upgrade(engine)


def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on an exception."""
    with sessions(engine).begin() as session:
        yield session


def in_transaction(engine: Engine, work: Callable[[Session], T], *, attempts: int = 5) -> T:
    """Run ``work`` in a transaction, again (a few times, with a short backoff) when the database
    reports a transient failure: a serialization conflict, a lost connection, a lock timeout."""
    delay = 0.05
    for attempt in range(attempts):
        try:
            with transaction(engine) as session:
                return work(session)
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")
