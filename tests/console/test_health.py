"""The city summary: asked of the store off the request path, all kinds at once where the store serves
requests together, asked again by a page when it went stale."""

from __future__ import annotations

import threading
import time
from typing import Any

from sitewatch.console.health import HEALTH_WORDS, PRESENCE, CitySummary, Health
from sitewatch.store import GatewayStatus, GroupPoint, GroupQuery


class CountingStore:
    """A store double that answers the overview's questions and notes which threads asked."""

    def __init__(self, concurrent: int) -> None:
        self.concurrent_writes = concurrent
        self.threads: set[int] = set()
        self.asked = 0
        self.lock = threading.Lock()

    def aggregate(self, query: GroupQuery) -> list[GroupPoint]:
        with self.lock:
            self.asked += 1
            self.threads.add(threading.get_ident())
        time.sleep(0.02)
        return [GroupPoint(("C1",), query.metrics[0], query.start_ms, 1.0, 3)]

    def gateways(self, *, compound: str | None = None) -> list[GatewayStatus]:
        return [GatewayStatus("C1-GW01", "C1", False, 0, 1)]


def test_the_kinds_are_asked_at_once_of_a_store_that_serves_requests_together() -> None:
    store: Any = CountingStore(16)
    snapshot = CitySummary(lambda: store, lambda: 1_000_000, 15).refresh()
    assert store.asked == len(PRESENCE) and len(store.threads) > 1
    assert snapshot.reporting["C1"] == {k.value: 3 for k in PRESENCE}
    assert snapshot.gateways == {"C1": False}
    embedded: Any = CountingStore(1)
    CitySummary(lambda: embedded, lambda: 1_000_000, 15).refresh()
    assert embedded.threads == {threading.get_ident()}


def test_a_stale_summary_is_asked_again_and_a_fresh_one_is_not() -> None:
    store: Any = CountingStore(1)
    summary = CitySummary(lambda: store, lambda: 1_000_000, 0.05)
    first = summary.get()
    assert summary.get() is first  # fresh: no new question
    time.sleep(0.2)  # more than three intervals
    assert summary.get() is not first
    assert store.asked == 2 * len(PRESENCE)


def test_health_words_cover_every_state() -> None:
    assert set(HEALTH_WORDS) == set(Health)
