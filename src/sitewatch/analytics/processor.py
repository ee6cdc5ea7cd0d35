"""One message through analytics, without MQTT: decode with the contract's validators, hand the valid
parts to the engine, and keep the findings that were not published already.

The live service (``service.py``) and the benchmark (``sitewatch bench analytics``) both use it, so
the benchmark measures the service's own path. A payload the validators refuse, in whole or in
part, is counted by reason and its valid parts still go on; an engine call that raises is counted
(``engine_errors``) and logged, and the worker goes on with the next message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from ..contract import (
    SEQ_MODULUS,
    Channel,
    Checker,
    Envelope,
    Event,
    Finding,
    Limits,
    Rejection,
    RejectReason,
    Sample,
    decode_data,
    decode_events,
    decode_state,
    parse_topic,
)
from .checkpoint import Published
from .stats import AnalyticsStats

log = logging.getLogger(__name__)


class EngineLike(Protocol):
    """What the service needs of the rules engine (``sitewatch.analytics.engine.Engine``)."""

    def on_samples(self, compound: str, gateway: str, samples: Sequence[Sample]) -> list[Finding]:
        """Findings caused by these samples."""
        ...

    def on_event(self, compound: str, gateway: str, event: Event) -> list[Finding]:
        """Findings caused by this event."""
        ...

    def on_gateway(self, compound: str, gateway: str, online: bool, ts_ms: int) -> list[Finding]:
        """Findings caused by a gateway's birth or death."""
        ...

    def tick(self, now_ms: int) -> list[Finding]:
        """Findings due by time alone (no data, minimum durations)."""
        ...

    def snapshot(self) -> bytes:
        """The engine's whole state."""
        ...

    def device_count(self) -> int:
        """Devices it holds state for."""
        ...


EngineFactory = Callable[[bytes | None], EngineLike]  # None: a fresh engine; bytes: restore a snapshot


class Processor:
    """Decode → engine → findings not yet published (see the module docstring)."""

    def __init__(
        self,
        engine: EngineLike,
        limits: Limits,
        stats: AnalyticsStats,
        published: Published,
        owns: Callable[[str], bool] = lambda compound: True,
    ) -> None:
        self.engine = engine
        self.limits = limits
        self.stats = stats
        self.published = published
        self.owns = owns
        self.checker = Checker()  # remembers the device ids found valid, as ingest's decoder does
        self.births: dict[tuple[str, str], tuple[int, bool]] = {}  # (compound, gateway) → (bdseq, online)
        self.seqs: dict[tuple[str, str], tuple[int, int]] = {}  # (compound, gateway) → last (bdseq, seq) processed
        self._error_logged = False

    def handle(self, topic: str, payload: bytes, received_ms: int, dup: bool = False) -> list[Finding]:
        """Process one message; returns the findings to publish. ``dup``: the broker's DUP flag (a
        message it sends again because it was not acknowledged: perhaps one the state already holds)."""
        parts = parse_topic(topic)
        if parts is None or parts.channel not in (Channel.DATA, Channel.EVENT, Channel.STATE):
            self._refused([Rejection(RejectReason.BAD_TOPIC, f"not an analytics topic: {topic[:120]!r}")])
            return []
        if not self.owns(parts.compound):  # a stale subscription of another partition: not ours
            self._refused([Rejection(RejectReason.BAD_TOPIC, f"compound {parts.compound} is not in this partition")])
            return []
        found: list[Finding] = []
        if parts.channel is Channel.DATA:
            data = decode_data(topic, payload, limits=self.limits, now=received_ms, checker=self.checker)
            self._refused(data.rejections)
            if data.message is not None and data.message.samples and self._first_time(data.message.envelope, dup):
                self.stats.add(samples=len(data.message.samples))
                found += self._call(self.engine.on_samples, parts.compound, parts.gateway, data.message.samples)
        elif parts.channel is Channel.EVENT:
            events = decode_events(topic, payload, limits=self.limits, now=received_ms, checker=self.checker)
            self._refused(events.rejections)
            if events.message is not None and events.message.events and self._first_time(events.message.envelope, dup):
                self.stats.add(events=len(events.message.events))
                for event in events.message.events:
                    found += self._call(self.engine.on_event, parts.compound, parts.gateway, event)
        else:
            state = decode_state(topic, payload, limits=self.limits)
            self._refused(state.rejections)
            msg = state.message
            if msg is not None:
                key = (msg.compound, msg.gateway)
                last = self.births.get(key)
                # a death of an earlier session (its bdseq below the last birth's) is stale; the same
                # state again (a retained copy on every subscribe) changes nothing
                stale = last is not None and (msg.bdseq < last[0] or (msg.bdseq, msg.online) == last)
                if not stale:
                    self.births[key] = (msg.bdseq, msg.online)
                    self.stats.add(states=1)
                    found += self._call(self.engine.on_gateway, msg.compound, msg.gateway, msg.online, msg.ts_ms)
        self.stats.add(processed=1)
        return self.fresh(found)

    def _first_time(self, envelope: Envelope, dup: bool) -> bool:
        """Whether the engine has not had this message yet. Only a message the broker sends again
        (``dup``: it was delivered and not acknowledged, as after a restart that came between a
        checkpoint and its acknowledgements) can be one the state already holds; it is, when its
        ``seq`` (0…255 per ``bdseq``) is at or up to 127 behind the last one applied of the same
        ``bdseq``, or it belongs to an earlier ``bdseq``. Applied twice it would count an event twice
        in a window. A first delivery is always applied: a gateway's data and event messages may
        reach the broker in another order than their ``seq``."""
        key = (envelope.compound, envelope.gateway)
        last = self.seqs.get(key)
        if dup and last is not None and (
            envelope.bdseq < last[0] or (envelope.bdseq == last[0] and (last[1] - envelope.seq) % SEQ_MODULUS < 128)
        ):
            self.stats.add(repeated_messages=1)
            return False
        if last is None or envelope.bdseq > last[0] or (
            envelope.bdseq == last[0] and (envelope.seq - last[1]) % SEQ_MODULUS < 128
        ):
            self.seqs[key] = (envelope.bdseq, envelope.seq)
        return True

    def tick(self, now_ms: int) -> list[Finding]:
        """The engine's timer; returns the findings to publish."""
        self.stats.add(ticks=1)
        return self.fresh(self._call(self.engine.tick, now_ms))

    def fresh(self, findings: list[Finding]) -> list[Finding]:
        """The findings whose (id, state) was not published yet, now remembered as published."""
        out = []
        for finding in findings:
            key = (finding.id, finding.state.value)
            if key in self.published:
                self.stats.add(findings_repeated=1)
                continue
            self.published.add(key)
            out.append(finding)
        return out

    def _call(self, method: Callable[..., list[Finding]], *args: object) -> list[Finding]:
        try:
            return list(method(*args))
        except Exception:
            self.stats.add(engine_errors=1)
            if not self._error_logged:  # once with the traceback; the counter says how often
                self._error_logged = True
                log.exception("the engine failed on a message of %s; skipping it", args[0])
            return []

    def _refused(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        self.stats.add(refused_messages=1)
        for rejection in rejections:
            self.stats.refuse(str(rejection.reason))
