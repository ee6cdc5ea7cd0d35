"""Alerting wired for tests: an injected clock, the core and the delivery worker on one engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, select

from sitewatch.alerts.core import Alerting
from sitewatch.alerts.db import transaction
from sitewatch.alerts.models import Notification
from sitewatch.alerts.outbox import Delivery
from sitewatch.settings import AlertsSettings, Settings, load_settings

# today at 08:00 UTC (naive, as the database holds times): inside the fixture ledger's contracts
# whatever the date the tests run on
START = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(8))


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


def settings(**alerts: Any) -> Settings:
    """Settings with these alerts settings (the rest default)."""
    language = alerts.pop("language", "zh_CN")
    return load_settings(language=language, alerts=AlertsSettings(**alerts))


@contextmanager
def wired(engine: Engine, **alerts: Any) -> Iterator[tuple[Alerting, Delivery, Clock]]:
    """Core and delivery on ``engine`` with a test clock; the worker is stopped afterwards."""
    clock = Clock()
    config = settings(**alerts)
    core = Alerting(engine, config, clock=clock)
    delivery = Delivery(engine, config, clock=clock)
    try:
        yield core, delivery, clock
    finally:
        delivery.stop()


def outbox(engine: Engine) -> list[Notification]:
    """Every notification, oldest first."""
    with transaction(engine) as session:
        return list(session.execute(select(Notification).order_by(Notification.id)).scalars())


def drain(delivery: Delivery, rounds: int = 1000) -> int:
    """Delivery rounds until one sends nothing (one notification per channel per round)."""
    sent = 0
    for _ in range(rounds):
        n = delivery.run_once(wait=True)
        if n == 0:
            return sent
        sent += n
    raise AssertionError("the outbox did not drain")
