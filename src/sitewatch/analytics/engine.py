"""The rule engine: samples, events and gateway states in, findings out (live and on history).

One ``Engine`` holds the state of every device it has heard from (a few small lists per device
and rule, docs/analytics.md) and turns each message into findings at once; ``tick`` runs the
timers (no data, confirmations, flapping closes). The live service calls it for each message and
checkpoints ``snapshot()``; ``analytics evaluate`` replays a backfill through the same calls.

A finding's id is ``rule:<name>:<device>:<started_ms>``: the same episode replayed after a
restart gets the same id. Bad values (not a finite number) are skipped and counted, never raised.
"""

from __future__ import annotations

import heapq
import logging
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ..contract import KINDS, DeviceKind, Event, Finding, FindingState, Sample, Severity
from .messages import summary
from .rules import (
    ChangeRule,
    CounterRule,
    CountRule,
    DayNightRule,
    DemandRule,
    DipRule,
    EventRule,
    LoadTemperatureRule,
    NoDataRule,
    RateRule,
    RuleSet,
    StateRule,
    StepRule,
    StreakRule,
    ThresholdRule,
)
from .sun import solar_elevation
from .thermal import step as thermal_step

log = logging.getLogger(__name__)

SNAPSHOT_VERSION = 1
RAISE, CLEAR, HOLD = 1, 0, -1


@dataclass(frozen=True, slots=True)
class Site:
    """Where a compound is: for the sun (day/night rules)."""

    latitude: float
    longitude: float
    timezone: str = "Asia/Shanghai"


def _num(value: Any) -> float | None:
    """A finite float, or None for anything else (strings, NaN, booleans, None)."""
    cls = value.__class__
    if cls is float:
        return value if value - value == 0.0 else None
    if cls is int:
        return float(value)
    return None


def _reading(engine: Engine, values: Mapping[str, Any], metric: str) -> float | None:
    """``metric``'s value in ``values`` as a finite float (as :func:`_num`), or None; a value sent that is
    no finite number (a string, NaN, a boolean, null) is counted in ``engine.bad_values``."""
    value: Any = values.get(metric)
    cls = value.__class__
    if cls is float:
        if value - value == 0.0:
            return value
    elif cls is int:
        return float(value)
    engine.bad_values += metric in values
    return None


class _State:
    """One rule's state on one device: the episode timers plus the rule's own small memory."""

    __slots__ = ("cleared", "last", "since", "start", "x")

    def __init__(self) -> None:
        self.since: int | None = None  # condition holding since (waiting for ``for``)
        self.start: int | None = None  # the open finding's start
        self.cleared: int | None = None  # condition gone at this time; closes after the flap window
        self.last: float = 0.0  # the last value that mattered (evidence)
        self.x: list[Any] = []  # the rule type's own memory

    def dump(self) -> list[Any]:
        return [self.since, self.start, self.cleared, self.last, self.x]

    @classmethod
    def load(cls, row: list[Any]) -> _State:
        st = cls()
        st.since, st.start, st.cleared, st.last, st.x = row
        return st


class _Plan:
    """A sample rule made ready for the hot path: its check, main metric, guards and timers."""

    __slots__ = ("check", "flap", "guards", "hours", "metric", "name", "regex", "rule", "sun")

    def __init__(self, rule: Any, flap: int) -> None:
        self.rule = rule
        self.name: str = rule.name
        self.check: Any = _CHECKS[type(rule)]
        self.metric: str = _metric(rule)
        stopped = isinstance(rule, CounterRule) and rule.mode == "stopped"
        self.guards: tuple[Any, ...] = () if stopped else tuple(rule.when)  # a stopped counter reads its own
        self.regex = re.compile(rule.devices) if rule.devices else None
        self.flap = flap
        sun = getattr(rule, "sun_above", None), getattr(rule, "sun_below", None)
        self.sun: tuple[float | None, float | None] | None = sun if sun != (None, None) else None
        self.hours: tuple[float, float] | None = getattr(rule, "hours", None)


class _Device:
    __slots__ = ("compound", "kind", "last", "rules")

    def __init__(self, compound: str, kind: DeviceKind) -> None:
        self.compound = compound
        self.kind = kind
        self.last: int | None = None  # time of the last sample
        self.rules: dict[str, _State] = {}


