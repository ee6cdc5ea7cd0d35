"""Run every panel's query on an InfluxDB the way Grafana would send it.

Grafana's InfluxDB data source (InfluxQL) interpolates a raw query before it reaches InfluxDB:
template variables in the front end (``interpolateQueryExpr``: a single value that reads as a
number is left alone; a multi-value variable's values are regex-escaped and joined as ``(a|b)``,
one value too; a single-value one is escaped when the query holds it between two slashes; the
custom all value is inserted as it is), then ``$timeFilter`` (``time >= <from>ms and time <= <to>ms``) and
``$__interval`` / ``$__interval_ms`` (the range divided by the panel's data points, rounded to
Grafana's steps and no shorter than the panel's or the data source's minimum interval).
:func:`verify` does the same with real values: each variable's own query is run on the store and
its first value (Grafana's sort) selected, and All as well where the variable has it, and each panel's queries are run on the range ending at
the newest point the store holds. A query that fails is a failure; so is an empty answer where the
query's probe (:class:`~.queries.Probe`) finds the data it reads.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from ..http_client import release
from ..i18n import _
from ..store.influxql import quote_ident
from .provisioning import Built
from .queries import InfluxQLQuery

DEFAULT_MIN_INTERVAL_MS = 10_000  # the data source's timeInterval (provisioning.datasource_yaml)
MAX_ERROR_CHARS = 500  # of an error InfluxDB (or whatever answers) sends back
MAX_DATA_POINTS = 1_000  # Grafana uses the panel's width in pixels; a wide panel is about this
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_NUMBER_PREFIX = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+|Infinity)")
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")
_RELATIVE = re.compile(r"now-(\d+)([smhdw])$")
_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# Grafana's rounding of an interval (rangeutil.roundInterval): (below this many ms, use this)
_STEPS = [
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000), (3_500, 2_000),
    (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000), (45_000, 30_000),
    (90_000, 60_000), (450_000, 300_000), (900_000, 600_000), (1_200_000, 900_000),
    (2_700_000, 1_800_000), (5_400_000, 3_600_000), (9_000_000, 7_200_000), (16_200_000, 10_800_000),
    (32_400_000, 21_600_000), (86_400_000, 43_200_000), (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
]  # fmt: skip


class VerifyError(RuntimeError):
    """The store could not be asked at all (unreachable, refused)."""


def escape_regex(value: str) -> str:
    """Grafana's ``escapeRegex``."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def interpolate(value: str | list[str], *, multi: bool, in_regex: bool) -> str:
    """A variable's value as Grafana's InfluxDB data source puts it into a raw query."""
    if isinstance(value, str) and _NUMBER_PREFIX.match(value):
        return value  # parseFloat(value) is a number: left as it is
    if multi:  # always escaped; a list (even of one) in parentheses
        return escape_regex(value) if isinstance(value, str) else "(" + "|".join(map(escape_regex, value)) + ")"
    if not in_regex:
        return value if isinstance(value, str) else ",".join(value)
    return escape_regex(value) if isinstance(value, str) else "(" + "|".join(map(escape_regex, value)) + ")"


def used_in_regex(query: str, name: str) -> bool:
    """Grafana's test of whether a single-value variable stands in a regex of ``query``: the query
    holds a ``/.../`` and ``$name`` appears between two slashes (then every use is escaped)."""
    if not re.search(r"(?<=/).+?(?=/)", query):
        return False
    return re.search(r"/(?:\^)?(.*)(\$" + re.escape(name) + r")(.*)(?:\$)?/", query) is not None


def round_interval(ms: float) -> int:
    for below, step in _STEPS:
        if ms < below:
            return step
    return 31_536_000_000


def parse_duration_ms(text: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|[smhdw])", text.strip())
    if not match:
        raise ValueError(f"not a Grafana interval: {text!r}")
    number, unit = int(match.group(1)), match.group(2)
    return number if unit == "ms" else number * _UNITS_MS[unit]


