"""How long a transaction waits for company: at most ``LINGER_S`` after its first message.

The alerting service applies the findings waiting in one transaction, and lets the messages that
arrive within ``LINGER_S`` of the first join it (a transaction's fixed cost spread over more
findings). These tests drive the service's batching with a scripted queue on a clock of their own,
so the bound is checked exactly, whatever the machine's load.
"""

from __future__ import annotations

import queue
import types
from pathlib import Path

import pytest
from sqlalchemy import Engine

from sitewatch.alerts import service as service_module
from sitewatch.alerts.service import BATCH, LINGER_S, AlertService, _Inbound
from sitewatch.contract import encode_findings, finding_topic
from sitewatch.settings import load_settings

from .conftest import finding


class ScriptedQueue:
    """Messages that arrive at given instants of a clock the service reads (``now``)."""

    def __init__(self, arrivals: list[tuple[float, _Inbound | None]]) -> None:
        self.arrivals = sorted(arrivals, key=lambda a: a[0])
        self.now = 0.0
        self.waits: list[float | None] = []  # the timeout of each get

    def monotonic(self) -> float:
        return self.now

    def get(self, block: bool = True, timeout: float | None = None) -> _Inbound | None:
        self.waits.append(timeout)
        if not self.arrivals:
            raise AssertionError("the service waited for a message the test never sends")
        at, item = self.arrivals[0]
        if timeout is not None and at > self.now + timeout:
            self.now += timeout
            raise queue.Empty
        self.arrivals.pop(0)
        self.now = max(self.now, at)
        return item

    def put(self, item: _Inbound | None) -> None:
        self.arrivals.insert(0, (self.now, item))


def message(n: int, findings: int = 1) -> _Inbound:
    """The n-th MQTT message: ``findings`` findings of devices of its own."""
    batch = [finding(f"C0001-EL{n:02d}{i:02d}", started_ms=1_790_000_000_000 + n) for i in range(findings)]
    payload = batch[0].encode() if findings == 1 else encode_findings("C0001", batch)
    return _Inbound(generation=0, mid=n, qos=1, topic=finding_topic("C0001"), payload=payload)


@pytest.fixture
def scripted(sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """An alerting service (not started) whose queue and clock a test scripts."""

    def make(arrivals: list[tuple[float, _Inbound | None]]) -> tuple[AlertService, ScriptedQueue]:
        script = ScriptedQueue(arrivals)
        monkeypatch.setattr(service_module, "time", types.SimpleNamespace(monotonic=script.monotonic))
        service = AlertService(load_settings(), sqlite_engine, deliver=False, decode_apart=False)
        service._queue = script  # type: ignore[assignment]
        return service, script

    return make


def mids(batch: tuple[list[_Inbound], list[object]] | None) -> list[int]:
    assert batch is not None
    return [item.mid for item in batch[0]]


def test_a_transaction_takes_what_arrives_within_the_linger_of_its_first_message(scripted) -> None:  # type: ignore[no-untyped-def]
    step = LINGER_S * 0.3
    # a steady trickle: a message every 0.3 of the linger, starting after an idle second
    service, script = scripted([(1.0 + i * step, message(i)) for i in range(10)] + [(9.0, None)])
    first = service._next_batch()
    # the wait is counted from the first message (1.0 s), not from when the service began waiting
    assert mids(first) == [0, 1, 2, 3]  # arrived 0, 0.3, 0.6 and 0.9 x LINGER_S after the first
    assert script.now == pytest.approx(1.0 + LINGER_S)  # the transaction closed on the linger's end
    assert script.waits[0] is None  # nothing in hand: the service waits as long as it takes
    assert all(w is not None and 0 <= w <= LINGER_S + 1e-9 for w in script.waits[1:])
    second = service._next_batch()  # the trickle does not keep one transaction open
    assert mids(second) == [4, 5, 6, 7]
    assert mids(service._next_batch()) == [8, 9]
    assert service._next_batch() is None  # stopping: nothing in hand
    assert service.messages == 10 and service.received == 10


def test_a_message_alone_waits_the_linger_and_no_longer(scripted) -> None:  # type: ignore[no-untyped-def]
    service, script = scripted([(0.5, message(0)), (0.5 + 3 * LINGER_S, message(1)), (5.0, None)])
    assert mids(service._next_batch()) == [0]
    assert script.now == pytest.approx(0.5 + LINGER_S)
    assert mids(service._next_batch()) == [1]


def test_a_full_batch_goes_at_once_without_lingering(scripted) -> None:  # type: ignore[no-untyped-def]
    service, script = scripted([(0.0, message(0, findings=BATCH)), (0.001, message(1)), (5.0, None)])
    batch = service._next_batch()
    assert mids(batch) == [0] and batch is not None and len(batch[1]) == BATCH
    assert script.now == 0.0 and script.waits == [None]  # it did not wait for the next message


def test_stopping_applies_what_is_in_hand_first(scripted) -> None:  # type: ignore[no-untyped-def]
    service, _script = scripted([(0.0, message(0)), (0.001, None)])
    assert mids(service._next_batch()) == [0]  # the stop came within the linger: the message goes first
    assert service._next_batch() is None