class Engine:
    """Rules over live messages; see the module docstring."""

    def __init__(self, rules: RuleSet, sites: Mapping[str, Site]) -> None:
        self.rules = rules
        self.sites = dict(sites)
        self._by_kind: dict[DeviceKind, tuple[Any, ...]] = {k: rules.for_kind(k) for k in DeviceKind}
        self._plans = {
            k: tuple(_Plan(r, self._flap(r)) for r in v if not isinstance(r, EventRule | NoDataRule))
            for k, v in self._by_kind.items()
        }
        self._event_rules = {
            k: tuple(r for r in v if isinstance(r, EventRule)) for k, v in self._by_kind.items()
        }
        self._nodata = {
            k: next((r for r in v if isinstance(r, NoDataRule)), None) for k, v in self._by_kind.items()
        }
        self._regex = {r.name: re.compile(r.devices) for r in rules.rules if r.devices}
        self._devices: dict[str, _Device] = {}
        self._gateways: dict[str, _Device] = {}  # gateway id -> state (kind gateway)
        self._offline: dict[str, int] = {}  # compound -> gateway offline since
        self._peers: dict[str, dict[str, set[str]]] = {}  # "rule/compound" -> {"all", "on"}
        self.memory: dict[str, Any] = {}  # "rule/compound" -> a rule type's compound-wide memory (JSON)
        self._timers: list[tuple[int, str, str]] = []  # (due, device, rule key): confirmations, flap closes
        self._onsets: dict[str, list[list[Any]]] = {}  # "rule/compound" -> [[began, device], ...] (together)
        self._shared: dict[str, int] = {}  # "rule/device" -> the start of the condition found shared
        self._sun: dict[str, tuple[int, float]] = {}  # compound -> (minute, sun elevation): sun guards
        self._sun_now: tuple[str, int, float] = ("", -1, 0.0)  # (compound, ms, elevation): the day-night rules'
        self._utc_offset: dict[str, tuple[int, int, int]] = {}  # compound -> (from, to, offset ms): hours
        self._quiet: list[tuple[int, str]] = []  # (due, device): no-data checks
        self._now = 0
        self.bad_values = 0  # values skipped: not a finite number
        self.errors = 0  # rule evaluations that failed (logged once each kind of failure)

    # -- messages ---------------------------------------------------------------------------------

    def device_count(self) -> int:
        """Devices (and gateways) with state."""
        return len(self._devices) + len(self._gateways)

    def on_samples(self, compound: str, gateway: str, samples: Sequence[Sample]) -> list[Finding]:
        """Findings from a batch of one gateway's samples."""
        out: list[Finding] = []
        self._heard(compound, gateway, samples[-1].ts_ms if samples else None, out)
        for sample in samples:
            dev = self._device(compound, sample.device, sample.kind)
            ts = sample.ts_ms
            if ts > self._now:
                self._now = ts
            first = dev.last is None
            if first or ts > dev.last:  # type: ignore[operator]
                dev.last = ts
            if first:
                rule = self._nodata.get(dev.kind)
                if rule is not None:
                    heapq.heappush(self._quiet, (ts + int(rule.interval * rule.intervals), sample.device))
            nd = dev.rules.get("\0nodata")
            if nd is not None and nd.start is not None:
                self._close(sample.device, dev, self._nodata[dev.kind], nd, ts, ts, out, "nodata")
            values = sample.values
            for plan in self._plans[dev.kind]:
                try:
                    self._apply(plan, sample.device, dev, values, ts, out)
                except Exception as exc:  # a rule must never take the service down
                    self.errors += 1
                    log.warning("rule %s failed on %s: %s", plan.name, sample.device, exc)
        return out

    def on_event(self, compound: str, gateway: str, event: Event) -> list[Finding]:
        """Findings from one device event (at once, unless the rule confirms that event first)."""
        out: list[Finding] = []
        self._heard(compound, gateway, event.ts_ms, out)
        if event.kind is DeviceKind.GATEWAY or event.kind not in KINDS:
            return out
        spec = KINDS[event.kind].events.get(event.name)
        if spec is None:
            return out
        dev = self._device(compound, event.device, event.kind)
        ts = event.ts_ms
        self._now = max(self._now, ts)
        for rule in self._event_rules[event.kind]:
            named = event.name in rule.events
            if not named and (spec.severity not in rule.severities or event.name in rule.exclude):
                continue
            if rule.devices and not self._regex[rule.name].search(event.device):
                continue
            key = f"{rule.name}.{event.name}"
            st = dev.rules.get(key)
            if st is None:
                st = dev.rules[key] = _State()
            fault = rule.faults.get(event.name)
            confirm = rule.confirm.get(event.name, 0)
            flap = self._flap(rule)
            if event.active is False:
                st.since = None
                if st.start is not None and st.cleared is None:
                    st.cleared = ts
                    if flap == 0:  # undamped: cleared with the message that clears it, as samples are
                        self._emit_clear(rule, key, event.device, dev, st, ts, ts, out)
                    else:
                        heapq.heappush(self._timers, (ts + flap, event.device, key))
                continue
            # raised (stateful) or a stateless event
            if self._resume(rule, key, event.device, dev, st, ts, out):
                pass
            elif st.start is None:
                if confirm and st.since is None:
                    st.since = ts
                    heapq.heappush(self._timers, (ts + confirm, event.device, key))
                elif not confirm:
                    st.start = ts
                    out.append(self._finding(rule, key, event.device, dev, ts, ts, {event.name: 1.0}, fault))
            if event.active is None and st.start is not None:  # stateless: over at once, damped
                st.cleared = ts
                heapq.heappush(self._timers, (ts + flap, event.device, key))
        return out

    def on_gateway(self, compound: str, gateway: str, online: bool, ts_ms: int) -> list[Finding]:
        """Findings from a gateway going offline (after the no-data rule's time) or back online."""
        out: list[Finding] = []
        self._now = max(self._now, ts_ms)
        gw = self._gateway(compound, gateway)
        if online:
            self._offline.pop(compound, None)
            down = gw.rules.get("\0down")
            if down is not None:
                down.since = None
            st = gw.rules.get("\0nodata")
            rule = self._nodata.get(DeviceKind.GATEWAY)
            if st is not None and st.start is not None and rule is not None:
                self._close(gateway, gw, rule, st, ts_ms, ts_ms, out, "nodata")
            self._heard(compound, gateway, ts_ms, out)
        else:
            self._offline.setdefault(compound, ts_ms)
            rule = self._nodata.get(DeviceKind.GATEWAY)
            if rule is not None:
                heapq.heappush(self._quiet, (ts_ms + int(rule.interval * rule.intervals), gateway))
            gw.rules.setdefault("\0down", _State()).since = ts_ms
        return out

    def tick(self, now_ms: int) -> list[Finding]:
        """Run the timers due by ``now_ms``: confirmations, flapping closes, no data."""
        out: list[Finding] = []
        self._now = max(self._now, now_ms)
        while self._timers and self._timers[0][0] <= now_ms:
            due, device, key = heapq.heappop(self._timers)
            dev = self._devices.get(device)
            st = dev.rules.get(key) if dev is not None else None
            if dev is None or st is None:
                continue
            rule = self._rule_of(dev, key)
            if rule is None:
                continue
            if st.cleared is not None and due >= st.cleared + self._flap(rule):
                self._emit_clear(rule, key, device, dev, st, st.cleared, due, out)
            elif st.since is not None and st.start is None and isinstance(rule, EventRule):
                event = key.rsplit(".", 1)[1]
                if due >= st.since + rule.confirm.get(event, 0):
                    st.start = st.since
                    out.append(
                        self._finding(
                            rule, key, device, dev, st.start, due, {event: 1.0}, rule.faults.get(event)
                        )
                    )
        while self._quiet and self._quiet[0][0] <= now_ms:
            due, device = heapq.heappop(self._quiet)
            self._check_quiet(device, due, out)
        return out

    # -- no data ----------------------------------------------------------------------------------

    def _heard(self, compound: str, gateway: str, ts: int | None, out: list[Finding]) -> None:
        gw = self._gateway(compound, gateway)
        if ts is not None and (gw.last is None or ts > gw.last):
            first = gw.last is None
            gw.last = ts
            rule = self._nodata.get(DeviceKind.GATEWAY)
            if first and rule is not None:
                heapq.heappush(self._quiet, (ts + int(rule.interval * rule.intervals), gateway))
            st = gw.rules.get("\0nodata")
            if st is not None and st.start is not None and rule is not None:
                self._close(gateway, gw, rule, st, ts, ts, out, "nodata")

    def _check_quiet(self, device: str, due: int, out: list[Finding]) -> None:
        dev = self._devices.get(device) or self._gateways.get(device)
        if dev is None or dev.last is None:
            return
        rule = self._nodata.get(dev.kind)
        if rule is None:
            return
        limit = int(rule.interval * rule.intervals)
        down = dev.rules.get("\0down")
        last = dev.last if down is None or down.since is None else min(dev.last, down.since)
        if due < last + limit:  # heard since: check again later
            heapq.heappush(self._quiet, (last + limit, device))
            return
        if dev.kind is not DeviceKind.GATEWAY and dev.compound in self._offline:
            heapq.heappush(self._quiet, (due + limit, device))  # the gateway's silence, not the device's
            return
        st = dev.rules.get("\0nodata")
        if st is None:
            st = dev.rules["\0nodata"] = _State()
        if st.start is None:
            st.start = last + rule.interval
            st.cleared = None
            out.append(
                self._finding(rule, "nodata", device, dev, st.start, due, {"silent_s": (due - last) / 1000})
            )
        heapq.heappush(self._quiet, (due + limit, device))

    # -- sample rules -----------------------------------------------------------------------------

    def _apply(self, plan: _Plan, device: str, dev: _Device, values: Mapping[str, Any], ts: int,
               out: list[Finding]) -> None:  # fmt: skip
        rule = plan.rule
        if plan.metric not in values:
            return  # nothing for this rule in the sample (the timers close what is open)
        if plan.regex is not None and not plan.regex.search(device):
            return
        for cond in plan.guards:
            if cond.absent:
                if cond.metric in values:
                    return
                continue
            v = _num(values.get(cond.metric))
            if v is None or not cond.holds(v):
                return
        if plan.sun is not None:  # day or night only (a camera's picture differs in infrared)
            elevation = self._elevation(dev.compound, ts)
            if elevation is None:
                return
            above, below = plan.sun
            if (above is not None and elevation <= above) or (below is not None and elevation >= below):
                return
        if plan.hours is not None:  # a time of day only (lamps dimmed after midnight)
            hour = self._hour(dev.compound, ts)
            if hour is None:
                return
            a, b = plan.hours
            if not (a <= hour < b if a < b else hour >= a or hour < b):
                return
        name = plan.name
        st = dev.rules.get(name)
        if st is None:
            st = dev.rules[name] = _State()
        verdict, value, start = plan.check(self, rule, device, dev, st, values, ts)
        if verdict == HOLD:
            return
        if verdict == RAISE and rule.unless and self._explained(dev, rule.unless):
            verdict = CLEAR  # another finding on the device explains it (a flickering lamp's low power)
        st.last = value
        if verdict == RAISE:
            if self._resume(rule, name, device, dev, st, ts, out):
                pass
            elif st.start is None:
                if st.since is None:
                    st.since = start if start is not None else ts
                    if rule.together is not None:
                        self._onset(name, dev.compound, device, st.since, rule)
                if ts - st.since >= rule.for_ms:
                    if rule.together is not None and self._together(
                        name, dev.compound, device, st.since, rule
                    ):
                        return  # began with others, still on: a shared cause (a building's power), no fault
                    st.start = st.since
                    out.append(self._finding(rule, name, device, dev, st.start, ts, {plan.metric: value}))
        else:
            st.since = None
            if st.start is not None and st.cleared is None:
                st.cleared = ts
                if plan.flap == 0:
                    self._emit_clear(rule, name, device, dev, st, ts, ts, out)
                else:
                    heapq.heappush(self._timers, (ts + plan.flap, device, name))

    def _elevation(self, compound: str, ts: int) -> float | None:
        """The sun's elevation at the compound, once a minute (it moves at most 0.25 degrees in one)."""
        minute = ts // 60_000
        cached = self._sun.get(compound)
        if cached is not None and cached[0] == minute:
            return cached[1]
        site = self.sites.get(compound)
        if site is None:
            return None
        elevation = solar_elevation(minute * 60_000, site.latitude, site.longitude)
        self._sun[compound] = (minute, elevation)
        return elevation

    def _elevation_exact(self, compound: str, site: Site, ts: int) -> float:
        """The sun's elevation at the compound at ``ts`` to the millisecond, computed once for the
        day-night rules that judge the same sample in turn."""
        c, t, elevation = self._sun_now
        if c != compound or t != ts:
            elevation = solar_elevation(ts, site.latitude, site.longitude)
            self._sun_now = (compound, ts, elevation)
        return elevation

    def _hour(self, compound: str, ts: int) -> float | None:
        """The local time at the compound in hours, to the second."""
        site = self.sites.get(compound)
        if site is None:
            return None
        offset = self._utc_offset.get(compound)
        if offset is None or not offset[0] <= ts < offset[1]:  # the zone's offset, valid until the next hour
            hour_start = ts - ts % 3_600_000
            off = int(_local_hour(hour_start, site.timezone) * 3_600_000) - hour_start % 86_400_000
            offset = self._utc_offset[compound] = (hour_start, hour_start + 3_600_000, off)
        return ((ts + offset[2]) % 86_400_000) / 3_600_000

    def _onset(self, name: str, compound: str, device: str, since: int, rule: Any) -> None:
        """Remember when the condition of rule ``name`` began on ``device`` (kept for ``for`` + ``together``)."""
        onsets = self._onsets.setdefault(f"{name}/{compound}", [])
        onsets.append([since, device])
        horizon = since - rule.for_ms - 2 * rule.together - 3_600_000
        while onsets and onsets[0][0] < horizon:
            onsets.pop(0)

    def _together(self, name: str, compound: str, device: str, since: int, rule: Any) -> bool:
        """Whether the condition began on at least ``together_min`` devices within ``together`` of ``since``
        and still holds on them (a device failing now and then begins often: those are not shared)."""
        key = f"{name}/{device}"
        if self._shared.get(key) == since:  # found shared when it began: so for the whole episode
            return True
        onsets = self._onsets.get(f"{name}/{compound}", ())
        others = {
            d
            for t, d in onsets
            if d != device and abs(t - since) <= rule.together and self._holds(d, name, t)
        }
        if len(others) + 1 >= rule.together_min:
            self._shared[key] = since
            return True
        return False

    def _holds(self, device: str, name: str, since: int) -> bool:
        """Whether the condition of rule ``name`` that began at ``since`` on ``device`` still holds."""
        dev = self._devices.get(device)
        st = dev.rules.get(name) if dev is not None else None
        return st is not None and st.since == since

    @staticmethod
    def _explained(dev: _Device, names: tuple[str, ...]) -> bool:
        """Whether one of the rules ``names`` has an open finding on the device."""
        for name in names:
            other = dev.rules.get(name)
            if other is not None and other.start is not None:
                return True
        return False

    def _resume(self, rule: Any, key: str, device: str, dev: _Device, st: _State, ts: int,
                out: list[Finding]) -> bool:  # fmt: skip
        """A raise while an episode waits out its flapping window: True when it continues that episode.

        A raise after the window has passed closes the old episode (ended when its condition went)
        before a new one may start, even when the timer that would have closed it has not run yet
        (a gateway replaying its backlog delivers hours within one tick).
        """
        if st.cleared is None:
            return False
        if ts - st.cleared < self._flap(rule):
            st.cleared = None
            return True
        self._emit_clear(rule, key, device, dev, st, st.cleared, ts, out)
        return False

    def _flap_check(self, rule: Any, key: str, device: str, dev: _Device, st: _State, ts: int,
                    out: list[Finding]) -> None:  # fmt: skip
        if st.cleared is not None and ts - st.cleared >= self._flap(rule):
            self._emit_clear(rule, key, device, dev, st, st.cleared, ts, out)

    def _close(self, device: str, dev: _Device, rule: Any, st: _State, ended: int, ts: int,
               out: list[Finding], key: str) -> None:  # fmt: skip
        self._emit_clear(rule, key, device, dev, st, ended, ts, out)

    def _emit_clear(self, rule: Any, key: str, device: str, dev: _Device, st: _State, ended: int, ts: int,
                    out: list[Finding]) -> None:  # fmt: skip
        if st.start is None:
            st.cleared = None
            return
        fault = rule.faults.get(key.rsplit(".", 1)[1]) if isinstance(rule, EventRule) else rule.fault
        finding = self._finding(rule, key, device, dev, st.start, ts, {_metric(rule): st.last}, fault)
        out.append(_cleared(finding, max(ended, st.start), ts))
        st.start = st.cleared = st.since = None

    def _flap(self, rule: Any) -> int:
        return int(self.rules.flap_ms if rule.flap is None else rule.flap)

    def _rule_of(self, dev: _Device, key: str) -> Any:
        for rule in self._by_kind[dev.kind]:
            if rule.name == key or (isinstance(rule, EventRule) and key.startswith(rule.name + ".")):
                return rule
        return None

    # -- findings ---------------------------------------------------------------------------------

    def _finding(self, rule: Any, key: str, device: str, dev: _Device, started: int, ts: int,
                 evidence: Mapping[str, float], fault: str | None = None) -> Finding:  # fmt: skip
        name = rule.name if key in (rule.name, "nodata") else key
        if fault is None and not isinstance(rule, EventRule):
            fault = rule.fault
        clean = {k: float(v) for k, v in evidence.items() if _num(v) is not None}
        return Finding(
            id=f"rule:{name}:{device}:{started}",
            compound=dev.compound,
            device=device,
            kind=dev.kind,
            source=f"rule:{name}",
            fault=fault,
            severity=rule.severity
            if not isinstance(rule, EventRule)
            else _event_severity(dev.kind, key, rule),
            state=FindingState.ACTIVE,
            started_ms=started,
            ts_ms=ts,
            message=summary(fault, rule.type),
            params={"device": device, "rule": name},
            evidence=clean,
        )

    def _device(self, compound: str, device: str, kind: DeviceKind) -> _Device:
        dev = self._devices.get(device)
        if dev is None:
            dev = self._devices[device] = _Device(compound, kind)
        return dev

    def _gateway(self, compound: str, gateway: str) -> _Device:
        gw = self._gateways.get(gateway)
        if gw is None:
            gw = self._gateways[gateway] = _Device(compound, DeviceKind.GATEWAY)
        return gw

    def peers(self, rule: str, compound: str) -> dict[str, set[str]]:
        """The per-compound peer sets of a day/night rule (devices seen, devices in the condition)."""
        key = f"{rule}/{compound}"
        group = self._peers.get(key)
        if group is None:
            group = self._peers[key] = {"all": set(), "on": set()}
        return group

    # -- checkpoints ------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The engine's whole state as bytes (JSON), for a checkpoint."""

        def devices(table: dict[str, _Device]) -> dict[str, Any]:
            return {d: [v.compound, v.kind.value, v.last, {k: s.dump() for k, s in v.rules.items()}]
                    for d, v in table.items()}  # fmt: skip

        return orjson.dumps({
            "v": SNAPSHOT_VERSION, "now": self._now, "devices": devices(self._devices),
            "gateways": devices(self._gateways), "offline": self._offline,
            "peers": {k: {g: sorted(s) for g, s in v.items()} for k, v in self._peers.items()},
            "timers": self._timers, "quiet": self._quiet, "onsets": self._onsets,
            "shared": self._shared, "compound_memory": self.memory,
        })  # fmt: skip

    @classmethod
    def restore(cls, blob: bytes, rules: RuleSet, sites: Mapping[str, Site]) -> Engine:
        """An engine in the state of ``snapshot()``; raises ValueError on a blob it cannot read."""
        try:
            data = orjson.loads(blob)
            if data.get("v") != SNAPSHOT_VERSION:
                raise ValueError(f"snapshot version {data.get('v')!r}, expected {SNAPSHOT_VERSION}")
            engine = cls(rules, sites)
            for table, rows in ((engine._devices, data["devices"]), (engine._gateways, data["gateways"])):
                for device, (compound, kind, last, states) in rows.items():
                    dev = table[device] = _Device(compound, DeviceKind(kind))
                    dev.last = last
                    dev.rules = {k: _State.load(v) for k, v in states.items()}
            engine._offline = dict(data["offline"])
            engine._peers = {k: {g: set(s) for g, s in v.items()} for k, v in data["peers"].items()}
            engine._timers = [tuple(t) for t in data["timers"]]
            engine._quiet = [tuple(t) for t in data["quiet"]]
            engine._onsets = {k: [list(o) for o in v] for k, v in data.get("onsets", {}).items()}
            engine._shared = {str(k): int(v) for k, v in data.get("shared", {}).items()}
            engine.memory = dict(data.get("compound_memory", {}))
            heapq.heapify(engine._timers)
            heapq.heapify(engine._quiet)
            engine._now = int(data["now"])
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"unreadable engine snapshot: {exc}") from None
        return engine


