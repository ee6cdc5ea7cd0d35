"""Which queued rows go next on a broker connection: the backlog and the live stream.

When a connection comes up, everything already queued is the *backlog*: it is sent oldest-first,
marked as replay, optionally capped in readings per second (a token bucket with one second of
burst). Rows queued after that are *live*. The publisher alternates one live batch and one
backlog batch, so neither waits for the other. Row ids only grow, so each stream is a cursor.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .queue import DiskQueue, Row

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Streams:
    """Cursors over the queue for one connection; see the module docstring."""

    queue: DiskQueue
    batch_rows: int
    max_bytes: int
    rate: float = 0.0  # cap on replay, readings/s; 0: none
    backlog_cursor: int = 0  # last backlog id claimed
    backlog_end: int = 0  # last id that belongs to the backlog
    live_cursor: int = 0  # last live id claimed
    tokens: float = 0.0
    stamp: float = 0.0

    @classmethod
    def start(cls, queue: DiskQueue, batch_rows: int, max_bytes: int, rate: float = 0.0) -> Streams:
        """Streams for a new connection: all that is queued now is backlog."""
        end = queue.max_id()
        return cls(queue, batch_rows, max_bytes, rate, 0, end, end, rate, time.monotonic())

    @property
    def replaying(self) -> bool:
        """Whether backlog rows are left to send."""
        return self.backlog_cursor < self.backlog_end

    def next_live(self) -> list[Row]:
        """The next batch of live rows (possibly empty)."""
        rows = self.queue.claim(self.live_cursor, None, self.batch_rows, self.max_bytes)
        if rows:
            self.live_cursor = rows[-1].id
        return rows

    def next_backlog(self) -> list[Row]:
        """The next backlog batch; empty when the backlog is done or the replay cap says wait."""
        if not self.replaying:
            return []
        if self.rate:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens <= 0:
                return []
        rows = self.queue.claim(self.backlog_cursor, self.backlog_end, self.batch_rows, self.max_bytes)
        if rows:
            self.backlog_cursor = rows[-1].id
            self.tokens -= sum(r.readings for r in rows)
        else:
            self.backlog_cursor = self.backlog_end
            log.info("backlog replayed")
        return rows

    def restart_backlog(self) -> None:
        """After a hold (central host offline): rows queued since become backlog, if none is left."""
        if not self.replaying:
            self.backlog_cursor, self.backlog_end = self.live_cursor, self.queue.max_id()
            self.live_cursor = self.backlog_end

    def pause_s(self, idle: float = 0.25) -> float:
        """How long to wait when nothing could be sent: until the replay cap allows the next batch."""
        if self.rate and self.tokens <= 0 and self.replaying:
            return min(idle, -self.tokens / self.rate + 0.001)
        return idle
