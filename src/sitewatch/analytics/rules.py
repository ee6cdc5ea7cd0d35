"""Rules declared in YAML: the file's format, its validation and loading.

The shipped defaults are ``rules.yaml`` beside this module; a user's file (the setting
``analytics.rules_file`` or ``--rules FILE``) replaces them whole. Every problem is reported with
the file, the rule's name and the field (``RulesError``). See docs/analytics.md for the format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..contract import KINDS, DeviceKind, MetricType, Severity

DEFAULT_RULES = "rules.yaml"
_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)\s*")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
NAME_PATTERN = r"[a-z0-9][a-z0-9_.-]{0,63}"
FAULT_PATTERN = r"[a-z0-9][a-z0-9_]{0,63}"


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file, the rule and the field."""


def parse_duration(value: Any) -> int:
    """Milliseconds of a duration written ``10m``, ``90s``, ``2h``, ``1.5d`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if not 0 <= value <= 366 * 86_400:
            raise ValueError(f"{value!r} seconds is not a duration of at most a year")
        return int(value * 1000)
    if isinstance(value, str):
        match = _DURATION_RE.fullmatch(value)
        if match:
            ms = int(float(match.group(1)) * _UNIT_MS[match.group(2)])
            if ms <= 366 * 86_400_000:
                return ms
    raise ValueError(f"{value!r} is not a duration such as 90s, 10m, 2h or 1d")


Duration = Annotated[int, Field(ge=0)]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            out = dict(value)
            for key in _DURATION_FIELDS.intersection(out):
                if out[key] is not None:
                    try:
                        out[key] = parse_duration(out[key])
                    except ValueError as exc:
                        raise ValueError(f"{key}: {exc}") from None
            return out
        return value


_DURATION_FIELDS = {"for", "for_ms", "window", "stopped_for", "flap", "learn", "interval", "gap", "together"}
_DURATION_FIELDS |= {"lag", "bucket"}  # change rules
_DURATION_FIELDS |= {"within"}  # rate rules with a projection
_DURATION_FIELDS |= {"max_gap"}  # threshold rules
_DURATION_FIELDS |= {"tau", "settle", "learn_every", "night_for", "day_learn"}  # load_temperature rules


class Condition(_Base):
    """A guard on a sample: ``metric`` compared with a number (the rule waits while it does not hold)."""

    metric: str
    above: float | None = None
    below: float | None = None
    equals: float | None = None
    absent: bool = False  # holds when the sample does not carry ``metric`` (household meters: no pressure)

    @model_validator(mode="after")
    def _one(self) -> Condition:
        if sum(x is not None for x in (self.above, self.below, self.equals)) + self.absent != 1:
            raise ValueError("a condition takes exactly one of above, below, equals, absent")
        return self

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the condition."""
        if self.above is not None:
            return value > self.above
        if self.below is not None:
            return value < self.below
        return value == self.equals


class RuleBase(_Base):
    """What every rule has: a name, the kind it watches, the fault it suspects, severity, timers."""

    name: str = Field(pattern=NAME_PATTERN)
    kind: DeviceKind
    fault: str | None = Field(None, pattern=FAULT_PATTERN)
    severity: Severity = Severity.WARNING
    for_ms: Duration = Field(0, alias="for")  # the condition must hold this long before a finding
    flap: Duration | None = None  # clears that return within this stay one finding (default: the file's)
    when: tuple[Condition, ...] = ()  # the rule looks only at samples where all of these hold
    devices: str | None = None  # a regular expression the device id must match (e.g. building meters)
    sun_above: float | None = Field(None, ge=-90, le=90)  # only samples with the sun above this (degrees)
    sun_below: float | None = Field(None, ge=-90, le=90)  # only samples with the sun below this (degrees)
    hours: tuple[float, float] | None = None  # only samples in [from, to) local time (hours, 0-24; may wrap)
    # the condition began on other devices of the compound within this: a shared cause (a building's
    # power), no finding for any of them
    together: Duration | None = None
    together_min: int = Field(2, ge=2)  # devices that began together, this one included
    # rules (event rules: name.event) whose open finding on the device explains this one's condition
    unless: tuple[str, ...] = ()

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not (0 <= value[0] <= 24 and 0 <= value[1] <= 24 and value[0] != value[1]):
            raise ValueError("hours takes [from, to], local hours 0-24 (from after to wraps past midnight)")
        return value

    @field_validator("devices")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


