"""Alerts from findings, and their lifecycle: firing → acknowledged → resolved → closed.

Dedup is atomic: a new alert is an ``INSERT ... ON CONFLICT DO NOTHING`` against the partial unique
index on the fingerprints of alerts that are not closed, so two processes raising the same problem
at the same moment make one alert; the loser updates the winner's row instead. A finding message is
recorded by (finding id, state), so a redelivered copy changes nothing. Every change of state is
written to the alert's history and marks its groups for notification in the same transaction.

One problem (a device and a fault type) is often found by several rules and detectors at once: a
charger's Faulted status and its fault event, an entrapment's alarm, flag and run state. They make
one alert (the fingerprint leaves the source out when the finding names a fault type), which keeps
each source's active episode in ``Alert.sources``: the first finding fires it, the others join it
(``source_joined`` in its history), and it resolves by the data only when every source has cleared
(one clearing while another is still active is a ``source_cleared`` entry).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..contract import Finding, FindingState, Severity
from ..settings import AlertsSettings
from .models import OPEN_STATES, Alert, AlertEvent, AlertFinding, AlertHistory, AlertState
from .routing import Route, capped, fingerprint, lookup

SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
ALLOWED = {
    AlertState.FIRING: {AlertState.ACKNOWLEDGED, AlertState.RESOLVED},
    AlertState.ACKNOWLEDGED: {AlertState.RESOLVED},
    AlertState.RESOLVED: {AlertState.FIRING, AlertState.CLOSED},
    AlertState.CLOSED: set(),
}
OPEN_WHERE = text("state != 'closed'")


class Applied(StrEnum):
    """What a finding did."""

    CREATED = "created"
    UPDATED = "updated"
    REOPENED = "reopened"
    RESOLVED = "resolved"
    DUPLICATE = "duplicate"  # (id, state) seen before: a redelivery
    IGNORED = "ignored"  # a cleared finding for an alert already resolved or closed


class TransitionError(ValueError):
    """A change of state the lifecycle does not allow (resolving a closed alert)."""

    def __init__(self, alert: Alert, to: AlertState) -> None:
        super().__init__(f"alert {alert.id} is {alert.state}; it cannot become {to}")
        self.alert = alert
        self.to = to


@dataclass(frozen=True, slots=True)
class Problem:
    """What raises an alert: a finding, or one of alerting's own (an outage, a failing channel)."""

    compound: str
    device: str | None
    kind: str
    source: str
    fault: str | None
    severity: Severity
    message: str
    params: Mapping[str, Any] = field(default_factory=dict)
    started_at: dt.datetime | None = None
    finding_id: str | None = None
    active: bool = True  # False: a finding published already cleared (an instantaneous one)

    @property
    def fingerprint(self) -> str:
        """The identity of the problem (see routing.fingerprint)."""
        return fingerprint(self.compound, self.device, self.fault, self.source)

    @classmethod
    def of(cls, finding: Finding) -> Problem:
        """The problem a finding reports."""
        return cls(
            finding.compound, finding.device, finding.kind.value, finding.source, finding.fault,
            finding.severity, finding.message, dict(finding.params), ms_to_dt(finding.started_ms), finding.id,
            finding.state is FindingState.ACTIVE,
        )  # fmt: skip


Touch = Callable[[Session, Alert, dt.datetime], None]  # marks an alert's groups (dispatch.touch)


@functools.lru_cache(maxsize=4096)  # a batch's findings share few start times
def ms_to_dt(ms: int) -> dt.datetime:
    """Epoch milliseconds as the naive UTC the database holds."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(tzinfo=None)


def finding_fingerprint(finding: Finding) -> str:
    """``Problem.of(finding).fingerprint``, without making the problem."""
    return _fingerprint(finding.compound, finding.device, finding.fault, finding.source)


_fingerprint = functools.lru_cache(maxsize=65_536)(fingerprint)  # the same problems come again and again


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def record(session: Session, alert: Alert, event: AlertEvent, now: dt.datetime, *,
           from_state: str | None = None, actor: str | None = None, detail: str | None = None) -> None:  # fmt: skip
    """Add an entry to the alert's history."""
    session.add(
        AlertHistory(
            alert_id=alert.id, at=now, event=event.value, from_state=from_state,
            to_state=alert.state, actor=actor, detail=None if detail is None else detail[:500],
        )
    )  # fmt: skip


def _labels(problem: Problem, route: Route, settings: AlertsSettings) -> dict[str, str]:
    labels = dict(route.labels)
    labels.update(compound=problem.compound, kind=problem.kind, source=problem.source,
                  severity=problem.severity.value, alertname=problem.fault or problem.source)  # fmt: skip
    if problem.device:
        labels["device"] = problem.device
        if problem.kind == "gateway":
            labels["gateway"] = problem.device
    if problem.fault:
        labels["fault"] = problem.fault
    return capped(labels, settings.max_label_chars)


