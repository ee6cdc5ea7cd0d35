"""Writing one batch to the store: held while the store is unavailable, split when it refuses.

- **Transient** (``StoreUnavailable``: a timeout, a connection error, a 5xx, a lock): the same
  write is retried with backoff for as long as it takes; nothing is acknowledged meanwhile.
- **Permanent** (``StoreRefused``: a line the store cannot parse, a field type conflict, a point
  beyond the retention policy): retrying cannot help. The items that cause it are found (the one
  the store named, else by writing each half of the batch, and each half of a refused half, down to
  single items); the refused items are handed back with the store's reason and the rest is stored.
- **Unrecognised** (any other exception): retried ``UNKNOWN_ATTEMPTS`` times, then treated as a
  permanent refusal, so one unknown case cannot hold back the readings of every other device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..store.base import (
    InvalidPoint,
    PreparedBatch,
    Store,
    StoredEvent,
    StoredSample,
    StoreRefused,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.1
UNKNOWN_ATTEMPTS = 3  # an unrecognised failure of the same write this often: give up on it


_STOPPED = object()  # _attempt's answer when the service stops while the store is unavailable


@dataclass(frozen=True, slots=True)
class _Refusal:
    index: int | None  # the item the store named, as an index of the whole batch
    reason: str


class BatchWriter:
    """Stores batches through ``store``; see the module docstring for what it does with failures.

    ``wait(seconds)`` sleeps between retries and returns True when the service is stopping;
    ``count(name)`` adds one to the service's counter ``name`` (``store_retries``,
    ``store_refusals``). Thread-safe: it keeps nothing between calls.
    """

    def __init__(
        self,
        store: Store,
        *,
        wait: Callable[[float], bool],
        count: Callable[[str], None],
        retry_max_s: float = 5.0,
    ) -> None:
        self.store = store
        self.wait = wait
        self.count = count
        self.retry_max_s = retry_max_s

    def write(
        self, samples: Sequence[StoredSample], events: Sequence[StoredEvent], prepared: PreparedBatch
    ) -> dict[int, str] | None:
        """Store the batch (prepared by the store); the items refused for good, by index (samples,
        then events) with the store's reason; None when stopping before it was stored."""
        refused: dict[int, str] = {}
        work: list[tuple[int, int, PreparedBatch | None]] = [(0, len(samples) + len(events), prepared)]
        while work:
            lo, hi, part = work.pop()
            outcome = self._attempt(samples, events, lo, hi, part)
            if outcome is None:
                continue
            if outcome is _STOPPED:
                return None
            assert isinstance(outcome, _Refusal)
            if hi - lo == 1:
                refused[lo] = outcome.reason
            elif outcome.index is not None and lo <= outcome.index < hi:
                refused[outcome.index] = outcome.reason
                work += [(a, b, None) for a, b in ((outcome.index + 1, hi), (lo, outcome.index)) if a < b]
            else:
                mid = (lo + hi) // 2
                work += [(mid, hi, None), (lo, mid, None)]
        if refused:
            first = min(refused)
            log.warning(
                "the store refused %d of %d item(s) for good; dead-lettering them (first: %s)",
                len(refused), len(samples) + len(events), refused[first],
            )  # fmt: skip
        return refused

    def _attempt(
        self,
        samples: Sequence[StoredSample],
        events: Sequence[StoredEvent],
        lo: int,
        hi: int,
        prepared: PreparedBatch | None,
    ) -> _Refusal | object | None:
        """Write items [lo, hi): None once stored, a _Refusal, or _STOPPED."""
        delay = RETRY_MIN_S
        unknown = 0
        while True:
            try:
                if prepared is None:
                    count = len(samples)
                    prepared = self.store.prepare(
                        samples[min(lo, count) : min(hi, count)],
                        events[max(lo - count, 0) : max(hi - count, 0)],
                        validated=True,
                    )
                self.store.write_prepared(prepared)
                return None
            except StoreRefused as exc:
                self.count("store_refusals")
                return _Refusal(None if exc.index is None else lo + exc.index, exc.reason)
            except InvalidPoint as exc:  # a part refused by the store's checks, as the whole was not
                self.count("store_refusals")
                return _Refusal(lo + exc.index, exc.reason)
            except Exception as exc:  # StoreUnavailable: wait for the store; anything else: bounded
                self.count("store_retries")
                if not isinstance(exc, StoreUnavailable):
                    unknown += 1
                    if unknown >= UNKNOWN_ATTEMPTS:
                        self.count("store_refusals")
                        log.error(
                            "store write of %d item(s) failed %d times in a way ingest does not know "
                            "(%s: %s); treating it as a refusal",
                            hi - lo, unknown, type(exc).__name__, exc,
                        )  # fmt: skip
                        return _Refusal(None, f"{type(exc).__name__}: {exc}")
                log.warning(
                    "store write of %d item(s) failed (%s); holding acks, retrying in %.1f s",
                    hi - lo, exc, delay,
                )  # fmt: skip
            if self.wait(delay):
                return _STOPPED
            delay = min(delay * 2, self.retry_max_s)