class ThresholdRule(RuleBase):
    """Raise when ``metric`` passes ``above`` (or ``below``), clear when it is back past ``clear``.

    With ``baseline``, the levels are ratios of the device's own normal value, learned from its
    first ``learn`` of samples that pass ``when`` (a median-tracking mean that stops learning while the
    rule is raised). ``smooth`` (0-1) averages the value first (exponentially) against noise.
    ``peer_floor`` (with ``baseline``): the normal judged against is at least that share of the median
    of the normals the compound's devices learnt (or are learning) under this rule, once 4 have one, and
    while the device learns it is judged against that share alone: a device faulty while it learnt (a lamp
    failing in its first nights) is not taken as its own normal.
    ``max_gap``: two samples of the rule more than this apart are a data gap; the value in between is
    unknown, so a condition waiting out its ``for`` starts again at the sample after the gap (an open
    finding stays open).
    ``own_above`` (with ``above``, without ``baseline``): the raise level is at least this many times the
    device's own mean over its first ``learn`` of samples (``clear`` scaled alike); while it learns,
    ``above`` alone: a device whose own use is high now and then (a flat that draws several times what
    most do) is judged against its own level, the others against ``above``.
    """

    type: Literal["threshold"]
    metric: str
    above: float | None = None
    below: float | None = None
    clear: float | None = None
    baseline: bool = False
    learn: Duration = 86_400_000
    smooth: float = Field(1.0, gt=0, le=1)
    peer_floor: float | None = Field(None, gt=0, le=1)
    max_gap: Duration | None = None
    own_above: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _levels(self) -> ThresholdRule:
        if self.max_gap is not None and self.max_gap <= 0:
            raise ValueError("max_gap must be positive")
        if self.own_above is not None and (self.baseline or self.above is None):
            raise ValueError("own_above takes an absolute 'above' level (no baseline)")
        if self.peer_floor is not None and not self.baseline:
            raise ValueError("peer_floor takes a baseline (it bounds the learnt normal)")
        if (self.above is None) == (self.below is None):
            raise ValueError("a threshold rule takes exactly one of above, below")
        if self.clear is not None:
            if self.above is not None and self.clear > self.above:
                raise ValueError("clear must not be above 'above' (hysteresis clears lower)")
            if self.below is not None and self.clear < self.below:
                raise ValueError("clear must not be below 'below' (hysteresis clears higher)")
        return self


class StateRule(RuleBase):
    """Raise while a state metric is in ``states`` (names from the contract, e.g. run_state fault)."""

    type: Literal["state"]
    metric: str
    states: tuple[str, ...] = Field(min_length=1)


class RateRule(RuleBase):
    """Raise when ``metric`` changes faster than ``above`` (or slower than ``below``) per hour over ``window``.

    With ``reaches`` and ``within`` (a projection): the rate is the least-squares slope of every
    sample of the last ``window``, judged once per 24th of it, and the rule raises only when the
    fitted line also reaches ``reaches`` within ``within`` (free space projected to run out)."""

    type: Literal["rate"]
    metric: str
    window: Duration = 3_600_000
    above: float | None = None
    below: float | None = None
    reaches: float | None = None
    within: Duration | None = None

    @model_validator(mode="after")
    def _levels(self) -> RateRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("a rate rule takes exactly one of above, below (units per hour)")
        if self.window <= 0:
            raise ValueError("window must be positive")
        if (self.reaches is None) != (self.within is None):
            raise ValueError("a projection takes both reaches and within")
        if self.within is not None and (self.within <= 0 or self.window < 24 * 60_000):
            raise ValueError("a projection takes a positive within and a window of at least 24 min")
        return self


class ChangeRule(RuleBase):
    """Raise when ``metric`` (its mean over a ``bucket``) is more than ``above`` higher (``below``
    lower, a negative number) than the same bucket ``lag`` earlier: a change against a weekly rhythm."""

    type: Literal["change"]
    metric: str
    lag: Duration
    bucket: Duration = 3_600_000
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _levels(self) -> ChangeRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("a change rule takes exactly one of above, below")
        if self.bucket <= 0 or self.lag < self.bucket or self.lag > 30 * 86_400_000:
            raise ValueError("lag must be at least one bucket and at most 30 days")
        return self


