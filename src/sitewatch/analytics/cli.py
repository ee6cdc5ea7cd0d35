"""``sitewatch analytics``: rules, detectors and models."""

from __future__ import annotations

import click

from .cli_detectors import detectors_cmd, score_cmd, train_cmd


@click.group()
def analytics() -> None:
    """Find faults in the readings: detectors, models, rules."""


analytics.add_command(detectors_cmd)
analytics.add_command(score_cmd)
analytics.add_command(train_cmd)
