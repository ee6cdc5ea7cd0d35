"""The gateway.yaml snippets in docs/gateway.md are valid configuration."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sitewatch.gateway.config import EXAMPLE, build_connectors, parse_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_configuration_reference_example_validates() -> None:
    full = [b for b in _yaml_blocks() if b.startswith("compound:")]
    assert full, "docs/gateway.md lost its gateway.yaml example"
    config = parse_config(yaml.safe_load(full[0]))
    assert config.queue.budget_bytes == 1024**3 and config.mqtt.tls


def test_the_connectors_example_builds_every_connector() -> None:
    blocks = [b for b in _yaml_blocks() if b.startswith("connectors:") and "type: synthetic" not in b]
    assert blocks
    data = {"compound": "330102-0007", "gateway": "330102-0007-GW01", **yaml.safe_load(blocks[0])}
    connectors = build_connectors(parse_config(data))
    assert sorted(type(c).__name__ for c in connectors) == [
        "CameraConnector", "ModbusConnector", "MqttBridgeConnector", "OcppConnector",
    ]  # fmt: skip


def test_the_printed_example_builds() -> None:
    connectors = build_connectors(parse_config(yaml.safe_load(EXAMPLE)))
    assert [c.name for c in connectors] == ["demo-meters"] and len(connectors[0].devices()) == 5