def format_interval(ms: int) -> str:
    """Grafana's ``FormatInterval`` (the backend's): the largest whole unit."""
    for unit, size in (("y", 31_536_000_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if ms >= size:
            return f"{ms // size}{unit}"
    return f"{max(ms, 1)}ms"


def interval_ms(start_ms: int, end_ms: int, min_interval: str | None, max_points: int = MAX_DATA_POINTS) -> int:
    step = round_interval((end_ms - start_ms) / max_points)
    low = parse_duration_ms(min_interval) if min_interval else DEFAULT_MIN_INTERVAL_MS
    return max(step, low)


@dataclass
class Selection:
    """The value a variable has while the panels are run."""

    name: str
    value: str | list[str]
    raw: str | None  # the value itself, for probes; None for the all value (every value)
    multi: bool


@dataclass
class Check:
    """One target of one panel, run."""

    dashboard: str
    panel: str
    ref_id: str
    query: str
    status: str  # OK, EMPTY (no data in the store, or allowed), FAIL
    rows: int = 0
    detail: str = ""
    variables: str = ""  # the selection it ran with: compound=..., building=All

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"


@dataclass
class Report:
    start_ms: int
    end_ms: int
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.failed]


class Influx:
    """InfluxQL over the v1 HTTP API, answers counted (and cached: both languages ask the same)."""

    def __init__(self, url: str, database: str, *, username: str | None = None, password: str | None = None,
                 token: str | None = None, timeout_s: float = 60.0) -> None:  # fmt: skip
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username and not token else None
        self.database = database
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, auth=auth, timeout=timeout_s)
        self._cache: dict[str, tuple[list[dict[str, Any]], str | None]] = {}

    def close(self) -> None:
        self._client.close()

    def run(self, q: str) -> tuple[list[dict[str, Any]], str | None]:
        """(series, error) of one statement."""
        if q in self._cache:
            return self._cache[q]
        try:
            response = release(self._client.post("/query", data={"q": q, "db": self.database, "epoch": "ms"}))
        except httpx.HTTPError as exc:
            raise VerifyError(_("InfluxDB at {url} unreachable: {error}", url=self._client.base_url, error=exc)) from exc
        if response.status_code in (401, 403):
            raise VerifyError(_("InfluxDB refused the credentials ({status}): {error}", status=response.status_code,
                                error=response.text[:200]))  # fmt: skip
        try:
            body = response.json()
        except ValueError:
            answer: tuple[list[dict[str, Any]], str | None] = ([], f"HTTP {response.status_code}: {response.text[:300]}")
        else:
            if "error" in body:
                answer = ([], str(body["error"]))
            else:
                result = (body.get("results") or [{}])[0]
                answer = (result.get("series") or [], result.get("error"))
        if answer[1] is not None and len(answer[1]) > MAX_ERROR_CHARS:  # a server's message, cut
            answer = (answer[0], answer[1][:MAX_ERROR_CHARS] + "…")
        self._cache[q] = answer
        return answer

    def rows(self, q: str) -> tuple[int, str | None]:
        series, error = self.run(q)
        return sum(len(s.get("values") or []) for s in series), error

    def newest_ms(self) -> int | None:
        """Time of the newest point of any measurement."""
        series, error = self.run("SHOW MEASUREMENTS")
        if error:
            raise VerifyError(_("InfluxDB could not list its measurements: {error}", error=error))
        newest = None
        for s in series:
            for (name,) in s.get("values") or []:
                found, _error = self.run(f"SELECT * FROM {quote_ident(name)} ORDER BY time DESC LIMIT 1")
                for part in found:
                    for row in part.get("values") or []:
                        newest = max(newest or row[0], row[0])
        return newest


def time_filter(start_ms: int, end_ms: int) -> str:
    """Grafana's ``$timeFilter`` for InfluxQL."""
    return f"time >= {start_ms}ms and time <= {end_ms}ms"


def expand(query: str, selections: dict[str, Selection], start_ms: int, end_ms: int, step_ms: int) -> str:
    """``query`` as Grafana sends it to InfluxDB."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name == "__interval":
            return format_interval(step_ms)
        if name == "__interval_ms":
            return str(step_ms)
        if name == "timeFilter":
            return time_filter(start_ms, end_ms)
        if name == "__from":
            return str(start_ms)
        if name == "__to":
            return str(end_ms)
        chosen = selections.get(name)
        if chosen is None:
            return match.group(0)
        if chosen.raw is None:  # the custom all value, inserted as it is
            return chosen.value if isinstance(chosen.value, str) else "|".join(chosen.value)
        return interpolate(chosen.value, multi=chosen.multi, in_regex=used_in_regex(query, name))

    return _VARIABLE.sub(replace, query)


def _range_of(panel: dict[str, Any], start_ms: int, end_ms: int, tz: ZoneInfo) -> tuple[int, int]:
    """The panel's range: the dashboard's, or its relative override (``timeFrom``)."""
    override = panel.get("timeFrom")
    if not override:
        return start_ms, end_ms
    if override == "now/d":
        local = dt.datetime.fromtimestamp(end_ms / 1000, tz)
        return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000), end_ms
    return end_ms - parse_duration_ms(override), end_ms


def span_ms(model: dict[str, Any]) -> int:
    """Length of the dashboard's default range (``now-24h`` .. ``now``)."""
    match = _RELATIVE.fullmatch(str(model.get("time", {}).get("from", "now-24h")))
    return int(match.group(1)) * _UNITS_MS[match.group(2)] if match else 86_400_000


