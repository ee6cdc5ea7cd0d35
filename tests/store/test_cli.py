"""``sitewatch query``, run through the real CLI entry point."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from sitewatch.cli import main
from sitewatch.contract import DeviceKind, now_ms
from sitewatch.devtools.services import InfluxDBService
from sitewatch.store.cli import parse_duration_ms, parse_time_ms
from sitewatch.store.embedded_store import EmbeddedStore
from sitewatch.store.influx_store import InfluxStore

from .conftest import event, sample

MIN = 60_000


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SITEWATCH_DATA_DIR", str(tmp_path))
    return tmp_path


def _fill(store: EmbeddedStore | InfluxStore) -> int:
    """Ten minutes of an elevator and a camera, ending a minute ago; returns the first timestamp."""
    t0 = (now_ms() // MIN - 11) * MIN
    store.write(
        [sample("C1-EL001", t0 + i * MIN, {"motor_current": float(i), "trip_count": 100.0 + 2 * i})
         for i in range(10)]
        + [sample("C1-CA001", t0, {"bitrate": 2048.0}, kind=DeviceKind.CAMERA),
           sample("C2-EL001", t0, {"motor_current": 5.0}, compound="C2")],
        [event("C1-EL001", t0 + MIN, "entrapment", active=True, attrs={"floor": "3"})],
    )  # fmt: skip
    return t0


def _csv(output: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(output)))


def test_missing_store_file_says_what_to_do(data_dir: Path) -> None:
    runner = CliRunner()
    en = runner.invoke(main, ["--lang", "en", "query", "latest"])
    assert en.exit_code == 1
    assert f"no data in {data_dir / 'readings.db'}: run `sitewatch demo` first" in en.output
    zh = runner.invoke(main, ["--lang", "zh_CN", "query", "series", "X"])
    assert zh.exit_code == 1 and "请先运行 `sitewatch demo`" in zh.output
    assert not (data_dir / "readings.db").exists()  # reading never creates the file


def test_series_raw_and_aggregated(data_dir: Path) -> None:
    with EmbeddedStore(data_dir / "readings.db") as store:
        t0 = _fill(store)
    runner = CliRunner()
    raw = runner.invoke(
        main, ["query", "series", "C1-EL001", "-m", "motor_current", "--since", "1h", "--csv"]
    )
    assert raw.exit_code == 0, raw.output
    rows = _csv(raw.stdout)
    assert [(int(r["ts_ms"]), float(r["value"])) for r in rows] == [
        (t0 + i * MIN, float(i)) for i in range(10)
    ]
    window = runner.invoke(
        main,
        ["query", "series", "C1-EL001", "-m", "trip_count", "--window", "5m", "--agg", "increase", "--csv"],
    )
    assert window.exit_code == 0, window.output
    steps = {int(r["ts_ms"]): float(r["increase"]) for r in _csv(window.stdout)}
    # 5-minute windows from local midnight: with the steps between windows, they add up to the rise
    assert sum(steps.values()) == pytest.approx(18.0)
    assert all(ts % (5 * MIN) == 0 for ts in steps)
    table = runner.invoke(main, ["--lang", "zh_CN", "query", "series", "C1-EL001", "--limit", "3"])
    assert table.exit_code == 0, table.output
    assert "指标" in table.output and "加装电梯" in table.output and "trip_count" in table.output
    assert "仅显示最后 3 行，共 20 行" in table.output


def test_series_errors(data_dir: Path) -> None:
    with EmbeddedStore(data_dir / "readings.db") as store:
        _fill(store)
    runner = CliRunner()
    unknown = runner.invoke(main, ["--lang", "en", "query", "series", "C9-EL404"])
    assert unknown.exit_code == 1 and "no data for device C9-EL404" in unknown.output
    metric = runner.invoke(main, ["--lang", "en", "query", "series", "C1-EL001", "-m", "nope"])
    assert metric.exit_code == 1 and "has no metric nope (it has: motor_current, trip_count)" in metric.output
    bad_time = runner.invoke(main, ["query", "series", "C1-EL001", "--since", "yesterday"])
    assert bad_time.exit_code == 2 and "neither a duration" in bad_time.output
    bad_window = runner.invoke(main, ["--lang", "en", "query", "series", "C1-EL001", "--window", "5 parsecs"])
    assert bad_window.exit_code == 2 and "is not a window" in bad_window.output
    old = runner.invoke(
        main, ["--lang", "en", "query", "series", "C1-EL001", "--since", "3h", "--until", "2h"]
    )
    assert old.exit_code == 0 and "no data in the selected time range" in old.output


def test_latest_series_list_events_count(data_dir: Path) -> None:
    path = data_dir / "other.db"
    with EmbeddedStore(path) as store:
        t0 = _fill(store)
    runner = CliRunner()
    base = ["--path", str(path)]
    latest = runner.invoke(main, ["query", "latest", "--compound", "C1", "--csv", *base])
    assert latest.exit_code == 0, latest.output
    assert [(r["device"], r["metric"], r["value"]) for r in _csv(latest.stdout)] == [
        ("C1-CA001", "bitrate", "2048"),
        ("C1-EL001", "motor_current", "9"),
        ("C1-EL001", "trip_count", "118"),
    ]
    table = runner.invoke(main, ["--lang", "en", "query", "latest", *base])
    assert "last seen" in table.output and "motor_current=9 A" in table.output and "C2-EL001" in table.output
    listing = runner.invoke(main, ["query", "series-list", "--kind", "elevator", "--csv", *base])
    assert [(r["device"], r["metric"]) for r in _csv(listing.stdout)] == [
        ("C1-EL001", "motor_current"), ("C1-EL001", "trip_count"), ("C2-EL001", "motor_current"),
    ]  # fmt: skip
    zh_list = runner.invoke(main, ["--lang", "zh_CN", "query", "series-list", *base])
    assert "曳引电机电流" in zh_list.output
    events = runner.invoke(main, ["query", "events", "--csv", *base])
    assert [(int(r["ts_ms"]), r["event"], r["active"], r["attrs"]) for r in _csv(events.stdout)] == [
        (t0 + MIN, "entrapment", "true", "floor=3")
    ]
    zh_events = runner.invoke(main, ["--lang", "zh_CN", "query", "events", *base])
    assert "困人" in zh_events.output and "发生" in zh_events.output
    count = runner.invoke(main, ["--lang", "en", "query", "count", *base])
    assert count.exit_code == 0 and "22 readings in" in count.output
    count_zh = runner.invoke(main, ["--lang", "zh_CN", "query", "count", "--compound", "C2", *base])
    assert "共有 1 条读数" in count_zh.output


def test_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "readme.txt"
    path.write_text("hello " * 200)
    result = CliRunner().invoke(main, ["--lang", "en", "query", "latest", "--path", str(path)])
    assert result.exit_code == 1
    assert (
        "the time-series store is unavailable" in result.output
        and "not a usable sitewatch store" in result.output
    )


def test_help_of_every_command() -> None:
    runner = CliRunner()
    for command in ([], ["series"], ["latest"], ["series-list"], ["events"], ["count"]):
        result = runner.invoke(main, ["query", *command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


@pytest.mark.integration
def test_query_reads_influxdb(
    influxdb: InfluxDBService, influx_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with InfluxStore(influxdb.url, influx_database) as store:
        _fill(store)
    monkeypatch.setenv("SITEWATCH_STORE__BACKEND", "influxdb")
    monkeypatch.setenv("SITEWATCH_STORE__INFLUX_URL", influxdb.url)
    monkeypatch.setenv("SITEWATCH_STORE__INFLUX_DATABASE", influx_database)
    result = CliRunner().invoke(main, ["query", "latest", "--device", "C2-EL001", "--csv"])
    assert result.exit_code == 0, result.output
    assert [(r["device"], r["value"]) for r in _csv(result.stdout)] == [("C2-EL001", "5")]


def test_influxdb_down_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from sitewatch.devtools.services import free_port

    monkeypatch.setenv("SITEWATCH_STORE__BACKEND", "influxdb")
    monkeypatch.setenv("SITEWATCH_STORE__INFLUX_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("SITEWATCH_STORE__INFLUX_TIMEOUT_S", "1")
    result = CliRunner().invoke(main, ["--lang", "en", "query", "count"])
    assert result.exit_code == 1
    assert "the time-series store is unavailable: InfluxDB at http://127.0.0.1" in result.output


def test_duration_and_time_parsing() -> None:
    assert parse_duration_ms("1h30m") == 5_400_000
    assert parse_duration_ms("500ms") == 500
    assert parse_duration_ms("2d") == 172_800_000
    for bad in ("", "5", "h", "1x", "0s", "-1h"):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)
    assert parse_time_ms("now", 10_000_000) == 10_000_000
    assert parse_time_ms("1m", 10_000_000) == 10_000_000 - 60_000
    assert parse_time_ms("2026-01-01T00:00:00+08:00", 0) == 1_767_196_800_000


def test_bench_store_prints_figures_it_measured() -> None:
    import json

    result = CliRunner().invoke(
        main, ["bench", "store", "--devices", "5", "--samples", "4", "--batch", "50", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)["embedded"]
    assert figures["readings"] == figures["stored"] == 5 * 4 * 9
    assert figures["first_write_readings_per_s"] > 0 and figures["rewrite_readings_per_s"] > 0
    text = CliRunner().invoke(main, ["bench", "store", "--devices", "2", "--samples", "2"])
    assert "embedded direct write:" in text.output and "36 of 36 readings stored" in text.output
