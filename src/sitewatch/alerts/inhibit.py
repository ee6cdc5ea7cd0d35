"""Inhibition: an open *source* alert hides the *target* alerts that share its ``equal`` labels.

Rules ship in ``inhibit_rules.yaml`` beside this module (a dead gateway hides its devices' offline
alerts; an elevator in maintenance mode hides its own non-critical alerts; a compound-wide outage
hides the per-device ones) and can be replaced by a file of one's own (``alerts.inhibit_rules``).
As in Alertmanager, an alert matching both sides of a rule is not hidden by another alert that does
too (two dead gateways do not hide each other). Unlike Alertmanager, a source that resolved keeps
inhibiting for ``alerts.inhibit_hold_s``: when a gateway comes back, its devices' alerts clear a
moment later, and must not be notified in between.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .matchers import Matcher, MatcherError, all_match


class InhibitRuleError(ValueError):
    """An inhibition rule file that cannot be used, with the reason."""


class _RuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    source: list[str] = Field(min_length=1, max_length=16)
    target: list[str] = Field(min_length=1, max_length=16)
    equal: list[str] = Field(default_factory=list, max_length=16)


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """One rule: ``source`` alerts hide ``target`` alerts with equal values of ``equal``."""

    name: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Candidate:
    """An alert as inhibition sees it."""

    id: int
    labels: Mapping[str, str]


def load_rules(path: Path | None = None) -> list[InhibitRule]:
    """The rules of ``path``, or the shipped ones."""
    if path is None:
        text = (resources.files("sitewatch.alerts") / "inhibit_rules.yaml").read_text(encoding="utf-8")
        where = "the shipped inhibit_rules.yaml"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InhibitRuleError(f"cannot read inhibition rules {path}: {exc.strerror}") from None
        where = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InhibitRuleError(f"{where} is not YAML: {exc}") from None
    if not isinstance(data, list):
        raise InhibitRuleError(f"{where} must be a list of rules (name, source, target, equal)")
    rules = []
    for position, item in enumerate(data, 1):
        try:
            model = _RuleModel.model_validate(item)
            rules.append(
                InhibitRule(
                    model.name,
                    tuple(Matcher.parse(m) for m in model.source),
                    tuple(Matcher.parse(m) for m in model.target),
                    tuple(model.equal),
                )
            )
        except (ValidationError, MatcherError) as exc:
            raise InhibitRuleError(f"{where}, rule {position}: {exc}") from None
    return rules


def inhibited(rules: Sequence[InhibitRule], sources: Iterable[Candidate]) -> dict[int, str]:
    """Which of ``sources`` are hidden, and by which rule, given every alert that can inhibit
    (open, or resolved within the hold): alert id → rule name."""
    alerts = list(sources)
    out: dict[int, str] = {}
    for rule in rules:
        source_keys: dict[tuple[str, ...], set[int]] = {}
        both: set[int] = set()  # alerts matching both sides of the rule
        for a in alerts:
            if all_match(rule.source, a.labels):
                source_keys.setdefault(tuple(a.labels.get(n, "") for n in rule.equal), set()).add(a.id)
                if all_match(rule.target, a.labels):
                    both.add(a.id)
        if not source_keys:
            continue
        for a in alerts:
            if a.id in out or not all_match(rule.target, a.labels):
                continue
            holders = source_keys.get(tuple(a.labels.get(n, "") for n in rule.equal), set())
            # an alert matching both sides can be hidden only by one that does not
            holders = holders - both if a.id in both else holders - {a.id}
            if holders:
                out[a.id] = rule.name
    return out


def hold_cutoff(now: dt.datetime, hold_s: float) -> dt.datetime:
    """Resolved alerts resolved after this still inhibit."""
    return now - dt.timedelta(seconds=hold_s)
