"""The CLI: one entry point whose help lists the components, and the contract listing."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from sitewatch.cli import main


def test_help_lists_subcommands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("bench", "contract"):
        assert name in result.output


def test_every_listed_subcommand_has_help() -> None:
    runner = CliRunner()
    names = main.list_commands(None)  # type: ignore[arg-type]
    for name in names:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_contract_kinds_shows_units_and_chinese() -> None:
    result = CliRunner().invoke(main, ["contract", "kinds", "water_meter"])
    assert result.exit_code == 0
    assert "volume_register" in result.output and "水表" in result.output


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sitewatch", "--version"], capture_output=True, text=True, check=True
    )
    assert "sitewatch" in out.stdout
