"""Commands a gateway accepts on its ``cmd`` topic: JSON ``{"command": "rebirth" | "reload"}``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import orjson

MAX_COMMAND_BYTES = 4096


class CommandName(StrEnum):
    """What the centre can ask a gateway to do."""

    REBIRTH = "rebirth"  # publish the birth message again (e.g. after the centre lost its state)
    RELOAD = "reload"  # re-read gateway.yaml, restart the connectors, publish a new birth


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed, valid command."""

    name: CommandName


class CommandError(ValueError):
    """A command was refused; the message says why."""


def parse_command(payload: bytes) -> Command:
    """Parse a command payload or raise CommandError with the reason."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandError(f"command of {len(payload)} bytes exceeds {MAX_COMMAND_BYTES}")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise CommandError(f"command is not JSON: {payload[:80]!r}") from None
    if not isinstance(body, dict):
        raise CommandError(f"command must be a JSON object, got {type(body).__name__}")
    if body.get("v", 1) != 1:
        raise CommandError(f"command schema version {body.get('v')!r} not supported (expected 1)")
    name = body.get("command")
    try:
        return Command(CommandName(str(name)))
    except ValueError:
        known = ", ".join(c.value for c in CommandName)
        raise CommandError(f"unknown command {str(name)[:40]!r}; known: {known}") from None