def new_alert(session: Session, problem: Problem, settings: AlertsSettings, now: dt.datetime) -> dict[str, Any]:
    """The row of a new firing alert for ``problem``, routed by the registry."""
    route = lookup(session, problem.compound, problem.device, problem.kind, now.date())
    return dict(
        fingerprint=problem.fingerprint, state=AlertState.FIRING.value, severity=problem.severity.value,
        compound=problem.compound, device=problem.device, kind=problem.kind, fault=problem.fault,
        source=problem.source, crew=route.crew, labels=_labels(problem, route, settings),
        message=problem.message[:500], params=dict(problem.params), finding_id=problem.finding_id,
        sources={problem.source: problem.finding_id if problem.active else None}, findings_count=1,
        started_at=problem.started_at or now, fired_at=now, updated_at=now,
        escalation_level=0, flaps=0,
    )  # fmt: skip


def raise_problem(
    session: Session, problem: Problem, settings: AlertsSettings, now: dt.datetime, touch: Touch
) -> tuple[Alert, Applied]:
    """The open alert of ``problem``, fired now if there was none (atomically), reopened if it was
    resolved but not yet closed, otherwise fed one more finding."""
    fp = problem.fingerprint
    for _ in range(10):  # the conflicting alert may close between the insert and the select
        alert = session.execute(
            select(Alert).where(Alert.fingerprint == fp, Alert.state != AlertState.CLOSED).with_for_update()
        ).scalar_one_or_none()
        if alert is not None:
            return alert, _feed(session, alert, problem, now, touch)
        statement = (
            _insert(session)(Alert)
            .values(**new_alert(session, problem, settings, now))
            .on_conflict_do_nothing(index_elements=["fingerprint"], index_where=OPEN_WHERE)
            .returning(Alert.id)
        )
        new_id = session.execute(statement).scalar_one_or_none()
        if new_id is not None:
            alert = session.get_one(Alert, new_id)
            record(session, alert, AlertEvent.FIRED, now, detail=problem.finding_id)
            touch(session, alert, now)
            return alert, Applied.CREATED
    raise RuntimeError(f"could not raise or find the open alert of fingerprint {fp}")


def source_detail(source: str, finding_id: str | None) -> str:
    """The history's detail of a source joining or clearing: the source, and its episode."""
    return f"{source} {finding_id}" if finding_id else source


def _feed(session: Session, alert: Alert, problem: Problem, now: dt.datetime, touch: Touch) -> Applied:
    """Another finding for an alert that is not closed: from a source already on it (a new
    episode), or from another rule or detector that found the same problem (it joins)."""
    alert.findings_count += 1
    alert.updated_at = now
    if SEVERITY_RANK[problem.severity] > SEVERITY_RANK[Severity(alert.severity)]:
        alert.severity = problem.severity.value
        alert.labels = {**alert.labels, "severity": problem.severity.value}
    sources = dict(alert.sources)
    joined = problem.source not in sources
    new_episode = problem.finding_id is not None and problem.finding_id != sources.get(problem.source)
    if problem.active:
        sources[problem.source] = problem.finding_id
    else:  # already cleared: it found the problem, it keeps nothing active
        sources.setdefault(problem.source, None)
    if sources != alert.sources:
        alert.sources = sources
    alert.finding_id = problem.finding_id or alert.finding_id
    if alert.state == AlertState.RESOLVED:
        _transition(alert, AlertState.FIRING)
        alert.flaps += 1
        alert.resolved_at = alert.resolved_by = alert.resolve_reason = None
        alert.acknowledged_at = alert.acknowledged_by = None
        alert.escalation_level, alert.escalated_at, alert.fired_at = 0, None, now
        alert.started_at = problem.started_at or now  # the new episode's start
        record(
            session,
            alert,
            AlertEvent.REOPENED,
            now,
            from_state=AlertState.RESOLVED,
            detail=problem.finding_id,
        )
        if joined:
            record(session, alert, AlertEvent.SOURCE_JOINED, now,
                   detail=source_detail(problem.source, problem.finding_id))  # fmt: skip
        touch(session, alert, now)
        return Applied.REOPENED
    if joined:
        record(session, alert, AlertEvent.SOURCE_JOINED, now, detail=source_detail(problem.source, problem.finding_id))
    elif new_episode:
        record(session, alert, AlertEvent.FINDING, now, detail=problem.finding_id)
    return Applied.UPDATED


def _transition(alert: Alert, to: AlertState) -> str:
    current = AlertState(alert.state)
    if to not in ALLOWED[current]:
        raise TransitionError(alert, to)
    alert.state = to.value
    return current.value


