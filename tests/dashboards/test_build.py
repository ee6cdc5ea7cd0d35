"""The committed provisioning is what the code builds; the dashboards' shape; Grafana's expansion rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sitewatch.cli import main
from sitewatch.contract import KINDS
from sitewatch.dashboards.provisioning import build_all, render
from sitewatch.dashboards.queries import DATASOURCE_UID, InfluxQLQuery, Probe, events_of, metric
from sitewatch.dashboards.verify import (
    Selection,
    escape_regex,
    expand,
    format_interval,
    interpolate,
    interval_ms,
    panel_targets,
    round_interval,
    used_in_regex,
)

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "dashboards"


def test_the_committed_files_are_what_the_code_builds() -> None:
    files = render()
    on_disk = {
        str(p.relative_to(COMMITTED)): p.read_text(encoding="utf-8")
        for p in COMMITTED.rglob("*") if p.is_file() and p.suffix in (".json", ".yaml")
        and "compose-spec" not in p.name
    }  # fmt: skip
    stale = sorted(name for name in files if on_disk.get(name) != files[name])
    extra = sorted(set(on_disk) - set(files))
    assert not stale and not extra, (
        f"dashboards/ differs from the code (stale: {stale}, not built: {extra}); "
        "run `sitewatch dashboards build --out dashboards`"
    )


def test_build_writes_the_same_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--lang", "en", "dashboards", "build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"{len(render())} files written" in result.output
    for name, text in render().items():
        assert (tmp_path / name).read_text(encoding="utf-8") == text


def test_provisioning_points_grafana_at_the_folders_and_the_datasource() -> None:
    files = render()
    source = yaml.safe_load(files["provisioning/datasources/sitewatch.yaml"])["datasources"][0]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"
    provider = yaml.safe_load(files["provisioning/dashboards/sitewatch.yaml"])["providers"][0]
    assert provider["options"]["foldersFromFilesStructure"] is True
    assert {name.split("/")[0] for name in files if name.endswith(".json")} == {"zh-CN", "en"}


def test_dashboards_are_complete_and_the_languages_differ_only_in_text() -> None:
    built = build_all()
    uids = [b.model["uid"] for b in built]
    assert len(set(uids)) == len(uids) == 16
    by_slug: dict[str, dict[str, dict]] = {}
    for b in built:
        by_slug.setdefault(b.board.slug, {})[b.language] = b.model
        for panel in b.model["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == DATASOURCE_UID and target["rawQuery"] is True
                assert "$timeFilter" in target["query"]
            assert panel.get("title") and (panel["type"] == "text" or panel.get("description"))
        # every target of the JSON carries a probe in the code
        n_json = sum(len(p.get("targets", [])) for p in b.model["panels"])
        assert n_json == len(list(panel_targets(b))) > 0
    for slug, langs in by_slug.items():
        zh, en = langs["zh_CN"], langs["en"]
        assert zh["title"] != en["title"], slug  # translated
        assert [[t["query"] for t in p.get("targets", [])] for p in zh["panels"]] == [
            [t["query"] for t in p.get("targets", [])] for p in en["panels"]]  # fmt: skip
    texts = json.dumps([b.model for b in built if b.language == "zh_CN"], ensure_ascii=False)
    assert "城市总览" in texts


def test_dashboards_name_only_the_contracts_metrics_and_events() -> None:
    with pytest.raises(ValueError, match="no metric"):
        metric(next(iter(KINDS)), "no_such_metric")
    with pytest.raises(ValueError, match="no such events"):
        events_of(names=("no_such_event",))
    fields = {m for spec in KINDS.values() for m in spec.metrics} | {"attrs", "active", "flagged"}
    for b in build_all():
        for _panel, target in panel_targets(b):
            assert isinstance(target, InfluxQLQuery) and target.probe.field in fields


# -- Grafana's expansion -------------------------------------------------------------------------


def test_values_are_escaped_as_grafanas_influxdb_data_source_does() -> None:
    assert escape_regex("/a.b(c)|d[e]{f}^$*+?\\") == "\\/a\\.b\\(c\\)\\|d\\[e\\]\\{f\\}\\^\\$\\*\\+\\?\\\\"
    assert interpolate("/special/path", multi=False, in_regex=True) == "\\/special\\/path"
    assert interpolate("/special/path", multi=False, in_regex=False) == "/special/path"
    assert interpolate(["/a", "/b"], multi=True, in_regex=False) == "(\\/a|\\/b)"
    assert interpolate(["a.b"], multi=True, in_regex=True) == "(a\\.b)"  # a list, even of one: parentheses
    assert interpolate("12.2", multi=True, in_regex=True) == "12.2"  # parseFloat reads a number
    assert interpolate("3号楼.x", multi=False, in_regex=True) == "3号楼.x"  # so does this one: left as it is
    assert interpolate("东区.3", multi=False, in_regex=True) == "东区\\.3"
    assert used_in_regex('SELECT x FROM m WHERE "c" =~ /^$c$/', "c")
    assert not used_in_regex("SELECT x FROM m WHERE \"c\" = '$c'", "c")
    assert not used_in_regex('SELECT x FROM m WHERE "d" =~ /^a$/ AND "c" = 1', "c")


def test_intervals_are_rounded_as_grafana_does() -> None:
    assert round_interval(86_400) == 60_000  # a day over 1,000 points
    assert round_interval(604_800) == 600_000  # a week
    assert round_interval(21_600) == 20_000  # six hours
    assert round_interval(10**12) == 31_536_000_000
    assert interval_ms(0, 86_400_000, None) == 60_000
    assert interval_ms(0, 86_400_000, "15m") == 900_000  # the panel's minimum wins
    assert interval_ms(0, 3_600_000, None) == 10_000  # the data source's minimum (10s)
    assert [format_interval(ms) for ms in (500, 10_000, 90_000, 7_200_000, 86_400_000 * 7)] == [
        "500ms", "10s", "1m", "2h", "7d"]  # fmt: skip


def test_a_probe_holds_values_as_written() -> None:
    probe = Probe("elevator", "trip_count", ('"kind" = \'elevator\'',), ("compound", "building"))
    text = probe.text({"compound": "C'1", "building": "$compound"}, "time >= 1ms and time <= 2ms")
    assert text == ('SELECT count("trip_count") FROM "elevator" WHERE time >= 1ms and time <= 2ms AND '
                    '"kind" = \'elevator\' AND "compound" = \'C\\\'1\' AND "building" = \'$compound\'')  # fmt: skip
    assert probe.text({"compound": "C", "building": None}, "T").endswith('WHERE T AND "kind" = \'elevator\' AND "compound" = \'C\'')


def test_expand_replaces_variables_time_filter_and_intervals() -> None:
    selections = {
        "compound": Selection("compound", "C-1", "C-1", False),
        "building": Selection("building", ".*", None, True),
    }
    query = ('SELECT mean("x") FROM "m" WHERE $timeFilter AND "compound" =~ /^$compound$/ AND '
             '"building" =~ /^${building}$/ AND "y" = \'$compound\' AND "$undefined" = 1 '
             "GROUP BY time($__interval) LIMIT $__interval_ms")  # fmt: skip
    assert expand(query, selections, 1_000, 2_000, 60_000) == (
        'SELECT mean("x") FROM "m" WHERE time >= 1000ms and time <= 2000ms AND "compound" =~ /^C-1$/ AND '
        '"building" =~ /^.*$/ AND "y" = \'C-1\' AND "$undefined" = 1 GROUP BY time(1m) LIMIT 60000'
    )  # fmt: skip
    hostile = {"compound": Selection("compound", "a/b'c", "a/b'c", False)}
    assert expand('"compound" =~ /^$compound$/', hostile, 0, 1, 1) == '"compound" =~ /^a\\/b\'c$/'
