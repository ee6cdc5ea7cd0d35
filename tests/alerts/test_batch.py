"""Findings applied in batches do exactly what they do one at a time; alerting's writes are not
registry changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from sitewatch.alerts.core import Alerting
from sitewatch.alerts.db import transaction
from sitewatch.alerts.models import Alert, AlertFinding, AlertGroup, AlertHistory, ChannelScope
from sitewatch.assets.models import RegistryRevision
from sitewatch.contract import DeviceKind, Finding, FindingState, Severity

from .conftest import _engine, add_channel, finding
from .harness import Clock, settings


def _findings() -> list[Finding]:
    """A mixed stream: new problems, repeats, new episodes, a duplicate message, a cleared episode,
    a higher severity, a problem that resolves and fires again (a flap), an instantaneous finding."""
    t = 1_790_000_000_000
    el, ca, cam2 = "C0001-EL0001", "C0001-CA0001", "C0002-CA0001"
    video = {"fault": "video_loss", "kind": DeviceKind.CAMERA, "severity": Severity.WARNING}
    return [
        finding(el, started_ms=t),  # new
        finding(ca, started_ms=t, **video),  # new
        finding(el, started_ms=t),  # duplicate message (same id and state)
        finding(el, started_ms=t + 1000, evidence={"level": 1.5, "note": "门"}),  # a new episode of the open alert
        finding(ca, started_ms=t + 1000, **video),  # new episode
        finding(cam2, started_ms=t, fault="video_loss", kind=DeviceKind.CAMERA, severity=Severity.INFO),  # new
        finding(cam2, started_ms=t + 5, fault="video_loss", kind=DeviceKind.CAMERA, severity=Severity.CRITICAL),
        finding(ca, started_ms=t + 1000, state=FindingState.CLEARED, **video),  # resolves the camera alert
        finding(ca, started_ms=t + 2000, **video),  # fires again: reopened
        finding(ca, started_ms=t + 2000, **video),  # duplicate of that
        finding("C0002-EL0002", started_ms=t, state=FindingState.CLEARED),  # instantaneous: fires
        *(finding(f"C0001-SL{n:04d}", started_ms=t + n, fault="lamp_out", kind=DeviceKind.STREETLIGHT,
                  severity=Severity.WARNING) for n in range(1, 30)),  # many new at once
        *(finding(f"C0001-SL{n:04d}", started_ms=t + 100 + n, fault="lamp_out", kind=DeviceKind.STREETLIGHT,
                  severity=Severity.WARNING) for n in range(1, 30)),  # and their next episodes
    ]  # fmt: skip


def _state(engine: Engine) -> dict[str, Any]:
    """Everything the findings changed, by fingerprint (ids differ between databases)."""
    with transaction(engine) as session:
        alerts = list(session.execute(select(Alert).order_by(Alert.fingerprint)).scalars())
        fp = {a.id: a.fingerprint for a in alerts}
        history = session.execute(select(AlertHistory).order_by(AlertHistory.id)).scalars()
        messages = session.execute(select(AlertFinding)).scalars()
        groups = session.execute(select(AlertGroup.key, AlertGroup.next_flush_at).order_by(AlertGroup.key)).all()
        return {
            "alerts": [(a.fingerprint, a.state, a.severity, a.crew, a.labels, a.findings_count, a.finding_id, a.flaps,
                        a.started_at, a.resolved_at) for a in alerts],
            "history": sorted((fp[h.alert_id], h.event, h.from_state, h.to_state, h.detail) for h in history),
            "messages": sorted((fp[m.alert_id], m.finding_id, m.state, m.severity, m.started_at, m.ended_at,
                                m.received_at, m.evidence) for m in messages),
            "updated": [(a.fingerprint, a.updated_at) for a in alerts],
            "groups": [tuple(g) for g in groups],
        }  # fmt: skip


def test_a_batch_does_what_its_findings_do_one_at_a_time(engine: Engine, tmp_path: Path) -> None:
    reference = _engine(f"sqlite:///{tmp_path / 'one-by-one.db'}", tmp_path)
    for e in (engine, reference):
        add_channel(e, "crew", "http://127.0.0.1:9/x", scope=ChannelScope.CREW, target="CR02")
    stream = _findings()
    batched = Alerting(engine, settings(), clock=Clock()).apply_batch(stream)
    single = Alerting(reference, settings(), clock=Clock())
    assert batched == [single.apply(f) for f in stream]
    assert [a.value for a in batched[:11]] == ["created", "created", "duplicate", "updated", "updated", "created",
                                               "updated", "resolved", "reopened", "duplicate", "created"]  # fmt: skip
    assert _state(engine) == _state(reference)
    again = Alerting(engine, settings(), clock=Clock()).apply_batch(stream)  # a redelivery changes nothing
    assert {a.value for a in again} == {"duplicate"} and _state(engine) == _state(reference)
    t = 1_790_000_100_000  # later: more of the open problems (fed at once), one of them worse, one cleared
    later = [
        *(finding(f"C0001-SL{n:04d}", started_ms=t + n % 3, fault="lamp_out", kind=DeviceKind.STREETLIGHT,
                  severity=Severity.WARNING) for n in range(1, 30)),
        finding("C0001-SL0003", started_ms=t + 7, fault="lamp_out", kind=DeviceKind.STREETLIGHT,
                severity=Severity.CRITICAL),
        finding("C0001-EL0001", started_ms=t),
        finding("C0001-EL0001", started_ms=t, state=FindingState.CLEARED),
    ]  # fmt: skip
    batched = Alerting(engine, settings(), clock=Clock()).apply_batch(later)
    assert batched == [single.apply(f) for f in later]
    assert _state(engine) == _state(reference)
    reference.dispose()


def test_alerting_writes_do_not_move_the_registry_revision(engine: Engine) -> None:
    def revision() -> int:
        with transaction(engine) as session:
            return session.scalar(select(RegistryRevision.revision)) or 0

    before = revision()
    core = Alerting(engine, settings(group_wait_s=0), clock=Clock())
    core.apply_batch([finding(started_ms=1_790_000_000_000 + n) for n in range(5)])
    core.apply(finding(state=FindingState.CLEARED, started_ms=1_790_000_000_004))
    core.tick()
    assert revision() == before


def test_a_message_another_process_recorded_meanwhile_makes_the_batch_go_one_by_one(
    engine: Engine, monkeypatch: Any
) -> None:
    """The batch's SELECT of messages already seen ran before another process committed one of
    them: the messages' INSERT is refused by the unique (finding id, state), the batch is rolled
    back and applied a finding at a time, and the copy is a duplicate, not a second message."""
    from sitewatch.alerts import batch

    add_channel(engine, "crew", "http://127.0.0.1:9/x", scope=ChannelScope.CREW, target="CR02")
    other = finding("C0001-CA0001", fault="video_loss", kind=DeviceKind.CAMERA, severity=Severity.WARNING)
    Alerting(engine, settings(), clock=Clock()).apply(other)  # the other process's commit
    seen = batch._SEEN
    monkeypatch.setattr(batch, "_SEEN", {name: sql.replace("WHERE", "WHERE 1 = 0 AND") for name, sql in seen.items()})
    stream = [finding("C0001-CA0002", fault="video_loss", kind=DeviceKind.CAMERA, severity=Severity.WARNING),
              other]  # fmt: skip
    core = Alerting(engine, settings(), clock=Clock())
    one_by_one: list[Finding] = []
    apply = core.apply

    def spy(f: Finding) -> Any:
        one_by_one.append(f)
        return apply(f)

    monkeypatch.setattr(core, "apply", spy)
    applied = core.apply_batch(stream)
    assert [a.value for a in applied] == ["created", "duplicate"] and one_by_one == stream
    with transaction(engine) as session:
        ids = list(session.execute(select(AlertFinding.finding_id)).scalars())
    assert sorted(ids) == sorted(f.id for f in stream)  # each message once
