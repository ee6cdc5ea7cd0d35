"""``sitewatch query`` for analytics and KPIs, through the real CLI, on both backends."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sitewatch.cli import main
from sitewatch.contract import DeviceKind
from sitewatch.settings import load_settings
from sitewatch.store import Store, open_store

from .conftest import event, sample
from .test_queries import DAY0, MIN, H, water_meter_day

CH, GW = DeviceKind.CHARGER, DeviceKind.GATEWAY
DAY = ["--since", "2024-03-05T00:00", "--until", "2024-03-06T00:00", "--tz", "Asia/Shanghai"]


@pytest.fixture(params=["embedded", pytest.param("influxdb", marks=pytest.mark.integration)])
def configured(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """An empty store that `sitewatch` is configured to read: embedded, then InfluxDB."""
    monkeypatch.setenv("SITEWATCH_DATA_DIR", str(tmp_path))
    if request.param == "influxdb":
        service = request.getfixturevalue("influxdb")
        monkeypatch.setenv("SITEWATCH_STORE__BACKEND", "influxdb")
        monkeypatch.setenv("SITEWATCH_STORE__INFLUX_URL", service.url)
        monkeypatch.setenv("SITEWATCH_STORE__INFLUX_DATABASE", request.getfixturevalue("influx_database"))
    store = open_store(load_settings())
    yield store
    store.close()


def run(*args: str) -> Result:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["--lang", "en", "query", *args])
    assert result.exit_code == 0, result.output
    return result


def rows(result: Result) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_water_meter_day_hourly_increase_in_shanghai_sums_to_the_day(configured: Store) -> None:
    items, truth = water_meter_day()
    configured.write(items)
    hourly = rows(run("series", "C1-WM001", "--metric", "volume_register", "--agg", "increase", "--window", "1h",
                      *DAY, "--csv"))  # fmt: skip
    assert len(hourly) == 24 and hourly[0]["window"].startswith("2024-03-05T00:00:00.000+08:00")
    assert sum(float(r["increase"]) for r in hourly) == pytest.approx(truth)
    daily = rows(run("series", "C1-WM001", "-m", "volume_register", "--agg", "increase", "--window", "1d", *DAY,
                     "--csv"))  # fmt: skip
    assert [float(r["increase"]) for r in daily] == pytest.approx([truth])
    table = run("series", "C1-WM001", "-m", "volume_register", "--agg", "increase", "--window", "1h", *DAY)
    assert "increase / 1h · Asia/Shanghai" in table.output and "2024-03-05 12:00:00" in table.output


def test_aggregate_grouped_by_compound_and_building(configured: Store) -> None:
    for device, compound, building in (("C1-WM001", "C1", "B1"), ("C1-WM002", "C1", "B2"), ("C2-WM001", "C2", "B1")):
        items, _ = water_meter_day(device)
        configured.write([sample(s.sample.device, s.sample.ts_ms, dict(s.sample.values), compound=compound,
                                 kind=DeviceKind.WATER_METER, tags={"building": building}) for s in items])  # fmt: skip
    _, truth = water_meter_day()
    got = rows(run("aggregate", "-m", "volume_register", "--agg", "increase", "--window", "1d",
                   "--group-by", "compound,building", *DAY, "--csv"))  # fmt: skip
    assert [(r["compound"], r["building"], r["devices"]) for r in got] == [
        ("C1", "B1", "1"), ("C1", "B2", "1"), ("C2", "B1", "1")]  # fmt: skip
    assert [float(r["sum_of_increase"]) for r in got] == pytest.approx([truth] * 3)
    city = rows(run("aggregate", "-m", "volume_register", "--agg", "increase", "--group-by", "", *DAY, "--csv"))
    assert [(float(r["sum_of_increase"]), r["devices"]) for r in city] == [(pytest.approx(3 * truth), "3")]
    table = run("aggregate", "-m", "volume_register", "--agg", "count", "--kind", "water_meter", *DAY)
    assert "grouped by compound" in table.output and "sum of count" in table.output
    zh = CliRunner().invoke(main, ["--lang", "zh_CN", "query", "aggregate", "-m", "volume_register", *DAY])
    assert zh.exit_code == 0 and "窗口起点" in zh.output and "设备数" in zh.output
    bad = CliRunner().invoke(main, ["--lang", "en", "query", "aggregate", "-m", "x", "--group-by", "owner"])
    assert bad.exit_code == 2 and "cannot group by owner" in bad.output


def _chargers(store: Store) -> None:
    store.write(
        [sample(f"C1-CH00{i}", DAY0, {"power": 7.0}, kind=CH, tags={"building": "B1"}) for i in (1, 2, 3)],
        [
            event("C1-CH001", DAY0 - 2 * H, "faulted", kind=CH, active=True, tags={"building": "B1"}),
            event("C1-CH001", DAY0 + 4 * H, "faulted", kind=CH, active=False, tags={"building": "B1"}),
            event("C1-CH002", DAY0 + 18 * H, "faulted", kind=CH, active=True, tags={"building": "B1"}),
            event("C1-CH003", DAY0 + 1 * H, "session_started", kind=CH, tags={"building": "B1"}),
        ],
    )


def test_events_by_name_and_still_active(configured: Store) -> None:
    _chargers(configured)
    faulted = rows(run("events", "--event", "faulted", *DAY, "--csv"))
    assert [(r["device"], r["active"]) for r in faulted] == [("C1-CH001", "false"), ("C1-CH002", "true")]
    active = rows(run("events", "--event", "faulted", "--active", *DAY[2:], "--csv"))
    assert [(r["device"], int(r["ts_ms"])) for r in active] == [("C1-CH002", DAY0 + 18 * H)]
    critical = rows(run("events", "--severity", "critical", "--limit", "1", *DAY, "--csv"))
    assert [r["event"] for r in critical] == ["faulted"]


def test_uptime_per_day_per_device_and_per_building(configured: Store) -> None:
    _chargers(configured)
    per_device = rows(run("uptime", "--event", "faulted", "--window", "1d", *DAY, "--csv"))
    assert [(r["device"], r["devices"], float(r["active_s"])) for r in per_device] == [
        ("C1-CH001", "1", 4 * 3600.0),  # active since before the day: counted from midnight
        ("C1-CH002", "1", 6 * 3600.0),  # still active at the end of the day
        ("C1-CH003", "1", 0.0),
    ]
    assert [round(float(r["uptime_percent"]), 3) for r in per_device] == [83.333, 75.0, 100.0]
    building = rows(run("uptime", "--event", "faulted", "--group-by", "building", *DAY, "--csv"))
    assert [(r["building"], r["devices"], r["uptime_percent"]) for r in building] == [("B1", "3", "86.111")]
    table = run("uptime", "--event", "faulted", "--window", "6h", *DAY)
    assert "faulted active (h)" in table.output and "83.33%" not in table.output and "33.33%" in table.output
    wrong = CliRunner().invoke(main, ["--lang", "en", "query", "uptime", "--event", "session_started"])
    assert wrong.exit_code == 2 and "not a stateful event" in wrong.output


def test_gateways_online_since_and_counters(configured: Store) -> None:
    configured.write(
        [sample("C1-GW01", DAY0 + 5 * MIN, {"sent": 10.0, "acknowledged": 9.0}, kind=GW)],
        [event("C1-GW01", DAY0, "online", kind=GW, attrs={"bdseq": "3"}),
         event("C2-GW01", DAY0 + H, "offline", kind=GW, compound="C2", attrs={"bdseq": "1"})],
    )  # fmt: skip
    table = run("gateways", "--tz", "Asia/Shanghai")
    assert "1 of 2 gateways online" in table.output
    assert "2024-03-05 00:00:00" in table.output and "sent=10" in table.output
    got = rows(run("gateways", "--csv"))
    assert [(r["device"], r["online"], r["bdseq"], r["counters"]) for r in got] == [
        ("C1-GW01", "true", "3", "acknowledged=9;sent=10"), ("C2-GW01", "false", "1", "")]  # fmt: skip
