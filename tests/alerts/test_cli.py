"""``sitewatch alerts list|show|ack|resolve|silence|unsilence|silences|channel|duty``, with --json."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from sitewatch.alerts.cli import parse_duration
from sitewatch.alerts.core import Alerting
from sitewatch.cli import main

from .conftest import finding
from .harness import Clock, settings


@pytest.fixture
def run(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("SITEWATCH_DATABASE__URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables at full width
    Alerting(sqlite_engine, settings(), clock=Clock()).apply(finding())
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, ["--lang", "en", "alerts", *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_list_show_ack_resolve_as_json(run: object) -> None:
    invoke = run  # type: ignore[assignment]
    listed = json.loads(invoke("list", "--json"))
    assert listed["total"] == 1 and listed["items"][0]["device"] == "C0001-EL0001"
    alert_id = str(listed["items"][0]["id"])
    assert "C0001-EL0001" in invoke("list")
    assert json.loads(invoke("ack", alert_id, "--by", "张工", "--json"))["acknowledged_by"] == "张工"
    assert "only a firing alert can be acknowledged" in invoke("ack", alert_id, code=1)
    resolved = json.loads(invoke("resolve", alert_id, "--reason", "released", "--by", "李工", "--json"))
    assert resolved["state"] == "resolved" and resolved["resolve_reason"] == "released"
    shown = json.loads(invoke("show", alert_id, "--json"))
    assert [h["event"] for h in shown["history"]] == ["fired", "acknowledged", "resolved"]
    assert "history" in invoke("show", alert_id)
    assert "not found" in invoke("show", "999", code=1)


def test_silence_unsilence(run: object) -> None:
    invoke = run  # type: ignore[assignment]
    created = json.loads(invoke("silence", "--compound", "C0001", "--match", "kind=~elevator|camera", "--for", "2h",
                                "--reason", "planned maintenance", "--by", "王经理", "--json"))  # fmt: skip
    assert created["matchers"] == ["kind=~elevator|camera", "compound=C0001"] and created["state"] == "active"
    assert [s["id"] for s in json.loads(invoke("silences", "--json"))] == [created["id"]]
    assert "ended" in invoke("unsilence", str(created["id"]))
    assert json.loads(invoke("silences", "--json")) == []
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    assert "before it starts" in invoke("silence", "--compound", "C0001", "--from", f"{tomorrow}T10:00",
                                        "--until", f"{tomorrow}T09:00", "--reason", "x", code=1)  # fmt: skip
    assert "--until TIME or --for DURATION" in invoke(
        "silence", "--compound", "C0001", "--reason", "x", code=2
    )
    assert "not a matcher" in invoke("silence", "--match", "nonsense", "--for", "1h", "--reason", "x", code=2)


def test_channels_and_duty(run: object) -> None:
    invoke = run  # type: ignore[assignment]
    invoke("channel", "add", "crew2", "--type", "wecom", "--url", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K",
           "--crew", "CR02")  # fmt: skip
    assert "signing secret" in invoke(
        "channel", "add", "dt", "--type", "dingtalk", "--url", "https://x/robot", "--org", "o", code=1
    )
    assert "exactly one" in invoke("channel", "add", "x", "--type", "webhook", "--url", "http://x", code=2)
    [channel] = json.loads(invoke("channel", "list", "--json"))
    assert channel["scope"] == "crew" and channel["escalation_only"] is False and "key=" not in channel["url"]
    invoke(
        "duty",
        "add",
        "CR02",
        "张三",
        "--phone",
        "13700000001",
        "--from",
        f"{dt.date.today() - dt.timedelta(days=5)}T00:00",
        "--until",
        f"{dt.date.today() + dt.timedelta(days=25)}T00:00",
    )
    assert "removed" in invoke("channel", "remove", "crew2")


def test_parse_duration() -> None:
    assert parse_duration("1h30m").total_seconds() == 5400
    assert parse_duration("2d").total_seconds() == 172800
    with pytest.raises(Exception, match="1h30m"):
        parse_duration("soon")
