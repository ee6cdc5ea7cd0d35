"""`sitewatch dashboards verify` on a real InfluxDB filled with a simulated day of one compound.

The backfill (`simulate backfill --faults all`, one compound, one day) is loaded with the store's
loader after two additions a backfill does not make: the registry's building of each device as the
`building` tag (one building named with regex metacharacters, sorted first so that verify selects
it and Grafana's escaping is exercised), and what ingest's liveness consumer stores for a gateway
(counters every minute, births and deaths) plus a few flagged samples and one fault still active
at the end, so that no panel is left without data to read.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from sitewatch.cli import main
from sitewatch.contract import DeviceKind, Event, Sample, gateway_device
from sitewatch.dashboards.provisioning import Built, build_all
from sitewatch.dashboards.queries import InfluxQLQuery, Probe
from sitewatch.dashboards.verify import Influx, verify
from sitewatch.devtools.services import InfluxDBService
from sitewatch.i18n import using
from sitewatch.store import StoredEvent, StoredSample
from sitewatch.store.influx_store import InfluxStore
from sitewatch.store.loader import load_backfill

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# regex metacharacters, a slash, a quote and what looks like a variable; sorts before the digits, so
# verify selects it
SPECIAL = "(东区).A|1/栋'$compound"
GATEWAY = "220106-0001-GW01"


def _with_buildings(directory: Path) -> None:
    devices = pq.read_table(directory / "devices.parquet").to_pylist()
    building = {d["device"]: (SPECIAL if d["building"] == "1" else f"{d['building']}号楼") if d["building"] else ""
                for d in devices}  # fmt: skip
    readings = pq.read_table(directory / "readings.parquet")
    column = readings.column("device").combine_chunks()
    names = pa.array([building.get(n, "") for n in column.dictionary.to_pylist()])
    readings = readings.append_column("building", pa.DictionaryArray.from_arrays(column.indices, names))
    pq.write_table(readings, directory / "readings.parquet")
    events = pq.read_table(directory / "events.parquet")
    events = events.append_column("building", pa.array([building.get(d, "") for d in events.column("device").to_pylist()]))
    pq.write_table(events, directory / "events.parquet")


def _liveness(compound: str, start_ms: int, end_ms: int) -> tuple[list[StoredSample], list[StoredEvent]]:
    device = gateway_device(compound, GATEWAY)
    samples = []
    for n, ts in enumerate(range(start_ms, end_ms, 60_000)):
        values = {"uptime": 60.0 * n, "queue_depth": float(n % 7 * 100), "queue_bytes": float(n % 7 * 4000),
                  "read_total": 500.0 * n, "sent_total": 498.0 * n, "acked_total": 497.0 * n,
                  "replayed_total": 10.0 * (n // 60), "dropped_total": float(n // 600),
                  "connector_errors_total": float(n // 120), "devices_online": 430.0}  # fmt: skip
        samples.append(StoredSample(Sample(device, DeviceKind.GATEWAY, ts, values), compound))
    events = [
        StoredEvent(Event(device=device, kind=DeviceKind.GATEWAY, ts_ms=end_ms - 7_200_000, name="offline",
                          attrs={"bdseq": "3"}), compound),
        StoredEvent(Event(device=device, kind=DeviceKind.GATEWAY, ts_ms=end_ms - 7_100_000, name="online",
                          attrs={"bdseq": "4"}), compound),
        # a charger fault raised shortly before the end and not cleared: the city's active faults
        StoredEvent(Event(device=f"{compound}-CH0001", kind=DeviceKind.CHARGER, ts_ms=end_ms - 600_000,
                          name="faulted", active=True, attrs={"error_code": "GroundFailure"}), compound),
    ]  # fmt: skip
    unknown = [
        StoredSample(Sample(f"{compound}-WM99999", DeviceKind.WATER_METER, ts, {"volume_register": 1.0 + ts / 1e12}),
                     compound, flagged=True)
        for ts in range(end_ms - 3_600_000, end_ms, 300_000)
    ]  # fmt: skip
    return samples + unknown, events


@pytest.fixture(scope="module")
def filled(influxdb: InfluxDBService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(InfluxDB URL, database) holding the day."""
    where = tmp_path_factory.mktemp("dash")
    runner = CliRunner()
    city = runner.invoke(main, ["simulate", "city", "--compounds", "1", "--out", str(where / "city.xlsx")])
    assert city.exit_code == 0, city.output
    made = runner.invoke(main, ["simulate", "backfill", "--ledger", str(where / "city.xlsx"), "--days", "1",
                                "--faults", "all", "--start", "2024-03-05", "--out", str(where / "h")])  # fmt: skip
    assert made.exit_code == 0, made.output
    _with_buildings(where / "h")
    database = f"dash_{os.getpid()}"
    store = InfluxStore(influxdb.url, database)
    try:
        loaded = load_backfill(where / "h", store)
        assert loaded.readings > 500_000
        compound = str(pq.read_table(where / "h" / "devices.parquet").column("compound")[0])
        start = 1_709_568_000_000  # 2024-03-05 00:00 +08:00
        samples, events = _liveness(compound, start, start + 86_400_000 - 60_000)
        store.write(samples, events)
        yield influxdb.url, database
    finally:
        store.close()