_ZONES: dict[str, Any] = {}


def _local_hour(ts: int, timezone: str) -> float:
    """The local time of ``ts`` in hours (0-24) at ``timezone``."""
    zone = _ZONES.get(timezone)
    if zone is None:
        zone = _ZONES[timezone] = ZoneInfo(timezone)
    local = datetime.fromtimestamp(ts / 1000, zone)
    return local.hour + local.minute / 60 + local.second / 3600


def _metric(rule: Any) -> str:
    if isinstance(rule, CountRule):
        return rule.condition.metric
    if isinstance(rule, NoDataRule | EventRule):
        return "value"
    return str(rule.metric)


def _event_severity(kind: DeviceKind, key: str, rule: EventRule) -> Severity:
    spec = KINDS[kind].events.get(key.rsplit(".", 1)[1])
    return spec.severity if spec is not None else rule.severity


def _cleared(finding: Finding, ended: int, ts: int) -> Finding:
    from dataclasses import replace

    return replace(finding, state=FindingState.CLEARED, ended_ms=ended, ts_ms=ts)


# -- the rule types' checks: (verdict, value, start or None) ------------------------------------------

Verdict = tuple[int, float, int | None]


def _threshold(engine: Engine, rule: ThresholdRule, device: str, dev: _Device, st: _State, values: Mapping[str, Any],
               ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.metric)
    if v is None:
        return HOLD, 0.0, None
    x = st.x
    if not x:
        x[:] = [v, None, 0, 0.0]  # smoothed value, learning since, samples learnt, mean learnt
    if rule.max_gap is not None:  # the rule's last sample, fifth
        if len(x) < 5:
            x.append(ts)
        if st.since is not None and ts - x[4] > rule.max_gap:
            st.since = ts  # the condition is known again from this sample: `for` starts over
        x[4] = ts
    if rule.smooth < 1.0:
        x[0] = v = x[0] + rule.smooth * (v - x[0])
    if rule.baseline:
        if x[1] is None:
            x[1] = ts
        if ts - x[1] < rule.learn:  # still learning the device's normal
            x[2] += 1
            x[3] += (v - x[3]) / x[2]
            if rule.peer_floor is None:
                return HOLD, v, None
            # while it learns, a device is judged against its peers alone (a lamp failing in its first night)
            normal = rule.peer_floor * _peer_normal(engine, rule, dev.compound, device, x[3], True)
            if normal <= 0:
                return HOLD, v, None
        else:
            normal = x[3]
            if rule.peer_floor is not None:
                peers = _peer_normal(engine, rule, dev.compound, device, normal, False)
                normal = max(normal, rule.peer_floor * peers)
        if normal <= 0:
            return HOLD, v, None
        v = v / normal
    elif rule.own_above is not None:
        if x[1] is None:
            x[1] = ts
        if ts - x[1] < rule.learn:  # still learning the device's own mean: judged by `above` alone
            x[2] += 1
            x[3] += (v - x[3]) / x[2]
        elif x[3] * rule.own_above > rule.above:
            # judged against the device's own level (x own_above) in place of `above`; clear scaled alike
            judged = v * rule.above / (x[3] * rule.own_above)  # type: ignore[operator]
            if judged > rule.above:
                return RAISE, v, None
            return (CLEAR if rule.clear is None or judged <= rule.clear else HOLD), v, None
    if rule.above is not None:
        if v > rule.above:
            return RAISE, v, None
        return (CLEAR if rule.clear is None or v <= rule.clear else HOLD), v, None
    if v < rule.below:  # type: ignore[operator]
        return RAISE, v, None
    return (CLEAR if rule.clear is None or v >= rule.clear else HOLD), v, None


