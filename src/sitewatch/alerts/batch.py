"""Many findings in one transaction, with a fixed number of statements for the common cases.

Most findings feed an alert that is already open (a detector repeating itself, a fault still
there), or raise one that is new. For those the batch runs SQLAlchemy Core statements whatever its
size: one SELECT of the messages already seen, one SELECT (``FOR UPDATE`` on PostgreSQL) of the
open alerts of every fingerprint in the batch, one multi-row ``INSERT ... ON CONFLICT DO NOTHING
RETURNING`` of the new alerts (the partial unique index on open fingerprints decides, as for one
finding), one executemany INSERT of the messages (the unique (finding id, state) refuses one that
another process applied meanwhile: the batch is then rolled back and applied a finding at a time),
one executemany UPDATE bumping each fed alert once (its count, its episode and its sources: a
finding of another rule or detector that found the same problem joins the alert here too), and one
INSERT of the history. No ORM objects
are made for them, except the new alerts' groups being marked (once per group, not per alert).
On SQLite the two executemany statements with a row per finding go to the driver with each
column's values converted by its own bind processor (``_executemany``): SQLAlchemy's generic
per-row parameter handling was a third of a batch's time. On PostgreSQL each of them is one
statement whose columns are array parameters read back into rows by ``unnest`` (``_unnest``):
psycopg's executemany sends one statement per row.

A finding that could change an alert's state otherwise (a cleared finding, a resolved alert firing
again, a higher severity) goes through ``lifecycle.apply_finding`` one at a time, in order, with
the other findings of its fingerprint; so does a new alert that lost the insert to another process
or to a resolved alert of its fingerprint (which reopens).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Connection, DateTime, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert

from ..contract import Finding, FindingState
from ..settings import AlertsSettings
from .lifecycle import (
    OPEN_WHERE,
    SEVERITY_RANK,
    Applied,
    Duplicate,
    Problem,
    Touch,
    _insert,
    apply_finding,
    finding_fingerprint,
    ms_to_dt,
    new_alert,
    source_detail,
)
from .models import OPEN_STATES, Alert, AlertEvent, AlertFinding, AlertHistory, AlertState
from .routing import warm

ALERTS = cast(Table, Alert.__table__)
MESSAGES = cast(Table, AlertFinding.__table__)
HISTORY = cast(Table, AlertHistory.__table__)
OPEN_VALUES = tuple(s.value for s in OPEN_STATES)
_RANK = {s.value: rank for s, rank in SEVERITY_RANK.items()}  # by value: cheaper than by the enum

# The two SELECTs of every batch, by key, as the driver takes them: the keys go as one parameter (a
# JSON array read by ``json_each`` on SQLite, an array on PostgreSQL), not expanded into a thousand
# bound parameters for SQLAlchemy to render at each batch. The open alerts are read with the partial
# unique index's own condition, so that the index serves them, and locked on PostgreSQL.
_STATES_SQL = ", ".join(f"'{v}'" for v in OPEN_VALUES)
_SEEN = {
    "sqlite": f"SELECT finding_id, state FROM {MESSAGES.name} WHERE finding_id IN (SELECT value FROM json_each(?))",
    "postgresql": f"SELECT finding_id, state FROM {MESSAGES.name} WHERE finding_id = ANY(%s)",
}
_OPEN = {
    "sqlite": f"SELECT id, fingerprint, state, severity, finding_id, sources FROM {ALERTS.name} "
    f"WHERE fingerprint IN (SELECT value FROM json_each(?)) AND {OPEN_WHERE.text} AND state IN ({_STATES_SQL})",
    "postgresql": f"SELECT id, fingerprint, state, severity, finding_id, sources FROM {ALERTS.name} "
    f"WHERE fingerprint = ANY(%s) AND {OPEN_WHERE.text} AND state IN ({_STATES_SQL}) FOR UPDATE",
}


def _rows(conn: Connection, statements: dict[str, str], keys: list[str]) -> list[Any]:
    """The rows of one of the statements above for ``keys`` (through SQLAlchemy, whose errors they raise)."""
    name = conn.dialect.name
    if name not in statements:  # the registry runs on these two (docs/assets.md)
        raise NotImplementedError(f"alerting's batches support SQLite and PostgreSQL, not {name}")
    param = orjson.dumps(keys).decode() if name == "sqlite" else keys
    return list(conn.exec_driver_sql(statements[name], (param,)).all())


@dataclass(slots=True)
class _Open:
    """What the batch needs of an open alert (a row, not an ORM object)."""

    id: int
    state: str
    severity: str
    finding_id: str | None
    sources: dict[str, str | None]  # Alert.sources, as the batch leaves them
    fed: int = 0  # findings of the batch that fed it (its count goes up by as many)
    events: list[tuple[str, str]] = field(default_factory=list)  # (event, detail) for its history, in order


def _sources(value: Any) -> dict[str, str | None]:
    """A JSON column's value as the driver gives it: text on SQLite, already decoded by psycopg."""
    return orjson.loads(value) if isinstance(value, str) else dict(value or {})


