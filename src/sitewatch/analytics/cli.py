"""``sitewatch analytics``: the command group of analytics.

This module defines the group and ``evaluate``; other analytics commands live in sibling modules
(``cli_score.py``, ``cli_run.py``, ...) and are added below with one ``add_command`` line each.
"""

from __future__ import annotations

import click

from .cli_evaluate import evaluate
from .cli_run import run


@click.group()
def analytics() -> None:
    """Rules and detectors that turn readings into findings; their evaluation against ground truth."""


analytics.add_command(evaluate)
analytics.add_command(run)
