"""InfluxQL targets for Grafana's InfluxDB data source, typed for ``grafana-foundation-sdk``.

The SDK ships query types for Prometheus, Loki, Elasticsearch and others but none for InfluxDB, so
this module adds one: :class:`InfluxQLQuery` is a ``cog`` ``Dataquery`` (the SDK's base for every
query type) that serialises to the JSON Grafana's InfluxDB data source keeps for a raw InfluxQL
query (``rawQuery: true``, ``query``, ``resultFormat``). Each query carries a :class:`Probe`: a
second question that says whether the store holds the data the query reads, so that
``sitewatch dashboards verify`` can tell an empty answer that is right (no such data) from one
that is wrong (a misspelt field, a badly escaped variable). Probes stay in Python: Grafana never
sees them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as models

from ..contract import KINDS, DeviceKind, Severity
from ..store.influxql import EVENTS_MEASUREMENT, quote_ident, quote_string

DATASOURCE_UID = "sitewatch-influxdb"
DATASOURCE = models.DataSourceRef(type_val="influxdb", uid=DATASOURCE_UID)

TIME_FILTER = "$timeFilter"
INTERVAL = "$__interval"


@dataclass(frozen=True)
class Probe:
    """Whether the data a query reads exists: ``count(field)`` of ``measurement`` in the panel's
    range, under the query's fixed conditions and its variables' values compared with ``=``."""

    measurement: str
    field: str
    where: tuple[str, ...] = ()  # InfluxQL conditions without variables
    variables: tuple[str, ...] = ()  # tag keys whose variable of the same name the query filters on
    may_be_empty: str = ""  # why an empty answer can be right although the data exists (rare)

    def text(self, values: Mapping[str, str | None], time_filter: str) -> str:
        """The probe's InfluxQL, ready to run: ``values`` maps a variable to its raw value (None:
        every value), compared as a string literal; ``time_filter`` is the expanded ``$timeFilter``.
        Nothing in it is interpolated afterwards (a value may hold a ``$``)."""
        where = [time_filter, *self.where]
        for name in self.variables:
            value = values.get(name)
            if value is not None:
                where.append(f"{quote_ident(name)} = {quote_string(value)}")
        return f"SELECT count({quote_ident(self.field)}) FROM {quote_ident(self.measurement)} WHERE {' AND '.join(where)}"


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target of a panel."""

    def __init__(self, ref_id: str, query: str, probe: Probe, result_format: str = "time_series",
                 alias: str | None = None) -> None:  # fmt: skip
        self.ref_id = ref_id
        self.query = query
        self.probe = probe
        self.result_format = result_format
        self.alias = alias

    def to_json(self) -> dict[str, Any]:
        """The target as Grafana stores it."""
        out: dict[str, Any] = {
            "refId": self.ref_id,
            "datasource": DATASOURCE.to_json(),
            "rawQuery": True,
            "query": self.query,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            out["alias"] = self.alias
        return out


class Influx(cogbuilder.Builder[InfluxQLQuery]):
    """Builder of an :class:`InfluxQLQuery`, for the SDK's ``with_target``."""

    def __init__(self, query: str, probe: Probe, ref_id: str = "A") -> None:
        self._internal = InfluxQLQuery(ref_id, query, probe)

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def table(self) -> Self:
        """Answer as a table (one row per series and time) rather than time series."""
        self._internal.result_format = "table"
        return self

    def alias(self, alias: str) -> Self:
        """Series name pattern (``$tag_device``, ``$col``)."""
        self._internal.alias = alias
        return self


# -- conditions on the template variables ---------------------------------------------------------


def var_match(name: str) -> str:
    """``"name" =~ /^$name$/``: the form Grafana regex-escapes a variable's value in."""
    return f"{quote_ident(name)} =~ /^${name}$/"


@dataclass(frozen=True)
class Scope:
    """Which template variables a query filters on (the tag key and the variable share a name)."""

    variables: tuple[str, ...] = ()

    def conditions(self) -> list[str]:
        return [var_match(v) for v in self.variables]

    def without(self, name: str) -> Scope:
        return Scope(tuple(v for v in self.variables if v != name))


CITY = Scope()
COMPOUND = Scope(("compound",))
BUILDING = Scope(("compound", "building"))


def metric(kind: DeviceKind, name: str) -> str:
    """``name``, checked against the contract: a dashboard cannot name a metric no device sends."""
    if name not in KINDS[kind].metrics:
        raise ValueError(f"{kind.value} has no metric {name!r}")
    return name


def events_of(kind: DeviceKind | None = None, *, severities: Sequence[Severity] = (),
              names: Sequence[str] = (), exclude: Sequence[str] = ()) -> tuple[str, ...]:  # fmt: skip
    """Event names from the contract (of ``kind`` or every kind), by severity or by name."""
    specs = [KINDS[kind]] if kind else list(KINDS.values())
    found: dict[str, None] = {}
    for spec in specs:
        for event in spec.events.values():
            if severities and event.severity not in severities:
                continue
            if names and event.name not in names:
                continue
            if event.name not in exclude:
                found[event.name] = None
    unknown = set(names) - set(found) - set(exclude)
    if unknown:
        raise ValueError(f"no such events: {sorted(unknown)}")
    return tuple(sorted(found))


def event_match(names: Sequence[str]) -> str:
    """``"event" =~ /^(a|b)$/`` (event names are identifiers: nothing to escape)."""
    return f'"event" =~ /^({"|".join(names)})$/'


def where(*conditions: str) -> str:
    return " AND ".join([TIME_FILTER, *conditions])


@dataclass
class Select:
    """``SELECT <exprs> FROM <measurement> WHERE $timeFilter AND ... GROUP BY ...``: a plain query
    whose probe is derived from its parts."""

    measurement: str
    exprs: str
    field: str  # the field the probe counts
    scope: Scope = CITY
    conditions: Sequence[str] = ()
    group_by: Sequence[str] = ()
    tail: str = ""  # fill(), tz(), ORDER BY, LIMIT

    def text(self) -> str:
        q = (
            f"SELECT {self.exprs} FROM {quote_ident(self.measurement)} "
            f"WHERE {where(*self.conditions, *self.scope.conditions())}"
        )
        if self.group_by:
            q += " GROUP BY " + ", ".join(self.group_by)
        return q + (f" {self.tail}" if self.tail else "")

    def probe(self) -> Probe:
        return Probe(self.measurement, self.field, tuple(self.conditions), self.scope.variables)

    def target(self, ref_id: str = "A") -> Influx:
        return Influx(self.text(), self.probe(), ref_id)


def per_device(measurement: str, inner: str, outer: str, field_: str, *, scope: Scope = CITY,
               conditions: Sequence[str] = (), window: str | None = INTERVAL, outer_group: Sequence[str] = (),
               inner_group: Sequence[str] = ('"device"',), outer_window: bool | str = True, outer_where: Sequence[str] = (), tail: str = "",
               may_be_empty: str = "") -> Influx:  # fmt: skip
    """A value per device (and window), combined over devices: ``SELECT <outer> FROM (SELECT <inner>
    ... GROUP BY time(w), "device") WHERE $timeFilter GROUP BY time(w)`` (``outer_window``: another
    window outside, or none). The outer query repeats
    the time filter (InfluxDB 1.x widens a subquery's range otherwise; see docs/store.md)."""
    groups = [*( [f"time({window})"] if window else []), *inner_group]
    inner_q = (
        f"SELECT {inner} FROM {quote_ident(measurement)} WHERE {where(*conditions, *scope.conditions())}"
        f" GROUP BY {', '.join(groups)}"
    )
    outside = (window if outer_window is True else outer_window) or None  # str: a longer window outside
    outer_groups = [*([f"time({outside})"] if outside else []), *outer_group]
    q = f"SELECT {outer} FROM ({inner_q}) WHERE {where(*outer_where)}"
    if outer_groups:
        q += " GROUP BY " + ", ".join(outer_groups)
    if tail:
        q += f" {tail}"
    return Influx(q, Probe(measurement, field_, tuple(conditions), scope.variables, may_be_empty))


EVENTS = EVENTS_MEASUREMENT
