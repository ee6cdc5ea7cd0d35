"""TLS to the broker: the gateway verifies the broker's certificate against its ``ca_file``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from gwtools import GatewayThread, config, wait_for

from sitewatch.gateway.runtime import Gateway
from sitewatch.services import LocalService, MosquittoService, free_port

pytestmark = pytest.mark.integration


def _certificates(folder: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make test certificates (apt-get install openssl)")
    folder.mkdir()
    p = {
        name: folder / name for name in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "san")
    }
    p["san"].write_text("subjectAltName=IP:127.0.0.1\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(p["ca.key"]), "-out", str(p["ca.crt"]),
        "-days", "2", "-subj", "/CN=sitewatch test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(p["server.key"]), "-out", str(p["server.csr"]),
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    run("x509", "-req", "-in", str(p["server.csr"]), "-CA", str(p["ca.crt"]), "-CAkey", str(p["ca.key"]),
        "-CAcreateserial", "-out", str(p["server.crt"]), "-days", "2", "-extfile", str(p["san"]))  # fmt: skip
    return p


def test_gateway_over_tls_verifies_the_broker(
    service_factory: Callable[..., LocalService], tmp_path: Path
) -> None:
    certs = _certificates(tmp_path / "certs")
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