def apply_findings(session: Session, findings: Sequence[Finding], settings: AlertsSettings,
                   now: dt.datetime, touch: Touch) -> list[Applied]:  # fmt: skip
    """Apply findings in order (in the caller's transaction); what each one did."""
    conn = session.connection()
    results: list[Applied | None] = [None] * len(findings)
    seen = set(_rows(conn, _SEEN, list({f.id for f in findings})))
    by_fingerprint: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(findings):
        key = (f.id, f.state._value_)
        if key in seen:
            results[i] = Applied.DUPLICATE
            continue
        seen.add(key)
        by_fingerprint[finding_fingerprint(f)].append(i)
    open_alerts = {
        fp: _Open(i, state, severity, finding_id, _sources(sources))
        for i, fp, state, severity, finding_id, sources in _rows(conn, _OPEN, list(by_fingerprint))
    }
    fed: list[tuple[Finding, _Open]] = []  # findings that only feed an open alert
    firsts: list[tuple[Finding, _Open]] = []  # findings that raised a new alert
    slow: list[int] = []
    new = {fp: ix for fp, ix in by_fingerprint.items() if fp not in open_alerts and _raises(findings, ix)}
    raised = _raise(session, conn, {fp: findings[ix[0]] for fp, ix in new.items()}, settings, now, touch)
    for fp, indexes in by_fingerprint.items():
        alert = open_alerts.get(fp) or raised.get(fp)
        if fp in raised and alert is not None:
            results[indexes[0]] = Applied.CREATED
            firsts.append((findings[indexes[0]], alert))
            indexes = indexes[1:]
        if alert is not None and all(_feeds(findings[i], alert) for i in indexes):
            fed.extend((findings[i], alert) for i in indexes)
            for i in indexes:
                results[i] = Applied.UPDATED
        else:
            slow.extend(indexes)
    if fed or firsts:
        _record(conn, fed, firsts, now)
    for i in sorted(slow):
        results[i] = apply_finding(session, findings[i], settings, now, touch)[1]
    return [r if r is not None else Applied.IGNORED for r in results]


def _raises(findings: Sequence[Finding], indexes: list[int]) -> bool:
    """Whether the findings of a fingerprint with no open alert raise one and then only feed it."""
    first = findings[indexes[0]]
    rank = _RANK[first.severity._value_]
    return all(
        findings[i].state is FindingState.ACTIVE and _RANK[findings[i].severity._value_] <= rank for i in indexes
    )


def _feeds(finding: Finding, alert: _Open) -> bool:
    """Whether ``finding`` only feeds ``alert`` (no change of state or severity)."""
    return finding.state is FindingState.ACTIVE and _RANK[finding.severity._value_] <= _RANK[alert.severity]