PEER_FLOOR_MIN = 4  # devices of the compound that have learnt before their median bounds a device's normal


def _peer_normal(engine: Engine, rule: ThresholdRule, compound: str, device: str, normal: float,
                 learning: bool) -> float:  # fmt: skip
    """The median of the normals the compound's devices learnt (or are learning) under ``rule``, ``device``'s
    own ``normal`` recorded here while it learns and once it has learnt; 0 while fewer than
    PEER_FLOOR_MIN devices have one."""
    learnt = engine.memory.setdefault(f"{rule.name}/{compound}/normal", {})
    if learning or device not in learnt:
        learnt[device] = normal
        engine.memory.pop(f"{rule.name}/{compound}/median", None)
    if len(learnt) < PEER_FLOOR_MIN:
        return 0.0
    median = engine.memory.get(f"{rule.name}/{compound}/median")
    if median is None:
        median = engine.memory[f"{rule.name}/{compound}/median"] = float(statistics.median(learnt.values()))
    return float(median)


def _state(engine: Engine, rule: StateRule, device: str, dev: _Device, st: _State, values: Mapping[str, Any],
           ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.metric)
    if v is None:
        return HOLD, 0.0, None
    if not st.x:
        states = KINDS[dev.kind].metrics[rule.metric].states
        st.x = [float(states.index(s)) for s in rule.states]
    return (RAISE if v in st.x else CLEAR), v, None