def _verify(url: str, database: str, *extra: str) -> Any:
    result = CliRunner().invoke(main, ["--lang", "en", "dashboards", "verify", "--influx-url", url,
                                       "--database", database, *extra])  # fmt: skip
    return result


def test_every_panel_of_every_dashboard_answers(filled: tuple[str, str]) -> None:
    result = _verify(*filled)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert not [line for line in lines if line.startswith("FAIL")]
    # each dashboard ran in both languages, each building-scoped one with All and with a building
    for folder in ("zh-CN", "en"):
        for slug in ("city", "compound", "elevator", "charger", "streetlight", "camera", "water", "ingest"):
            assert any(f" {folder}/{slug}.json " in line and line.startswith("OK") for line in lines), slug
    assert any("building=All" in line for line in lines)
    assert any(f"building={SPECIAL}" in line and line.startswith("OK") for line in lines)
    # with every kind, gateway and fault present, only panels scoped to a building that has no such
    # device or event (chargers and lamps stand outside buildings), and flagged readings of the
    # kinds that have none (only water meters were flagged) come back empty
    empty = [line for line in lines if line.startswith("EMPTY")]
    flagged = re.compile(r"ingest\.json  (Readings of unknown devices|未知设备的读数) \[[ABCD]\]")
    unexplained = [line for line in empty if f"building={SPECIAL}" not in line and not flagged.search(line)]
    assert not unexplained, "\n".join(unexplained)
    assert sum(bool(flagged.search(line)) for line in empty) == 2 * 4
    assert all("no such data in the store" in line for line in empty)
    assert " 0 failed" in lines[-1]


def test_queries_are_expanded_as_grafana_sends_them(filled: tuple[str, str]) -> None:
    result = _verify(*filled)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    queries = [line.strip() for line in lines if line.startswith("         ")]
    assert len(queries) == sum(1 for line in lines if line[:2] in ("OK", "EM"))
    text = "\n".join(queries)
    # nothing left to expand (the building's own "$compound" stays, escaped, and is not expanded)
    assert not re.search(r"(?<!\\)\$(timeFilter|__interval|compound|building)", text)
    # a multi-value variable: escaped as Grafana's escapeRegex does, in parentheses
    assert '"building" =~ /^(\\(东区\\)\\.A\\|1\\/栋\'\\$compound)$/' in text
    assert '"building" =~ /^.*$/' in text  # the custom all value, as it is
    assert '"compound" =~ /^220106-0001$/' in text  # reads as a number (parseFloat): not escaped
    # the range is the day ending at the newest point: 2024-03-05 23:59 +08:00 is 15:59 UTC
    ends = {int(end) for end in re.findall(r"time <= (\d+)ms", text)}
    assert len(ends) == 1 and 1_709_654_340_000 <= ends.pop() < 1_709_654_400_000
    by_panel = {_panel(line): query for line, query in zip(
        [line for line in lines if line[:2] in ("OK", "EM")], queries, strict=True)}  # fmt: skip
    # 7 days over 1,000 points: 604.8 s, which Grafana rounds to 10m, above the panel's 5m minimum
    assert "GROUP BY time(10m)" in by_panel["Lamps on against ambient light [A]"]
    # 1 day: 86.4 s rounds to 1m, below the panel's 15m minimum, which wins
    assert "GROUP BY time(15m)" in by_panel["Free storage, per camera [A]"]


