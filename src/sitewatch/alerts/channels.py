"""Channels and who they serve: a crew's robots and lists, a property manager's, a district
bureau's, the city's; and the members on duty, who are mentioned by name.

An alert goes to its crew's channels. One with no crew (no contract covers the device, or the
device is unknown) goes up the escalation ladder to the first level that has channels (property
manager, then bureau), so no alert is left without an owner. Manager, district and city channels
are ``escalation_only`` unless told otherwise: they see everything in their scope through the
console and the API, and are notified when the ladder reaches them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from ..assets.models import Crew
from ..contract import Severity
from .lifecycle import SEVERITY_RANK
from .models import Alert, Channel, ChannelScope, ChannelType, Duty

LEVELS = (1, 2, 3)  # crew lead, property manager, district bureau


class ChannelError(ValueError):
    """A channel that cannot be used, with the reason."""


def check_channel(type_: ChannelType, url: str, scope: ChannelScope, target: str,
                  secret: str | None, recipients: str | None) -> None:  # fmt: skip
    """Refuse a channel that could never deliver: a wrong URL scheme, a scope without a target,
    DingTalk without its signing secret, e-mail without recipients."""
    parts = urlsplit(url)
    if type_ is ChannelType.EMAIL:
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ChannelError("an e-mail channel's URL is smtp://host:587 (STARTTLS) or smtps://host:465")
        if not recipients or "@" not in recipients:
            raise ChannelError("an e-mail channel needs recipients (a@example.cn, b@example.cn)")
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelError(f"a {type_.value} channel's URL must be http:// or https://, got {url[:100]!r}")
    if type_ is ChannelType.DINGTALK and not secret:
        raise ChannelError("a DingTalk robot needs its signing secret (加签密钥, SEC...)")
    if scope is ChannelScope.ALL and target:
        raise ChannelError("a channel for everything takes no target")
    if scope is not ChannelScope.ALL and not target:
        raise ChannelError(
            f"a {scope.value} channel needs a target (its crew code, organisation or district)"
        )


def _enabled(alert: Alert) -> list[ColumnElement[bool]]:
    ranks = [s.value for s in Severity if SEVERITY_RANK[s] <= SEVERITY_RANK[Severity(alert.severity)]]
    return [Channel.enabled.is_(True), Channel.min_severity.in_(ranks)]


def _target_is(value: str | None) -> ColumnElement[bool]:
    """The channel's target is ``value``; nothing matches an alert that has none (no crew, no
    manager or district label: an alert of a compound the registry does not know)."""
    return Channel.target == value if value else false()


def _level_filter(alert: Alert, level: int) -> ColumnElement[bool]:
    labels = alert.labels
    if level == 1:
        return and_(Channel.scope == ChannelScope.CREW, _target_is(alert.crew))
    if level == 2:
        return and_(Channel.scope == ChannelScope.ORGANISATION, _target_is(labels.get("manager")))
    return or_(
        and_(Channel.scope == ChannelScope.DISTRICT, _target_is(labels.get("district"))),
        Channel.scope == ChannelScope.ALL,
    )


def channels_for(session: Session, alert: Alert) -> list[Channel]:
    """The channels an alert's group notifications go to."""
    crew = list(session.execute(select(Channel).where(_level_filter(alert, 1), *_enabled(alert))).scalars())
    watching = list(
        session.execute(
            select(Channel).where(
                or_(_level_filter(alert, 2), _level_filter(alert, 3)),
                Channel.escalation_only.is_(False),
                *_enabled(alert),
            )
        ).scalars()
    )
    if crew:
        return crew + watching
    for level in (2, 3):  # no crew channel: the first level up that has one owns the alert
        owners = escalation_channels(session, alert, level)
        if owners:
            return owners + [c for c in watching if c not in owners]
    return watching


def escalation_channels(session: Session, alert: Alert, level: int) -> list[Channel]:
    """The channels of one escalation level (1 crew lead, 2 property manager, 3 district bureau)."""
    return list(
        session.execute(select(Channel).where(_level_filter(alert, level), *_enabled(alert))).scalars()
    )


def on_duty(session: Session, crew: str | None, now: dt.datetime) -> list[str]:
    """Phones of the crew's members on duty now; the crew leader's when no one is on the rota."""
    if crew is None:
        return []
    phones = [
        p
        for p in session.execute(
            select(Duty.phone).where(Duty.crew == crew, Duty.starts_at <= now, Duty.ends_at > now)
        ).scalars()
        if p
    ]
    return phones or leader(session, crew)


def leader(session: Session, crew: str | None) -> list[str]:
    """The crew leader's phone, from the registry."""
    if crew is None:
        return []
    phone = session.execute(select(Crew.phone).where(Crew.crew_code == crew)).scalar_one_or_none()
    return [phone] if phone else []


def other_channels(session: Session, failing: Channel) -> Sequence[Channel]:
    """Where a failing channel is reported: the channels of the same owner and the city-wide
    ones; every other channel when there are none."""
    enabled = select(Channel).where(Channel.enabled.is_(True), Channel.id != failing.id)
    near = list(
        session.execute(
            enabled.where(
                or_(
                    and_(Channel.scope == failing.scope, Channel.target == failing.target),
                    Channel.scope == ChannelScope.ALL,
                )
            )
        ).scalars()
    )
    return near or list(session.execute(enabled).scalars())
