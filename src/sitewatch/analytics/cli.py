"""``sitewatch analytics``: the command group of analytics.

This module defines the group; the commands live in sibling modules (``cli_evaluate.py``,
``cli_run.py``, ``cli_detectors.py``) and are added below with one ``add_command`` line each.
"""

from __future__ import annotations

import click

from .cli_detectors import detectors_cmd, score_cmd, train_cmd
from .cli_evaluate import evaluate
from .cli_run import run


@click.group()
def analytics() -> None:
    """Rules and detectors that turn readings into findings; their evaluation against ground truth."""


analytics.add_command(run)
analytics.add_command(evaluate)
analytics.add_command(detectors_cmd)
analytics.add_command(score_cmd)
analytics.add_command(train_cmd)
