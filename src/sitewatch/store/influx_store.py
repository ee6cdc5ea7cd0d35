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
from typing import Any

import httpx
import orjson

from ..contract import DeviceKind
from ..http_client import release
from ..settings import StoreSettings
from .base import PreparedBatch, StoredEvent, StoredSample, StoreRefused, StoreUnavailable
from .checks import check_batch, store_checker
from .influx_queries import InfluxQueries
from .influxql import EVENTS_MEASUREMENT, Series, quote_ident

log = logging.getLogger(__name__)

_TAG_ESCAPE = str.maketrans({",": "\\,", " ": "\\ ", "=": "\\="})
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Refusals of a write that depend on what it carries: the same points are refused again, however
# often they are sent (400: a line InfluxDB cannot parse, a field type conflict, points beyond the
# retention policy; 413: a request too large; 422: InfluxDB 2.x's unprocessable points).
_REFUSED_STATUS = frozenset({400, 413, 422})
MAX_REASON_CHARS = 1000  # of InfluxDB's message kept in a StoreRefused (it quotes whole lines)


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


class InfluxStore(InfluxQueries):
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
        query_timeout_s: float = 300.0,
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
        # a query answers once computed: months of readings may take minutes; connecting may not
        self.query_timeout = httpx.Timeout(query_timeout_s, connect=timeout_s)
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
            query_timeout_s=settings.influx_query_timeout_s,
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

    def _select(self, q: str) -> list[Series]:
        """Series of the answer to ``q`` (chunks merged); an unknown database answers nothing."""
        merged: dict[tuple[int, str, tuple[tuple[str, str], ...]], Series] = {}
        for part in self._series_of(self._query_lines(q)):
            key = (part.statement, part.name, tuple(sorted(part.tags.items())))
            if key in merged:
                merged[key].values.extend(part.values)
            else:
                merged[key] = part
        return list(merged.values())

    def _stream(self, q: str) -> Iterator[Series]:
        """Series parts of the answer to ``q`` as InfluxDB sends them (a series may come in parts)."""
        return self._series_of(self._query_lines(q))

    def _series_of(self, results: Iterator[dict[str, Any]]) -> Iterator[Series]:
        for result in results:
            error = result.get("error")
            if error:
                if str(error).startswith("database not found"):
                    return
                raise StoreUnavailable(f"InfluxDB at {self.url} refused the query: {error}")
            statement = int(result.get("statement_id", 0))
            for s in result.get("series", []):
                yield Series(
                    statement, s.get("name", ""), s.get("tags") or {}, s["columns"], s.get("values", [])
                )

    def _query_lines(self, q: str) -> Iterator[dict[str, Any]]:
        """Run InfluxQL; yield each statement result as its chunk arrives (bounded memory)."""
        data = {"q": q, "db": self.database, "epoch": "ms", "chunked": "true", "chunk_size": "10000"}
        delay = self.backoff_s
        sent = False  # once part of the answer was given, a failure is not retried (no repeats)
        for attempt in range(self.retries + 1):
            try:
                with self._client.stream("POST", "/query", data=data, timeout=self.query_timeout) as response:
                    try:
                        if response.status_code in _RETRY_STATUS and attempt < self.retries:
                            response.read()
                        elif response.status_code >= 400:
                            response.read()
                            raise StoreUnavailable(
                                f"InfluxDB at {self.url} refused the query ({response.status_code}): "
                                f"{_error_of(response)}"
                            )
                        else:
                            for line in _json_lines(response.iter_bytes()):
                                if line.strip():
                                    body = orjson.loads(line)
                                    if "error" in body:
                                        raise StoreUnavailable(
                                            f"InfluxDB at {self.url} refused the query: {body['error']}"
                                        )
                                    sent = True
                                    yield from body.get("results", [])
                            return
                    finally:
                        response.close()
                        release(response)  # no reference cycle left holding the request
            except httpx.TransportError as exc:
                if attempt >= self.retries or sent:
                    raise StoreUnavailable(f"InfluxDB at {self.url} unavailable for query: {exc}") from exc
                log.warning("InfluxDB query at %s failed (attempt %s): %s", self.url, attempt + 1, exc)
            time.sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)

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

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


def _json_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The lines of a chunked answer, split at newline bytes only (a JSON string may hold U+2028 or
    U+0085, which text line splitting would cut at)."""
    parts: list[bytes] = []
    for chunk in chunks:
        while (cut := chunk.find(b"\n")) >= 0:
            parts.append(chunk[:cut])
            yield b"".join(parts)
            parts, chunk = [], chunk[cut + 1 :]
        if chunk:
            parts.append(chunk)
    if parts:
        yield b"".join(parts)


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
