"""gateway.yaml read with a hostile eye: YAML's surprises and bombs refused clearly and quickly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sitewatch.gateway.config import MAX_CONFIG_CHARS, GatewayConfigError, build_connectors, load_config
from sitewatch.gateway.connectors.mqtt_bridge import MqttBridgeConnector

HEAD = 'compound: "C001"\ngateway: "C001-GW01"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(HEAD + text, encoding="utf-8")
    return path


def test_on_off_yes_no_stay_words_and_booleans_still_read(tmp_path: Path) -> None:
    # YAML 1.1 reads a bare on/off/yes/no as true/false: a JSON field "on" would become the key True
    path = write(
        tmp_path,
        "wait_for_host: yes\n"
        "connectors:\n"
        "  - type: mqtt\n"
        "    topics:\n"
        "      - topic: site/lights/+\n"
        "        kind: streetlight\n"
        "        device: SL-{0}\n"
        "        fields: {on: lamp_on, off: lamp_on, yes: power}\n",
    )
    config = load_config(path)
    assert config.wait_for_host is True  # "yes" is still a yes for a boolean setting
    (connector,) = build_connectors(config)
    assert isinstance(connector, MqttBridgeConnector)
    assert set(connector.mappings[0].fields) == {"on", "off", "yes"}


@pytest.mark.parametrize(
    "bomb",
    [
        # nine lines that expand to a billion values ("billion laughs")
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
        ),
        "a: &a [*a]\n",  # an alias inside itself
    ],
)
def test_alias_bombs_are_refused_at_once(tmp_path: Path, bomb: str) -> None:
    started = time.monotonic()
    with pytest.raises(GatewayConfigError, match="not valid YAML"):
        load_config(write(tmp_path, bomb))
    assert time.monotonic() - started < 5


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = write(tmp_path, "# " + "x" * MAX_CONFIG_CHARS + "\n")
    with pytest.raises(GatewayConfigError, match="more than a gateway configuration holds"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('compound: "C001\\n"\n', "compound"),  # a code with a newline: refused, named
        (
            "connectors: [{type: mqtt, topics: [{topic: a/+, kind: streetlight, device: 'SL-{0}\\n'}]}]\n",
            "device",
        ),
        ("\x00\n", "not valid YAML"),
        ("connectors: {type: ocpp}\n", "connectors"),
    ],
)
def test_broken_files_name_what_is_wrong(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text if text.startswith("compound") else HEAD + text, encoding="utf-8")
    with pytest.raises(GatewayConfigError, match=words):
        build_connectors(load_config(path))