class CounterRule(RuleBase):
    """A register: ``stopped`` (no increase for ``stopped_for`` while ``when`` holds), ``backwards``
    (a decrease that is not a reset to below ``reset_below`` x the last value), ``increase``
    (at least ``at_least`` within ``window``), or ``short``: a register that should rise
    ``per_hour`` an hour (a lit lamp's burning hours: one) rose by less than ``below`` x that
    between two samples at most ``gap`` apart, in ``steps`` of them within ``window`` (a lamp dark
    for seconds between two reports counts those seconds out)."""

    type: Literal["counter"]
    metric: str
    mode: Literal["stopped", "backwards", "increase", "short"]
    stopped_for: Duration | None = None
    window: Duration | None = None
    at_least: float | None = None
    reset_below: float = Field(0.1, ge=0, lt=1)
    per_hour: float | None = Field(None, gt=0)
    below: float | None = Field(None, gt=0, lt=1)
    steps: int = Field(1, ge=1)
    gap: Duration = 600_000

    @model_validator(mode="after")
    def _mode(self) -> CounterRule:
        if self.mode == "stopped" and not self.stopped_for:
            raise ValueError("mode stopped needs stopped_for")
        if self.mode == "increase" and (not self.window or self.at_least is None):
            raise ValueError("mode increase needs window and at_least")
        if self.mode == "short" and (not self.window or self.per_hour is None or self.below is None):
            raise ValueError("mode short needs window, per_hour and below")
        if self.gap <= 0:
            raise ValueError("gap must be positive")
        return self


class StreakRule(RuleBase):
    """Raise when ``at_least`` attempts in a row failed: the state ``metric`` entering one of ``attempt``
    begins an attempt, which fails when the next state it shows is one of ``fail``; any state in neither
    list (a success: the attempt went on) ends the streak and clears the rule. A charger's plug-in:
    Preparing, then Finishing without Charging."""

    type: Literal["streak"]
    metric: str
    attempt: tuple[str, ...] = Field(min_length=1)
    fail: tuple[str, ...] = Field(min_length=1)
    at_least: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _disjoint(self) -> StreakRule:
        if set(self.attempt) & set(self.fail):
            raise ValueError("a state cannot both begin an attempt and fail it")
        return self


class CountRule(RuleBase):
    """Raise when ``condition`` held in at least ``at_least`` samples (or ``runs`` separate runs) within ``window``."""

    type: Literal["count"]
    condition: Condition
    window: Duration
    at_least: int = Field(1, ge=1)
    runs: int = Field(1, ge=1)


class DipRule(RuleBase):
    """Raise when ``metric`` dipped in at least ``at_least`` samples within ``window``: a sample below
    ``below`` x the lower of its two neighbours (the samples before and after it, each at most ``gap``
    away). A step (a lamp dimmed at midnight, a lamp failing) is no dip; a report that lost part of its
    power and the next that did not is (a lamp switching off and on by itself between two reports)."""

    type: Literal["dip"]
    metric: str
    below: float = Field(gt=0, lt=1)
    window: Duration
    at_least: int = Field(1, ge=1)
    gap: Duration = 600_000

    @model_validator(mode="after")
    def _spans(self) -> DipRule:
        if self.gap <= 0 or self.window <= 0:
            raise ValueError("gap and window must be positive")
        return self


class StepRule(RuleBase):
    """Raise when ``metric`` stepped down: a sample below ``below`` x the one before it (at most ``gap``
    earlier, both passing ``when``), and it stays below ``clear`` x that level before the step. A charger's
    session whose power halves in a minute and stays there: a car's taper falls by at most about 12% a
    minute. A gap of more than ``gap`` between samples (the samples ``when`` leaves out: a pause, the
    session's end) ends the step."""

    type: Literal["step"]
    metric: str
    below: float = Field(gt=0, lt=1)
    clear: float | None = Field(None, gt=0, lt=1)
    gap: Duration = 90_000

    @model_validator(mode="after")
    def _levels(self) -> StepRule:
        if self.gap <= 0:
            raise ValueError("gap must be positive")
        if self.clear is not None and self.clear < self.below:
            raise ValueError("clear must not be below 'below' (hysteresis clears higher)")
        return self


class DemandRule(RuleBase):
    """A register that should have moved: ``metric`` (a counter, e.g. an elevator's trip count)
    learns its device's usual increase per local hour of the day, weekdays and weekends apart
    (hours the register is later seen moving again, weighted ``alpha`` per new hour); raises when
    the increase expected since its last step reaches ``expected`` with none come, after ``learn``
    of history. At most ``gap`` between two samples counts (a data gap is no idle time)."""

    type: Literal["demand"]
    metric: str
    expected: float = Field(10.0, gt=0)
    learn: Duration = 3 * 86_400_000
    alpha: float = Field(0.2, gt=0, le=1)
    gap: Duration = 600_000

    @model_validator(mode="after")
    def _gap(self) -> DemandRule:
        if self.gap <= 0:
            raise ValueError("gap must be positive")
        return self


class NoDataRule(RuleBase):
    """Raise when a device (kind ``gateway``: a gateway) sent nothing for ``intervals`` x its interval."""

    type: Literal["no_data"]
    interval: Duration
    intervals: float = Field(3.0, gt=0)