def _raise(session: Session, conn: Connection, new: dict[str, Finding], settings: AlertsSettings,
           now: dt.datetime, touch: Touch) -> dict[str, _Open]:  # fmt: skip
    """Fire an alert for each new fingerprint at once (``INSERT ... ON CONFLICT DO NOTHING``); the
    ones inserted, by fingerprint (a conflict leaves its fingerprint to ``apply_finding``)."""
    if not new:
        return {}
    problems = [Problem.of(f) for f in new.values()]
    warm(session, [(p.compound, p.device, p.kind) for p in problems], now.date())  # one query for the assets
    rows = [new_alert(session, p, settings, now) for p in problems]
    inserted = conn.execute(
        _insert(session)(ALERTS)
        .on_conflict_do_nothing(index_elements=["fingerprint"], index_where=OPEN_WHERE)
        .returning(ALERTS.c.id, ALERTS.c.fingerprint, ALERTS.c.severity),
        rows,
    ).all()
    raised = {
        fp: _Open(i, AlertState.FIRING.value, sev, new[fp].id, {new[fp].source: new[fp].id})
        for i, fp, sev in inserted
    }
    if not raised:
        return raised
    conn.execute(
        insert(HISTORY),
        [{"alert_id": a.id, "at": now, "event": AlertEvent.FIRED.value, "from_state": None,
          "to_state": AlertState.FIRING.value, "actor": None, "detail": a.finding_id} for a in raised.values()],
    )  # fmt: skip
    # mark the groups: once for each kind of alert that selects the same groups
    alerts = session.execute(select(Alert).where(Alert.id.in_([a.id for a in raised.values()]))).scalars()
    marked = set()
    for alert in alerts:
        kind = (
            alert.compound,
            alert.crew,
            alert.labels.get("manager"),
            alert.labels.get("district"),
            alert.severity,
        )
        if kind not in marked:
            marked.add(kind)
            touch(session, alert, now)
    return raised


def _record(conn: Connection, fed: list[tuple[Finding, _Open]], firsts: list[tuple[Finding, _Open]],
            now: dt.datetime) -> None:  # fmt: skip
    """Record the messages; bump each fed alert once for all its findings of the batch and write
    its new episodes and the sources that joined it to its history (as ``lifecycle._feed`` would one
    finding at a time)."""
    for finding, alert in fed:
        alert.fed += 1
        source, fid = finding.source, finding.id
        if source not in alert.sources:
            alert.events.append((AlertEvent.SOURCE_JOINED.value, source_detail(source, fid)))
        elif alert.sources[source] != fid:
            alert.events.append((AlertEvent.FINDING.value, fid))
        alert.sources[source] = fid
        alert.finding_id = fid
    messages: list[dict[str, Any]] = [
        {
            "alert_id": alert.id, "finding_id": f.id, "state": f.state._value_, "severity": f.severity._value_,
            "started_at": ms_to_dt(f.started_ms), "ended_at": None, "received_at": now, "evidence": dict(f.evidence),
        }
        for f, alert in firsts + fed
    ]  # fmt: skip
    try:  # a plain executemany: the unique (finding id, state) refuses a message applied meanwhile
        _executemany(conn, "messages", insert(MESSAGES), messages)
    except IntegrityError:  # by another process: roll back, and apply the batch one finding at a time
        raise Duplicate from None
    bumped = list({id(a): a for _, a in fed}.values())
    if bumped:
        _executemany(
            conn, "bump",
            update(ALERTS)
            .where(ALERTS.c.id == bindparam("alert_id"))
            .values(
                findings_count=ALERTS.c.findings_count + bindparam("fed"),
                updated_at=bindparam("now"),
                finding_id=bindparam("episode"),
                sources=bindparam("sources", type_=ALERTS.c.sources.type),
            ),
            [{"alert_id": a.id, "fed": a.fed, "now": now, "episode": a.finding_id, "sources": a.sources}
             for a in bumped],
        )  # fmt: skip
    history = [
        {"alert_id": a.id, "at": now, "event": event, "from_state": None, "to_state": a.state,
         "actor": None, "detail": detail[:500]}
        for a in bumped for event, detail in a.events
    ]  # fmt: skip
    _executemany(conn, "history", insert(HISTORY), history)


_Plan = tuple[str, list[str], list[Any], list[bool], bool]
_COMPILED: dict[tuple[str, str, str, tuple[str, ...]], _Plan] = {}


