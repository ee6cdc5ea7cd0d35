"""Sequence gaps per gateway: Sparkplug B ``bdseq``/``seq`` tell whether messages went missing."""

from __future__ import annotations

from dataclasses import dataclass

from ..contract import SEQ_MODULUS, Envelope

LATE_WINDOW = SEQ_MODULUS // 2  # a seq up to this far behind the last one is a late or repeated message


@dataclass(frozen=True, slots=True)
class GapReport:
    """Messages missing between two consecutive messages of one gateway session."""

    compound: str
    gateway: str
    bdseq: int
    after_seq: int
    next_seq: int
    missing: int


@dataclass(slots=True)
class _Position:
    bdseq: int
    seq: int


class SequenceTracker:
    """Last (bdseq, seq) per gateway; reports forward jumps as gaps.

    A new ``bdseq`` starts a new session (the gateway reconnected): no gap is counted across it.
    A ``seq`` at or up to half the ring behind the last one is a redelivery or a late message.
    One tracker must see all of a gateway's messages: with a shared subscription each worker
    sees only a share, so gap tracking is off there (see docs/ingest.md).
    """

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], _Position] = {}
        self.late = 0

    def see(self, envelope: Envelope) -> GapReport | None:
        """Record one message; return a report when messages are missing before it."""
        key = (envelope.compound, envelope.gateway)
        last = self._last.get(key)
        if last is None or envelope.bdseq > last.bdseq:
            self._last[key] = _Position(envelope.bdseq, envelope.seq)
            return None
        if envelope.bdseq < last.bdseq:  # a message of an earlier session, redelivered
            self.late += 1
            return None
        step = (envelope.seq - last.seq) % SEQ_MODULUS
        if step == 0 or step > SEQ_MODULUS - LATE_WINDOW:
            self.late += 1
            return None
        last.seq = envelope.seq
        if step == 1:
            return None
        return GapReport(
            envelope.compound, envelope.gateway, envelope.bdseq, (envelope.seq - step) % SEQ_MODULUS,
            envelope.seq, step - 1,
        )  # fmt: skip

    def gateways(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Last (bdseq, seq) per (compound, gateway)."""
        return {key: (p.bdseq, p.seq) for key, p in self._last.items()}