class DayNightRule(RuleBase):
    """A lamp against the sun: ``on_in_day`` raises when ``metric`` is 1 with the sun above
    ``elevation`` degrees; ``off_at_night`` when it is 0 with the sun below ``elevation``. ``peers``:
    no finding while at least that share of the compound's devices of the kind do the same (a dark
    afternoon, a central switch). ``dark_in_day`` (with ``below``): raises when the device's ``metric``
    (a photocell's light) is under ``below`` x the median of its compound's latest readings (of the last
    10 min, at least 4 devices) with the sun above ``elevation``: a dirty photocell, seen by day before
    its lamp burns into the day; not judged with the sun lower (the finding stays as it was)."""

    type: Literal["daynight"]
    metric: str = "lamp_on"
    mode: Literal["on_in_day", "off_at_night", "dark_in_day"]
    elevation: float = Field(ge=-18, le=60)
    peers: float | None = Field(None, gt=0, le=1)
    below: float | None = Field(None, gt=0, lt=1)

    @model_validator(mode="after")
    def _dark(self) -> DayNightRule:
        if (self.mode == "dark_in_day") != (self.below is not None):
            raise ValueError("'below' goes with mode dark_in_day, and dark_in_day takes it")
        if self.mode == "dark_in_day" and self.peers is not None:
            raise ValueError("dark_in_day judges against its compound's median; 'peers' does not apply")
        return self


class EventRule(RuleBase):
    """Device events turned into findings: those of ``severities`` (or named in ``events``) at once,
    each stateful one active until its clear; ``confirm`` holds the named events back until they
    have lasted that long (alarms known to chatter); ``faults`` names the fault each event suspects."""

    type: Literal["event"]
    severities: tuple[Severity, ...] = (Severity.CRITICAL, Severity.WARNING)
    events: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    faults: dict[str, str] = Field(default_factory=dict)
    confirm: dict[str, Duration] = Field(default_factory=dict)

    @field_validator("confirm", mode="before")
    @classmethod
    def _confirm(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: parse_duration(v) for k, v in value.items()}
        return value


class LoadTemperatureRule(RuleBase):
    """Raise when ``metric`` (a temperature) stays above what the device's own load explains.

    The device's rise per kW^2 is learnt from its first ``learn_samples`` ratios (one every ``learn_every``
    of settled load) against its idle temperature, through a lag of ``tau``; the residual under
    ``load`` (after ``settle`` of load, at least ``min_kw`` lagged) raises above ``above`` and clears
    at or below ``clear``; with ``peer_rise``, the rise at the device's highest load is capped at that
    factor times its compound's other devices' (analytics/thermal.py); with ``max_rise`` (°C per kW^2), the
    rise is at most that, peers or none; with ``night_above``, a session
    also raises when its residual, averaged over ``night_for`` or more of judged load with the sun below
    ``night_sun`` degrees (now and when the device was last idle), is above that lower level."""

    type: Literal["load_temperature"]
    metric: str
    load: str
    above: float = Field(gt=0)
    clear: float | None = None
    tau: Duration = 900_000
    settle: Duration = 1_800_000
    learn_samples: int = Field(12, ge=1)
    learn_every: Duration = 600_000
    keep: int = Field(60, ge=1)
    min_kw: float = Field(1.0, ge=0)
    peer_rise: float | None = Field(None, gt=0)
    max_rise: float | None = Field(None, gt=0)
    night_above: float | None = Field(None, gt=0)
    night_for: Duration = 1_800_000
    night_sun: float = Field(-6.0, ge=-90, le=90)
    day_above: float | None = Field(None, gt=0)
    day_learn: Duration = 1_800_000

    @model_validator(mode="after")
    def _levels(self) -> LoadTemperatureRule:
        if self.clear is not None and self.clear > self.above:
            raise ValueError("clear must not be above 'above' (hysteresis clears lower)")
        if self.night_above is not None and self.night_above > self.above:
            raise ValueError("night_above must not be above 'above' (it is the lower, night-only level)")
        if self.day_above is not None and self.day_above > self.above:
            raise ValueError("day_above must not be above 'above' (it is the lower level by day)")
        if self.night_for <= 0:
            raise ValueError("night_for must be positive")
        if self.tau <= 0:
            raise ValueError("tau must be positive")
        if self.keep < self.learn_samples:
            raise ValueError("keep must be at least learn_samples")
        return self


