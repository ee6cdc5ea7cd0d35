"""TLS to the broker: the gateway verifies the broker's certificate against its ``ca_file``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gwtools import GatewayThread, config, wait_for

from peertools import make_certificates
from sitewatch.devtools.services import LocalService, MosquittoService, free_port
from sitewatch.gateway.runtime import Gateway

pytestmark = pytest.mark.integration


def test_gateway_over_tls_verifies_the_broker(
    service_factory: Callable[..., LocalService], tmp_path: Path
) -> None:
    certs = make_certificates(tmp_path / "certs")
    tls_port = free_port()
    broker = service_factory(
        "mosquitto",
        extra_config=f"listener {tls_port} 127.0.0.1\ncafile {certs['ca.crt']}\n"
        f"certfile {certs['server.crt']}\nkeyfile {certs['server.key']}\n",
    )
    assert isinstance(broker, MosquittoService)
    wait_for(lambda: broker.running, 5, "broker")

    trusting = tmp_path / "trusting"
    trusting.mkdir()
    gw = Gateway(
        config(
            trusting, tls_port, mqtt={"url": f"mqtts://127.0.0.1:{tls_port}", "ca_file": str(certs["ca.crt"])}
        )
    )
    runner = GatewayThread(gw)
    try:
        wait_for(lambda: gw.counters.get("acknowledged") > 0, 20, "data over TLS")
    finally:
        runner.stop()

    # without the CA the broker's certificate is not trusted: no connection, nothing leaves the queue
    doubting = tmp_path / "doubting"
    doubting.mkdir()
    gw = Gateway(config(doubting, tls_port, mqtt={"url": f"mqtts://127.0.0.1:{tls_port}"}))
    runner = GatewayThread(gw)
    try:
        wait_for(
            lambda: gw.counters.get("connect_failures") >= 2 and gw.counters.get("read") > 0, 20, "refusals"
        )
        assert gw.counters.get("connects") == 0 and gw.counters.get("acknowledged") == 0
        assert gw.queue.readings > 0
    finally:
        runner.stop()
