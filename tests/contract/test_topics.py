"""Topic scheme: building, parsing and refusing topics."""

from __future__ import annotations

import pytest

from sitewatch.contract import Channel, device_belongs_to, device_id, parse_topic, shared, subscription, topic


def test_topic_round_trip() -> None:
    t = topic("330102-0001", "330102-0001-GW01", Channel.DATA)
    assert t == "sitewatch/v1/330102-0001/330102-0001-GW01/data"
    parts = parse_topic(t)
    assert parts is not None and (parts.compound, parts.gateway, parts.channel) == (
        "330102-0001",
        "330102-0001-GW01",
        Channel.DATA,
    )


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "", "_host", "$SYS", "x" * 41])
def test_codes_that_would_break_topics_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        topic(bad, "gw", Channel.DATA)


@pytest.mark.parametrize(
    "value",
    [
        "sitewatch/v1/_host/state",
        "sitewatch/v1/_deadletter",
        "sitewatch/v1/a/b/c/data",
        "sitewatch/v1/a/b/nope",
    ],
)
def test_non_gateway_topics_do_not_parse(value: str) -> None:
    assert parse_topic(value) is None


def test_subscriptions_and_shared_groups() -> None:
    assert subscription(Channel.EVENT) == "sitewatch/v1/+/+/event"
    assert shared("ingest", subscription(Channel.DATA)) == "$share/ingest/sitewatch/v1/+/+/data"
    with pytest.raises(ValueError):
        shared("a/b", "x")


def test_device_ids_belong_to_their_compound() -> None:
    d = device_id("330102-0001", "EL0003")
    assert d == "330102-0001-EL0003"
    assert device_belongs_to(d, "330102-0001")
    assert not device_belongs_to(d, "330102-000")
    assert not device_belongs_to("330102-0001-", "330102-0001")
    with pytest.raises(ValueError):
        device_id("330102-0001", "bad/id")