_BUMP_PG = (
    f"UPDATE {ALERTS.name} AS a SET findings_count = a.findings_count + u.fed, updated_at = u.now, "
    "finding_id = u.episode, sources = u.sources "
    "FROM unnest(%s::integer[], %s::integer[], %s::timestamp[], %s::varchar[], %s::text[]::json[]) "
    "AS u(alert_id, fed, now, episode, sources) WHERE a.id = u.alert_id"
)
_BUMP_KEYS = ("alert_id", "fed", "now", "episode", "sources")  # _BUMP_PG's arrays, in order
_BUMP_JSON = [key == "sources" for key in _BUMP_KEYS]
_UNNEST: dict[tuple[str, tuple[str, ...]], tuple[str, list[bool]]] = {}


def _unnest(conn: Connection, name: str, statement: Executable, rows: list[dict[str, Any]]) -> None:
    """The rows in one statement on PostgreSQL: each column's values as one array parameter, read
    back into rows by ``unnest`` (an INSERT of the statement's table, or the bump). psycopg's
    executemany sends a statement per row, which cost more than the rest of a batch together."""
    keys = _BUMP_KEYS if name == "bump" else tuple(rows[0])
    if (name, keys) not in _UNNEST:
        if name == "bump":
            _UNNEST[name, keys] = (_BUMP_PG, _BUMP_JSON)
        else:
            if not isinstance(statement, Insert):
                raise TypeError(f"{name}: an INSERT or the bump, not {type(statement).__name__}")
            table = cast(Table, statement.table)
            types = [table.c[k].type for k in keys]
            arrays = [
                "%s::text[]::json[]" if isinstance(t, JSON) else f"%s::{t.compile(dialect=conn.dialect)}[]"
                for t in types
            ]
            sql = f"INSERT INTO {table.name} ({', '.join(keys)}) SELECT * FROM unnest({', '.join(arrays)})"
            _UNNEST[name, keys] = (sql, [isinstance(t, JSON) for t in types])
    sql, json_columns = _UNNEST[name, keys]
    columns = [
        [_json(row[k]) for row in rows] if is_json else [row[k] for row in rows]
        for k, is_json in zip(keys, json_columns, strict=True)
    ]
    conn.exec_driver_sql(sql, tuple(columns))


def _json(value: Any) -> str:
    """A JSON column's value as SQLite holds it (orjson: the same JSON, several times faster)."""
    return orjson.dumps(value).decode()


def _executemany(conn: Connection, name: str, statement: Executable, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(statement, rows)`` for many rows of the same keys, cheaper on SQLite: the statement is
    compiled once per dialect (cached under ``name``), each column's values converted by its own bind
    processor (dates to SQLite's text, JSON serialised, as SQLAlchemy would; a date once per distinct
    value, as a batch's rows share their ``now``), and the rows handed to the driver's executemany.
    Errors come as SQLAlchemy's (``IntegrityError``...)."""
    if not rows:
        return
    dialect = conn.dialect
    if dialect.name == "postgresql":
        _unnest(conn, name, statement, rows)
        return
    if dialect.name != "sqlite":
        conn.execute(statement, rows)
        return
    keys = tuple(rows[0])
    key = (name, dialect.name, dialect.driver, keys)
    if key not in _COMPILED:
        compiled = cast(
            SQLCompiler,
            cast(ClauseElement, statement).compile(dialect=dialect, column_keys=list(keys), for_executemany=True),
        )
        names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
        types = [compiled.binds[n].type for n in names]
        processors = [
            _json if isinstance(t, JSON) else t.dialect_impl(dialect).bind_processor(dialect) for t in types
        ]
        memo = [isinstance(t, DateTime) for t in types]  # few distinct values: convert each once
        _COMPILED[key] = (compiled.string, names, processors, memo, compiled.positional)
    sql, names, processors, memo, positional = _COMPILED[key]
    columns: list[list[Any]] = []
    for n, p, m in zip(names, processors, memo, strict=True):
        values = [row[n] for row in rows]
        if p is not None:
            if m:
                done = {v: p(v) for v in set(values)}
                values = [done[v] for v in values]
            else:
                values = list(map(p, values))
        columns.append(values)
    params: list[Any] = list(zip(*columns, strict=True))
    if not positional:
        params = [dict(zip(names, row, strict=True)) for row in params]
    conn.exec_driver_sql(sql, params)
