"""InfluxStore: the time-series store on InfluxDB, through the v1 HTTP API every InfluxDB serves.

Line protocol goes to ``/write`` (precision ms), InfluxQL to ``/query``: InfluxDB 1.x natively,
2.x through its v1 compatibility API (DBRP mapping, token), 3 Core natively. Schema:

- one measurement per device kind (``elevator``, ``camera``, ...), tags from ``TAG_KEYS``
  (``compound``, ``device``, ``kind`` and the optional hierarchy tags), one float field per metric,
  a boolean field ``flagged`` on samples of devices the registry did not know;
- measurement ``events``: tags as above plus ``event`` (the event name), fields ``attrs``
  (JSON string) and ``active`` (boolean, only for stateful events).

InfluxDB keeps one point per series and timestamp, so writing the same reading twice stores it once.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from ..contract import DeviceKind, Event
from ..http_client import release
from ..settings import StoreSettings
from .base import (
    Aggregation,
    Latest,
    Point,
    PreparedBatch,
    SeriesKey,
    SeriesQuery,
    StoredEvent,
    StoredSample,
    StoreRefused,
    StoreUnavailable,
)
from .checks import EXTRA_TAG_KEYS, check_batch, store_checker

log = logging.getLogger(__name__)

EVENTS_MEASUREMENT = "events"
_TAG_ESCAPE = str.maketrans({",": "\\,", " ": "\\ ", "=": "\\="})
_INFLUXQL_FUNC = {
    Aggregation.MEAN: "mean",
    Aggregation.MIN: "min",
    Aggregation.MAX: "max",
    Aggregation.LAST: "last",
    Aggregation.COUNT: "count",
}
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Refusals of a write that depend on what it carries: the same points are refused again, however
# often they are sent (400: a line InfluxDB cannot parse, a field type conflict, points beyond the
# retention policy; 413: a request too large; 422: InfluxDB 2.x's unprocessable points).
_REFUSED_STATUS = frozenset({400, 413, 422})
MAX_REASON_CHARS = 1000  # of InfluxDB's message kept in a StoreRefused (it quotes whole lines)


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def field_string(value: str) -> str:
    """A line-protocol string field value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _float(value: float) -> str:
    return repr(float(value))


def _as_json(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, int | float):  # float and int subclasses (numpy scalars, ...)
        return float(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def _fields_of(values: list[Mapping[str, float]]) -> list[str]:
    """The line-protocol field set (``m1=v1,m2=v2``) of each sample's values.

    Metric names passed check_batch (or the contract's narrower validator), so they need no escaping
    and hold no quote, colon or brace;
    orjson writes every float as the shortest text that parses back to the same number (as repr()
    does), and one call formats a whole batch several times faster than repr() value by value.
    """
    if not values:
        return []
    try:
        text = orjson.dumps(values, default=_as_json)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, say: format value by value
        return [",".join(f"{m}={_float(v)}" for m, v in vs.items()) for vs in values]
    return text[2:-2].decode().replace('"', "").replace(":", "=").split("},{")


@dataclass(frozen=True, slots=True)
class _Series:
    """One series of an InfluxQL answer."""

    statement: int
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]


