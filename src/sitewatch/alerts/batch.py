"""Many findings in one transaction, with few statements for the common case.

Most findings feed an alert that is already open (a detector repeating itself, a fault still
there): for those, the batch looks up the messages already seen and the open alerts of every
fingerprint at once, bumps the alerts and records the messages and new episodes in bulk. A finding
that could change an alert's state (a new fingerprint, a cleared finding, a resolved alert firing
again, a higher severity) goes through ``lifecycle.apply_finding`` one at a time, in order, with
the other findings of its fingerprint.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ..contract import Finding, FindingState, Severity
from ..settings import AlertsSettings
from .lifecycle import SEVERITY_RANK, Applied, Duplicate, Problem, Touch, _insert, apply_finding, ms_to_dt
from .models import OPEN_STATES, Alert, AlertEvent, AlertFinding, AlertHistory


def apply_findings(session: Session, findings: Sequence[Finding], settings: AlertsSettings,
                   now: dt.datetime, touch: Touch) -> list[Applied]:  # fmt: skip
    """Apply findings in order (in the caller's transaction); what each one did."""
    results: list[Applied | None] = [None] * len(findings)
    seen = {
        (row[0], row[1])
        for row in session.execute(
            select(AlertFinding.finding_id, AlertFinding.state).where(
                AlertFinding.finding_id.in_({f.id for f in findings})
            )
        )
    }
    by_fingerprint: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(findings):
        key = (f.id, f.state.value)
        if key in seen:
            results[i] = Applied.DUPLICATE
            continue
        seen.add(key)
        by_fingerprint[Problem.of(f).fingerprint].append(i)
    open_alerts = {
        a.fingerprint: a
        for a in session.execute(
            select(Alert)
            .where(Alert.fingerprint.in_(by_fingerprint), Alert.state.in_(OPEN_STATES))
            .with_for_update()
        ).scalars()
    }
    fast: list[tuple[int, Alert]] = []
    slow: list[int] = []
    for fp, indexes in by_fingerprint.items():
        alert = open_alerts.get(fp)
        if alert is not None and all(_feeds(findings[i], alert) for i in indexes):
            fast.extend((i, alert) for i in indexes)
        else:
            slow.extend(indexes)
    if fast:
        _feed_open(session, [(findings[i], a) for i, a in fast], now)
        for i, _ in fast:
            results[i] = Applied.UPDATED
    for i in sorted(slow):
        results[i] = apply_finding(session, findings[i], settings, now, touch)[1]
    return [r if r is not None else Applied.IGNORED for r in results]


def _feeds(finding: Finding, alert: Alert) -> bool:
    """Whether ``finding`` only feeds ``alert`` (no change of state or severity)."""
    return (
        finding.state is FindingState.ACTIVE
        and SEVERITY_RANK[finding.severity] <= SEVERITY_RANK[Severity(alert.severity)]
    )


def _feed_open(session: Session, pairs: list[tuple[Finding, Alert]], now: dt.datetime) -> None:
    history = []
    for finding, alert in pairs:
        alert.findings_count += 1
        alert.updated_at = now
        if finding.id != alert.finding_id:
            alert.finding_id = finding.id
            history.append({"alert_id": alert.id, "at": now, "event": AlertEvent.FINDING.value,
                            "from_state": None, "to_state": alert.state, "actor": None, "detail": finding.id})  # fmt: skip
    rows = [
        {
            "alert_id": alert.id,
            "finding_id": f.id,
            "state": f.state.value,
            "severity": f.severity.value,
            "started_at": ms_to_dt(f.started_ms),
            "ended_at": None,
            "received_at": now,
            "evidence": dict(f.evidence),
        }
        for f, alert in pairs
    ]
    inserted = session.execute(
        _insert(session)(AlertFinding)
        .on_conflict_do_nothing(index_elements=["finding_id", "state"])
        .returning(AlertFinding.id),
        rows,
    ).all()
    if len(inserted) != len(rows):  # another process applied some of these messages meanwhile
        raise Duplicate
    if history:
        session.execute(insert(AlertHistory), history)
