"""``sitewatch gateway`` commands: example, check (with clear errors), status."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sitewatch.cli import main
from sitewatch.gateway.config import GatewayConfigError, build_connectors, load_config
from sitewatch.gateway.queue import DiskQueue, Item, Kind


def test_example_is_a_valid_configuration(tmp_path: Path) -> None:
    runner = CliRunner()
    example = runner.invoke(main, ["gateway", "example"])
    assert example.exit_code == 0
    path = tmp_path / "gateway.yaml"
    path.write_text(example.output)
    for lang, phrase in (("en", "configuration valid"), ("zh_CN", "配置有效")):
        result = runner.invoke(main, ["--lang", lang, "gateway", "check", "--config", str(path)])
        assert result.exit_code == 0, result.output
        assert phrase in result.output and "demo-meters" in result.output
    assert load_config(path).queue.path == tmp_path / "gateway-queue.db"  # relative to the file


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("compound: C1\n", ["gateway", "required"]),
        ("compound: C1\ngateway: G1\nqueue: {budget_bytes: 10}\n", ["queue.budget_bytes"]),
        ("compound: C1\ngateway: G1\nqueue: {budget_bytes: lots}\n", ["queue.budget_bytes", "512 MiB"]),
        ("compound: C1\ngateway: G1\nmqtt: {url: 'http://x'}\n", ["mqtt.url", "mqtt://"]),
        ("compound: C1\ngateway: G1\nmqttt: {}\n", ["mqttt", "unknown field"]),
        ("compound: 'C/1'\ngateway: G1\n", ["compound", "not a valid code"]),
        (
            "compound: C1\ngateway: G1\nconnectors: [{type: teleport}]\n",
            ["connectors", "entry 0", "unknown connector type"],
        ),
        ("compound: C1\ngateway: G1\nconnectors: [{name: x}]\n", ["connectors", "no 'type'"]),
        (
            "compound: C1\ngateway: G1\nconnectors: [{type: synthetic, interval_s: 0}]\n",
            ["connectors.0", "interval_s"],
        ),
        ("- just\n- a list\n", ["mapping"]),
        ("compound: [\n", ["not valid YAML"]),
    ],
)
def test_check_names_the_offending_field(tmp_path: Path, text: str, names: list[str]) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["--lang", "en", "gateway", "check", "--config", str(path)])
    assert result.exit_code == 1
    for name in names:
        assert name in result.output, result.output
    with pytest.raises(GatewayConfigError):
        build_connectors(load_config(path))


def test_check_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--lang", "en", "gateway", "check", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1 and "cannot read" in result.output
    zh = CliRunner().invoke(main, ["--lang", "zh_CN", "gateway", "check", "--config", str(tmp_path / "nope.yaml")])
    assert zh.exit_code == 1 and "无法读取文件" in zh.output


def test_status_shows_the_queue_and_saved_counters(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"compound": "C1", "gateway": "C1-GW1", "queue": {"path": "q.db"}}))
    runner = CliRunner()
    assert runner.invoke(main, ["gateway", "status", "--config", str(path)]).exit_code == 1  # no queue yet
    queue = DiskQueue(tmp_path / "q.db", 10**6)
    queue.put([Item(Kind.SAMPLE, "C1-WM1", 3, b'{"x":1}')] * 4)
    queue.next_bdseq()
    queue.save_meta("counters", {"read": 12, "dropped": 0, "meters.reads": 4, "live_latency_p50_ms": 3})
    queue.close()
    result = runner.invoke(main, ["--lang", "en", "gateway", "status", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "queued readings" in result.output and "12" in result.output and "meters.reads" in result.output
    assert "live_latency_p50_ms" in result.output
    zh = runner.invoke(main, ["gateway", "status", "--config", str(path)])
    assert zh.exit_code == 0 and "排队读数" in zh.output


def test_run_refuses_a_bad_file_and_a_queue_in_use(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("compound: C1\ngateway: G1\nqueue: {budget_bytes: 1}\n")
    result = CliRunner().invoke(main, ["--lang", "en", "gateway", "run", "--config", str(path)])
    assert result.exit_code == 1 and "queue.budget_bytes" in result.output
    path.write_text(yaml.safe_dump({"compound": "C1", "gateway": "C1-GW1", "queue": {"path": "q.db"}}))
    holder = DiskQueue(tmp_path / "q.db", 10**6)  # another gateway holds the queue
    try:
        result = CliRunner().invoke(main, ["--lang", "en", "gateway", "run", "--config", str(path)])
    finally:
        holder.close()
    assert result.exit_code == 1 and "in use by another gateway" in result.output
