"""Grouping and escalation: which notifications go into the outbox, and when.

Alertmanager's timers, per channel and group (one compound, one crew):

- ``group_wait``: a new group (or one that went quiet) waits this long after its first alert, so
  alerts that fire together go out as one notification. A group holding a critical alert waits
  ``group_wait_critical`` instead (0 by default: a trapped passenger does not wait for company),
  and a critical alert cuts short the wait of a group that already exists.
- ``group_interval``: after a notification, the group is looked at again this often; it is
  notified again only if it changed (a new alert firing, or one it told about resolved).
- ``repeat_interval``: an unchanged group with unacknowledged firing alerts is repeated this often.

Silenced and inhibited alerts are left out when a group is flushed; an alert resolves quietly if
it was never told. A change of state marks its groups in the same transaction (``touch``), and a
flush writes its notification with the group's new state in one transaction, so a crash loses
nothing and repeats nothing. Escalation: a firing alert of a severity with escalation minutes, not
acknowledged for that long, goes one level up (crew lead, property manager, district bureau),
each step written to its history with the notifications it made.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ..contract import Severity
from ..settings import Settings
from . import render
from .channels import channels_for, escalation_channels, leader, on_duty
from .inhibit import Candidate, InhibitRule, inhibited
from .lifecycle import SEVERITY_RANK, _insert, record
from .models import (
    OPEN_STATES,
    Alert,
    AlertEvent,
    AlertGroup,
    AlertState,
    Channel,
    DeliveryStatus,
    Notification,
    NotificationKind,
)
from .silences import ActiveSilence, active_silences, silenced_by

log = logging.getLogger(__name__)
FLUSH_BATCH = 200
CHANNEL_TTL_S = 10.0  # a channel added or changed reaches new alerts within this time


def _s(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


def enqueue(session: Session, channel: Channel, kind: NotificationKind, alert_ids: Sequence[int],
            payload: dict[str, Any], key: str, now: dt.datetime) -> Notification:  # fmt: skip
    """Put a notification in the outbox (in the caller's transaction)."""
    note = Notification(
        key=key[:120], channel_id=channel.id, kind=kind.value, alert_ids=list(alert_ids), payload=payload,
        status=DeliveryStatus.PENDING.value, attempts=0, created_at=now, next_attempt_at=now,
    )  # fmt: skip
    session.add(note)
    return note


class Dispatcher:
    """Groups alerts per channel, flushes groups by their timers, escalates, with one settings."""

    def __init__(self, settings: Settings, rules: Sequence[InhibitRule]) -> None:
        self.settings = settings
        self.alerts = settings.alerts
        self.rules = list(rules)
        self._channels: dict[tuple[str | None, ...], tuple[float, list[int]]] = {}

    def language(self, channel: Channel) -> str:
        """The language of a channel's messages."""
        return channel.language or self.settings.language

    # --- grouping -----------------------------------------------------------------------------

    def _channel_ids(self, session: Session, alert: Alert) -> list[int]:
        key = (alert.crew, alert.labels.get("manager"), alert.labels.get("district"), alert.severity)
        hit = self._channels.get(key)
        if hit is not None and time.monotonic() - hit[0] < CHANNEL_TTL_S:
            return hit[1]
        ids = [c.id for c in channels_for(session, alert)]
        self._channels[key] = (time.monotonic(), ids)
        return ids

    def touch(self, session: Session, alert: Alert, now: dt.datetime) -> None:
        """Mark the groups of ``alert`` for a flush (its state changed)."""
        critical = alert.severity == Severity.CRITICAL and alert.state == AlertState.FIRING
        for channel_id in self._channel_ids(session, alert):
            key = f"{channel_id}|{alert.compound}|{alert.crew or ''}"
            find = select(AlertGroup).where(AlertGroup.key == key).with_for_update()
            group = session.execute(find).scalar_one_or_none()
            if group is None:
                session.execute(
                    _insert(session)(AlertGroup)
                    .values(
                        key=key,
                        channel_id=channel_id,
                        compound=alert.compound,
                        crew=alert.crew,
                        created_at=now,
                        notified={},
                        sent=0,
                    )
                    .on_conflict_do_nothing(index_elements=["key"])
                )
                group = session.execute(find).scalar_one()
            wait = self.alerts.group_wait_critical_s if critical else self.alerts.group_wait_s
            if group.next_flush_at is None:
                if group.last_notified_at is None or not group.notified:
                    group.next_flush_at = now + _s(wait)
                else:
                    group.next_flush_at = max(now, group.last_notified_at + _s(self.alerts.group_interval_s))
            if critical:
                group.next_flush_at = min(group.next_flush_at, now + _s(self.alerts.group_wait_critical_s))

    def muted(self, session: Session, compound: str, now: dt.datetime,
              silences: Sequence[ActiveSilence]) -> dict[int, str]:  # fmt: skip
        """Alerts of a compound that are not to be notified now: id → why (a rule or a silence)."""
        cutoff = now - _s(self.alerts.inhibit_hold_s)
        rows = session.execute(
            select(Alert.id, Alert.labels, Alert.state).where(
                Alert.compound == compound,
                or_(
                    Alert.state.in_(OPEN_STATES),
                    and_(Alert.resolved_at.is_not(None), Alert.resolved_at >= cutoff),
                ),
            )
        ).all()
        out = {
            i: f"inhibited:{rule}"
            for i, rule in inhibited(self.rules, (Candidate(r[0], r[1]) for r in rows)).items()
        }
        for alert_id, labels, state in rows:
            if alert_id not in out and state in OPEN_STATES:
                silence = silenced_by(silences, labels)
                if silence is not None:
                    out[alert_id] = f"silenced:{silence}"
        return out

    def flush_due(self, session: Session, now: dt.datetime) -> tuple[int, int]:
        """Flush (a batch of) the groups whose timer is due; returns the groups looked at and the
        notifications made."""
        groups = list(
            session.execute(
                select(AlertGroup)
                .where(AlertGroup.next_flush_at <= now)
                .order_by(AlertGroup.next_flush_at)
                .limit(FLUSH_BATCH)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if not groups:
            return 0, 0
        silences = active_silences(session, now)
        muted: dict[str, dict[int, str]] = {}
        made = 0
        for group in groups:
            if group.compound not in muted:
                muted[group.compound] = self.muted(session, group.compound, now, silences)
            made += self._flush(session, group, muted[group.compound], now)
        return len(groups), made

    def _members(self, session: Session, group: AlertGroup, channel: Channel) -> list[Alert]:
        told = [int(i) for i in group.notified]
        ranks = [
            s.value for s in Severity if SEVERITY_RANK[s] >= SEVERITY_RANK[Severity(channel.min_severity)]
        ]
        crew = Alert.crew.is_(None) if group.crew is None else Alert.crew == group.crew
        return list(
            session.execute(
                select(Alert)
                .where(
                    Alert.compound == group.compound,
                    crew,
                    or_(and_(Alert.state.in_(OPEN_STATES), Alert.severity.in_(ranks)), Alert.id.in_(told)),
                )
                .order_by(Alert.started_at, Alert.id)
            ).scalars()
        )

    def _flush(self, session: Session, group: AlertGroup, muted: dict[int, str], now: dt.datetime) -> int:
        channel = session.get(Channel, group.channel_id)
        if channel is None or not channel.enabled:
            group.next_flush_at = None
            return 0
        members = self._members(session, group, channel)
        told = dict(group.notified)
        open_ = [a for a in members if a.state in OPEN_STATES]
        firing = [a for a in open_ if a.id not in muted]
        last = group.last_notified_at
        # news: an alert the group has not told, or one that fired again since it last told it
        new = [a for a in firing if str(a.id) not in told or (last is not None and a.fired_at > last)]
        resolved = [a for a in members if a.state not in OPEN_STATES and str(a.id) in told]
        repeat = (
            group.last_notified_at is not None
            and now - group.last_notified_at >= _s(self.alerts.repeat_interval_s)
            and any(a.state == AlertState.FIRING for a in firing)
        )
        made = 0
        if new or resolved or repeat:
            firing.sort(key=lambda a: (-SEVERITY_RANK[Severity(a.severity)], a.started_at, a.id))
            items = [render.Item(a, "firing") for a in firing] + [
                render.Item(a, "resolved") for a in resolved
            ]
            payload = render.group_payload(
                items, receiver=channel.name, group_key=group.key,
                group_labels={"compound": group.compound, "crew": group.crew or ""},
                mentions=on_duty(session, group.crew, now) if new else [],
                settings=self.settings, language=self.language(channel),
            )  # fmt: skip
            group.sent += 1
            enqueue(session, channel, NotificationKind.GROUP, [i.alert.id for i in items], payload,
                    f"group:{group.id}:{group.sent}", now)  # fmt: skip
            group.last_notified_at = now
            made = 1
            # what the group has told: its firing alerts, and those it told before that are now muted
            open_ids = {a.id for a in open_}
            told = {str(a.id): "firing" for a in firing} | {
                k: v for k, v in told.items() if int(k) in muted and int(k) in open_ids
            }
            group.notified = told
        group.next_flush_at = now + _s(self.alerts.group_interval_s) if open_ or told else None
        return made

    # --- escalation ---------------------------------------------------------------------------

    def escalate_due(self, session: Session, now: dt.datetime) -> int:
        """Take unacknowledged alerts whose time is up one level higher; returns the steps taken."""
        steps = 0
        silences: list[ActiveSilence] | None = None
        for severity, minutes in self.alerts.escalation_minutes.items():
            if minutes <= 0:
                continue
            due = now - _s(minutes * 60)
            alerts = list(
                session.execute(
                    select(Alert)
                    .where(
                        Alert.state == AlertState.FIRING,
                        Alert.severity == severity,
                        Alert.escalation_level < 3,
                        or_(
                            Alert.escalated_at <= due,
                            and_(Alert.escalated_at.is_(None), Alert.fired_at <= due),
                        ),
                    )
                    .limit(FLUSH_BATCH)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            for alert in alerts:
                if silences is None:
                    silences = active_silences(session, now)
                if alert.id in self.muted(session, alert.compound, now, silences):
                    continue
                steps += self._escalate(session, alert, minutes, now)
        return steps

    def _escalate(self, session: Session, alert: Alert, minutes: float, now: dt.datetime) -> int:
        level = alert.escalation_level + 1
        channels = escalation_channels(session, alert, level)
        mentions = leader(session, alert.crew) if level == 1 else []
        for channel in channels:
            payload = render.escalation_payload(
                alert, level, minutes * level, receiver=channel.name, mentions=mentions,
                settings=self.settings, language=self.language(channel),
            )  # fmt: skip
            key = f"escalation:{alert.id}:{int(alert.fired_at.timestamp())}:{level}:{channel.id}"
            enqueue(session, channel, NotificationKind.ESCALATION, [alert.id], payload, key, now)
        alert.escalation_level, alert.escalated_at, alert.updated_at = level, now, now
        names = ", ".join(c.name for c in channels) or "none"
        record(session, alert, AlertEvent.ESCALATED, now, from_state=alert.state,
               detail=f"level {level} ({render.LEVEL_WORDS[level]}); channels: {names}")  # fmt: skip
        log.info("alert %s escalated to level %s (channels: %s)", alert.id, level, names)
        return 1
