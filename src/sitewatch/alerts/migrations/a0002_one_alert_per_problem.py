"""alerting: one alert per problem (device and fault type), whichever rules found it

Revision ID: a0002
Revises: a0001
Create Date: 2026-12-07 05:00:00

Alerts get ``sources`` (every rule or detector that found the problem: source → its active
episode, or null once cleared). The fingerprint of a finding that names a fault type no longer
holds its source, so the alerts that are not closed get their new fingerprint here, and their
sources from what they hold: their own source, active with their episode while they are firing
or acknowledged and that episode has not cleared.

Where several alerts that are not closed are now one problem (a charger's "status Faulted" and
"fault event" alerts), one is kept: an acknowledged one first (someone is on it), else a firing
one, else a resolved one, the earliest fired among them. It takes the others' sources (each a
``source_joined`` entry of its history), the highest severity of the open ones and the earliest
start. The others are closed (resolved and closed at once, ``resolve_reason`` "merged into alert
N", their history saying so) and keep their old fingerprint: their groups tell them resolved at
their next look, as for any alert that ends, so that a webhook receiver that keys on the
fingerprint ends them too. Closed alerts are left as they were.

Downgrade: the alerts that are not closed get back the fingerprint of their own source (the first
that found them; the others' findings then raise alerts of their own again) and ``sources`` goes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "a0002"
down_revision = "a0001"
branch_labels = None
depends_on = None

OPEN = ("firing", "acknowledged")
RANK = {"info": 0, "warning": 1, "critical": 2}
KEEP_ORDER = {"acknowledged": 0, "firing": 1, "resolved": 2}


def _fingerprint(
    compound: str, device: str | None, fault: str | None, source: str, *, by_source: bool
) -> str:
    """alerts.routing.fingerprint as of this revision (``by_source``: as of the one before)."""
    if fault and not by_source:
        parts: tuple[str, ...] = (compound, device or "", fault)
    else:
        parts = (compound, device or "", fault or "", source)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("alerts", sa.Column("sources", sa.JSON(), nullable=False, server_default="{}"))
    conn = op.get_bind()
    alerts = sa.table(
        "alerts", sa.column("id", sa.Integer), sa.column("fingerprint", sa.String), sa.column("state", sa.String),
        sa.column("severity", sa.String), sa.column("labels", sa.JSON), sa.column("sources", sa.JSON),
        sa.column("started_at", sa.DateTime), sa.column("resolved_at", sa.DateTime),
        sa.column("resolved_by", sa.String), sa.column("resolve_reason", sa.String),
        sa.column("closed_at", sa.DateTime), sa.column("updated_at", sa.DateTime),
    )  # fmt: skip
    history = sa.table(
        "alert_history", sa.column("alert_id", sa.Integer), sa.column("at", sa.DateTime),
        sa.column("event", sa.String), sa.column("from_state", sa.String), sa.column("to_state", sa.String),
        sa.column("actor", sa.String), sa.column("detail", sa.String),
    )  # fmt: skip
    read = sa.table(
        "alerts", sa.column("id", sa.Integer), sa.column("compound", sa.String), sa.column("device", sa.String),
        sa.column("fault", sa.String), sa.column("source", sa.String), sa.column("state", sa.String),
        sa.column("severity", sa.String), sa.column("finding_id", sa.String), sa.column("fired_at", sa.DateTime),
        sa.column("started_at", sa.DateTime), sa.column("labels", sa.JSON),
    )  # fmt: skip
    rows = conn.execute(sa.select(read).where(read.c.state != "closed").order_by(read.c.id)).all()
    if not rows:
        return
    cleared = {
        r[0]
        for r in conn.execute(
            sa.text(
                "SELECT f.finding_id FROM alert_findings f JOIN alerts a ON a.finding_id = f.finding_id "
                "WHERE a.state != 'closed' AND f.state = 'cleared'"
            )
        )
    }
    problems: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        problems[_fingerprint(row.compound, row.device, row.fault, row.source, by_source=False)].append(row)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for fp, found in problems.items():
        found.sort(key=lambda r: (KEEP_ORDER.get(r.state, 3), r.fired_at, r.id))
        kept, merged = found[0], found[1:]
        sources: dict[str, str | None] = {}
        for row in found:
            active = row.state in OPEN and row.finding_id is not None and row.finding_id not in cleared
            if not sources.get(row.source):
                sources[row.source] = row.finding_id if active else None
        values: dict[str, Any] = {"fingerprint": fp, "sources": sources}
        if merged:
            opened = [r for r in found if r.state in OPEN] or [kept]
            severity = max((r.severity for r in opened), key=lambda s: RANK.get(s, 0))
            values.update(severity=severity, labels={**kept.labels, "severity": severity},
                          started_at=min(r.started_at for r in opened), updated_at=now)  # fmt: skip
        for row in merged:  # first out of the partial unique index, with their old fingerprint
            reason = f"merged into alert {kept.id}"
            closing = dict(state="closed", resolved_at=now, resolved_by="upgrade", resolve_reason=reason,
                           closed_at=now, updated_at=now)  # fmt: skip
            conn.execute(alerts.update().where(alerts.c.id == row.id).values(**closing))
            conn.execute(history.insert().values(alert_id=row.id, at=now, event="closed", from_state=row.state,
                                                 to_state="closed", actor="upgrade", detail=reason))  # fmt: skip
            detail = f"{row.source} {row.finding_id} (alert {row.id})" if row.finding_id else row.source
            conn.execute(history.insert().values(alert_id=kept.id, at=now, event="source_joined", from_state=None,
                                                 to_state=kept.state, actor="upgrade", detail=detail[:500]))  # fmt: skip
        conn.execute(alerts.update().where(alerts.c.id == kept.id).values(**values))


def downgrade() -> None:
    """Revert this revision."""
    conn = op.get_bind()
    alerts = sa.table("alerts", sa.column("id", sa.Integer), sa.column("fingerprint", sa.String))
    rows = conn.execute(
        sa.text("SELECT id, compound, device, fault, source FROM alerts WHERE state != 'closed'")
    ).all()
    for row in rows:
        fp = _fingerprint(row.compound, row.device, row.fault, row.source, by_source=True)
        conn.execute(alerts.update().where(alerts.c.id == row.id).values(fingerprint=fp))
    op.drop_column("alerts", "sources")
