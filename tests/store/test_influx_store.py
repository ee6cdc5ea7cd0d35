"""InfluxStore beyond the shared suite: outages, retries, database creation, auth, batching, RPs."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from peertools import cyclic_garbage
from sitewatch.contract import DeviceKind
from sitewatch.devtools.services import InfluxDBService, LocalService
from sitewatch.settings import load_settings
from sitewatch.store import (
    SeriesQuery,
    StoredSample,
    StoreRefused,
    StoreUnavailable,
    influx_store,
    open_store,
)
from sitewatch.store.embedded_store import EmbeddedStore
from sitewatch.store.influx_store import InfluxStore
from sitewatch.store.influxql import quote_string

from .conftest import T0, event, influx_settings, sample

S = 1000


def _batch(n: int, device: str = "C1-EL001") -> list[StoredSample]:
    return [sample(device, T0 + i * S, {"motor_current": float(i), "car_load": 50.0}) for i in range(n)]


# -- against a real InfluxDB ----------------------------------------------------------------------


@pytest.mark.integration
def test_store_unavailable_when_influxdb_is_stopped_then_recovers(
    service_factory: Callable[..., LocalService],
) -> None:
    service = service_factory("influxdb")
    assert isinstance(service, InfluxDBService)
    store = InfluxStore(service.url, "outage", retries=2, backoff_s=0.05, timeout_s=2)
    store.write(_batch(10))
    service.stop()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unavailable for write after 3 attempts"):
        store.write(_batch(20))
    assert time.monotonic() - started < 10  # bounded: retries with backoff, then give up
    with pytest.raises(StoreUnavailable, match="unavailable for query"):
        store.count_readings()
    service.start()
    store.write(_batch(20))  # the caller retries the same batch: stored once
    assert store.count_readings() == 40
    store.close()


@pytest.mark.integration
def test_acknowledged_writes_survive_influxdb_being_killed(
    service_factory: Callable[..., LocalService],
) -> None:
    service = service_factory("influxdb")
    assert isinstance(service, InfluxDBService)
    with InfluxStore(service.url, "crash", retries=1, backoff_s=0.05) as store:
        store.write(_batch(500))
        service.kill()  # SIGKILL right after the 204
        service.start()
        assert store.count_readings() == 1000
        assert store.latest()[0].last_seen_ms == T0 + 499 * S


@pytest.mark.integration
def test_database_created_on_first_write(influxdb: InfluxDBService, influx_database: str) -> None:
    store = InfluxStore(influxdb.url, influx_database)
    assert store.count_readings() == 0  # missing database reads as empty
    store.write(_batch(3))
    names = httpx.post(f"{influxdb.url}/query", data={"q": "SHOW DATABASES"}).json()
    assert [influx_database] in names["results"][0]["series"][0]["values"]
    assert store.count_readings() == 6
    store.close()


@pytest.mark.integration
def test_a_write_leaves_no_garbage_for_the_cyclic_collector(
    influxdb: InfluxDBService, influx_database: str
) -> None:
    # ingest runs the cyclic collector rarely: a cycle per request would hold its body until then
    store = InfluxStore(influxdb.url, influx_database)
    store.write(_batch(3))  # the database exists, the connection is open
    with cyclic_garbage() as left:
        for i in range(5):
            store.write(_batch(1000, device=f"C1-EL1{i:02d}"))
        assert store.count_readings() == 6 + 5 * 2000
    assert not [name for name in left if name.startswith(("httpx", "httpcore"))], left[:10]
    store.close()


@pytest.mark.integration
def test_missing_database_not_created_when_told_not_to(
    influxdb: InfluxDBService, influx_database: str
) -> None:
    store = open_store(influx_settings(influxdb, influx_database), create=False)
    with pytest.raises(StoreRefused, match="database not found"):  # no retry creates it
        store.write(_batch(1))
    assert store.latest() == []
    store.close()


@pytest.mark.integration
@pytest.mark.parametrize("gzip_body", [True, False])
def test_batches_split_into_requests(
    influxdb: InfluxDBService, influx_database: str, gzip_body: bool
) -> None:
    store = InfluxStore(influxdb.url, influx_database, batch_size=7, gzip_body=gzip_body)
    store.write(_batch(100), [event("C1-EL001", T0 + i, "door_fault") for i in range(9)])
    assert store.count_readings() == 200
    assert len(store.events(T0, T0 + 10)) == 9
    store.close()


@pytest.mark.integration
def test_retention_policy(influxdb: InfluxDBService, influx_database: str) -> None:
    with InfluxStore(influxdb.url, influx_database) as creator:
        creator.ensure_database()
    q = f'CREATE RETENTION POLICY "week" ON "{influx_database}" DURATION 3650d REPLICATION 1'
    assert "error" not in httpx.post(f"{influxdb.url}/query", data={"q": q}).json()["results"][0]
    settings = influx_settings(influxdb, influx_database, influx_retention_policy="week")
    store = open_store(settings)
    store.write(_batch(5), [event("C1-EL001", T0, "door_fault")])
    assert store.count_readings() == 10
    assert store.latest()[0].values == {"car_load": 50.0, "motor_current": 4.0}
    assert len(store.query(SeriesQuery(DeviceKind.ELEVATOR, ("car_load",), T0, T0 + 10 * S))) == 5
    assert len(store.events(T0, T0 + 1)) == 1
    assert len(store.series()) == 2
    # the points are in the policy "week", not in the default one
    default = InfluxStore(influxdb.url, influx_database)
    assert default.count_readings() == 0
    raw = httpx.post(
        f"{influxdb.url}/query",
        data={"db": influx_database, "q": f'SELECT count(*) FROM "{influx_database}"."week"."elevator"'},
    ).json()
    assert raw["results"][0]["series"][0]["values"][0][1:] == [5, 5]
    store.close()
    default.close()


@pytest.mark.integration
def test_flagged_marker_and_schema(influxdb: InfluxDBService, influx_database: str) -> None:
    store = InfluxStore(influxdb.url, influx_database)
    store.write(
        [sample("C1-EL001", T0, {"motor_current": 1.0}, flagged=True, tags={"building": "B 1"})],
        [event("C1-EL001", T0, "entrapment", active=True, attrs={"floor": "3"})],
    )
    rows = httpx.post(
        f"{influxdb.url}/query",
        data={"db": influx_database, "epoch": "ms",
              "q": "SELECT * FROM elevator; SELECT * FROM events; SHOW TAG KEYS FROM elevator"},
    ).json()["results"]  # fmt: skip
    sample_row = dict(zip(rows[0]["series"][0]["columns"], rows[0]["series"][0]["values"][0], strict=True))
    assert sample_row == {
        "time": T0, "building": "B 1", "compound": "C1", "device": "C1-EL001", "kind": "elevator",
        "flagged": True, "motor_current": 1.0,
    }  # fmt: skip
    event_row = dict(zip(rows[1]["series"][0]["columns"], rows[1]["series"][0]["values"][0], strict=True))
    assert event_row == {
        "time": T0, "active": True, "attrs": '{"floor":"3"}', "compound": "C1", "device": "C1-EL001",
        "event": "entrapment", "kind": "elevator",
    }  # fmt: skip
    assert [r[0] for r in rows[2]["series"][0]["values"]] == ["building", "compound", "device", "kind"]
    store.close()


@pytest.mark.integration
def test_reading_rewritten_after_its_tags_changed(influxdb: InfluxDBService, influx_database: str) -> None:
    store = InfluxStore(influxdb.url, influx_database)
    store.write([sample("C1-EL001", T0, {"motor_current": 1.0})])
    store.write([sample("C1-EL001", T0, {"motor_current": 1.0}, tags={"building": "B1"})])
    # InfluxDB holds it in two series (documented); raw queries and latest show it once
    assert store.count_readings() == 2
    got = store.query(SeriesQuery(DeviceKind.ELEVATOR, ("motor_current",), T0, T0 + 1))
    assert len(got) == 1
    assert len(store.latest()) == 1
    store.close()


@pytest.mark.integration
def test_extreme_float_values_round_trip(influxdb: InfluxDBService, influx_database: str) -> None:
    store = InfluxStore(influxdb.url, influx_database)
    values = [1e16, 1e-7, -123.456, 0.0, 2.0**53, 1.7976931348623157e308]
    store.write([sample("C1-EL001", T0 + i, {"levelling_error": v}) for i, v in enumerate(values)])
    got = store.query(SeriesQuery(DeviceKind.ELEVATOR, ("levelling_error",), T0, T0 + 100))
    assert [p.value for p in got] == values
    store.close()


# -- the HTTP exchange, against an in-memory transport (no server) --------------------------------


class Recorder:
    """An httpx transport answering from a script and recording the requests."""

    def __init__(self, *answers: int | Exception | httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 204
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        body = {"error": "partial write: field type conflict"} if answer == 400 else None
        return httpx.Response(answer, json=body) if body else httpx.Response(answer)


def _store(recorder: Recorder, **kwargs: object) -> InfluxStore:
    args: dict[str, object] = {"backoff_s": 0.001, "transport": httpx.MockTransport(recorder)}
    args.update(kwargs)
    return InfluxStore("http://influx.example:8086", "db", **args)  # type: ignore[arg-type]


def test_retries_with_backoff_then_succeeds() -> None:
    recorder = Recorder(503, httpx.ConnectError("refused"), 429, 204)
    store = _store(recorder, retries=3)
    store.write(_batch(2))
    assert len(recorder.requests) == 4


def test_gives_up_after_retries() -> None:
    recorder = Recorder(*([503] * 10))
    store = _store(recorder, retries=2)
    with pytest.raises(StoreUnavailable, match="after 3 attempts: HTTP 503"):
        store.write(_batch(2))
    assert len(recorder.requests) == 3


def test_refused_write_is_not_retried() -> None:
    recorder = Recorder(400)
    store = _store(recorder, retries=5)
    with pytest.raises(StoreRefused, match="refused the write \\(400\\): partial write") as refused:
        store.write(_batch(2))
    assert len(recorder.requests) == 1
    assert refused.value.index is None  # a type conflict names no line


@pytest.mark.parametrize(
    ("status", "error", "permanent"),
    [
        (400, "partial write: field type conflict: ...", True),
        (400, "unable to parse 'x': missing fields", True),
        (413, "Request Entity Too Large", True),
        (422, "failure writing points to database: partial write: points beyond retention policy", True),
        (404, 'database not found: "x"', True),
        (401, "authorization failed", False),  # credentials: an operator fixes them, the points are fine
        (403, "forbidden", False),
        (404, "page not found", False),  # a wrong URL, not the points
        (405, "method not allowed", False),
    ],
)
def test_which_refusals_are_permanent(status: int, error: str, permanent: bool) -> None:
    recorder = Recorder(httpx.Response(status, json={"error": error}))
    with pytest.raises(StoreRefused if permanent else StoreUnavailable):
        _store(recorder, create_database=False).write(_batch(1))


def test_token_auth_header_and_gzip_line_protocol() -> None:
    recorder = Recorder()
    store = _store(recorder, token="s3cret", retention_policy="autogen")
    store.write([sample("C1-EL001", T0, {"motor_current": 2.5}, tags={"building": "3号楼 东,=x"})])
    (request,) = recorder.requests
    assert request.headers["Authorization"] == "Token s3cret"
    assert request.headers["Content-Encoding"] == "gzip"
    assert dict(request.url.params) == {"db": "db", "precision": "ms", "rp": "autogen"}
    line = gzip.decompress(request.content).decode()
    assert line == (
        "elevator,building=3号楼\\ 东\\,\\=x,compound=C1,device=C1-EL001,kind=elevator "
        f"motor_current=2.5 {T0}"
    )


def test_basic_auth_from_settings() -> None:
    settings = load_settings(
        store={
            "backend": "influxdb",
            "influx_username": "writer",
            "influx_password": "pw",
            "influx_gzip": False,
        }
    )
    store = InfluxStore.from_settings(settings.store)
    assert store.gzip_body is False
    request = store._client.build_request("GET", "/ping")
    flow = store._client._auth.sync_auth_flow(request)  # type: ignore[union-attr]
    assert next(flow).headers["Authorization"].startswith("Basic ")
    store.close()


def test_influxql_string_quoting() -> None:
    assert quote_string("it's a \\ test") == "'it\\'s a \\\\ test'"


def test_line_protocol_of_a_batch_keeps_each_sample_its_own_fields() -> None:
    recorder = Recorder()
    store = _store(recorder, gzip_body=False)
    store.write(
        [
            sample("C1-EL001", T0, {"motor_current": 2.5, "car_load": 10}),  # "10": a float to InfluxDB
            sample("C1-EL002", T0 + 1, {"levelling_error": -0.0}, flagged=True),
            sample("C1-EL001", T0 + 2, {"motor_current": 1e-7}, tags={"building": "B1"}),
        ]
    )
    store.write([sample("C1-EL001", T0 + 3, {"car_load": 2**70, "motor_current": 1e-7})])  # beyond 64 bits
    lines = [line.decode() for request in recorder.requests for line in request.content.splitlines()]
    assert lines == [
        f"elevator,compound=C1,device=C1-EL001,kind=elevator motor_current=2.5,car_load=10 {T0}",
        f"elevator,compound=C1,device=C1-EL002,kind=elevator levelling_error=-0.0,flagged=true {T0 + 1}",
        f"elevator,building=B1,compound=C1,device=C1-EL001,kind=elevator motor_current=1e-7 {T0 + 2}",
        "elevator,compound=C1,device=C1-EL001,kind=elevator "
        f"car_load=1.1805916207174113e+21,motor_current=1e-07 {T0 + 3}",
    ]


@pytest.mark.integration
def test_every_float_text_parses_back_to_the_same_value(
    influxdb: InfluxDBService, influx_database: str
) -> None:
    store = InfluxStore(influxdb.url, influx_database)
    values = [5e-324, 2.2250738585072014e-308, 0.1 + 0.2, -1e-300, 123456789.123456789, 3, 1e22, 1e21]
    store.write([sample("C1-EL001", T0 + i, {"levelling_error": v}) for i, v in enumerate(values)])
    got = store.query(SeriesQuery(DeviceKind.ELEVATOR, ("levelling_error",), T0, T0 + 100))
    assert [p.value for p in got] == [float(v) for v in values]
    store.close()


def test_prepare_needs_no_server_and_write_prepared_refuses_another_stores_batch(tmp_path: Path) -> None:
    dead = InfluxStore("http://127.0.0.1:9", "nowhere", retries=0)  # nothing listens there
    try:
        prepared = dead.prepare([sample("C1-EL001", T0, {"motor_current": 1.0})])
        assert isinstance(prepared.encoded, list) and len(prepared.encoded) == 1
        with pytest.raises(StoreUnavailable):
            dead.write_prepared(prepared)
        embedded = EmbeddedStore(tmp_path / "x.db")
        try:
            with pytest.raises(TypeError, match="prepared by an InfluxStore"):
                dead.write_prepared(embedded.prepare([sample("C1-EL001", T0, {"motor_current": 1.0})]))
        finally:
            embedded.close()
    finally:
        dead.close()


# -- permanent refusals by a real InfluxDB: StoreRefused, the rest of the request stored -------------


def _raw_write(influxdb: InfluxDBService, database: str, body: str) -> None:
    """Line protocol written directly, as another program sharing the database would."""
    answer = httpx.post(f"{influxdb.url}/write", params={"db": database, "precision": "ms"}, content=body)
    assert answer.status_code == 204, answer.text


@pytest.mark.integration
def test_a_field_type_conflict_is_refused_for_good(influxdb: InfluxDBService, influx_database: str) -> None:
    store = InfluxStore(influxdb.url, influx_database)
    store.ensure_database()
    # another program once wrote the metric as an integer: InfluxDB keeps that type for the shard
    _raw_write(
        influxdb, influx_database, f"elevator,compound=C0,device=C0-EL001,kind=elevator car_load=5i {T0}"
    )
    good = [
        sample("C2-WM001", T0 + i, {"flow": 1.5}, compound="C2", kind=DeviceKind.WATER_METER)
        for i in range(5)
    ]
    with pytest.raises(StoreRefused, match="field type conflict") as refused:
        store.write([*good, sample("C1-EL001", T0, {"car_load": 50.0})])
    assert refused.value.index is None  # InfluxDB names the field, not the line
    assert store.count_readings(compound="C2") == 5  # the rest of the request is stored
    store.close()


@pytest.mark.integration
def test_a_line_influxdb_cannot_parse_is_named(
    influxdb: InfluxDBService, influx_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the store's checks refuse this tag (a backslash before a comma) before InfluxDB sees it; with
    # them switched off, InfluxDB's own refusal quotes the line and the store names its item
    monkeypatch.setattr(influx_store, "check_batch", lambda *args, **kwargs: None)
    store = InfluxStore(influxdb.url, influx_database, batch_size=4)
    good = [sample(f"C2-EL{i:03d}", T0, {"car_load": 1.0}, compound="C2") for i in range(10)]
    bad = sample("C1-EL001", T0, {"car_load": 1.0}, tags={"building": "3号楼\\"})
    with pytest.raises(StoreRefused, match="unable to parse") as refused:
        store.write([*good[:5], bad, *good[5:]])  # requests of 4 lines: the bad one is in the second
    assert refused.value.index == 5
    # the first request (4 lines), and the second's other 3 lines; nothing after the refused request
    assert store.count_readings(compound="C2") == 7
    store.close()


@pytest.mark.integration
def test_a_point_beyond_the_retention_policy_is_refused_for_good(
    influxdb: InfluxDBService, influx_database: str
) -> None:
    with InfluxStore(influxdb.url, influx_database) as creator:
        creator.ensure_database()
    q = f'CREATE RETENTION POLICY "hour" ON "{influx_database}" DURATION 1h REPLICATION 1'
    assert "error" not in httpx.post(f"{influxdb.url}/query", data={"q": q}).json()["results"][0]
    store = InfluxStore(influxdb.url, influx_database, retention_policy="hour")
    now = int(time.time() * 1000)
    with pytest.raises(StoreRefused, match="beyond retention policy"):
        store.write(
            [
                sample("C2-EL001", now, {"car_load": 1.0}),
                sample("C1-EL001", now - 3 * 3_600_000, {"car_load": 1.0}),
            ]
        )
    assert store.count_readings() == 1
    store.close()
