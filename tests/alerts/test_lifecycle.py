"""Lifecycle: findings raise, feed and resolve alerts; people acknowledge and resolve them; every
transition is in the history; a redelivered finding changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select

from sitewatch.alerts.db import transaction
from sitewatch.alerts.dispatch import Dispatcher
from sitewatch.alerts.inhibit import load_rules
from sitewatch.alerts.lifecycle import (
    Applied,
    TransitionError,
    acknowledge,
    apply_finding,
    close_resolved,
    resolve,
)
from sitewatch.alerts.models import Alert, AlertFinding, AlertHistory, AlertState
from sitewatch.contract import FindingState, Severity
from sitewatch.settings import load_settings

from .conftest import finding
from .harness import START as NOW


@pytest.fixture
def dispatcher() -> Dispatcher:
    return Dispatcher(load_settings(), load_rules())


def apply(
    engine: Engine, dispatcher: Dispatcher, f: object, now: dt.datetime = NOW
) -> tuple[int | None, Applied]:
    with transaction(engine) as session:
        alert, applied = apply_finding(session, f, dispatcher.alerts, now, dispatcher.touch)  # type: ignore[arg-type]
        return (alert.id if alert else None), applied


def history(engine: Engine, alert_id: int) -> list[tuple[str, str | None, str | None, str | None]]:
    with transaction(engine) as session:
        rows = session.execute(
            select(AlertHistory.event, AlertHistory.from_state, AlertHistory.to_state, AlertHistory.actor)
            .where(AlertHistory.alert_id == alert_id)
            .order_by(AlertHistory.id)
        ).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_finding_fires_an_alert_with_labels_from_the_registry(
    engine: Engine, dispatcher: Dispatcher
) -> None:
    alert_id, applied = apply(engine, dispatcher, finding())
    assert applied is Applied.CREATED
    with transaction(engine) as session:
        alert = session.get_one(Alert, alert_id)
        assert alert.state == AlertState.FIRING and alert.crew == "CR02"
        assert alert.labels["compound_name"] == "幸福1小区" and alert.labels["crew"] == "CR02"
        assert alert.labels["district"] and alert.labels["street"] and alert.labels["building"]
        assert alert.labels["fault"] == "entrapment" and alert.labels["kind"] == "elevator"
        assert alert.started_at == dt.datetime(2026, 9, 21, 14, 13, 20)  # the finding's start, not now
    assert history(engine, alert_id) == [("fired", None, "firing", None)]


def test_redelivered_finding_changes_nothing(engine: Engine, dispatcher: Dispatcher) -> None:
    first, _ = apply(engine, dispatcher, finding())
    assert apply(engine, dispatcher, finding()) == (None, Applied.DUPLICATE)
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 1
        assert session.get_one(Alert, first).findings_count == 1


def test_full_lifecycle_with_history(engine: Engine, dispatcher: Dispatcher) -> None:
    alert_id, _ = apply(engine, dispatcher, finding())
    with transaction(engine) as session:
        alert = session.get_one(Alert, alert_id)
        acknowledge(session, alert, "张工", NOW + dt.timedelta(minutes=2), dispatcher.touch)
    _, applied = apply(engine, dispatcher, finding(state=FindingState.CLEARED), NOW + dt.timedelta(minutes=5))
    assert applied is Applied.RESOLVED
    with transaction(engine) as session:
        assert close_resolved(session, NOW + dt.timedelta(hours=1), after_s=900) == 1
        alert = session.get_one(Alert, alert_id)
        assert alert.state == AlertState.CLOSED
        assert alert.acknowledged_by == "张工" and alert.resolved_by is None  # resolved by the data
        with pytest.raises(TransitionError):
            resolve(session, alert, "x", "late", NOW, dispatcher.touch)
    assert history(engine, alert_id) == [
        ("fired", None, "firing", None),
        ("acknowledged", "firing", "acknowledged", "张工"),
        ("resolved", "acknowledged", "resolved", None),
        ("closed", "resolved", "closed", None),
    ]


def test_resolve_by_hand_with_a_reason(engine: Engine, dispatcher: Dispatcher) -> None:
    alert_id, _ = apply(engine, dispatcher, finding())
    with transaction(engine) as session:
        alert = session.get_one(Alert, alert_id)
        resolve(session, alert, "李工", "passenger released, sensor replaced", NOW, dispatcher.touch)
        assert (alert.resolved_by, alert.resolve_reason) == ("李工", "passenger released, sensor replaced")
        with pytest.raises(TransitionError, match="cannot become acknowledged"):
            acknowledge(session, alert, "x", NOW, dispatcher.touch)


def test_refire_before_close_reopens_and_after_close_makes_a_new_alert(
    engine: Engine, dispatcher: Dispatcher
) -> None:
    first, _ = apply(engine, dispatcher, finding(started_ms=1_790_000_000_000))
    apply(engine, dispatcher, finding(started_ms=1_790_000_000_000, state=FindingState.CLEARED))
    again, applied = apply(engine, dispatcher, finding(started_ms=1_790_000_100_000))
    assert (again, applied) == (first, Applied.REOPENED)
    with transaction(engine) as session:
        alert = session.get_one(Alert, first)
        assert alert.state == AlertState.FIRING and alert.flaps == 1
    apply(engine, dispatcher, finding(started_ms=1_790_000_100_000, state=FindingState.CLEARED))
    with transaction(engine) as session:
        close_resolved(session, NOW + dt.timedelta(hours=2), after_s=900)
    third, applied = apply(engine, dispatcher, finding(started_ms=1_790_000_900_000))
    assert applied is Applied.CREATED and third != first
    assert [e[0] for e in history(engine, first)] == ["fired", "resolved", "reopened", "resolved", "closed"]


def test_instantaneous_finding_fires_and_waits_for_a_person(engine: Engine, dispatcher: Dispatcher) -> None:
    alert_id, applied = apply(engine, dispatcher, finding(fault="emergency_call", state=FindingState.CLEARED))
    assert applied is Applied.CREATED
    with transaction(engine) as session:
        assert session.get_one(Alert, alert_id).state == AlertState.FIRING


def test_an_older_episode_ending_does_not_resolve_a_newer_one(engine: Engine, dispatcher: Dispatcher) -> None:
    alert_id, _ = apply(engine, dispatcher, finding(started_ms=1_790_000_000_000))
    apply(engine, dispatcher, finding(started_ms=1_790_000_500_000))  # a new episode, same fingerprint
    _, applied = apply(engine, dispatcher, finding(started_ms=1_790_000_000_000, state=FindingState.CLEARED))
    assert applied is Applied.UPDATED
    with transaction(engine) as session:
        alert = session.get_one(Alert, alert_id)
        assert alert.state == AlertState.FIRING and alert.findings_count == 2
        assert session.scalar(select(func.count()).select_from(AlertFinding)) == 3


def test_severity_only_rises(engine: Engine, dispatcher: Dispatcher) -> None:
    alert_id, _ = apply(engine, dispatcher, finding(severity=Severity.WARNING, started_ms=1))
    apply(engine, dispatcher, finding(severity=Severity.CRITICAL, started_ms=2))
    apply(engine, dispatcher, finding(severity=Severity.INFO, started_ms=3))
    with transaction(engine) as session:
        assert session.get_one(Alert, alert_id).severity == "critical"
