"""The alert service's Python API: list, show, acknowledge, resolve, silence, unsilence, each with
an actor and a scope. The CLI, the REST routes and the console call these; they hold no HTTP.

Scope follows the web application's (``sitewatch.web.principal``): admin and bureau see every alert
(the bureau only reads); a property manager the alerts of the compounds its organisation manages; a
crew those of the compounds where its organisation holds a maintenance contract, of the asset kinds
the contracts cover. An alert outside the caller's scope is "not found", as the registry answers
for its resources. Silences: a caller who does not see everything must confine a silence to a
compound of its scope (a ``compound=`` matcher), and a crew to a kind it maintains there (``kind=``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from ..web.principal import CompoundScope, Role
from .lifecycle import Touch, acknowledge, resolve
from .matchers import Matcher, Op
from .models import OPEN_STATES, Alert, AlertFinding, AlertHistory, AlertState, Notification, Silence
from .render import iso
from .silences import create_silence, expire_silence

MAX_LIMIT = 1000


class NotFound(LookupError):
    """No such alert or silence in the caller's scope."""


class Forbidden(PermissionError):
    """The caller's role or scope does not allow this."""


class OutOfScope(ValueError):
    """A silence naming compounds or kinds outside the caller's scope."""


@dataclass(frozen=True, slots=True)
class AlertScope:
    """What a caller may see and do: its role (None: an operator at the CLI) and compound scope."""

    role: Role | None = None
    compounds: CompoundScope = field(default_factory=CompoundScope.all)

    @classmethod
    def everything(cls) -> AlertScope:
        """The operator's scope (the command line on the server)."""
        return cls()

    @property
    def may_act(self) -> bool:
        """May acknowledge, resolve and silence (the bureau only reads)."""
        return self.role is not Role.BUREAU

    def visible(self) -> ColumnElement[bool]:
        """SQL condition on alerts the caller may see."""
        if self.compounds.everything:
            return true()
        whole = [c for c, kinds in self.compounds.compounds.items() if kinds is None]
        by_kinds: dict[frozenset[str], list[str]] = defaultdict(list)
        for code, kinds in self.compounds.compounds.items():
            if kinds is not None:
                by_kinds[kinds].append(code)
        parts: list[ColumnElement[bool]] = [Alert.compound.in_(whole)] if whole else []
        parts += [and_(Alert.compound.in_(codes), Alert.kind.in_(kinds)) for kinds, codes in by_kinds.items()]
        return or_(*parts) if parts else false()

    def require_act(self) -> None:
        """Forbidden unless the caller may act on alerts."""
        if not self.may_act:
            raise Forbidden(f"role {self.role} may only read alerts")


@dataclass(frozen=True, slots=True)
class Filters:
    """What to list."""

    states: Sequence[AlertState] = (AlertState.FIRING, AlertState.ACKNOWLEDGED)
    compound: str | None = None
    crew: str | None = None
    severity: str | None = None
    kind: str | None = None
    device: str | None = None
    q: str | None = None  # substring of the device, compound name or fault
    since: dt.datetime | None = None  # started at or after


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list."""

    total: int
    limit: int
    offset: int
    items: list[dict[str, Any]] = field(default_factory=list)


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as JSON (the CLI's --json and the REST API)."""
    return {
        "id": alert.id, "fingerprint": alert.fingerprint, "state": alert.state, "severity": alert.severity,
        "compound": alert.compound, "device": alert.device, "kind": alert.kind, "fault": alert.fault,
        "source": alert.source, "crew": alert.crew, "labels": alert.labels, "message": alert.message,
        "params": alert.params, "findings": alert.findings_count, "started_at": iso(alert.started_at),
        "fired_at": iso(alert.fired_at), "updated_at": iso(alert.updated_at),
        "acknowledged_at": _iso(alert.acknowledged_at), "acknowledged_by": alert.acknowledged_by,
        "resolved_at": _iso(alert.resolved_at), "resolved_by": alert.resolved_by,
        "resolve_reason": alert.resolve_reason, "closed_at": _iso(alert.closed_at),
        "escalation_level": alert.escalation_level, "flaps": alert.flaps,
        "sources": _sources(alert),
    }  # fmt: skip


def _sources(alert: Alert) -> list[dict[str, Any]]:
    """The rules and detectors that found the alert's problem, the first first, each with its
    active episode; alerting's own alerts (an outage, a failing channel) have no finding: their
    one source is active while they are open."""
    sources = alert.sources or {alert.source: None}  # closed before sources were kept: the first
    if alert.finding_id is None:
        return [{"source": s, "finding_id": None, "active": alert.state in OPEN_STATES} for s in sources]
    return [{"source": s, "finding_id": f, "active": f is not None} for s, f in sources.items()]


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def silence_json(silence: Silence, now: dt.datetime) -> dict[str, Any]:
    """A silence as JSON."""
    state = "pending" if silence.starts_at > now else "active" if silence.ends_at > now else "expired"
    return {
        "id": silence.id, "matchers": [str(Matcher.of(m)) for m in silence.matchers], "state": state,
        "starts_at": iso(silence.starts_at), "ends_at": iso(silence.ends_at), "author": silence.author,
        "reason": silence.reason, "created_at": iso(silence.created_at), "ended_by": silence.ended_by,
    }  # fmt: skip


