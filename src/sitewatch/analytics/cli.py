"""``sitewatch analytics``: the live service and the offline tools."""

from __future__ import annotations

import click

from .cli_run import run


@click.group()
def analytics() -> None:
    """Analytics: findings from readings and events, live and on history."""


analytics.add_command(run)
