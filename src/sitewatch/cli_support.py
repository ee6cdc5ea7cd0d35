"""Small helpers shared by the CLI modules: lazy subcommand groups, logging set-up."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Mapping

import click
from rich.logging import RichHandler


class LazyGroup(click.Group):
    """A click group whose subcommands live in other modules and load only when used.

    Subcommands whose module is not part of this installation are not listed.
    """

    def __init__(self, *args: object, lazy: Mapping[str, str] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy or {})

    def _available(self, name: str) -> bool:
        module = self.lazy[name].partition(":")[0]
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            return False

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Eager commands plus the lazy ones that are installed."""
        return sorted({*super().list_commands(ctx), *(n for n in self.lazy if self._available(n))})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Load a lazy command on first use."""
        if cmd_name in self.lazy and self._available(cmd_name):
            module, _, attr = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


def setup_logging(level: str) -> None:
    """Log to stderr through rich, at ``level``."""
    logging.basicConfig(
        level=level.upper(),
        format="%(name)s: %(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
        force=True,
    )
