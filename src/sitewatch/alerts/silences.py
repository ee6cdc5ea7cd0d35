"""Silences: alerts matching every matcher of a silence are not notified while it lasts.

A silence is bounded in time (it expires by itself), has an author and a reason, and never changes
an alert's state: the alert fires, is listed and can be acknowledged; only its notifications wait.
Planned maintenance windows are silences (``sitewatch alerts silence --compound ... --from --until``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .matchers import Matcher, MatcherError, all_match
from .models import Silence

MAX_MATCHERS = 16
MAX_DURATION = dt.timedelta(days=366)


class SilenceError(ValueError):
    """A silence refused, with the reason (shown to the person who asked for it)."""


@dataclass(frozen=True, slots=True)
class ActiveSilence:
    """A silence in force, ready to match."""

    id: int
    matchers: tuple[Matcher, ...]
    ends_at: dt.datetime

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether this silence covers an alert with ``labels``."""
        return all_match(self.matchers, labels)


def create_silence(
    session: Session,
    matchers: Sequence[Matcher],
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    author: str,
    reason: str,
    now: dt.datetime,
) -> Silence:
    """Store a silence after checking it: matchers, an end after its start and after now, an
    author and a reason."""
    if not matchers:
        raise SilenceError("a silence needs at least one matcher (e.g. compound=C0001)")
    if len(matchers) > MAX_MATCHERS:
        raise SilenceError(f"a silence takes at most {MAX_MATCHERS} matchers")
    if all(m.matches({}) for m in matchers):
        raise SilenceError("the matchers would silence every alert: name at least one label value")
    if ends_at <= starts_at:
        raise SilenceError(
            f"the silence ends ({ends_at:%Y-%m-%d %H:%M}) before it starts ({starts_at:%Y-%m-%d %H:%M})"
        )
    if ends_at <= now:
        raise SilenceError("the silence would end in the past")
    if ends_at - starts_at > MAX_DURATION:
        raise SilenceError("a silence lasts at most 366 days")
    author, reason = author.strip(), reason.strip()
    if not author or len(author) > 100:
        raise SilenceError("a silence needs an author (at most 100 characters)")
    if not reason or len(reason) > 500:
        raise SilenceError("a silence needs a reason (at most 500 characters)")
    silence = Silence(
        matchers=[m.to_json() for m in matchers], starts_at=starts_at, ends_at=ends_at,
        author=author, reason=reason, created_at=now,
    )  # fmt: skip
    session.add(silence)
    session.flush()
    return silence


def expire_silence(session: Session, silence: Silence, actor: str, now: dt.datetime) -> None:
    """End a silence now (``unsilence``); an expired one stays in the record as it was."""
    if silence.ends_at <= now:
        raise SilenceError(f"silence {silence.id} has already ended")
    silence.ends_at = max(now, silence.starts_at)
    silence.ended_by = actor[:100]


def active_silences(session: Session, now: dt.datetime) -> list[ActiveSilence]:
    """Silences in force at ``now`` (a stored one that no longer parses is skipped)."""
    out = []
    rows = session.execute(select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)).scalars()
    for row in rows:
        try:
            out.append(ActiveSilence(row.id, tuple(Matcher.of(m) for m in row.matchers), row.ends_at))
        except MatcherError:
            continue
    return out


def silenced_by(silences: Sequence[ActiveSilence], labels: Mapping[str, str]) -> int | None:
    """The id of a silence covering ``labels``, or None."""
    for silence in silences:
        if silence.matches(labels):
            return silence.id
    return None
