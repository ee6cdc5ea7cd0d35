"""wait_for_host: readings stay on disk while the central host (ingest) says it is offline."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.publish as publish
import pytest
from gwtools import GatewayThread, config, wait_for

from sitewatch.contract import HOST_STATE_TOPIC, HostState, now_ms
from sitewatch.devtools.services import LocalService, MosquittoService
from sitewatch.gateway.runtime import Gateway

pytestmark = pytest.mark.integration


def test_readings_wait_for_the_central_host(
    service_factory: Callable[..., LocalService], tmp_path: Path
) -> None:
    broker = service_factory("mosquitto")  # a private broker: the host state topic is global
    assert isinstance(broker, MosquittoService)

    def host(payload: bytes) -> None:
        publish.single(HOST_STATE_TOPIC, payload, qos=1, retain=True, hostname="127.0.0.1", port=broker.port)

    gw = Gateway(config(tmp_path, broker.port, wait_for_host=True))
    runner = GatewayThread(gw)
    try:
        wait_for(lambda: gw.publisher.connected and gw.queue.readings > 0, 10, "connected, readings queued")
        time.sleep(0.5)
        assert gw.counters.get("sent") == 0 and gw.snapshot()["host_online"] == -1  # no host heard yet

        host(HostState(True, now_ms()).encode())
        wait_for(lambda: gw.counters.get("acknowledged") > 0, 10, "sending once the host is online")

        host(HostState(False, now_ms()).encode())
        wait_for(lambda: gw.publisher.host_online is False, 10, "host offline seen")
        time.sleep(0.3)  # messages already on the wire finish
        sent = gw.counters.get("sent")
        time.sleep(1.0)
        assert gw.counters.get("sent") == sent and gw.queue.readings > 0  # held on disk
        assert gw.counters.get("host_offline") == 1

        host(b'{"v": 1, "state": "napping", "ts": 1}')  # refused, changes nothing
        wait_for(lambda: gw.counters.get("host_state_rejected") == 1, 10, "garbage refused")
        assert gw.counters.get("sent") == sent

        replayed = gw.counters.get("replayed")
        host(HostState(True, now_ms()).encode())
        wait_for(lambda: gw.queue.rows == 0 and gw.counters.get("acknowledged") == 800 * 6, 30, "all sent")
        assert gw.counters.get("replayed") > replayed  # what was held went out as replay
    finally:
        runner.stop()
