"""``sitewatch analytics evaluate``: the rules replayed over a backfill, scored against its labels."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--history",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A `simulate backfill` output directory.",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Rules file replacing the shipped rules (default: SITEWATCH_ANALYTICS__RULES_FILE).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(history: Path, rules_file: Path | None, as_json: bool) -> None:
    """Replay a backfill through the rules as the live service would, and score the findings."""
    raise click.ClickException("not yet")
