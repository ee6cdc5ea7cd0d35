"""Alerting's Alembic branch: up from empty beside the registry's, down to base, and the migrated
schema matches the models, on SQLite and PostgreSQL; a database holding open alerts of the old
identity (one per rule) upgrades to one alert per problem."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from sitewatch.alerts.core import Alerting
from sitewatch.alerts.db import alerts_engine, transaction
from sitewatch.alerts.models import Alert, AlertHistory, AlertsBase
from sitewatch.alerts.routing import fingerprint
from sitewatch.assets.db import create_engine_for, current_revision, downgrade, upgrade
from sitewatch.contract import DeviceKind, FindingState, Severity

from .conftest import finding
from .harness import Clock, settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _alerts_tables(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or name in AlertsBase.metadata.tables


def test_alerts_branch_up_beside_the_registry_and_down(url: str) -> None:
    engine = create_engine_for(url)
    upgrade(engine)
    assert "a0002" in (current_revision(engine) or "").split(",")
    assert set(AlertsBase.metadata.tables) <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _alerts_tables}
        )
        assert compare_metadata(context, AlertsBase.metadata) == []
    downgrade(engine, "alerts@base")  # alerting's tables go, the registry's stay
    tables = set(inspect(engine).get_table_names())
    assert not set(AlertsBase.metadata.tables) & tables and "assets" in tables
    upgrade(engine)
    assert set(AlertsBase.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


T0 = dt.datetime(2026, 12, 7, 1, 0)
FAULTED, ALARM = "rule:charger.faulted", "rule:charger.alarms.faulted"
CHARGER = "C0001-CH0001"


def _old_alert(conn: Any, source: str, state: str, severity: str, finding_id: str, minutes: int, *,
               device: str = CHARGER, fault: str | None = "charger_fault") -> int:  # fmt: skip
    """An alert as the previous revision made it: its fingerprint holds its source."""
    old_fp = (
        fingerprint("C0001", device, None, source) if fault is None else _by_source(device, fault, source)
    )
    at = T0 + dt.timedelta(minutes=minutes)
    labels = {
        "compound": "C0001",
        "device": device,
        "source": source,
        "severity": severity,
        "manager": "M",
        "district": "D",
    }
    return int(conn.execute(
        text("INSERT INTO alerts (fingerprint, state, severity, compound, device, kind, fault, source, crew, labels, "
             "message, params, finding_id, findings_count, started_at, fired_at, updated_at, escalation_level, flaps) "
             "VALUES (:fp, :state, :severity, 'C0001', :device, 'charger', :fault, :source, 'CR03', :labels, 'm', "
             "'{}', :fid, 1, :at, :at, :at, 0, 0) RETURNING id"),
        {"fp": old_fp, "state": state, "severity": severity, "device": device, "fault": fault, "source": source,
         "labels": json.dumps(labels), "fid": finding_id, "at": at},
    ).scalar_one())  # fmt: skip


def _by_source(device: str, fault: str, source: str) -> str:
    return hashlib.sha256("\x1f".join(("C0001", device, fault, source)).encode()).hexdigest()[:16]


def test_open_alerts_of_the_old_identity_become_one_alert_per_problem(url: str) -> None:
    """Two open alerts of one charger's fault (two rules) become one: the acknowledged one is kept
    with both sources, the other is closed as merged; a generic alert keeps its identity; a
    closed alert is left alone. The kept alert then resolves only when both sources clear."""
    engine = alerts_engine(url)
    upgrade(engine, "a0001")
    with engine.begin() as conn:
        firing = _old_alert(conn, FAULTED, "firing", "warning", f"{FAULTED}:{CHARGER}:1", 0)
        acked = _old_alert(conn, ALARM, "acknowledged", "critical", f"{ALARM}:{CHARGER}:2", 5)
        generic = _old_alert(conn, "detector:charger.power", "firing", "info", "detector:charger.power:x:1", 1,
                             fault=None)  # fmt: skip
        closed = _old_alert(conn, FAULTED, "closed", "warning", f"{FAULTED}:{CHARGER}:0", -60)
        closed_fp = _by_source(CHARGER, "charger_fault", FAULTED)
    upgrade(engine)
    with transaction(engine) as session:
        alerts = {a.id: a for a in session.execute(select(Alert)).scalars()}
        kept = alerts[acked]
        assert kept.fingerprint == fingerprint("C0001", CHARGER, "charger_fault", ALARM)
        assert kept.state == "acknowledged" and kept.severity == "critical" and kept.source == ALARM
        assert kept.sources == {ALARM: f"{ALARM}:{CHARGER}:2", FAULTED: f"{FAULTED}:{CHARGER}:1"}
        assert kept.started_at == T0  # the earlier start of the two
        gone = alerts[firing]
        assert (gone.state, gone.resolve_reason) == ("closed", f"merged into alert {acked}")
        assert gone.fingerprint == _by_source(CHARGER, "charger_fault", FAULTED)  # out of the way
        assert alerts[generic].fingerprint == fingerprint("C0001", CHARGER, None, "detector:charger.power")
        assert alerts[generic].sources == {"detector:charger.power": "detector:charger.power:x:1"}
        assert (alerts[closed].state, alerts[closed].fingerprint, alerts[closed].sources) == (
            "closed",
            closed_fp,
            {},
        )
        events = session.execute(select(AlertHistory.alert_id, AlertHistory.event)).all()
        assert sorted(tuple(e) for e in events) == sorted([(acked, "source_joined"), (firing, "closed")])
    core = Alerting(engine, settings(), clock=Clock())
    charger = {"kind": DeviceKind.CHARGER, "fault": "charger_fault", "severity": Severity.WARNING}
    cleared = FindingState.CLEARED
    assert (
        core.apply(
            finding(CHARGER, source=ALARM, episode=f"{ALARM}:{CHARGER}:2", state=cleared, **charger)
        ).value
        == "updated"
    )
    assert (
        core.apply(
            finding(CHARGER, source=FAULTED, episode=f"{FAULTED}:{CHARGER}:1", state=cleared, **charger)
        ).value
        == "resolved"
    )
    downgrade(engine, "a0001")
    with engine.connect() as conn:
        assert "sources" not in {c["name"] for c in inspect(conn).get_columns("alerts")}
        back = conn.execute(text("SELECT fingerprint FROM alerts WHERE id = :i"), {"i": acked}).scalar_one()
    assert back == _by_source(CHARGER, "charger_fault", ALARM)
    engine.dispose()