def test_every_panel_answers_over_a_short_range_that_meets_no_window_boundary(filled: tuple[str, str]) -> None:
    # 8.5 hours inside one local day, starting and ending off every window: a panel that needs two
    # daily windows (a difference between days) would come back empty here
    result = _verify(*filled, "--from", "2024-03-05T11:33:33.333+08:00", "--to", "2024-03-05T20:07:41.001+08:00")
    assert result.exit_code == 0, "\n".join(line for line in result.output.splitlines() if "FAIL" in line)
    assert " 0 failed" in result.output.splitlines()[-1]


def _panel(line: str) -> str:
    match = re.search(r"\.json  (.*?\[\w+\])", line)
    assert match, line
    return match.group(1)


def _broken(query: str, probe: Probe) -> Any:
    def targets(built: Built) -> Any:
        panel = {"id": 1, "title": "broken"}
        yield panel, InfluxQLQuery("A", query, probe)

    return targets


@pytest.mark.parametrize(
    ("query", "probe", "why"),
    [
        # a misspelt field: InfluxDB answers nothing, though the elevators report (in the hostile
        # building too: the probe compares its value as written, "$compound" in it included)
        ('SELECT mean("vibration") FROM "elevator" WHERE $timeFilter AND "compound" =~ /^$compound$/ '
         'AND "building" =~ /^$building$/ GROUP BY time($__interval)',
         Probe("elevator", "vibration_rms", (), ("compound", "building")), "empty, although"),
        # a variable compared as a string where Grafana escaped it for a regex
        ('SELECT count("trip_count") FROM "elevator" WHERE $timeFilter AND "building" = \'$building\'',
         Probe("elevator", "trip_count", (), ("compound", "building")), "empty, although"),
        # InfluxQL that does not parse
        ('SELECT mean("trip_count" FROM "elevator" WHERE $timeFilter', Probe("elevator", "trip_count"), "error parsing"),
    ],
)  # fmt: skip
def test_a_wrong_query_fails(filled: tuple[str, str], query: str, probe: Probe, why: str) -> None:
    url, database = filled
    influx = Influx(url, database)
    try:
        compound_board = next(b for b in build_all() if b.board.slug == "elevator")
        with using("en"):
            report = verify(influx, [compound_board], targets_of=_broken(query, probe))
    finally:
        influx.close()
    broken = [c for c in report.checks if c.panel == "broken"]
    # with the building at All and at the hostile building (whose quote breaks a string literal: an
    # error of its own), each fails; the probe compares that value as written
    assert len(broken) == 2 and all(c.failed for c in broken) and any(why in c.detail for c in broken), broken
    if "vibration" in query:
        assert all(why in c.detail for c in broken), broken


def test_an_empty_database_is_refused(influxdb: InfluxDBService) -> None:
    result = _verify(influxdb.url, f"nothing_{os.getpid()}")
    assert result.exit_code == 1
    assert "holds no data" in result.output


def test_an_unreachable_influxdb_and_bad_times_are_refused_clearly() -> None:
    result = _verify("http://127.0.0.1:9", "sitewatch")
    assert result.exit_code == 1 and "unreachable" in result.output
    for bad, why in (("yesterday", "not an ISO 8601 time"), ("2024-03-05T00:00", "no UTC offset")):
        result = _verify("http://127.0.0.1:9", "sitewatch", "--to", bad)
        assert result.exit_code == 2 and why in result.output, result.output
    result = _verify("http://127.0.0.1:9", "sitewatch", "--from", "2024-03-05T00:00Z", "--to", "2024-03-04T00:00Z")
    assert result.exit_code == 2 and "--from must be before --to" in result.output


@pytest.mark.parametrize(("status", "body", "why"), [
    (200, b"<html>not InfluxDB</html>", "could not list its measurements"),
    (401, b'{"error":"authorization failed"}', "refused the credentials (401)"),
    (200, b'{"results":[{"statement_id":0,"error":"' + b"x" * 100_000 + b'"}]}', "could not list its measurements"),
])  # fmt: skip
def test_a_server_that_is_not_a_working_influxdb_is_reported(status: int, body: bytes, why: str) -> None:
    class Answer(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = _verify(f"http://127.0.0.1:{server.server_address[1]}", "sitewatch")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1 and why in result.output, result.output[:300]
    assert len(result.output) < 2_000  # a huge answer is cut, not echoed
