"""Dedup is atomic: many processes raising the same problems at the same moment make one open
alert per fingerprint (the database's partial unique index decides, not a read-then-write), on
SQLite and on PostgreSQL; and the notifications that follow are not doubled."""

from __future__ import annotations

import multiprocessing
from typing import Any

from sqlalchemy import Engine, func, select

from sitewatch.alerts.core import Alerting
from sitewatch.alerts.db import alerts_engine, transaction
from sitewatch.alerts.models import Alert, AlertFinding, AlertState
from sitewatch.contract import DeviceKind, Severity

from .conftest import add_channel, finding
from .harness import Clock, outbox, settings

PRODUCERS = 8
FINGERPRINTS = 20
ROUNDS = 2


def _produce(url: str, producer: int, barrier: Any, errors: Any) -> None:
    try:
        engine = alerts_engine(url)
        core = Alerting(engine, settings(group_wait_s=0), clock=Clock())
        barrier.wait(timeout=60)
        for round_ in range(ROUNDS):
            for n in range(FINGERPRINTS):
                # the same device, fault and rule from every producer, under its own finding id
                core.apply(finding(f"C0001-CA{n:04d}", fault="video_loss", severity=Severity.WARNING,
                                   kind=DeviceKind.CAMERA, episode=f"p{producer}-r{round_}-n{n}"))  # fmt: skip
        engine.dispose()
    except Exception as exc:  # reported to the parent, which fails the test
        errors.put(f"producer {producer}: {type(exc).__name__}: {exc}")


def test_concurrent_producers_make_one_alert_per_fingerprint(engine: Engine) -> None:
    add_channel(engine, "crew", "http://127.0.0.1:9/x")
    url = engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(PRODUCERS), context.Queue()
    processes = [context.Process(target=_produce, args=(url, p, barrier, errors)) for p in range(PRODUCERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    assert [p.exitcode for p in processes] == [0] * PRODUCERS
    assert errors.empty(), errors.get()
    with transaction(engine) as session:
        per_fingerprint = session.execute(
            select(Alert.fingerprint, func.count())
            .where(Alert.state != AlertState.CLOSED)
            .group_by(Alert.fingerprint)
        ).all()
        assert len(per_fingerprint) == FINGERPRINTS and {n for _, n in per_fingerprint} == {1}
        assert (
            session.scalar(select(func.count()).select_from(AlertFinding))
            == PRODUCERS * ROUNDS * FINGERPRINTS
        )
        assert set(session.execute(select(Alert.findings_count)).scalars()) == {PRODUCERS * ROUNDS}
    core = Alerting(engine, settings(group_wait_s=0), clock=Clock())
    core.tick()
    [note] = outbox(engine)  # one group, one notification, every alert in it once
    assert sorted(note.alert_ids) == sorted(set(note.alert_ids)) and len(note.alert_ids) == FINGERPRINTS