def list_alerts(session: Session, scope: AlertScope, filters: Filters = Filters(), *,
                limit: int = 50, offset: int = 0) -> Page:  # fmt: skip
    """A page of the alerts in scope, newest first."""
    limit = max(1, min(limit, MAX_LIMIT))
    where = [scope.visible()]
    if filters.states:
        where.append(Alert.state.in_([s.value for s in filters.states]))
    for column, value in ((Alert.compound, filters.compound), (Alert.crew, filters.crew),
                          (Alert.severity, filters.severity), (Alert.kind, filters.kind), (Alert.device, filters.device)):  # fmt: skip
        if value is not None:
            where.append(column == value)
    if filters.since is not None:
        where.append(Alert.started_at >= filters.since)
    if filters.q:
        pattern = "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(or_(Alert.device.like(pattern, escape="\\"), Alert.fault.like(pattern, escape="\\"),
                         Alert.compound.like(pattern, escape="\\")))  # fmt: skip
    total = session.scalar(select(func.count()).select_from(Alert).where(*where)) or 0
    rows = session.execute(
        select(Alert)
        .where(*where)
        .order_by(Alert.fired_at.desc(), Alert.id.desc())
        .limit(limit)
        .offset(offset)
    ).scalars()
    return Page(total, limit, offset, [alert_json(a) for a in rows])


def get_alert(session: Session, scope: AlertScope, alert_id: int, *, lock: bool = False) -> Alert:
    """One alert in scope; NotFound otherwise."""
    statement = select(Alert).where(Alert.id == alert_id, scope.visible())
    alert = session.execute(statement.with_for_update() if lock else statement).scalar_one_or_none()
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert


def alert_detail(session: Session, scope: AlertScope, alert_id: int) -> dict[str, Any]:
    """An alert with its history, the findings that fed it and its notifications."""
    alert = get_alert(session, scope, alert_id)
    history = session.execute(
        select(AlertHistory).where(AlertHistory.alert_id == alert.id).order_by(AlertHistory.id)
    ).scalars()
    findings = session.execute(
        select(AlertFinding).where(AlertFinding.alert_id == alert.id).order_by(AlertFinding.id).limit(100)
    ).scalars()
    notes = [
        n
        for n in session.execute(
            select(Notification)
            .order_by(Notification.id.desc())
            .where(Notification.created_at >= alert.fired_at - dt.timedelta(seconds=1))
            .limit(2000)
        ).scalars()
        if alert.id in n.alert_ids
    ][:100]
    return {
        **alert_json(alert),
        "history": [
            {
                "at": iso(h.at),
                "event": h.event,
                "from": h.from_state,
                "to": h.to_state,
                "actor": h.actor,
                "detail": h.detail,
            }
            for h in history
        ],
        "finding_messages": [
            {
                "id": f.finding_id,
                "state": f.state,
                "severity": f.severity,
                "received_at": iso(f.received_at),
                "evidence": f.evidence,
            }
            for f in findings
        ],
        "notifications": [
            {
                "id": n.id,
                "key": n.key,
                "kind": n.kind,
                "channel_id": n.channel_id,
                "status": n.status,
                "attempts": n.attempts,
                "created_at": iso(n.created_at),
                "delivered_at": _iso(n.delivered_at),
                "last_error": n.last_error,
                "answer": n.answer,
            }
            for n in reversed(notes)
        ],
    }


def acknowledge_alert(session: Session, scope: AlertScope, alert_id: int, actor: str,
                      now: dt.datetime, touch: Touch) -> Alert:  # fmt: skip
    """Acknowledge an alert in scope (TransitionError unless it is firing)."""
    scope.require_act()
    alert = get_alert(session, scope, alert_id, lock=True)
    acknowledge(session, alert, actor, now, touch)
    return alert


def resolve_alert(session: Session, scope: AlertScope, alert_id: int, actor: str, reason: str,
                  now: dt.datetime, touch: Touch) -> Alert:  # fmt: skip
    """Resolve an alert in scope by hand, with a reason."""
    scope.require_act()
    if not reason.strip():
        raise ValueError("resolving by hand needs a reason")
    alert = get_alert(session, scope, alert_id, lock=True)
    resolve(session, alert, actor, reason.strip(), now, touch)
    return alert


def _check_silence_scope(scope: AlertScope, matchers: Sequence[Matcher]) -> None:
    scope.require_act()
    if scope.compounds.everything:
        return
    for m in matchers:
        if m.name == "compound" and m.op is Op.EQ and scope.compounds.sees(m.value):
            kinds = scope.compounds.compounds[m.value]
            if kinds is None or any(
                k.name == "kind" and k.op is Op.EQ and k.value in kinds for k in matchers
            ):
                return
    raise OutOfScope("a silence of yours must name a compound of your scope (compound=<code>), and a crew "
                    "one of the kinds it maintains there (kind=<kind>)")  # fmt: skip


def silence(session: Session, scope: AlertScope, matchers: Sequence[Matcher], starts_at: dt.datetime,
            ends_at: dt.datetime, author: str, reason: str, now: dt.datetime) -> Silence:  # fmt: skip
    """Create a silence (a maintenance window) within the caller's scope."""
    _check_silence_scope(scope, matchers)
    return create_silence(session, matchers, starts_at, ends_at, author, reason, now)


def unsilence(session: Session, scope: AlertScope, silence_id: int, actor: str, now: dt.datetime) -> Silence:
    """End a silence now."""
    row = session.get(Silence, silence_id, with_for_update=True)
    if row is None:
        raise NotFound(f"silence {silence_id} not found")
    _check_silence_scope(scope, [Matcher.of(m) for m in row.matchers])
    expire_silence(session, row, actor, now)
    return row


def list_silences(
    session: Session, now: dt.datetime, *, include_expired: bool = False, limit: int = 200
) -> list[Silence]:
    """Silences in force or to come (every one with ``include_expired``), newest first."""
    statement = select(Silence).order_by(Silence.id.desc()).limit(max(1, min(limit, MAX_LIMIT)))
    if not include_expired:
        statement = statement.where(Silence.ends_at > now)
    return list(session.execute(statement).scalars())
