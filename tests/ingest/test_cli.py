"""``sitewatch ingest`` commands in subprocesses: clear refusals, the dead-letter watcher."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import paho.mqtt.publish as publish
import pytest

from sitewatch.contract import Channel, topic
from sitewatch.devtools.services import MosquittoService
from sitewatch.ingest import IngestService
from sitewatch.settings import MqttProtocol

from .conftest import make_settings
from .traffic import Publisher

pytestmark = pytest.mark.integration


def sitewatch(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sitewatch", *args], env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def subscribed(watcher: subprocess.Popen[str]) -> bool:
    """Read the watcher's stderr up to its "watching" line, which it prints once subscribed."""
    assert watcher.stderr is not None
    return any("watching" in line for line in iter(watcher.stderr.readline, ""))


def test_invalid_shared_group_is_refused_with_a_reason(tmp_path: Path) -> None:
    proc = sitewatch(
        "ingest", "run", "--shared-group", "bad/group", env={"SITEWATCH_DATA_DIR": str(tmp_path)}
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "无法启动摄取服务" in err and "bad/group" in err


def test_a_shared_group_over_mqtt_311_is_refused_with_a_reason(tmp_path: Path) -> None:
    env = {"SITEWATCH_DATA_DIR": str(tmp_path), "SITEWATCH_MQTT__PROTOCOL": "3.1.1"}
    proc = sitewatch("ingest", "run", "--shared-group", "ingest", env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "shared subscriptions need MQTT 5" in err, err


def test_an_unknown_mqtt_protocol_is_refused_with_a_reason(tmp_path: Path) -> None:
    env = {"SITEWATCH_DATA_DIR": str(tmp_path), "SITEWATCH_MQTT__PROTOCOL": "4"}
    proc = sitewatch("ingest", "run", env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "mqtt.protocol" in err and "配置无效" in err, err


def test_invalid_setting_is_refused_with_a_reason(tmp_path: Path) -> None:
    env = {"SITEWATCH_DATA_DIR": str(tmp_path), "SITEWATCH_INGEST__BATCH_READINGS": "0"}
    proc = sitewatch("ingest", "run", env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "ingest.batch_readings" in err and "配置无效" in err


def test_deadletters_command_shows_refused_input(
    mosquitto: MosquittoService,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
) -> None:
    run_ingest(make_settings(mosquitto.url, tmp_path), unique("ingest-cli"))
    watcher = sitewatch(
        "--lang", "en", "ingest", "deadletters", "--count", "1", "--timeout", "30",
        env={"SITEWATCH_MQTT__URL": mosquitto.url},
    )  # fmt: skip
    assert subscribed(watcher)
    compound = unique("D")
    publisher = Publisher(mosquitto.port, unique("pub"))
    publisher.publish_raw(topic(compound, f"{compound}-GW01", Channel.DATA), b"\x00\x01 not json")
    publisher.wait_acked()
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert out.startswith("bad_json (not valid JSON)") and compound in out
    assert "1 rejection(s), 11 bytes: not valid JSON" in out
    publisher.close()


def test_deadletters_command_over_mqtt_311(
    tmp_path: Path, unique: Callable[[str], str], run_ingest: Callable[..., IngestService]
) -> None:
    # the demo's embedded amqtt broker speaks only MQTT 3.1.1: the watcher follows mqtt.protocol
    from sitewatch.devtools.amqtt_broker import EmbeddedBroker

    broker = EmbeddedBroker()
    broker.start()
    try:
        settings = make_settings(broker.url, tmp_path)
        settings = settings.model_copy(
            update={"mqtt": settings.mqtt.model_copy(update={"protocol": MqttProtocol.V311})}
        )
        run_ingest(settings, unique("ingest-311"))
        watcher = sitewatch(
            "--lang", "en", "ingest", "deadletters", "--count", "1", "--timeout", "30",
            env={"SITEWATCH_MQTT__URL": broker.url, "SITEWATCH_MQTT__PROTOCOL": "3.1.1"},
        )  # fmt: skip
        assert subscribed(watcher)
        compound = unique("D")
        publish.single(
            topic(compound, f"{compound}-GW01", Channel.DATA), b"\x00\x01 not json", qos=1,
            hostname="127.0.0.1", port=broker.port, protocol=mqtt.MQTTv311,
        )  # fmt: skip
        out, err = watcher.communicate(timeout=60)
        assert watcher.returncode == 0, err
        assert out.startswith("bad_json") and compound in out, out
    finally:
        broker.stop()
