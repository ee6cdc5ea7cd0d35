"""Every YAML example in docs/gateway-connectors.md builds a connector (the docs cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sitewatch.gateway.connectors.base import ConnectorContext, build_connector

DOC = Path(__file__).resolve().parents[2] / "docs" / "gateway-connectors.md"


def test_yaml_examples_build() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 4
    built = []
    for block in blocks:
        for spec in yaml.safe_load(block)["connectors"]:
            connector = build_connector(spec, ConnectorContext(compound="220104-0003", gateway="gw01"))
            assert connector.devices(), spec["type"]
            assert all(d.device.startswith("220104-0003-") for d in connector.devices())
            built.append(connector.name)
    assert built == ["modbus", "ocpp", "cameras", "streetlights"]