def apply_finding(
    session: Session, finding: Finding, settings: AlertsSettings, now: dt.datetime, touch: Touch
) -> tuple[Alert | None, Applied]:
    """Apply one finding message; a copy of one already applied changes nothing."""
    seen = session.execute(
        select(AlertFinding.id).where(
            AlertFinding.finding_id == finding.id, AlertFinding.state == finding.state.value
        )
    ).first()
    if seen is not None:
        return None, Applied.DUPLICATE
    problem = Problem.of(finding)
    if finding.state is FindingState.CLEARED:
        alert, applied = _clear(session, finding, problem, settings, now, touch)
    else:
        alert, applied = raise_problem(session, problem, settings, now, touch)
    if alert is not None:
        inserted = session.execute(
            _insert(session)(AlertFinding)
            .values(
                alert_id=alert.id, finding_id=finding.id, state=finding.state.value,
                severity=finding.severity.value, started_at=ms_to_dt(finding.started_ms),
                ended_at=None if finding.ended_ms is None else ms_to_dt(finding.ended_ms),
                received_at=now, evidence=dict(finding.evidence),
            )
            .on_conflict_do_nothing(index_elements=["finding_id", "state"])
            .returning(AlertFinding.id)
        ).scalar_one_or_none()  # fmt: skip
        if inserted is None:  # another process applied the same message meanwhile
            raise Duplicate
    return alert, applied


class Duplicate(Exception):
    """Raised to roll a transaction back when another process applied the same message first."""


def _clear(
    session: Session, finding: Finding, problem: Problem, settings: AlertsSettings,
    now: dt.datetime, touch: Touch,
) -> tuple[Alert | None, Applied]:  # fmt: skip
    alert = session.execute(
        select(Alert)
        .where(Alert.fingerprint == problem.fingerprint, Alert.state != AlertState.CLOSED)
        .with_for_update()
    ).scalar_one_or_none()
    was_active = session.execute(
        select(AlertFinding.id).where(
            AlertFinding.finding_id == finding.id, AlertFinding.state == FindingState.ACTIVE.value
        )
    ).first()
    if was_active is None and (alert is None or alert.state not in OPEN_STATES):
        # an instantaneous finding (a door fault, an emergency call) or one whose start we never
        # saw: it fires, and a person resolves it
        return raise_problem(session, problem, settings, now, touch)
    if alert is None:
        return alert, Applied.IGNORED
    source = finding.source
    sources = dict(alert.sources)
    ended = sources.get(source) == finding.id  # the source's active episode ended
    if ended:
        sources[source] = None
        alert.sources = sources
    if alert.state not in OPEN_STATES:  # resolved by a person: it stays so, and knows the source cleared
        return alert, Applied.IGNORED
    if source not in sources:  # another source, its episode already over: it found the problem too
        alert.sources = {**sources, source: None}
        alert.updated_at = now
        record(session, alert, AlertEvent.SOURCE_JOINED, now, detail=source_detail(source, finding.id))
        return alert, Applied.UPDATED
    if not ended:
        return alert, Applied.UPDATED  # an older episode ended; a newer one still feeds the alert
    if any(sources.values()):  # another source still finds the problem: the alert stays
        alert.updated_at = now
        record(session, alert, AlertEvent.SOURCE_CLEARED, now, detail=source_detail(source, finding.id))
        return alert, Applied.UPDATED
    resolve(session, alert, None, None, now, touch, detail=source_detail(source, finding.id))
    return alert, Applied.RESOLVED


def acknowledge(session: Session, alert: Alert, actor: str, now: dt.datetime, touch: Touch) -> None:
    """A person takes the alert on: it stops escalating."""
    before = _transition(alert, AlertState.ACKNOWLEDGED)
    alert.acknowledged_at, alert.acknowledged_by, alert.updated_at = now, actor[:100], now
    record(session, alert, AlertEvent.ACKNOWLEDGED, now, from_state=before, actor=actor[:100])
    touch(session, alert, now)


def resolve(session: Session, alert: Alert, actor: str | None, reason: str | None,
            now: dt.datetime, touch: Touch, *, detail: str | None = None) -> None:  # fmt: skip
    """The problem is gone: by the data (``actor`` None; ``detail`` names the source that cleared
    last) or by a person, with a reason."""
    before = _transition(alert, AlertState.RESOLVED)
    alert.resolved_at, alert.updated_at = now, now
    alert.resolved_by = None if actor is None else actor[:100]
    alert.resolve_reason = None if reason is None else reason[:500]
    record(session, alert, AlertEvent.RESOLVED, now, from_state=before, actor=alert.resolved_by,
           detail=alert.resolve_reason or detail)  # fmt: skip
    touch(session, alert, now)


def close_resolved(session: Session, now: dt.datetime, after_s: float, limit: int = 1000) -> int:
    """Close alerts resolved more than ``after_s`` ago (until then a re-fire reopens them)."""
    cutoff = now - dt.timedelta(seconds=after_s)
    ids = list(
        session.execute(
            select(Alert.id)
            .where(Alert.state == AlertState.RESOLVED, Alert.resolved_at <= cutoff)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not ids:
        return 0
    session.execute(
        update(Alert)
        .where(Alert.id.in_(ids), Alert.state == AlertState.RESOLVED)
        .values(state=AlertState.CLOSED.value, closed_at=now, updated_at=now)
    )
    session.add_all(
        AlertHistory(
            alert_id=i,
            at=now,
            event=AlertEvent.CLOSED.value,
            from_state=AlertState.RESOLVED.value,
            to_state=AlertState.CLOSED.value,
        )
        for i in ids
    )
    return len(ids)
