"""Label matchers, as Alertmanager writes them: ``name=value``, ``name!=value``, ``name=~regex``,
``name!~regex`` (a regex matches the whole value). Silences and inhibition rules use them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,63}")
MAX_VALUE = 200
_PARSE_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")


class Op(StrEnum):
    """How a matcher compares."""

    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


class MatcherError(ValueError):
    """A matcher that cannot be used, with the reason."""


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label (a missing label has the value "")."""

    name: str
    op: Op
    value: str

    def __post_init__(self) -> None:
        if not NAME_RE.fullmatch(self.name):
            raise MatcherError(f"label name {self.name[:70]!r} is not a name (a-z, 0-9, _)")
        if len(self.value) > MAX_VALUE or any(ord(c) < 32 for c in self.value):
            raise MatcherError(
                f"the value of {self.name} is longer than {MAX_VALUE} or has control characters"
            )
        if self.op in (Op.RE, Op.NRE):
            try:
                _regex(self.value)
            except re.error as exc:
                raise MatcherError(
                    f"{self.name}{self.op}{self.value}: not a regular expression ({exc})"
                ) from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher."""
        value = labels.get(self.name, "")
        if self.op is Op.EQ:
            return value == self.value
        if self.op is Op.NE:
            return value != self.value
        hit = _regex(self.value).fullmatch(value) is not None
        return hit if self.op is Op.RE else not hit

    def to_json(self) -> dict[str, str]:
        """JSON form, as stored."""
        return {"name": self.name, "op": self.op.value, "value": self.value}

    def __str__(self) -> str:
        return f"{self.name}{self.op.value}{self.value}"

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``compound=C0001``, ``kind=~elevator|camera``, ``severity!=info``."""
        found = _PARSE_RE.fullmatch(text)
        if found is None:
            raise MatcherError(f"{text[:80]!r} is not a matcher like compound=C0001 or kind=~elevator|camera")
        value = found.group(3)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return cls(found.group(1), Op(found.group(2)), value)

    @classmethod
    def of(cls, data: Mapping[str, str]) -> Matcher:
        """From the stored JSON form."""
        try:
            return cls(str(data["name"]), Op(str(data["op"])), str(data["value"]))
        except (KeyError, ValueError) as exc:
            if isinstance(exc, MatcherError):
                raise
            raise MatcherError(f"not a matcher: {str(dict(data))[:100]}") from None


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches ``labels``."""
    return all(m.matches(labels) for m in matchers)