def _rate(engine: Engine, rule: RateRule, device: str, dev: _Device, st: _State, values: Mapping[str, Any],
          ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.metric)
    if v is None:
        return HOLD, 0.0, None
    if rule.within is not None:
        return _projection(rule, st, v, ts)
    pts = st.x  # [[ts, value], ...] at least window/4 apart
    if not pts or ts - pts[-1][0] >= rule.window // 4:
        pts.append([ts, v])
    while len(pts) > 2 and ts - pts[1][0] >= rule.window:
        pts.pop(0)
    t0, v0 = pts[0]
    if ts - t0 < rule.window * 0.9:
        return HOLD, 0.0, None
    rate = (v - v0) / (ts - t0) * 3_600_000
    if rule.above is not None:
        return (RAISE if rate > rule.above else CLEAR), rate, None
    return (RAISE if rate < rule.below else CLEAR), rate, None


def _projection(rule: RateRule, st: _State, v: float, ts: int) -> Verdict:
    """A rate rule with a projection: the least-squares line of the samples of the last window, from
    sums kept per 24th of it (times in hours from the part's start), judged as each part completes."""
    size = rule.window // 24
    b = ts // size
    parts = st.x  # [[part, n, sum t, sum v, sum t², sum t·v], ...]
    if parts and parts[-1][0] == b:
        t = (ts - b * size) / 3_600_000
        p = parts[-1]
        p[1] += 1
        p[2] += t
        p[3] += v
        p[4] += t * t
        p[5] += t * v
        return HOLD, 0.0, None
    while parts and parts[0][0] < b - 24:
        parts.pop(0)
    verdict: Verdict = (HOLD, 0.0, None)
    if len(parts) >= 22 and parts[0][0] <= b - 22:
        origin = parts[0][0]
        n = st_ = sv = stt = stv = 0.0
        for part, k, sum_t, sum_v, sum_tt, sum_tv in parts:
            o = (part - origin) * size / 3_600_000  # the part's start, hours after the first part's
            n += k
            st_ += sum_t + k * o
            sv += sum_v
            stt += sum_tt + 2 * o * sum_t + k * o * o
            stv += sum_tv + o * sum_v
        sxx = stt - st_ * st_ / n
        if n >= 3 and sxx > 0:
            slope = (stv - st_ * sv / n) / sxx  # units per hour
            now = (ts - origin * size) / 3_600_000
            level = sv / n + slope * (now - st_ / n)  # the line's level now
            ahead = level + slope * (rule.within or 0) / 3_600_000  # the line's level `within` from now
            target = rule.reaches or 0.0
            if rule.above is not None:
                verdict = (RAISE if slope > rule.above and ahead >= target else CLEAR), slope, None
            elif rule.below is not None:
                verdict = (RAISE if slope < rule.below and ahead <= target else CLEAR), slope, None
    t = (ts - b * size) / 3_600_000
    parts.append([b, 1, t, v, t * t, t * v])
    return verdict