class InfluxStore:
    """The Store on an InfluxDB server; thread-safe (one HTTP client with a connection pool)."""

    concurrent_writes = 16  # requests in flight at once: the server spreads them over its cores

    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        batch_size: int = 10_000,
        timeout_s: float = 10.0,
        gzip_body: bool = True,
        create_database: bool = True,
        retries: int = 4,
        backoff_s: float = 0.25,
        max_backoff_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Connect lazily to ``url``; nothing is sent until the first write or query."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self.batch_size = batch_size
        self.gzip_body = gzip_body
        self.create_database = create_database
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        headers = {"User-Agent": "sitewatch"}
        auth: httpx.Auth | None = None
        if token:
            headers["Authorization"] = f"Token {token}"
        elif username is not None:
            auth = httpx.BasicAuth(username, password or "")
        self._client = httpx.Client(
            base_url=self.url, headers=headers, auth=auth, timeout=timeout_s, transport=transport
        )
        self._prefixes: dict[tuple[Any, ...], str] = {}
        self._sample_prefixes: dict[tuple[Any, ...], str] = {}
        self._lock = threading.Lock()
        self.checker = store_checker()

    @classmethod
    def from_settings(
        cls, settings: StoreSettings, *, create_database: bool = True, retries: int = 4
    ) -> InfluxStore:
        """An InfluxStore configured by the ``store`` section of the settings."""
        return cls(
            settings.influx_url,
            settings.influx_database,
            retention_policy=settings.influx_retention_policy,
            username=settings.influx_username,
            password=settings.influx_password.get_secret_value() if settings.influx_password else None,
            token=settings.influx_token.get_secret_value() if settings.influx_token else None,
            batch_size=settings.influx_batch_size,
            timeout_s=settings.influx_timeout_s,
            gzip_body=settings.influx_gzip,
            create_database=create_database,
            retries=retries,
        )

    def __enter__(self) -> InfluxStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"InfluxStore({self.url!r}, {self.database!r})"

    # -- HTTP ------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """Send with retries and exponential backoff on network errors and 5xx/429 answers."""
        delay = self.backoff_s
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
            try:
                response = release(self._client.request(method, path, **kwargs))  # no cycle left
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.warning("InfluxDB %s at %s failed (attempt %s): %s", what, self.url, attempt + 1, last)
                continue
            if response.status_code not in _RETRY_STATUS:
                return response
            last = f"HTTP {response.status_code}: {response.text[:300]}"
            log.warning("InfluxDB %s at %s failed (attempt %s): %s", what, self.url, attempt + 1, last)
        raise StoreUnavailable(
            f"InfluxDB at {self.url} unavailable for {what} after {self.retries + 1} attempts: {last}"
        )

    def _query_raw(self, q: str, *, db: bool = True) -> Iterator[dict[str, Any]]:
        """Run InfluxQL; yield each statement result (chunked answers are parsed line by line)."""
        data = {"q": q, "epoch": "ms", "chunked": "true", "chunk_size": "10000"}
        if db:
            data["db"] = self.database
        response = self._request("POST", "/query", "query", data=data)
        if response.status_code >= 400:
            raise StoreUnavailable(
                f"InfluxDB at {self.url} refused the query ({response.status_code}): {_error_of(response)}"
            )
        for line in response.content.splitlines():
            if line.strip():
                body = orjson.loads(line)
                if "error" in body:
                    raise StoreUnavailable(f"InfluxDB at {self.url} refused the query: {body['error']}")
                yield from body.get("results", [])

    def _select(self, q: str) -> list[_Series]:
        """Series of the answer to ``q`` (chunks merged); an unknown database answers nothing."""
        merged: dict[tuple[int, str, tuple[tuple[str, str], ...]], _Series] = {}
        for result in self._query_raw(q):
            error = result.get("error")
            if error:
                if str(error).startswith("database not found"):
                    return []
                raise StoreUnavailable(f"InfluxDB at {self.url} refused the query: {error}")
            statement = int(result.get("statement_id", 0))
            for s in result.get("series", []):
                tags = s.get("tags") or {}
                key = (statement, s.get("name", ""), tuple(sorted(tags.items())))
                if key in merged:
                    merged[key].values.extend(s.get("values", []))
                else:
                    merged[key] = _Series(
                        statement, s.get("name", ""), tags, s["columns"], s.get("values", [])
                    )
        return list(merged.values())

    def ensure_database(self) -> None:
        """Create the database (InfluxDB 1.x; idempotent). 2.x and 3 Core use their own tools."""
        response = self._request(
            "POST", "/query", "create database", data={"q": f"CREATE DATABASE {quote_ident(self.database)}"}
        )
        body = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        errors = [r["error"] for r in body.get("results", []) if "error" in r] + (
            [body["error"]] if "error" in body else []
        )
        if response.status_code >= 400 or errors:
            raise StoreUnavailable(
                f"database {self.database!r} does not exist on {self.url} and could not be created "
                f"({response.status_code}: {'; '.join(map(str, errors)) or response.text[:300]}); "
                "create it (InfluxDB 2.x: a bucket and a DBRP mapping) or check the credentials"
            )
        log.info("created InfluxDB database %s on %s", self.database, self.url)

    # -- writing ---------------------------------------------------------------------------------

    def _prefix(self, measurement: str, tags: dict[str, str]) -> str:
        key = (measurement, *sorted(tags.items()))
        prefix = self._prefixes.get(key)
        if prefix is None:
            parts = [measurement]
            parts += [f"{k}={v.translate(_TAG_ESCAPE)}" for k, v in sorted(tags.items())]
            prefix = ",".join(parts)
            if len(self._prefixes) > 1_000_000:  # bounded: devices x tag sets
                self._prefixes.clear()
            self._prefixes[key] = prefix
        return prefix

    def _sample_prefix(self, item: StoredSample) -> str:
        """Measurement and tags of a sample's series, built once per device and tag set."""
        s = item.sample
        tags = item.tags
        key = (s.kind, item.compound, s.device, *sorted(tags.items())) if tags else (
            s.kind, item.compound, s.device)  # fmt: skip
        prefix = self._sample_prefixes.get(key)
        if prefix is None:
            prefix = self._prefix(
                s.kind.value, {**tags, "compound": item.compound, "device": s.device, "kind": s.kind.value}
            )
            if len(self._sample_prefixes) > 1_000_000:  # bounded: devices x tag sets
                self._sample_prefixes.clear()
            self._sample_prefixes[key] = prefix
        return prefix

    def _sample_lines(self, samples: Sequence[StoredSample]) -> list[str]:
        """Line protocol of samples that passed check_batch."""
        prefixes = self._sample_prefixes
        lines = []
        for item, fields in zip(samples, _fields_of([item.sample.values for item in samples]), strict=True):
            s = item.sample
            prefix = None if item.tags else prefixes.get((s.kind, item.compound, s.device))
            if prefix is None:
                prefix = self._sample_prefix(item)
            if item.flagged:
                fields += ",flagged=true"
            lines.append(f"{prefix} {fields} {s.ts_ms}")
        return lines

    def _event_line(self, item: StoredEvent) -> str:
        e = item.event
        tags = {**item.tags, "compound": item.compound, "device": e.device, "kind": e.kind.value}
        tags["event"] = e.name
        prefix = self._prefix(EVENTS_MEASUREMENT, tags)
        fields = "attrs=" + field_string(orjson.dumps(dict(sorted(e.attrs.items()))).decode())
        if e.active is not None:
            fields += f",active={'true' if e.active else 'false'}"
        return f"{prefix} {fields} {e.ts_ms}"

    def write(self, samples: Sequence[StoredSample], events: Sequence[StoredEvent] = ()) -> None:
        """Write in requests of ``batch_size`` lines; StoreUnavailable if any request failed.

        A failed batch may be partly stored; writing it again is harmless (idempotent).
        """
        self.write_prepared(self.prepare(samples, events))

    def prepare(
        self, samples: Sequence[StoredSample], events: Sequence[StoredEvent] = (), *, validated: bool = False
    ) -> PreparedBatch:
        """Check the batch and encode its request bodies (line protocol, gzip when configured)."""
        if not samples and not events:
            return PreparedBatch(samples, events, [])
        check_batch(samples, events, checker=self.checker, validated=validated)
        with self._lock:
            lines = self._sample_lines(samples) + [self._event_line(e) for e in events]
        bodies = []
        for start in range(0, len(lines), self.batch_size):
            body = "\n".join(lines[start : start + self.batch_size]).encode()
            bodies.append(gzip.compress(body, compresslevel=1) if self.gzip_body else body)
        return PreparedBatch(samples, events, bodies)

    def write_prepared(self, batch: PreparedBatch) -> None:
        """Send the request bodies of a batch this store prepared.

        StoreUnavailable when InfluxDB could not be reached or could not serve it (retry later);
        StoreRefused when it refused points for good (see :func:`refusal`), naming the item of the
        line it could not parse when it quoted one. Bodies sent before a failure stay stored.
        """
        bodies = batch.encoded
        if not isinstance(bodies, list):
            raise TypeError("write_prepared takes a batch prepared by an InfluxStore")
        for number, body in enumerate(bodies):
            try:
                self._post_body(body)
            except StoreRefused as exc:
                first = number * self.batch_size
                index = self._quoted_item(batch, first, exc.reason)
                raise StoreRefused(exc.reason[:MAX_REASON_CHARS], index) from None

    def _post_body(self, body: bytes) -> None:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip_body:
            headers["Content-Encoding"] = "gzip"
        params = {"db": self.database, "precision": "ms"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        for _ in range(2):
            response = self._request("POST", "/write", "write", params=params, content=body, headers=headers)
            if response.status_code == 204:
                return
            error = _error_of(response)
            if response.status_code == 404 and "database not found" in error and self.create_database:
                self.ensure_database()  # StoreUnavailable when it cannot: an operator must create it
                continue
            break
        message = f"InfluxDB at {self.url} refused the write ({response.status_code}): {error}"
        if refusal(response.status_code, error):
            raise StoreRefused(message)
        raise StoreUnavailable(message)

    def _quoted_item(self, batch: PreparedBatch, first: int, error: str) -> int | None:
        """The item whose line InfluxDB quoted as unparseable, when exactly one line holds the quote."""
        fragments = unparsable_lines(error)
        if not fragments:
            return None
        with self._lock:
            lines = self._sample_lines(batch.samples) + [self._event_line(e) for e in batch.events]
        lines = lines[first : first + self.batch_size]
        for fragment in fragments:
            holders = [i for i, line in enumerate(lines) if fragment in line]
            if len(holders) == 1:
                return first + holders[0]
        return None

    # -- reading ---------------------------------------------------------------------------------

    def _from(self, measurement: str) -> str:
        if self.retention_policy:
            return ".".join(map(quote_ident, (self.database, self.retention_policy, measurement)))
        return quote_ident(measurement)

    def _from_kinds(self, kind: DeviceKind | None) -> str:
        kinds = [kind] if kind is not None else list(DeviceKind)
        return ",".join(self._from(k.value) for k in kinds)

    def query(self, query: SeriesQuery) -> list[Point]:
        """Points of a time range, ordered by device, metric, time."""
        if not query.metrics or query.end_ms <= query.start_ms:
            return []
        metrics = list(dict.fromkeys(query.metrics))
        where = [f"time >= {int(query.start_ms)}ms", f"time < {int(query.end_ms)}ms"]
        where += _tag_filter(query.compound, query.devices)
        if query.window_ms is None:
            select = ",".join(quote_ident(m) for m in metrics)
            group = 'GROUP BY "device"'
        else:
            if query.window_ms <= 0:
                raise ValueError(f"window_ms must be positive, got {query.window_ms}")
            if query.aggregation is Aggregation.DIFFERENCE:
                select = ",".join(
                    f"last({quote_ident(m)}) - first({quote_ident(m)}) AS {quote_ident(m)}" for m in metrics
                )
            else:
                func = _INFLUXQL_FUNC[query.aggregation]
                select = ",".join(f"{func}({quote_ident(m)}) AS {quote_ident(m)}" for m in metrics)
            group = f'GROUP BY time({int(query.window_ms)}ms), "device" fill(none)'
        q = f"SELECT {select} FROM {self._from(query.kind.value)} WHERE {' AND '.join(where)} {group}"
        count = query.window_ms is not None and query.aggregation is Aggregation.COUNT
        out: list[Point] = []
        for s in self._select(q):
            device = s.tags.get("device", "")
            index = {c: i for i, c in enumerate(s.columns)}
            for metric in metrics:
                i = index.get(metric)
                if i is None:
                    continue
                for row in s.values:
                    value = row[i]
                    # count() answers 0 for a metric absent from a window that other metrics fill
                    if value is None or (count and value == 0):
                        continue
                    out.append(Point(device, metric, int(row[0]), float(value)))
        out.sort(key=lambda p: (p.device, p.metric, p.ts_ms))
        if query.window_ms is None:
            # a reading rewritten after its device's tags changed sits in two series: show it once
            out = [p for i, p in enumerate(out) if i == 0 or (p.device, p.metric, p.ts_ms) != (
                out[i - 1].device, out[i - 1].metric, out[i - 1].ts_ms)]  # fmt: skip
        return out

    def _field_keys(self, kind: DeviceKind | None) -> dict[str, list[str]]:
        """Metric fields of each kind's measurement."""
        q = f"SHOW FIELD KEYS FROM {self._from_kinds(kind)}"
        out: dict[str, list[str]] = {}
        for s in self._select(q):
            keys = [row[0] for row in s.values if row[0] != "flagged"]
            out.setdefault(s.name, []).extend(keys)
        return out

    def latest(
        self, *, compound: str | None = None, devices: Sequence[str] = (), kind: DeviceKind | None = None
    ) -> list[Latest]:
        """Last value of each metric and the last-seen time (newest reading) per device."""
        fields = self._field_keys(kind)
        statements: list[tuple[str, str]] = []
        where = _tag_filter(compound, devices)
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        for measurement, metrics in sorted(fields.items()):
            for metric in metrics:
                statements.append((measurement, metric))
        if not statements:
            return []
        q = ";".join(
            f'SELECT last({quote_ident(m)}) FROM {self._from(meas)}{cond} GROUP BY "device","compound"'
            for meas, m in statements
        )
        found: dict[str, dict[str, Any]] = {}
        for s in self._select(q):
            measurement, metric = statements[s.statement]
            device = s.tags.get("device", "")
            for ts, value in s.values:
                if value is None:
                    continue
                entry = found.setdefault(
                    device,
                    {"device": device, "kind": DeviceKind(measurement), "compound": s.tags.get("compound", ""),
                     "last_seen_ms": int(ts), "values": {}, "_ts": {}},
                )  # fmt: skip
                if int(ts) >= entry["_ts"].get(metric, -1):
                    entry["values"][metric] = float(value)
                    entry["_ts"][metric] = int(ts)
                if int(ts) >= entry["last_seen_ms"]:
                    entry["last_seen_ms"] = int(ts)
                    entry["compound"] = s.tags.get("compound", "")
        out = []
        for device in sorted(found):
            entry = found[device]
            entry.pop("_ts")
            entry["values"] = dict(sorted(entry["values"].items()))
            out.append(Latest(**entry))
        return out

    def events(
        self,
        start_ms: int,
        end_ms: int,
        *,
        compound: str | None = None,
        devices: Sequence[str] = (),
        kind: DeviceKind | None = None,
    ) -> list[StoredEvent]:
        """Events in a time range, ordered by time, device, then event name."""
        if end_ms <= start_ms:
            return []
        where = [f"time >= {int(start_ms)}ms", f"time < {int(end_ms)}ms", *_tag_filter(compound, devices)]
        if kind is not None:
            where.append(f'"kind" = {quote_string(kind.value)}')
        q = f"SELECT * FROM {self._from(EVENTS_MEASUREMENT)} WHERE {' AND '.join(where)}"
        out: list[StoredEvent] = []
        for s in self._select(q):
            for row in s.values:
                r = dict(zip(s.columns, row, strict=True))
                active = r.get("active")
                out.append(
                    StoredEvent(
                        Event(
                            device=r["device"],
                            kind=DeviceKind(r["kind"]),
                            ts_ms=int(r["time"]),
                            name=r["event"],
                            active=None if active is None else bool(active),
                            attrs=orjson.loads(r.get("attrs") or "{}"),
                        ),
                        compound=r["compound"],
                        tags={k: r[k] for k in sorted(EXTRA_TAG_KEYS) if r.get(k)},
                    )
                )
        out.sort(key=lambda e: (e.event.ts_ms, e.event.device, e.event.name))
        return out

    def _counts(self, compound: str | None, kind: DeviceKind | None, group: str) -> list[_Series]:
        where = _tag_filter(compound, ())
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        return self._select(f"SELECT count(*) FROM {self._from_kinds(kind)}{cond}{group}")

    def series(self, *, compound: str | None = None, kind: DeviceKind | None = None) -> list[SeriesKey]:
        """Stored series, ordered by device then metric."""
        keys: set[SeriesKey] = set()
        for s in self._counts(compound, kind, ' GROUP BY "device","compound"'):
            for row in s.values:
                for column, value in zip(s.columns, row, strict=True):
                    if column.startswith("count_") and column != "count_flagged" and value:
                        keys.add(
                            SeriesKey(s.tags.get("compound", ""), s.tags.get("device", ""),
                                      DeviceKind(s.name), column.removeprefix("count_"))
                        )  # fmt: skip
        return sorted(keys, key=lambda k: (k.device, k.metric, k.compound))

    def count_readings(self, *, compound: str | None = None) -> int:
        """Number of stored readings (metric values)."""
        total = 0
        for s in self._counts(compound, None, ""):
            for row in s.values:
                for column, value in zip(s.columns, row, strict=True):
                    if column.startswith("count_") and column != "count_flagged" and value:
                        total += int(value)
        return total

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


def _tag_filter(compound: str | None, devices: Sequence[str]) -> list[str]:
    where = []
    if compound is not None:
        where.append(f'"compound" = {quote_string(compound)}')
    if devices:
        where.append("(" + " OR ".join(f'"device" = {quote_string(d)}' for d in dict.fromkeys(devices)) + ")")
    return where


def refusal(status: int, error: str) -> bool:
    """Whether an answer to a write is a permanent refusal of its points (else: retry later).

    Permanent: 400, 413, 422, and 404 "database not found" (when the store may not create it).
    Transient: everything else, notably 401/403 (credentials) and another 404 (a wrong URL): the
    points are fine and an operator fixes the cause, so they are kept and sent again, not refused.
    """
    return status in _REFUSED_STATUS or (status == 404 and "database not found" in error)


def unparsable_lines(error: str) -> list[str]:
    """The lines InfluxDB quotes in "unable to parse '<line>': <why>" (non-empty ones)."""
    out = []
    for chunk in error.split("unable to parse '")[1:]:
        line, found, _ = chunk.rpartition("': ")
        if found and line:
            out.append(line)
    return out


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("error", body)) if isinstance(body, dict) else str(body)[:300]
