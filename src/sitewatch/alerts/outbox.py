"""The delivery worker: sends what the outbox holds until each channel has accepted it.

A notification is claimed (a lease in ``claimed_until``, so a worker that dies leaves it to the
next one), sent outside any transaction, and its outcome recorded: the channel's answer, and
either ``delivered`` or the next attempt, with exponential backoff (``alerts.retry_min_s`` doubling
up to ``alerts.retry_max_s``, or the pause the channel asked for). Nothing is dropped: a channel
over its rate (``alerts.channel_rate_per_min``, 20 a minute for the robots) keeps its notifications
queued, in order, one in flight at a time; a notification still refused after
``alerts.give_up_h`` is marked abandoned (and counted). A channel that keeps failing raises its own
alert, told on the other channels; it resolves when the channel accepts a delivery again.

The rate window lives in this process: run one delivery worker per database (``alerts run`` does).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, or_, select

from ..contract import Severity
from ..i18n import N_
from ..settings import Settings
from . import render
from .channels import other_channels
from .db import in_transaction
from .dispatch import enqueue
from .lifecycle import Applied, Problem, raise_problem, resolve
from .models import (
    OPEN_STATES,
    Alert,
    Channel,
    ChannelType,
    DeliveryStatus,
    Notification,
    NotificationKind,
    utcnow,
)
from .notify import ChannelSpec, Notifier, Outcome, notifier_for

log = logging.getLogger(__name__)
CHANNEL_COMPOUND = "_alerting"  # the "compound" of alerts about alerting itself
CHANNEL_SOURCE = "rule:alerts.channel_down"
CLAIM_BATCH = 200


@dataclass
class DeliveryStats:
    """Counters of the worker."""

    delivered: int = 0
    failed_attempts: int = 0
    abandoned: int = 0
    rate_limited: int = 0  # times a channel's notifications waited for its rate window


def backoff_s(attempts: int, low: float, high: float) -> float:
    """The pause after ``attempts`` failed attempts: doubling from ``low``, at most ``high``, ±20%."""
    return min(high, low * 2 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)


class Delivery:
    """Claims due notifications, sends them (one in flight per channel), records the outcomes."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        notifiers: Mapping[ChannelType, Notifier] | None = None,
        workers: int = 8,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.alerts = settings.alerts
        self.clock = clock
        timeout = self.alerts.delivery_timeout_s
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False)
        self.notifiers = dict(
            notifiers or {t: notifier_for(t, self.alerts, self._client) for t in ChannelType}
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alerts-deliver")
        self._in_flight: set[int] = set()
        self._sent: dict[int, deque[dt.datetime]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = DeliveryStats()

    # --- one round ----------------------------------------------------------------------------

    def _room(self, channel_id: int, now: dt.datetime) -> bool:
        window = self._sent.setdefault(channel_id, deque())
        while window and now - window[0] >= dt.timedelta(minutes=1):
            window.popleft()
        return len(window) < self.alerts.channel_rate_per_min

    def claim(self, now: dt.datetime) -> list[tuple[int, ChannelSpec, dict[str, Any], str]]:
        """Lease the oldest due notification of each idle channel with room in its rate window."""

        def work(session: Any) -> list[tuple[int, ChannelSpec, dict[str, Any], str]]:
            rows = session.execute(
                select(Notification, Channel)
                .join(Channel, Channel.id == Notification.channel_id)
                .where(
                    Notification.status == DeliveryStatus.PENDING,
                    Notification.next_attempt_at <= now,
                    or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
                )
                .order_by(Notification.id)
                .limit(CLAIM_BATCH)
                .with_for_update(skip_locked=True, of=Notification)
            ).all()
            out = []
            seen: set[int] = set()
            lease = now + dt.timedelta(seconds=self.alerts.delivery_timeout_s * 3 + 30)
            with self._lock:
                for note, channel in rows:
                    if channel.id in seen or channel.id in self._in_flight:
                        continue
                    seen.add(channel.id)
                    if not self._room(channel.id, now):
                        self.stats.rate_limited += 1
                        continue
                    note.claimed_until = lease
                    self._in_flight.add(channel.id)
                    self._sent[channel.id].append(now)
                    out.append((note.id, ChannelSpec.of(channel), note.payload, note.key))
            return out

        return in_transaction(self.engine, work)

    def run_once(self, wait: bool = False) -> int:
        """Claim and send what is due now; ``wait``: until every send of this round is recorded."""
        now = self.clock()
        claimed = self.claim(now)
        futures = [self._pool.submit(self._deliver, *item) for item in claimed]
        if wait:
            for future in futures:
                future.result()
        return len(claimed)

    def _deliver(self, note_id: int, channel: ChannelSpec, payload: dict[str, Any], key: str) -> None:
        try:
            try:
                outcome = self.notifiers[channel.type].send(channel, payload, key)
            except Exception as exc:  # a notifier bug must not lose the notification
                log.exception("notifier %s failed", channel.type)
                outcome = Outcome(False, "", f"{type(exc).__name__}: {exc}"[:300])
            in_transaction(self.engine, lambda session: self._record(session, note_id, channel, outcome))
        except Exception:
            log.exception("could not record the delivery of notification %s; it will be sent again", note_id)
        finally:
            with self._lock:
                self._in_flight.discard(channel.id)
            self._wake.set()

    def _record(self, session: Any, note_id: int, spec: ChannelSpec, outcome: Outcome) -> None:
        now = self.clock()
        note = session.get(Notification, note_id, with_for_update=True)
        channel = session.get(Channel, spec.id, with_for_update=True)
        if note is None or channel is None or note.status != DeliveryStatus.PENDING:
            return
        note.attempts += 1
        note.claimed_until = None
        note.answer = outcome.answer[:2000] or None
        if outcome.ok:
            note.status, note.delivered_at, note.last_error = DeliveryStatus.DELIVERED.value, now, None
            self.stats.delivered += 1
            if channel.failures:
                log.info("channel %s delivers again after %s failed attempts", channel.name, channel.failures)
                channel.failures, channel.failing_since = 0, None
                self._channel_recovered(session, channel, now)
            return
        self.stats.failed_attempts += 1
        note.last_error = (outcome.error or "refused")[:1000]
        pause = backoff_s(note.attempts, self.alerts.retry_min_s, self.alerts.retry_max_s)
        note.next_attempt_at = now + dt.timedelta(seconds=max(pause, outcome.retry_after_s or 0.0))
        if now - note.created_at > dt.timedelta(hours=self.alerts.give_up_h):
            note.status = DeliveryStatus.ABANDONED.value
            self.stats.abandoned += 1
            log.error("notification %s to %s abandoned after %s attempts: %s", note.id, channel.name,
                      note.attempts, note.last_error)  # fmt: skip
        log.warning("delivery to %s failed (attempt %s): %s", channel.name, note.attempts, note.last_error)
        if outcome.retry_after_s is not None:
            return  # rate limited: the channel works, it asks for patience
        channel.failures += 1
        channel.failing_since = channel.failing_since or now
        if channel.failures == self.alerts.channel_failure_after:
            self._channel_failing(session, channel, note.last_error, now)

    def _channel_problem(self, channel: Channel) -> Problem:
        return Problem(
            compound=CHANNEL_COMPOUND, device=f"channel-{channel.id}", kind="channel", source=CHANNEL_SOURCE,
            fault="channel_down", severity=Severity.WARNING,
            message=N_("Notification channel {channel} keeps failing"), params={"channel": channel.name},
        )  # fmt: skip

    def _channel_failing(self, session: Any, channel: Channel, error: str, now: dt.datetime) -> None:
        alert, applied = raise_problem(session, self._channel_problem(channel), self.alerts, now, _no_groups)
        if applied is not Applied.CREATED:
            return
        log.error("channel %s keeps failing (%s); telling the other channels", channel.name, error)
        for other in other_channels(session, channel):
            payload = render.channel_failure_payload(
                alert, channel.name, error, receiver=other.name, settings=self.settings,
                language=other.language or self.settings.language,
            )  # fmt: skip
            enqueue(session, other, NotificationKind.CHANNEL, [alert.id], payload,
                    f"channel:{alert.id}:{other.id}", now)  # fmt: skip

    def _channel_recovered(self, session: Any, channel: Channel, now: dt.datetime) -> None:
        fp = self._channel_problem(channel).fingerprint
        alert = session.execute(
            select(Alert).where(Alert.fingerprint == fp, Alert.state.in_(OPEN_STATES)).with_for_update()
        ).scalar_one_or_none()
        if alert is not None:
            resolve(session, alert, None, "the channel accepts deliveries again", now, _no_groups)

    # --- the thread ---------------------------------------------------------------------------

    def notify(self) -> None:
        """Something entered the outbox: look now rather than at the next poll."""
        self._wake.set()

    def start(self, poll_s: float = 0.5) -> None:
        """Run rounds in a thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    self.run_once()
                except Exception:
                    log.exception("delivery round failed; trying again")
                    self._stop.wait(1.0)
                self._wake.wait(poll_s)

        self._thread = threading.Thread(target=loop, name="alerts-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; sends in flight finish (their outcomes are recorded)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True)
        self._client.close()


def _no_groups(session: Any, alert: Alert, now: dt.datetime) -> None:
    """Alerts about alerting are told directly to the other channels, not through groups."""