def _change(engine: Engine, rule: ChangeRule, device: str, dev: _Device, st: _State, values: Mapping[str, Any],
            ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.metric)
    if v is None:
        return HOLD, 0.0, None
    buckets = st.x  # [[bucket index, sum, count], ...] over the last lag + one bucket
    b = ts // rule.bucket
    if buckets and buckets[-1][0] == b:
        buckets[-1][1] += v
        buckets[-1][2] += 1
        return HOLD, 0.0, None  # judged once a bucket is complete
    lag = rule.lag // rule.bucket
    while buckets and buckets[0][0] < b - lag - 1:
        buckets.pop(0)
    verdict: Verdict = (HOLD, 0.0, None)
    if buckets:
        done = buckets[-1]
        then = next((x for x in buckets if x[0] == done[0] - lag), None)
        if then is not None:
            change = done[1] / done[2] - then[1] / then[2]
            if rule.above is not None:
                verdict = (RAISE if change > rule.above else CLEAR), change, None
            else:
                verdict = (RAISE if change < rule.below else CLEAR), change, None
    buckets.append([b, v, 1])
    return verdict


def _counter(engine: Engine, rule: CounterRule, device: str, dev: _Device, st: _State, values: Mapping[str, Any],
             ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.metric)
    if v is None:
        return HOLD, 0.0, None
    x = st.x
    if (
        rule.mode == "increase"
    ):  # x: [[ts, value], ...] where the value changed; x[0] holds at the window's start
        if x and v < x[-1][1]:
            x.clear()  # a reset: start counting again
        if not x or v != x[-1][1]:
            x.append([ts, v])
        while len(x) > 1 and ts - x[1][0] >= rule.window:
            x.pop(0)  # the next change is already older than the window: x[0] is not needed
        rise = v - x[0][1]
        return (RAISE if rise >= rule.at_least else CLEAR), rise, None
    if rule.mode == "short":
        return _short(rule, x, v, ts)
    if not x:
        x[:] = [v, ts, 0, ts]  # last value, last change, guarded time since, last sample
        return HOLD, v, None
    last, changed, guarded, prev = x
    if rule.mode == "backwards":
        x[0], x[3] = v, ts
        if v < last:
            if v <= rule.reset_below * last:
                return CLEAR, v, None  # a reset (replaced meter, wrapped register), not a fault
            return RAISE, last - v, None
        return CLEAR, 0.0, None
    # stopped: the register has not moved while the guard held for stopped_for
    x[3] = ts
    if v != last:
        x[0], x[1], x[2] = v, ts, 0
        return CLEAR, 0.0, None
    ok = True
    for cond in rule.when:
        g = _num(values.get(cond.metric))
        ok = ok and g is not None and cond.holds(g)
    if ok:
        x[2] = guarded + min(ts - prev, 3_600_000)
    if x[2] >= rule.stopped_for:
        return RAISE, x[2] / 3_600_000, changed
    return HOLD, 0.0, None


