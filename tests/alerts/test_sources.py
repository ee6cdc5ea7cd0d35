"""One alert per problem: the rules and detectors that find one fault of one device make one alert
(one notification), which stays firing while any of them is still active and resolves when every
one has cleared; a finding with no fault type keeps an alert of its own. On SQLite and PostgreSQL,
one finding at a time and in batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from sitewatch.alerts.actions import AlertScope, resolve_alert
from sitewatch.alerts.core import Alerting
from sitewatch.alerts.db import transaction
from sitewatch.alerts.lifecycle import Applied
from sitewatch.alerts.models import Alert, AlertFinding, AlertGroup, AlertHistory, utcnow
from sitewatch.contract import DeviceKind, Finding, FindingState, Severity

from .conftest import _engine, add_channel, finding
from .harness import Clock, outbox, settings, wired

ALARM, FLAG, RUN = "rule:elevator.alarms", "rule:elevator.entrapment_flag", "rule:elevator.run_state_fault"
EL = "C0001-EL0001"
T = 1_790_000_000_000
CLEARED = FindingState.CLEARED


def found(
    source: str, started_ms: int = T, state: FindingState = FindingState.ACTIVE, **extra: Any
) -> Finding:
    """An entrapment of EL found by ``source``."""
    return finding(EL, source=source, started_ms=started_ms, state=state, **extra)


Apply = Callable[[Alerting, Sequence[Finding]], list[Applied]]


def one_by_one(core: Alerting, findings: Sequence[Finding]) -> list[Applied]:
    return [core.apply(f) for f in findings]


def batched(core: Alerting, findings: Sequence[Finding]) -> list[Applied]:
    return core.apply_batch(list(findings))


PATHS = pytest.mark.parametrize("apply", [one_by_one, batched], ids=["one-by-one", "batch"])


def alerts(engine: Engine) -> list[Alert]:
    with transaction(engine) as session:
        return list(session.execute(select(Alert).order_by(Alert.id)).scalars())


def events(engine: Engine, alert_id: int) -> list[tuple[str, str | None]]:
    with transaction(engine) as session:
        rows = session.execute(
            select(AlertHistory.event, AlertHistory.detail)
            .where(AlertHistory.alert_id == alert_id)
            .order_by(AlertHistory.id)
        ).all()
        return [(e, d) for e, d in rows]


@PATHS
def test_two_rules_finding_one_fault_make_one_alert_and_one_notification(
    engine: Engine, apply: Apply
) -> None:
    add_channel(engine, "crew", "http://127.0.0.1:9/x")
    with wired(engine, group_wait_s=0, group_wait_critical_s=0) as (core, _d, clock):
        assert apply(core, [found(ALARM), found(FLAG, T + 240_000)]) == [Applied.CREATED, Applied.UPDATED]
        clock.advance(1)
        assert core.tick() == 1
        clock.advance(300)  # the group's interval (escalation is at 10 minutes)
        assert core.tick() == 0  # the join changed nothing the crew was told
    [alert] = alerts(engine)
    assert alert.source == ALARM and alert.labels["source"] == ALARM  # the first source
    assert alert.sources == {ALARM: found(ALARM).id, FLAG: found(FLAG, T + 240_000).id}
    assert alert.findings_count == 2
    assert events(engine, alert.id) == [("fired", found(ALARM).id),
                                        ("source_joined", f"{FLAG} {found(FLAG, T + 240_000).id}")]  # fmt: skip
    [note] = outbox(engine)
    assert note.alert_ids == [alert.id]
    assert note.payload["webhook"]["alerts"][0]["annotations"]["sources"] == f"{ALARM}, {FLAG}"


@PATHS
def test_the_alert_stays_firing_while_a_source_is_active_and_resolves_when_every_one_cleared(
    engine: Engine, apply: Apply
) -> None:
    add_channel(engine, "crew", "http://127.0.0.1:9/x")
    with wired(engine, group_wait_s=0, group_wait_critical_s=0, group_interval_s=30) as (core, _d, clock):
        apply(core, [found(ALARM), found(FLAG, T + 1), found(RUN, T + 2)])
        core.tick()
        clock.advance(60)
        assert (
            apply(core, [found(ALARM, state=CLEARED), found(RUN, T + 2, state=CLEARED)])
            == [Applied.UPDATED] * 2
        )
        [alert] = alerts(engine)
        assert alert.state == "firing" and alert.sources == {
            ALARM: None,
            FLAG: found(FLAG, T + 1).id,
            RUN: None,
        }
        clock.advance(60)
        assert core.tick() == 0  # still firing, nothing new to tell
        assert apply(core, [found(FLAG, T + 1, state=CLEARED)]) == [Applied.RESOLVED]
        clock.advance(31)
        assert core.tick() == 1  # told resolved, once
    [alert] = alerts(engine)
    assert alert.state == "resolved" and alert.resolved_by is None
    assert [e for e, _ in events(engine, alert.id)] == [
        "fired",
        "source_joined",
        "source_joined",
        "source_cleared",
        "source_cleared",
        "resolved",
    ]
    assert events(engine, alert.id)[-1] == ("resolved", f"{FLAG} {found(FLAG, T + 1).id}")
    assert [len(n.alert_ids) for n in outbox(engine)] == [1, 1]


@PATHS
def test_a_finding_with_no_fault_type_keeps_an_alert_of_its_own(engine: Engine, apply: Apply) -> None:
    generic = [
        finding(EL, fault=None, source=s, severity=Severity.WARNING) for s in ("detector:a", "detector:b")
    ]
    assert apply(Alerting(engine, settings()), [found(ALARM), *generic]) == [Applied.CREATED] * 3
    assert sorted((a.source, a.fault) for a in alerts(engine)) == [
        ("detector:a", None), ("detector:b", None), (ALARM, "entrapment")
    ]  # fmt: skip
    assert len({a.fingerprint for a in alerts(engine)}) == 3


@PATHS
def test_a_replayed_finding_is_a_duplicate_never_a_second_join(engine: Engine, apply: Apply) -> None:
    core = Alerting(engine, settings())
    apply(core, [found(ALARM), found(FLAG, T + 1)])
    assert apply(core, [found(FLAG, T + 1), found(ALARM)]) == [Applied.DUPLICATE] * 2
    apply(core, [found(FLAG, T + 1, state=CLEARED)])
    assert apply(core, [found(FLAG, T + 1, state=CLEARED), found(FLAG, T + 1)]) == [Applied.DUPLICATE] * 2
    [alert] = alerts(engine)
    assert alert.state == "firing" and alert.findings_count == 2 and alert.sources[FLAG] is None
    assert [e for e, _ in events(engine, alert.id)] == ["fired", "source_joined", "source_cleared"]


@PATHS
def test_a_new_episode_of_either_source_reopens_the_resolved_alert(engine: Engine, apply: Apply) -> None:
    core = Alerting(engine, settings())
    apply(core, [found(ALARM), found(FLAG, T + 1)])
    apply(core, [found(ALARM, state=CLEARED), found(FLAG, T + 1, state=CLEARED)])
    assert apply(core, [found(FLAG, T + 600_000)]) == [Applied.REOPENED]
    assert apply(core, [found(ALARM, T + 600_001)]) == [Applied.UPDATED]
    [alert] = alerts(engine)
    assert alert.state == "firing" and alert.flaps == 1
    assert alert.sources == {ALARM: found(ALARM, T + 600_001).id, FLAG: found(FLAG, T + 600_000).id}
    apply(core, [found(FLAG, T + 600_000, state=CLEARED)])
    assert alerts(engine)[0].state == "firing"  # the alarm's new episode is still active
    apply(core, [found(ALARM, T, state=CLEARED)])  # a replay of the old episode's end: a duplicate
    assert alerts(engine)[0].state == "firing"


def test_a_source_that_cleared_while_a_person_had_resolved_the_alert_does_not_hold_it_open(
    engine: Engine,
) -> None:
    core = Alerting(engine, settings())
    core.apply_batch([found(ALARM), found(FLAG, T + 1)])
    with transaction(engine) as session:
        resolve_alert(session, AlertScope.everything(), alerts(engine)[0].id, "张工", "released", utcnow(),
                      core.dispatcher.touch)  # fmt: skip
    assert core.apply(found(ALARM, state=CLEARED)) is Applied.IGNORED  # resolved already; the source is noted
    assert core.apply(found(RUN, T + 5)) is Applied.REOPENED
    core.apply(found(RUN, T + 5, state=CLEARED))
    [alert] = alerts(engine)
    assert (
        alert.state == "firing" and alert.sources[FLAG]
    )  # the flag never cleared: the problem is still there
    core.apply(found(FLAG, T + 1, state=CLEARED))
    assert alerts(engine)[0].state == "resolved"


def _state(engine: Engine) -> dict[str, Any]:
    """What the findings changed, by fingerprint (ids differ between databases)."""
    with transaction(engine) as session:
        rows = list(session.execute(select(Alert).order_by(Alert.fingerprint)).scalars())
        fp = {a.id: a.fingerprint for a in rows}
        history = session.execute(select(AlertHistory)).scalars()
        messages = session.execute(select(AlertFinding)).scalars()
        groups = session.execute(
            select(AlertGroup.key, AlertGroup.next_flush_at).order_by(AlertGroup.key)
        ).all()
        return {
            "alerts": [(a.fingerprint, a.state, a.severity, a.labels, a.sources, a.findings_count, a.finding_id,
                        a.flaps, a.started_at, a.resolved_at, a.updated_at) for a in rows],
            "history": sorted((fp[h.alert_id], h.event, h.from_state, h.to_state, h.detail) for h in history),
            "messages": sorted((fp[m.alert_id], m.finding_id, m.state) for m in messages),
            "groups": [tuple(g) for g in groups],
        }  # fmt: skip


def test_a_batch_of_several_sources_does_what_its_findings_do_one_at_a_time(
    engine: Engine, tmp_path: Path
) -> None:
    reference = _engine(f"sqlite:///{tmp_path / 'one-by-one.db'}", tmp_path)
    for e in (engine, reference):
        add_channel(e, "crew", "http://127.0.0.1:9/x")
    camera: dict[str, Any] = {
        "kind": DeviceKind.CAMERA,
        "fault": "storage_full",
        "severity": Severity.WARNING,
    }
    stream = [
        found(ALARM), found(FLAG, T + 1), found(FLAG, T + 1), found(RUN, T + 2, severity=Severity.WARNING),
        *(finding("C0001-CA0001", source=f"rule:camera.storage_{n}", started_ms=T + n, **camera) for n in range(5)),
        finding("C0001-CA0002", source="rule:camera.storage_0", started_ms=T, **camera),
        finding("C0001-CA0002", source="rule:camera.storage_1", started_ms=T + 1, state=CLEARED, **camera),
        finding("C0001-CA0003", source="rule:camera.storage_0", started_ms=T, state=CLEARED, **camera),
        finding(EL, fault=None, source="detector:elevator.model", severity=Severity.INFO),
    ]  # fmt: skip
    later = [
        found(ALARM, state=CLEARED), found(FLAG, T + 9), found(RUN, T + 2, state=CLEARED, severity=Severity.WARNING),
        *(finding("C0001-CA0001", source=f"rule:camera.storage_{n}", started_ms=T + 100 + n, **camera) for n in range(5)),
        finding("C0001-CA0003", source="rule:camera.storage_2", started_ms=T + 7, **camera),
    ]  # fmt: skip
    core, single = (
        Alerting(engine, settings(), clock=Clock()),
        Alerting(reference, settings(), clock=Clock()),
    )
    for findings in (stream, later):
        assert core.apply_batch(findings) == [single.apply(f) for f in findings]
        assert _state(engine) == _state(reference)
    assert len(alerts(engine)) == 5  # the elevator's entrapment and anomaly, three cameras' storage
    reference.dispose()


def test_sources_joining_an_open_alert_take_the_batch_fast_path(engine: Engine, monkeypatch: Any) -> None:
    """A source joining, and a new episode of one, change no state: the batch applies them with its
    fixed statements, never one finding at a time."""
    from sitewatch.alerts import batch

    core = Alerting(engine, settings())
    core.apply_batch([found(ALARM)])

    def refuse(*_args: Any) -> Any:
        raise AssertionError("applied one finding at a time")

    monkeypatch.setattr(batch, "apply_finding", refuse)
    assert (
        core.apply_batch([found(FLAG, T + 1), found(RUN, T + 2), found(ALARM, T + 3)])
        == [Applied.UPDATED] * 3
    )
    [alert] = alerts(engine)
    assert alert.sources == {
        ALARM: found(ALARM, T + 3).id,
        FLAG: found(FLAG, T + 1).id,
        RUN: found(RUN, T + 2).id,
    }
    assert [e for e, _ in events(engine, alert.id)] == ["fired", "source_joined", "source_joined", "finding"]
