"""Rules files: the shipped defaults load, and every mistake is named with its file, rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitewatch.analytics.rules import RulesError, load_rules, parse_duration, parse_rules


def test_shipped_rules_load() -> None:
    rules = load_rules()
    assert len(rules.rules) > 20
    types = {r.type for r in rules.rules}
    shipped = {
        "threshold",
        "state",
        "rate",
        "counter",
        "count",
        "streak",
        "dip",
        "step",
        "no_data",
        "daynight",
        "event",
        "demand",
        "change",
        "load_temperature",
    }
    assert types == shipped


@pytest.mark.parametrize(
    ("text", "ms"),
    [("10m", 600_000), ("90s", 90_000), ("1.5h", 5_400_000), ("2d", 172_800_000), (30, 30_000)],
)
def test_durations(text: str | int, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("bad", ["10 minutes", "-5m", "", True, 10**9, "1e3d"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules: [{name: a, kind: elevator, type: threshold, metric: nope, above: 1}]",
            "rule 'a': metric: 'nope'",
        ),
        (
            "rules: [{name: b, kind: elevator, type: threshold, metric: vibration_rms, above: 1, clear: 2}]",
            "rule 'b'",
        ),
        (
            "rules: [{name: c, kind: elevator, type: threshold, metric: vibration_rms, above: 1, for: soon}]",
            "rule 'c': for",
        ),
        ("rules: [{name: d, kind: toaster, type: state, metric: x, states: [on]}]", "rule 'd': kind"),
        ("rules: [{name: e, kind: elevator, type: state, metric: run_state, states: [flying]}]", "'flying'"),
        ("rules: [{name: f, kind: camera, type: event, exclude: [explode]}]", "'explode'"),
        ("rules: [{name: g, kind: camera, type: magic}]", "rule 'g'"),
        ("rules: [{name: h, kind: camera, type: no_data, interval: 60s, colour: red}]", "rule 'h': colour"),
        (
            "rules: [{name: i, kind: camera, type: no_data, interval: 60s}, {name: i, kind: camera, type: no_data, interval: 60s}]",
            "used twice",
        ),
        (
            "rules: [{name: j, kind: water_meter, type: counter, metric: volume_register, mode: stopped}]",
            "stopped_for",
        ),
        (
            "rules: [{name: k, kind: camera, type: threshold, metric: bitrate, above: 1, devices: '(['}]",
            "regular expression",
        ),
        (
            "rules: [{name: l, kind: charger, type: streak, metric: status, attempt: [Preparing], fail: [Parked]}]",
            "rule 'l': fail: 'Parked' is not a state of status",
        ),
        (
            "rules: [{name: m, kind: charger, type: streak, metric: power, attempt: [Preparing], fail: [Finishing]}]",
            "rule 'm': metric: 'power' is not a state metric",
        ),
        (
            "rules: [{name: n, kind: charger, type: streak, metric: status, attempt: [Preparing], "
            "fail: [Preparing, Finishing]}]",
            "both begin an attempt and fail it",
        ),
        (
            "rules: [{name: o, kind: charger, type: streak, metric: status, attempt: [], fail: [Finishing]}]",
            "rule 'o': attempt",
        ),
        ("- just\n- a list", "expected a mapping"),
        ("rules: [unclosed", "not valid YAML"),
    ],
)
def test_mistakes_are_named(text: str, expected: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules(text, "my-rules.yaml")
    assert str(err.value).startswith("my-rules.yaml: ")
    assert expected in str(err.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "absent.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RulesError):
        load_rules(tmp_path / "bin.yaml")