def _short(rule: CounterRule, x: list[Any], v: float, ts: int) -> Verdict:
    """A counter's ``short`` mode: steps between two samples (``when`` holding at both, at most ``gap``
    apart) that rose less than ``below`` x ``per_hour`` per hour of the time between them, counted
    within ``window``. A step across a data gap or a dark spell (the samples ``when`` leaves out) is
    not judged; a register going down (a reset) is no short step."""
    if not x:
        x[:] = [[], None]  # short step times, [ts, value] of the sample before
    hits, prev = x
    if prev is not None and 0 < ts - prev[0] <= rule.gap and v >= prev[1]:
        expected = (rule.per_hour or 0.0) * (ts - prev[0]) / HOUR_MS
        if v - prev[1] < (rule.below or 0.0) * expected:
            hits.append(ts)
    x[1] = [ts, v]
    window = rule.window or 0
    while hits and ts - hits[0] > window:
        hits.pop(0)
    del hits[: max(0, len(hits) - rule.steps)]
    met = len(hits) >= rule.steps
    return (RAISE if met else CLEAR), float(len(hits)), hits[0] if met else None


def _count(engine: Engine, rule: CountRule, device: str, dev: _Device, st: _State, values: Mapping[str, Any],
           ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.condition.metric)
    if v is None:
        return HOLD, 0.0, None
    x = st.x
    if not x:
        x[:] = [[], [], False]  # hit times, run onsets, previous sample held
    hits, onsets, prev = x
    now = rule.condition.holds(v)
    if now:
        hits.append(ts)
        if not prev:
            onsets.append(ts)
    x[2] = now
    w = rule.window
    while hits and ts - hits[0] > w:
        hits.pop(0)
    # a run that began before the window and still has hits in it is a run within the window: without
    # this, a run carried across the samples `when` leaves out (a charger's taper ending in a band, its
    # next session in the band a day later) would never count again
    while onsets and ts - onsets[0] > w and not (len(onsets) == 1 and hits and hits[-1] >= onsets[0]):
        onsets.pop(0)
    del hits[: max(0, len(hits) - rule.at_least)]
    del onsets[: max(0, len(onsets) - rule.runs)]
    met = len(hits) >= rule.at_least and len(onsets) >= rule.runs
    start = (min(hits[0], onsets[0]) if ts - onsets[0] <= w else hits[0]) if met else None
    return (RAISE if met else CLEAR), float(len(hits)), start


def _streak(engine: Engine, rule: StreakRule, device: str, dev: _Device, st: _State, values: Mapping[str, Any],
            ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.metric)
    if v is None:
        return HOLD, 0.0, None
    states = KINDS[dev.kind].metrics[rule.metric].states
    code = int(v)
    state = states[code] if code == v and 0 <= code < len(states) else None
    x = st.x
    if not x:
        x[:] = [None, 0, None]  # the open attempt's start, failures in a row, the first failure's attempt
    if state in rule.attempt:
        if x[0] is None:
            x[0] = ts  # an attempt begins (judged by the next other state)
    elif state in rule.fail:
        if x[0] is not None:  # the attempt backed out
            x[1] += 1
            if x[2] is None:
                x[2] = x[0]
        x[0] = None
    else:  # any other state (a session, even one whose attempt was not reported) ends the streak
        x[0], x[1], x[2] = None, 0, None
    met = x[1] >= rule.at_least
    return (RAISE if met else CLEAR), float(x[1]), x[2] if met else None


def _dip(engine: Engine, rule: DipRule, device: str, dev: _Device, st: _State, values: Mapping[str, Any],
         ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.metric)
    if v is None:
        return HOLD, 0.0, None
    x = st.x
    if not x:
        x[:] = [[], None, None]  # dip times, [ts, value] two samples back, one sample back
    hits, before, mid = x
    if (
        before is not None
        and mid is not None
        and mid[0] - before[0] <= rule.gap
        and ts - mid[0] <= rule.gap
        and mid[1] < rule.below * min(before[1], v)
    ):
        hits.append(mid[0])  # the sample one back fell below both its neighbours
    x[1], x[2] = mid, [ts, v]
    while hits and ts - hits[0] > rule.window:
        hits.pop(0)
    del hits[: max(0, len(hits) - rule.at_least)]
    met = len(hits) >= rule.at_least
    return (RAISE if met else CLEAR), float(len(hits)), hits[0] if met else None


def _step(engine: Engine, rule: StepRule, device: str, dev: _Device, st: _State, values: Mapping[str, Any],
          ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.metric)
    if v is None:
        return HOLD, 0.0, None
    x = st.x
    if not x:
        # the previous value, its time, the level before the step, the step's time
        x[:] = [None, None, None, None]
    prev, prev_ts, level, since = x
    near = prev_ts is not None and ts - prev_ts <= rule.gap
    if level is not None and (not near or v >= (rule.clear or rule.below) * level):
        level = since = None  # back up, or a gap (a pause, the session's end): the step is over
    if level is None and near and v < rule.below * prev:
        level, since = prev, ts
    x[:] = [v, ts, level, since]
    if level is None:
        return CLEAR, v, None
    return RAISE, v / level, since


