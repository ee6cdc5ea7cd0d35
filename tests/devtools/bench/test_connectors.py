"""The connector benchmarks run and print the figures they measured."""

from __future__ import annotations

import re

from click.testing import CliRunner

from sitewatch.cli import main


def _figure(output: str, label: str) -> float:
    match = re.search(rf"{re.escape(label)}\s*│\s*([\d,.]+)", output)
    assert match, output
    return float(match.group(1).replace(",", ""))


def test_bench_modbus() -> None:
    args = ["--lang", "en", "bench", "modbus", "--devices", "40", "--hung", "5", "--interval", "0.2", "--timeout", "0.2",
            "--duration", "1"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert _figure(result.output, "polls/s asked for") == 200.0
    assert _figure(result.output, "polls/s reached") > 100  # hung devices do not stall the others
    assert _figure(result.output, "devices with readings") == 40
    assert _figure(result.output, "timeouts counted") >= 5


def test_bench_ocpp() -> None:
    result = CliRunner().invoke(main, ["--lang", "en", "bench", "ocpp", "--chargers", "3", "--duration", "1"])
    assert result.exit_code == 0, result.output
    assert _figure(result.output, "charge points connected") == 3
    calls = _figure(result.output, "MeterValues answered/s")
    assert calls > 10
    assert abs(_figure(result.output, "readings/s") - 5 * calls) <= 5  # five values per MeterValues call
