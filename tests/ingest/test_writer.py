"""BatchWriter alone (pure, with a store double): what it does with each kind of store failure.

The real stores' answers are tested against InfluxDB and SQLite in test_store_refusals.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from sitewatch.contract import DeviceKind, Event, Sample
from sitewatch.ingest.writer import UNKNOWN_ATTEMPTS, BatchWriter
from sitewatch.store import PreparedBatch, StoredEvent, StoredSample, StoreRefused, StoreUnavailable


class PickyStore:
    """A store double: refuses batches holding a device of ``bad`` (naming it when ``names``),
    fails ``outages`` writes first, and raises ``unknown`` for batches holding ``weird``."""

    concurrent_writes = 1

    def __init__(
        self, bad: set[str] = frozenset(), *, names: bool = False, outages: int = 0, weird: str = ""
    ) -> None:  # type: ignore[assignment]
        self.bad, self.names, self.outages, self.weird = bad, names, outages, weird
        self.stored: list[str] = []
        self.writes = 0

    def prepare(
        self, samples: Sequence[StoredSample], events: Sequence[StoredEvent] = (), *, validated: bool = False
    ) -> PreparedBatch:
        return PreparedBatch(list(samples), list(events))

    def write_prepared(self, batch: PreparedBatch) -> None:
        self.writes += 1
        devices = [s.sample.device for s in batch.samples] + [e.event.device for e in batch.events]
        if self.outages:
            self.outages -= 1
            raise StoreUnavailable("connection refused")
        if self.weird in devices:
            raise RuntimeError("a backend bug")
        refused = [i for i, d in enumerate(devices) if d in self.bad]
        if refused:
            raise StoreRefused("field type conflict", refused[0] if self.names else None)
        self.stored += devices


def batch(n: int, events: int = 0) -> tuple[list[StoredSample], list[StoredEvent]]:
    samples = [
        StoredSample(Sample(f"C-EL{i}", DeviceKind.ELEVATOR, i, {"car_load": 1.0}), "C") for i in range(n)
    ]
    evs = [
        StoredEvent(Event(f"C-EL{n + i}", DeviceKind.ELEVATOR, i, "door_fault"), "C") for i in range(events)
    ]
    return samples, evs


def writer(store: PickyStore, counts: Counter[str], stop_after: int | None = None) -> BatchWriter:
    waits: list[float] = []

    def wait(delay: float) -> bool:
        waits.append(delay)
        return stop_after is not None and len(waits) >= stop_after

    return BatchWriter(store, wait=wait, count=lambda name: counts.update([name]))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [{"C-EL0"}, {"C-EL999"}, {"C-EL17", "C-EL500", "C-EL501"}, {"C-EL1000"}])
def test_the_refused_items_are_found_and_the_rest_is_stored(bad: set[str]) -> None:
    samples, events = batch(1000, events=3)
    store, counts = PickyStore(bad), Counter[str]()
    refused = writer(store, counts).write(samples, events, store.prepare(samples, events))
    devices = [s.sample.device for s in samples] + [e.event.device for e in events]
    assert refused is not None
    assert {devices[i] for i in refused} == bad and all(r == "field type conflict" for r in refused.values())
    assert sorted(store.stored) == sorted(d for d in devices if d not in bad)
    # found by halving: about two writes per level for each refused item, not one per item
    assert store.writes <= 1 + 2 * len(bad) * 11
    assert counts["store_refusals"] >= len(bad) and counts["store_retries"] == 0


def test_an_item_the_store_names_is_taken_out_without_splitting() -> None:
    samples, events = batch(1000)
    store, counts = PickyStore({"C-EL400"}, names=True), Counter[str]()
    refused = writer(store, counts).write(samples, events, store.prepare(samples, events))
    assert refused == {400: "field type conflict"}
    assert store.writes == 3  # the batch, then the items before it, then those after it
    assert len(store.stored) == 999


def test_an_unavailable_store_is_waited_for_and_nothing_is_refused() -> None:
    samples, events = batch(10)
    store, counts = PickyStore(outages=5), Counter[str]()
    assert writer(store, counts).write(samples, events, store.prepare(samples, events)) == {}
    assert len(store.stored) == 10 and counts["store_retries"] == 5 and counts["store_refusals"] == 0


def test_stopping_while_the_store_is_unavailable_stores_and_refuses_nothing() -> None:
    samples, events = batch(10)
    store, counts = PickyStore(outages=100), Counter[str]()
    assert writer(store, counts, stop_after=3).write(samples, events, store.prepare(samples, events)) is None
    assert store.stored == []


def test_an_unknown_failure_is_retried_a_bounded_number_of_times_then_isolated() -> None:
    samples, events = batch(64)
    store, counts = PickyStore(weird="C-EL33"), Counter[str]()
    refused = writer(store, counts).write(samples, events, store.prepare(samples, events))
    assert refused == {33: "RuntimeError: a backend bug"}
    assert len(store.stored) == 63
    # each write holding the item fails UNKNOWN_ATTEMPTS times: the batch and one half per level
    assert counts["store_retries"] == UNKNOWN_ATTEMPTS * 7
