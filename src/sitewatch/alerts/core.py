"""Alerting's work without the transport: apply a finding, and run the timers (group flushes,
escalation, closing, compound outages). ``sitewatch alerts run`` drives it from MQTT; analytics
may drive it in its own process; tests drive it with an injected clock."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ..contract import Finding
from ..settings import Settings
from .batch import apply_findings
from .db import in_transaction
from .dispatch import Dispatcher
from .inhibit import load_rules
from .lifecycle import Applied, Duplicate, apply_finding, close_resolved
from .models import utcnow
from .outage import detect_outages

log = logging.getLogger(__name__)
OUTAGE_CHECK = dt.timedelta(seconds=5)


@dataclass
class CoreStats:
    """What alerting has done."""

    applied: dict[str, int] = field(default_factory=dict)  # Applied → count
    notifications: int = 0
    escalations: int = 0
    closed: int = 0
    outages: int = 0


class Alerting:
    """Findings in, alerts and outbox notifications out, on one database."""

    def __init__(self, engine: Engine, settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow,
                 on_notify: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.dispatcher = Dispatcher(settings, load_rules(settings.alerts.inhibit_rules))
        self.on_notify = on_notify
        self.stats = CoreStats()
        self._last_outage_check: dt.datetime | None = None

    def apply(self, finding: Finding) -> Applied:
        """Apply one finding in its own transaction (retried on a transient database failure)."""

        def work(session: Session) -> Applied:
            return apply_finding(session, finding, self.settings.alerts, self.clock(), self.dispatcher.touch)[
                1
            ]

        try:
            applied = in_transaction(self.engine, work)
        except Duplicate:
            applied = Applied.DUPLICATE
        self.stats.applied[applied.value] = self.stats.applied.get(applied.value, 0) + 1
        return applied

    def apply_batch(self, findings: list[Finding]) -> list[Applied]:
        """Apply findings in one transaction (much faster than one each); if another process applied
        one of them meanwhile, the batch is rolled back and applied one finding at a time."""

        def work(session: Session) -> list[Applied]:
            return apply_findings(
                session, findings, self.settings.alerts, self.clock(), self.dispatcher.touch
            )

        try:
            results = in_transaction(self.engine, work)
        except Duplicate:
            return [self.apply(f) for f in findings]
        for applied in results:
            self.stats.applied[applied.value] = self.stats.applied.get(applied.value, 0) + 1
        return results

    def tick(self, now: dt.datetime | None = None) -> int:
        """Run every timer that is due; returns the notifications put in the outbox."""
        now = now or self.clock()
        if self._last_outage_check is None or now - self._last_outage_check >= OUTAGE_CHECK:
            self._last_outage_check = now  # first: an outage inhibits the groups flushed below
            self.stats.outages += in_transaction(
                self.engine, lambda s: detect_outages(s, self.settings.alerts, now, self.dispatcher.touch)
            )
        made = 0
        while True:  # groups come in batches
            groups, batch = in_transaction(self.engine, lambda s: self.dispatcher.flush_due(s, now))
            made += batch
            if groups == 0:
                break
        escalations = in_transaction(self.engine, lambda s: self.dispatcher.escalate_due(s, now))
        self.stats.closed += in_transaction(
            self.engine, lambda s: close_resolved(s, now, self.settings.alerts.close_after_s)
        )
        self.stats.notifications += made
        self.stats.escalations += escalations
        if (made or escalations) and self.on_notify is not None:
            self.on_notify()
        return made + escalations
