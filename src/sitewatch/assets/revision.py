"""The registry's revision: a counter bumped by every commit that changed registry data.

Ingest caches device lookups; it polls ``GET /api/v1/lookup/revision`` and drops its cache when the
number moves, so a device bound, moved or replaced is seen within one poll interval. Changes are
noticed both through the ORM (objects added, changed or deleted) and through bulk DML executed on a
session (the ledger importer's ``insert``/``update``/``delete`` statements). API tokens are not
registry data and do not count, nor are other components' tables that share the database (alerting
writes its tables many times a second; that must not empty ingest's cache).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import ORMExecuteState, Session

from .models import ApiToken, Base, RegistryRevision

_FLAG = "sitewatch.registry_changed"
_IGNORED_TABLES = frozenset({ApiToken.__tablename__, RegistryRevision.__tablename__})


def _registry_table(statement: Any) -> bool:
    table = getattr(statement, "table", None)
    return (
        table is not None
        and getattr(table, "metadata", None) is Base.metadata
        and (table.name not in _IGNORED_TABLES)
    )


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if (state.is_insert or state.is_update or state.is_delete) and _registry_table(state.statement):
        state.session.info[_FLAG] = True


@event.listens_for(Session, "before_flush")
def _on_flush(session: Session, _context: object, _instances: object) -> None:
    dirty = (obj for obj in session.dirty if isinstance(obj, Base) and session.is_modified(obj))
    for obj in (*session.new, *dirty, *session.deleted):
        if isinstance(obj, Base) and not isinstance(obj, ApiToken | RegistryRevision):
            session.info[_FLAG] = True
            return


@event.listens_for(Session, "before_commit")
def _on_commit(session: Session) -> None:
    session.flush()  # commit flushes after this hook: flush first so pending ORM changes are seen
    if session.info.pop(_FLAG, False):
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        session.execute(
            update(RegistryRevision).values(revision=RegistryRevision.revision + 1, changed_at=now)
        )


@event.listens_for(Session, "after_soft_rollback")
def _on_rollback(session: Session, _previous: object) -> None:
    session.info.pop(_FLAG, None)


def current(session: Session) -> tuple[int, dt.datetime]:
    """The registry's revision number and when it last changed (UTC, naive)."""
    row = session.execute(select(RegistryRevision.revision, RegistryRevision.changed_at)).first()
    if row is None:  # a database migrated before the counter existed has its row inserted by 0002
        return 0, dt.datetime(1970, 1, 1)
    return int(row[0]), row[1]