AnyRule = Annotated[
    ThresholdRule
    | StateRule
    | RateRule
    | ChangeRule
    | CounterRule
    | CountRule
    | StreakRule
    | DipRule
    | StepRule
    | NoDataRule
    | DayNightRule
    | EventRule
    | DemandRule
    | LoadTemperatureRule,
    Field(discriminator="type"),
]


class RulesFile(_Base):
    """The whole file: format version, default flapping window, the rules."""

    version: Literal[1] = 1
    flap: Duration = 1_800_000
    rules: tuple[AnyRule, ...]

    @model_validator(mode="after")
    def _unique(self) -> RulesFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} used twice")
            seen.add(rule.name)
        keys = seen | {
            f"{r.name}.{e}" for r in self.rules if isinstance(r, EventRule) for e in KINDS[r.kind].events
        }
        for rule in self.rules:
            for name in rule.unless:
                if name not in keys:
                    raise ValueError(f"rule {rule.name!r}: unless: {name!r} is no rule (nor rule.event)")
        return self


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Validated rules, ready for the engine; ``source`` says where they came from."""

    rules: tuple[Any, ...]
    flap_ms: int
    source: str

    def for_kind(self, kind: DeviceKind) -> tuple[Any, ...]:
        """The rules that watch ``kind``."""
        return tuple(r for r in self.rules if r.kind is kind)


def _check_metrics(rule: Any) -> list[str]:
    """Metric and event names must exist in the contract for the rule's kind."""
    spec = KINDS[rule.kind]
    problems = []
    names = [c.metric for c in rule.when]
    if isinstance(rule, CountRule):
        names.append(rule.condition.metric)
    if hasattr(rule, "metric") and not isinstance(rule, NoDataRule | EventRule):
        names.append(rule.metric)
    if isinstance(rule, LoadTemperatureRule):
        names.append(rule.load)
    for name in names:
        if name not in spec.metrics:
            problems.append(f"metric: {name!r} is not a {rule.kind.value} metric")
    if isinstance(rule, StateRule | StreakRule):
        metric = spec.metrics.get(rule.metric)
        named = (
            {"states": rule.states}
            if isinstance(rule, StateRule)
            else {"attempt": rule.attempt, "fail": rule.fail}
        )
        if metric is not None and metric.type is not MetricType.STATE:
            problems.append(f"metric: {rule.metric!r} is not a state metric")
        elif metric is not None:
            problems += [
                f"{field}: {s!r} is not a state of {rule.metric}"
                for field, states in named.items()
                for s in states
                if s not in metric.states
            ]
    if isinstance(rule, EventRule):
        for name in (*rule.events, *rule.exclude, *rule.faults, *rule.confirm):
            if name not in spec.events:
                problems.append(f"events: {name!r} is not a {rule.kind.value} event")
    return problems


def parse_rules(text: str, source: str) -> RuleSet:
    """Validate the YAML ``text`` (from ``source``, named in errors) into a RuleSet."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping):
        raise RulesError(f"{source}: expected a mapping with 'rules', got {type(raw).__name__}")
    try:
        parsed = RulesFile.model_validate(raw)
    except ValidationError as exc:
        raise RulesError(f"{source}: " + "; ".join(_describe(raw, e) for e in exc.errors())) from None
    problems = [f"rule {r.name!r}: {p}" for r in parsed.rules for p in _check_metrics(r)]
    if problems:
        raise RulesError(f"{source}: " + "; ".join(problems))
    return RuleSet(parsed.rules, parsed.flap, source)


def _describe(raw: Mapping[str, Any], error: Any) -> str:
    """One pydantic error as 'rule NAME: field: message'."""
    loc: Sequence[Any] = error.get("loc", ())
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = raw.get("rules")
        name: Any = loc[1]
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], Mapping):
            name = rules[loc[1]].get("name", f"#{loc[1] + 1}")
        rest = [str(x) for x in loc[2:] if not (isinstance(x, str) and x in _TYPE_TAGS)]
        if not rest:
            return f"rule {name!r}: {message}"
        return f"rule {name!r}: {'.'.join(rest)}: {message}"
    return f"{'.'.join(str(x) for x in loc) or 'file'}: {message}"


_TYPE_TAGS = {
    "threshold",
    "state",
    "rate",
    "change",
    "counter",
    "count",
    "streak",
    "dip",
    "no_data",
    "daynight",
    "event",
    "demand",
    "load_temperature",
}


def load_rules(path: Path | str | None = None) -> RuleSet:
    """The rules of ``path``, or the shipped defaults when None; raises RulesError."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_RULES).read_text(encoding="utf-8")
        return parse_rules(text, f"sitewatch/analytics/{DEFAULT_RULES}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot read: {exc}") from None
    return parse_rules(text, str(path))