def _daynight(engine: Engine, rule: DayNightRule, device: str, dev: _Device, st: _State, values: Mapping[str, Any],
              ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.metric)
    site = engine.sites.get(dev.compound)
    if v is None or site is None:
        return HOLD, 0.0, None
    elevation = engine._elevation_exact(dev.compound, site, ts)
    if rule.mode == "dark_in_day":
        return _dark_in_day(engine, rule, device, dev, st, v, elevation, ts)
    if rule.mode == "on_in_day":
        cond = v == 1.0 and elevation > rule.elevation
    else:
        cond = v == 0.0 and elevation < rule.elevation
    if rule.peers is not None:
        group = engine.peers(rule.name, dev.compound)
        group["all"].add(device)
        (group["on"].add if cond else group["on"].discard)(device)
        if cond and len(group["all"]) >= 4 and len(group["on"]) >= rule.peers * len(group["all"]):
            return CLEAR, elevation, None  # most lamps do it: the weather or a central switch
    return (RAISE if cond else CLEAR), elevation, None


LIGHT_FRESH_MS = 600_000  # a peer's reading more than this before (or after) the sample is not in the median


def _dark_in_day(engine: Engine, rule: DayNightRule, device: str, dev: _Device, st: _State, v: float,
                 elevation: float, ts: int) -> Verdict:  # fmt: skip
    """A photocell reading under ``below`` x its compound's median of the moment, the sun above ``elevation``."""
    if elevation <= rule.elevation:
        st.since = None  # twilight and night: not judged; a condition waits out its time within one day
        return HOLD, elevation, None
    latest = engine.memory.setdefault(f"{rule.name}/{dev.compound}/light", {})
    latest[device] = [ts, v]
    fresh = [x[1] for x in latest.values() if abs(ts - x[0]) <= LIGHT_FRESH_MS]  # a backlog: its own time
    if len(fresh) < 4:
        return HOLD, elevation, None
    median = float(statistics.median(fresh))
    if median <= 0:
        return HOLD, elevation, None
    share = v / median
    return (RAISE if share < (rule.below or 0.0) else CLEAR), share, None


HOUR_MS = 3_600_000


@lru_cache(maxsize=4096)
def _utc_offset_ms(timezone: str, utc_hour: int) -> int:
    """The zone's offset from UTC in ms during the UTC hour ``utc_hour`` (hours since 1970)."""
    moment = datetime.fromtimestamp(utc_hour * 3600, UTC)
    offset = moment.astimezone(ZoneInfo(timezone)).utcoffset()
    return int(offset.total_seconds() * 1000) if offset is not None else 0


def _demand(engine: Engine, rule: DemandRule, device: str, dev: _Device, st: _State, values: Mapping[str, Any],
            ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.metric)
    if v is None:
        return HOLD, 0.0, None
    site = engine.sites.get(dev.compound)
    local = ts + _utc_offset_ms(site.timezone if site is not None else "Asia/Shanghai", ts // HOUR_MS)
    hour = local // HOUR_MS
    weekend = (local // 86_400_000 + 3) % 7 >= 5  # 1970-01-01 was a Thursday
    bucket = int(weekend) * 24 + int(hour % 24)
    x = st.x
    if not x:
        # last value, last sample, first sample, local hour, its increase, its covered ms, its bucket,
        # hourly rates (48: weekday hours, weekend hours), hours waiting for the register to move
        # again before they are learnt, expected increase since the last step, time of the last step
        x[:] = [v, ts, ts, hour, 0.0, 0, bucket, [None] * 48, [], 0.0, ts]
        return HOLD, 0.0, None
    last, prev, first, cur, count, covered, cur_bucket, rates, pending, acc, changed = x
    dt = max(0, min(ts - prev, rule.gap))
    if hour != cur:  # the hour is over: it waits to be learnt until the register is seen moving
        if covered >= 0.75 * HOUR_MS and st.start is None:
            pending.append([cur_bucket, count])
            del pending[: max(0, len(pending) - 48)]
        x[3], x[4], x[5], x[6] = hour, 0.0, 0, bucket
        count, covered = 0.0, 0
    x[1] = ts
    x[5] = covered + dt
    if v < last:  # a reset or a replaced controller: start over from here
        x[0], x[9], x[10] = v, 0.0, ts
        return CLEAR, 0.0, None
    if v > last:
        x[0], x[4], x[9], x[10] = v, count + (v - last), 0.0, ts
        if st.start is None:
            for b, n in pending:
                rates[b] = n if rates[b] is None else rates[b] + rule.alpha * (n - rates[b])
        pending.clear()
        return CLEAR, 0.0, None
    rate = rates[bucket]
    if rate is None:
        rate = rates[(bucket + 24) % 48]  # the other day type's same hour, until this one is learnt
    x[9] = acc = acc + (rate or 0.0) * dt / HOUR_MS
    if ts - first >= rule.learn and acc >= rule.expected:
        return RAISE, acc, changed
    return HOLD, acc, None


def _load_temperature(engine: Engine, rule: LoadTemperatureRule, device: str, dev: _Device, st: _State,
                      values: Mapping[str, Any], ts: int) -> Verdict:  # fmt: skip
    v = _reading(engine, values, rule.metric)
    p = _reading(engine, values, rule.load)
    if v is None or p is None:
        return HOLD, 0.0, None
    peers = engine.memory.setdefault(f"{rule.name}/{dev.compound}", {})
    rises = engine.memory.setdefault(f"{rule.name}/{dev.compound}/rise", {}) if rule.peer_rise else None
    night = False
    elevation = None
    if rule.night_above is not None or rule.day_above is not None:  # the sun at the compound (once a minute)
        elevation = engine._elevation(dev.compound, ts)
        night = elevation is not None and elevation < rule.night_sun
    return thermal_step(rule, st.x, v, p, ts, st.start is not None, peers, device, rises, night, elevation)


_CHECKS: dict[type, Any] = {
    ThresholdRule: _threshold,
    StateRule: _state,
    RateRule: _rate,
    ChangeRule: _change,
    CounterRule: _counter,
    CountRule: _count,
    StreakRule: _streak,
    DipRule: _dip,
    StepRule: _step,
    DayNightRule: _daynight,
    DemandRule: _demand,
    LoadTemperatureRule: _load_temperature,
}

__all__ = ["Engine", "Site"]
