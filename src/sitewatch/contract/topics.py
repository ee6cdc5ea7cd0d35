"""The MQTT topic scheme: one versioned root, one compound and one gateway per topic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

TOPIC_ROOT = "sitewatch/v1"
HOST_STATE_TOPIC = f"{TOPIC_ROOT}/_host/state"  # retained: is the central ingest online?
DEADLETTER_TOPIC = f"{TOPIC_ROOT}/_deadletter"  # rejected input, with the reason

# Compound codes and gateway ids are topic levels: no '/', '+', '#', no leading '$' or '_'.
CODE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}"
DEVICE_LOCAL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"
_CODE_RE = re.compile(CODE_PATTERN)  # always fullmatch: "$" would allow a final newline


class Channel(StrEnum):
    """What a gateway topic carries."""

    DATA = "data"  # batched readings, QoS 1
    EVENT = "event"  # device events, QoS 1
    STATE = "state"  # birth/death, retained, QoS 1
    CMD = "cmd"  # commands to the gateway (rebirth, reload), QoS 1
    STATS = "stats"  # the gateway's counters, retained, QoS 1 (additive in schema version 1)


@dataclass(frozen=True, slots=True)
class TopicParts:
    """A parsed gateway topic."""

    compound: str
    gateway: str
    channel: Channel


def is_code(value: str) -> bool:
    """Whether ``value`` is a valid compound code or gateway id."""
    return isinstance(value, str) and _CODE_RE.fullmatch(value) is not None


def topic(compound: str, gateway: str, channel: Channel) -> str:
    """Topic of one gateway's channel; raises ValueError on an invalid code."""
    if not is_code(compound) or not is_code(gateway):
        raise ValueError(f"invalid compound code {compound!r} or gateway id {gateway!r}")
    return f"{TOPIC_ROOT}/{compound}/{gateway}/{channel.value}"


def subscription(channel: Channel, compound: str = "+", gateway: str = "+") -> str:
    """Topic filter for a channel of all (or one compound's) gateways."""
    return f"{TOPIC_ROOT}/{compound}/{gateway}/{channel.value}"


def shared(group: str, topic_filter: str) -> str:
    """MQTT 5 shared subscription of ``topic_filter`` for worker group ``group``."""
    if not is_code(group):
        raise ValueError(f"invalid shared subscription group {group!r}")
    return f"$share/{group}/{topic_filter}"


def parse_topic(value: str) -> TopicParts | None:
    """Split a gateway topic into its parts, or None if it is not one."""
    prefix = TOPIC_ROOT + "/"
    if not value.startswith(prefix):
        return None
    parts = value[len(prefix) :].split("/")
    if len(parts) != 3 or not is_code(parts[0]) or not is_code(parts[1]):
        return None
    try:
        channel = Channel(parts[2])
    except ValueError:
        return None
    return TopicParts(parts[0], parts[1], channel)
