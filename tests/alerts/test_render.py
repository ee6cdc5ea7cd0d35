"""Notification text: times in the one ``timezone`` setting."""

from __future__ import annotations

import datetime as dt

from sitewatch.alerts import render
from sitewatch.alerts.models import Alert
from sitewatch.settings import load_settings


def _alert() -> Alert:
    return Alert(id=7, fingerprint="f" * 16, state="firing", severity="critical", compound="C0001",
                 device="C0001-EL0001", kind="elevator", fault="entrapment", source="rule:x", crew="CR01",
                 labels={"compound_name": "幸福1小区"}, message="Passenger trapped in {device}",
                 params={"device": "C0001-EL0001"}, started_at=dt.datetime(2026, 3, 1, 23, 30),
                 fired_at=dt.datetime(2026, 3, 1, 23, 30), updated_at=dt.datetime(2026, 3, 1, 23, 30))  # fmt: skip


def test_times_in_messages_follow_the_top_level_timezone() -> None:
    assert render.local(dt.datetime(2026, 3, 1, 23, 30), load_settings()) == "2026-03-02 07:30:00"  # Asia/Shanghai
    utc = load_settings(timezone="UTC")
    assert render.local(dt.datetime(2026, 3, 1, 23, 30), utc) == "2026-03-01 23:30:00"
    item = render.Item(_alert(), "firing")
    payload = render.group_payload([item], receiver="r", group_key="k", group_labels={}, mentions=[],
                                   settings=load_settings(timezone="America/New_York"), language="en")  # fmt: skip
    assert "2026-03-01 18:30:00" in payload["text"]
    assert payload["webhook"]["alerts"][0]["startsAt"] == "2026-03-01T23:30:00Z"  # Alertmanager's times stay UTC