def _select_variables(
    influx: Influx, model: dict[str, Any], start_ms: int, end_ms: int, report: Report, name: str
) -> list[dict[str, Selection]]:
    """The selections the panels are run with: each variable's first value (Grafana's sort of what
    its query answers now), and, for a variable with an All option, All as well (what Grafana
    selects on a first load): one selection per combination."""
    combos: list[dict[str, Selection]] = [{}]
    for variable in model.get("templating", {}).get("list", []):
        query = str(variable.get("query", ""))
        var_name = str(variable["name"])
        multi = bool(variable.get("multi"))
        grown: list[dict[str, Selection]] = []
        for chosen in combos:
            expanded = expand(query, chosen, start_ms, end_ms, DEFAULT_MIN_INTERVAL_MS)
            series, error = influx.run(expanded)
            values = sorted({str(row[-1]) for s in series for row in s.get("values") or []})
            label = f"${var_name}"
            if error:
                report.checks.append(Check(name, label, "var", expanded, "FAIL", 0, error))
                continue
            options: list[Selection] = []
            if values:
                options.append(Selection(var_name, [values[0]] if multi else values[0], values[0], multi))
            if variable.get("includeAll") and variable.get("allValue"):
                options.append(Selection(var_name, str(variable["allValue"]), None, multi))
            if not options:
                report.checks.append(Check(name, label, "var", expanded, "EMPTY", 0, _("no values in the store")))
                continue
            picked = ", ".join(repr(o.raw) if o.raw is not None else _("All ({value})", value=o.value)
                               for o in options)  # fmt: skip
            detail = _("{count} values; selected {picked}", count=len(values), picked=picked)
            report.checks.append(Check(name, label, "var", expanded, "OK", len(values), detail))
            grown.extend({**chosen, var_name: option} for option in options)
        combos = grown
    return combos


def verify(
    influx: Influx,
    dashboards: Sequence[Built],
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    timezone: str = "Asia/Shanghai",
    targets_of: Callable[[Built], Iterable[tuple[dict[str, Any], InfluxQLQuery]]] | None = None,
) -> Report:
    """Run every panel's targets; ``end_ms`` defaults to the newest point of the store, ``start_ms``
    to each dashboard's own span before it."""
    newest = end_ms if end_ms is not None else influx.newest_ms()
    if newest is None:
        raise VerifyError(_("the database holds no data: nothing to verify the dashboards against"))
    tz = ZoneInfo(timezone)
    report = Report(start_ms if start_ms is not None else newest - 86_400_000, newest)
    for built in dashboards:
        model = built.model
        start = start_ms if start_ms is not None else newest - span_ms(model)
        for selections in _select_variables(influx, model, start, newest, report, built.path):
            _run_panels(influx, built, selections, start, newest, tz, report, targets_of or panel_targets)
    return report


def _run_panels(
    influx: Influx,
    built: Built,
    selections: dict[str, Selection],
    start: int,
    end: int,
    tz: ZoneInfo,
    report: Report,
    targets_of: Callable[[Built], Iterable[tuple[dict[str, Any], InfluxQLQuery]]],
) -> None:
    raw = {name: s.raw for name, s in selections.items()}
    chosen = ", ".join(f"{n}={s.raw if s.raw is not None else 'All'}" for n, s in selections.items())
    for panel, target in targets_of(built):
        p_start, p_end = _range_of(panel, start, end, tz)
        step = interval_ms(p_start, p_end, panel.get("interval"), panel.get("maxDataPoints") or MAX_DATA_POINTS)
        query = expand(target.query, selections, p_start, p_end, step)
        rows, error = influx.rows(query)
        check = Check(built.path, str(panel.get("title", "")), target.ref_id, query, "OK", rows, "",
                      chosen)  # fmt: skip
        if error:
            check.status, check.detail = "FAIL", error
        elif rows == 0:
            probe = target.probe.text(raw, time_filter(p_start, p_end))
            series, probe_error = influx.run(probe)
            count = sum(int(row[1] or 0) for s in series for row in s.get("values") or [])
            if probe_error:
                check.status, check.detail = "FAIL", _("probe failed: {error}", error=probe_error)
            elif count == 0:
                check.status, check.detail = "EMPTY", _("no such data in the store for this range")
            elif target.probe.may_be_empty:
                check.status, check.detail = "EMPTY", _("allowed: {reason}", reason=_(target.probe.may_be_empty))
            else:
                check.status = "FAIL"
                check.detail = _("empty, although the store holds {count:,} points it reads ({probe})", count=count,
                                  probe=probe)  # fmt: skip
        report.checks.append(check)


def panel_targets(built: Built) -> Iterable[tuple[dict[str, Any], InfluxQLQuery]]:
    """Each panel (as JSON) with its targets (as built, with their probes)."""
    panels = {p.get("id"): p for p in built.model.get("panels", [])}
    for panel in built.board.model.panels or []:
        for target in getattr(panel, "targets", None) or []:
            if isinstance(target, InfluxQLQuery):
                yield panels[getattr(panel, "id_val", None)], target
