"""The realism report: every normal-behaviour statistic inside its documented range, in winter and in
summer, for several seeds; July looks like July and January like January."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from sitewatch.cli import main
from sitewatch.simulators.backfill import backfill
from sitewatch.simulators.site import Site
from sitewatch.simulators.stats import DESCRIPTIONS, Realism, realism

SEASONS = {"january": "2026-01-05", "july": "2026-07-06"}
SEEDS = (1, 2, 3)
DAYS = 10


@pytest.fixture(scope="module")
def histories(sites: list[Site], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    """Ten days of the three-compound city, random faults, for each season and seed."""
    out = {}
    for season, day in SEASONS.items():
        start = int(dt.datetime.fromisoformat(day + "T00:00:00+08:00").timestamp() * 1000)
        for seed in SEEDS:
            path = tmp_path_factory.mktemp(f"{season}-{seed}")
            backfill(sites, start, DAYS, path, seed=seed)
            out[(season, seed)] = path
    return out


@pytest.fixture(scope="module")
def reports(histories: dict[tuple[str, int], Path]) -> dict[tuple[str, int], Realism]:
    """The realism report of each history."""
    return {key: realism(path) for key, path in histories.items()}


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("season", SEASONS)
def test_every_statistic_is_in_its_documented_range(season: str, seed: int, reports: dict[tuple[str, int], Realism]) -> None:
    report = reports[(season, seed)]
    assert {s.key for s in report.stats} == set(DESCRIPTIONS)
    assert all(s.source for s in report.stats)
    bad = [(s.key, s.value, s.low, s.high) for s in report.stats if not s.ok]
    assert not bad
    assert report.days == pytest.approx(DAYS, abs=0.01)
    assert report.harmless.get("dropout", 0) > 0 and report.harmless.get("data_gap", 0) > 0


@pytest.mark.slow
def test_july_looks_like_july(reports: dict[tuple[str, int], Realism], histories: dict[tuple[str, int], Path]) -> None:
    for seed in SEEDS:
        summer = {s.key: s.value for s in reports[("july", seed)].stats}
        winter = {s.key: s.value for s in reports[("january", seed)].stats}
        assert summer["sessions_per_day"] > winter["sessions_per_day"]  # more charging
        assert summer["litres_per_person"] > 1.15 * winter["litres_per_person"]  # showers
        assert summer["pressure_p1"] < winter["pressure_p1"]  # the city's summer demand loads the network

        def lamp_share(path: Path) -> float:
            table = pq.read_table(path / "readings.parquet", columns=["value"], filters=[("metric", "=", "lamp_on")])
            return float(table.column("value").to_numpy().mean())

        hours = {s: 24 * lamp_share(histories[(s, seed)]) for s in SEASONS}
        assert hours["january"] - hours["july"] > 5.0  # long winter nights at 43.9° N


def test_the_stats_command(histories: dict[tuple[str, int], Path], tmp_path: Path) -> None:
    runner = CliRunner()
    path = histories[("july", 1)]
    plain = runner.invoke(main, ["--lang", "en", "simulate", "stats", "--history", str(path)],
                          env={"COLUMNS": "200"})  # fmt: skip
    assert plain.exit_code == 0, plain.output
    assert "litres per person a day" in plain.output and "GB 50015" in plain.output
    assert f"{len(DESCRIPTIONS)} of {len(DESCRIPTIONS)} statistics in their reference range" in plain.output
    zh = runner.invoke(main, ["--lang", "zh-CN", "simulate", "stats", "--history", str(path)],
                       env={"COLUMNS": "200"})  # fmt: skip
    assert zh.exit_code == 0 and "每人每天用水" in zh.output
    as_json = runner.invoke(main, ["simulate", "stats", "--history", str(path), "--json"])
    data = json.loads(as_json.output)
    assert {s["key"] for s in data["stats"]} == set(DESCRIPTIONS) and all(s["ok"] for s in data["stats"])
    assert set(data["faults"]["leak"]) >= {"subtle", "moderate", "clear"}
    empty = tmp_path / "not-a-backfill"
    empty.mkdir()
    refused = runner.invoke(main, ["--lang", "en", "simulate", "stats", "--history", str(empty)])
    assert refused.exit_code == 2 and "simulate backfill" in refused.output
