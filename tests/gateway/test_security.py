"""Broker credentials and ACL: a gateway can publish only under its own compound's topics.

The password file and ACL are the ones docs/gateway.md shows; the broker is a real Mosquitto.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from gwtools import GatewayThread, Recorder, config, read_journal, wait_for
from paho.mqtt.enums import CallbackAPIVersion

from sitewatch.devtools.services import LocalService, MosquittoService
from sitewatch.gateway.runtime import Gateway

pytestmark = pytest.mark.integration

A, B = "330102-0007", "330102-0008"
ACL = f"""\
# the central services (ingest, consoles) see every compound
user central
topic readwrite sitewatch/v1/#

# each gateway: its own compound only (plus, with wait_for_host, the host state)
user gw-{A}
topic readwrite sitewatch/v1/{A}/#
topic read sitewatch/v1/_host/state

user gw-{B}
topic readwrite sitewatch/v1/{B}/#
topic read sitewatch/v1/_host/state
"""
PASSWORDS = {"central": "central-secret", f"gw-{A}": "a-secret", f"gw-{B}": "b-secret"}


@pytest.fixture
def secured_broker(service_factory: Callable[..., LocalService], tmp_path: Path) -> MosquittoService:
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not os.path.exists(passwd):
        pytest.fail("mosquitto_passwd is missing (it comes with the mosquitto package)")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    pwfile, aclfile = secrets / "passwd", secrets / "acl"
    pwfile.touch()
    for user, password in PASSWORDS.items():
        subprocess.run([passwd, "-b", str(pwfile), user, password], check=True, capture_output=True)
    aclfile.write_text(ACL)
    broker = service_factory(
        "mosquitto",
        extra_config=f"allow_anonymous false\npassword_file {pwfile}\nacl_file {aclfile}\n",
    )
    assert isinstance(broker, MosquittoService)
    return broker


def _gateway(tmp_path: Path, broker: MosquittoService, compound: str, user: str, password: str) -> Gateway:
    folder = tmp_path / f"{compound}-{user}"
    folder.mkdir()
    return Gateway(
        config(
            folder,
            broker.port,
            compound=compound,
            gateway=f"{compound}-GW01",
            mqtt={"username": user, "password": password},
        )
    )


def test_gateway_cannot_publish_into_another_compound(
    secured_broker: MosquittoService, tmp_path: Path
) -> None:
    central = Recorder(
        secured_broker.port,
        "sitewatch/v1/#",
        "central-rec",
        username="central",
        password=PASSWORDS["central"],
    )
    # A gateway configured for compound B but holding compound A's credentials (a copied file,
    # a compromised box): the broker must keep it out of B.
    rogue = _gateway(tmp_path, secured_broker, B, f"gw-{A}", PASSWORDS[f"gw-{A}"])
    rogue_run = GatewayThread(rogue)
    try:
        wait_for(
            lambda: rogue.counters.get("refused_by_broker") + rogue.counters.get("connect_failures") >= 2,
            20,
            "the broker refusing the rogue gateway",
        )
        wait_for(lambda: rogue.counters.get("read") > 0, 10, "the rogue producing")
        time.sleep(1.0)  # give anything that slipped through time to arrive
        assert rogue.counters.get("acknowledged") == 0
        assert rogue.queue.readings > 0  # refused data stays on disk: nothing is deleted unacknowledged
    finally:
        rogue_run.stop()
    assert not [t for t, _, _ in central.snapshot() if t.startswith(f"sitewatch/v1/{B}/")]

    # the control: the same credentials on their own compound get through
    honest = _gateway(tmp_path, secured_broker, A, f"gw-{A}", PASSWORDS[f"gw-{A}"])
    honest_run = GatewayThread(honest)
    try:
        wait_for(lambda: honest.counters.get("acknowledged") > 0, 20, "the honest gateway's data")
    finally:
        honest_run.stop()
    wait_for(lambda: any(t.startswith(f"sitewatch/v1/{A}/") for t, _, _ in central.snapshot()), 10, "arrival")
    assert not [t for t, _, _ in central.snapshot() if t.startswith(f"sitewatch/v1/{B}/")]
    assert read_journal(tmp_path / f"{A}-gw-{A}" / "journal.tsv")
    central.close()


def test_no_anonymous_and_no_wrong_password(secured_broker: MosquittoService) -> None:
    for auth in (None, ("central", "wrong")):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"intruder-{auth}", protocol=mqtt.MQTTv5)
        if auth:
            client.username_pw_set(*auth)
        reasons: list[str] = []
        client.on_connect = lambda c, u, f, reason, p, seen=reasons: seen.append(str(reason))
        client.connect("127.0.0.1", secured_broker.port, 10)
        client.loop_start()
        try:
            wait_for(lambda seen=reasons: bool(seen), 10, "CONNACK")
        finally:
            client.loop_stop()
        assert reasons[0] in ("Not authorized", "Bad user name or password")


def test_a_gateway_cannot_fake_the_central_host(secured_broker: MosquittoService) -> None:
    """Gateways may read the host state, never write it (a gateway must not unblock its peers)."""
    from sitewatch.contract import HOST_STATE_TOPIC, HostState

    central = Recorder(
        secured_broker.port, HOST_STATE_TOPIC, "host-rec", username="central", password=PASSWORDS["central"]
    )
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-a-fake-host", protocol=mqtt.MQTTv5)
    client.username_pw_set(f"gw-{A}", PASSWORDS[f"gw-{A}"])
    reasons: list[str] = []
    client.on_publish = lambda c, u, mid, reason, p: reasons.append(str(reason))
    client.connect("127.0.0.1", secured_broker.port, 10)
    client.loop_start()
    try:
        client.publish(HOST_STATE_TOPIC, HostState(True, 1).encode(), qos=1, retain=True)
        wait_for(lambda: bool(reasons), 10, "PUBACK")
    finally:
        client.disconnect()
        client.loop_stop()
    assert reasons == ["Not authorized"]
    time.sleep(0.3)
    assert central.snapshot() == []
    central.close()
