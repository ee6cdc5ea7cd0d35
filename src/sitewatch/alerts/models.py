"""The alerting tables (SQLAlchemy 2), in the registry's database on their own Alembic branch.

Alerts carry their labels as values (compound code, device id, crew code...), not as foreign keys
into the registry: an alert keeps its history when a device is replaced or a crew renamed, and the
two schemas migrate independently. Dedup is a partial unique index: at most one alert per
fingerprint that is not closed, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..assets.models import NAMING


class AlertState(StrEnum):
    """Where an alert is in its lifecycle."""

    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATES = (AlertState.FIRING, AlertState.ACKNOWLEDGED)


class AlertEvent(StrEnum):
    """What an entry in an alert's history records."""

    FIRED = "fired"
    FINDING = "finding"  # another finding fed the alert
    SOURCE_JOINED = "source_joined"  # another rule or detector found the same problem
    SOURCE_CLEARED = "source_cleared"  # one of its sources cleared while another is still active
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REOPENED = "reopened"  # fired again before it was closed (a flap)
    CLOSED = "closed"
    ESCALATED = "escalated"


class ChannelType(StrEnum):
    """Notification channels."""

    WECOM = "wecom"
    DINGTALK = "dingtalk"
    EMAIL = "email"
    WEBHOOK = "webhook"


class MessageFormat(StrEnum):
    """How a robot message is written (WeCom and DingTalk take both)."""

    TEXT = "text"  # mentions the members on duty by phone
    MARKDOWN = "markdown"


class ChannelScope(StrEnum):
    """Whose channel it is: a crew's, an organisation's (the property manager), a district's
    bureau, or everything (the city bureau, an operations desk)."""

    CREW = "crew"
    ORGANISATION = "organisation"
    DISTRICT = "district"
    ALL = "all"


class DeliveryStatus(StrEnum):
    """Where a notification in the outbox is."""

    PENDING = "pending"
    DELIVERED = "delivered"
    ABANDONED = "abandoned"  # still refused after alerts.give_up_h


class NotificationKind(StrEnum):
    """Why a notification was made."""

    GROUP = "group"  # a group's alerts (grouping timers)
    ESCALATION = "escalation"  # one unacknowledged alert to the next level
    CHANNEL = "channel"  # a channel that keeps failing, told on the others


class AlertsBase(DeclarativeBase):
    """Declarative base of the alerting tables (own metadata; the registry's naming convention)."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> dt.datetime:
    """Now, as the naive UTC the registry's database columns hold."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Alert(AlertsBase):
    """One problem on one device (or gateway, or compound), from firing to closed: one fault type,
    whichever rules and detectors found it (``sources``); it resolves by the data when every one of
    them has cleared."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_open_fingerprint",
            "fingerprint",
            unique=True,
            sqlite_where=text("state != 'closed'"),
            postgresql_where=text("state != 'closed'"),
        ),
        Index("ix_alerts_compound_state", "compound", "state"),
        Index("ix_alerts_crew_state", "crew", "state"),
        Index("ix_alerts_state_started", "state", "started_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # AlertState
    severity: Mapped[str] = mapped_column(String(16))  # contract Severity
    compound: Mapped[str] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    fault: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(80))
    crew: Mapped[str | None] = mapped_column(String(64))  # crew code, None when no contract covers it
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(String(500))  # catalog message id of the summary
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    finding_id: Mapped[str | None] = mapped_column(String(128))  # the episode now feeding it
    # every rule or detector that found the problem since it fired, the first first: source → the
    # id of its episode still active, or None once that episode cleared (or came already cleared)
    sources: Mapped[dict[str, str | None]] = mapped_column(JSON, server_default="{}")
    findings_count: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)  # the problem's start (the finding's)
    fired_at: Mapped[dt.datetime] = mapped_column(DateTime)  # when alerting raised it
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(100))  # None: by the data
    resolve_reason: Mapped[str | None] = mapped_column(String(500))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    flaps: Mapped[int] = mapped_column(Integer, default=0)


class AlertFinding(AlertsBase):
    """A finding message that fed an alert; (finding id, state) makes a redelivery a no-op."""

    __tablename__ = "alert_findings"
    __table_args__ = (UniqueConstraint("finding_id", "state"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    finding_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))  # contract FindingState
    severity: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)
    evidence: Mapped[dict[str, float]] = mapped_column(JSON)


class AlertHistory(AlertsBase):
    """One entry of an alert's history: a transition, an escalation step, a finding."""

    __tablename__ = "alert_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    event: Mapped[str] = mapped_column(String(24))  # AlertEvent
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(100))  # None: alerting itself
    detail: Mapped[str | None] = mapped_column(String(500))


class Silence(AlertsBase):
    """Alerts matching every matcher are not notified between ``starts_at`` and ``ends_at``."""

    __tablename__ = "alert_silences"
    __table_args__ = (Index("ix_alert_silences_ends_at", "ends_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    matchers: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # [{"name", "op", "value"}]
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime)
    author: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ended_by: Mapped[str | None] = mapped_column(String(100))  # who lifted it early


class Channel(AlertsBase):
    """Where notifications go: a WeCom or DingTalk robot, an e-mail list, a webhook."""

    __tablename__ = "alert_channels"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(16))  # ChannelType
    url: Mapped[str] = mapped_column(String(1000))  # robot/webhook URL, or smtp://host:port
    secret: Mapped[str | None] = mapped_column(String(200))  # DingTalk signing secret, SMTP password
    recipients: Mapped[str | None] = mapped_column(String(1000))  # e-mail: "a@x, b@y"; sender first
    scope: Mapped[str] = mapped_column(String(16))  # ChannelScope
    target: Mapped[str] = mapped_column(String(200), default="")  # crew code, organisation, district
    language: Mapped[str | None] = mapped_column(String(8))  # None: the language setting
    format: Mapped[str] = mapped_column(String(16), default="text")  # MessageFormat (robots)
    min_severity: Mapped[str] = mapped_column(String(16), default="warning")
    escalation_only: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # failed attempts in a row
    failing_since: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Duty(AlertsBase):
    """A crew member on duty over an interval (mentioned in the crew's robot messages)."""

    __tablename__ = "alert_duty"
    id: Mapped[int] = mapped_column(primary_key=True)
    crew: Mapped[str] = mapped_column(String(64), index=True)
    member: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(50))
    email: Mapped[str | None] = mapped_column(String(200))
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime)


class AlertGroup(AlertsBase):
    """A channel's group of alerts (one compound, one crew) and its timers: what was last sent."""

    __tablename__ = "alert_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("alert_channels.id", ondelete="CASCADE"), index=True)
    compound: Mapped[str] = mapped_column(String(64))
    crew: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    next_flush_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)  # None: idle
    last_notified_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    notified: Mapped[dict[str, str]] = mapped_column(JSON)  # alert id → state last told
    sent: Mapped[int] = mapped_column(Integer, default=0)  # notifications made, for the key


class Notification(AlertsBase):
    """The outbox: a notification made in the same transaction as what caused it, until delivered."""

    __tablename__ = "alert_notifications"
    __table_args__ = (Index("ix_alert_notifications_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)  # idempotency key, sent with it
    channel_id: Mapped[int] = mapped_column(ForeignKey("alert_channels.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # NotificationKind
    alert_ids: Mapped[list[int]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the rendered message (see render.py)
    status: Mapped[str] = mapped_column(String(16))  # DeliveryStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime)  # a worker is sending it
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    answer: Mapped[str | None] = mapped_column(String(2000))  # what the channel said
