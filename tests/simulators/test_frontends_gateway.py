"""A simulated compound behind real protocols, read by the real site gateway, arriving at the broker."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sitewatch.contract import DeviceKind
from sitewatch.devtools.services import MosquittoService
from sitewatch.gateway.config import parse_config
from sitewatch.gateway.runtime import Gateway, GatewayThread
from sitewatch.simulators.city import generate_city
from sitewatch.simulators.frontends.site import SimulatedSite, SiteOptions
from sitewatch.simulators.live import LiveSite
from sitewatch.simulators.site import sites_from_records

KINDS = (
    DeviceKind.ELEVATOR,
    DeviceKind.WATER_METER,
    DeviceKind.CHARGER,
    DeviceKind.CAMERA,
    DeviceKind.STREETLIGHT,
)


class Central:
    """Subscribes to the compound's gateway topics on the central broker and tallies what arrives."""

    def __init__(self, broker: MosquittoService, compound: str) -> None:
        self.lock = threading.Lock()
        self.readings: Counter[str] = Counter()
        self.birth: list[dict[str, str]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"central-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(f"sitewatch/v1/{compound}/+/#", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        body = orjson.loads(message.payload)
        with self.lock:
            for sample in body.get("samples", []):
                self.readings[sample["kind"]] += len(sample["values"])
            if message.topic.endswith("/state") and body.get("state") == "online":
                self.birth = body["devices"]

    def kinds(self) -> set[str]:
        with self.lock:
            return {k for k, n in self.readings.items() if n}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_simulated_site_through_the_gateway_to_the_broker(
    mosquitto: MosquittoService, tmp_path: Path
) -> None:
    site = sites_from_records(generate_city(1, seed=4))[0]
    compound = f"T{uuid.uuid4().hex[:6]}"  # a compound code no other test publishes under
    devices = tuple(
        dataclasses.replace(d, device=f"{compound}-{d.local}")
        for kind in KINDS
        for d in site.of_kind(kind)[:2]
    )
    site = dataclasses.replace(site, compound=compound, gateway=f"{compound}-GW01", devices=devices)
    options = SiteOptions(site_broker=mosquitto.url, modbus_poll_s=0.2, camera_interval_s=0.2,
                          charger_interval_s=0.2, step_s=0.2)  # fmt: skip
    simulated = SimulatedSite(LiveSite(site, seed=1, faults="none"), options)
    config = parse_config(simulated.gateway_config(mosquitto.url, tmp_path / "queue.db"), "gateway.yaml")
    central = Central(mosquitto, compound)
    gateway = GatewayThread(Gateway(config))

    async def scenario() -> None:
        await simulated.start()
        stop = asyncio.Event()
        sim = asyncio.create_task(simulated.run(stop))
        deadline = time.monotonic() + 30
        try:
            while central.kinds() != {k.value for k in KINDS}:
                assert time.monotonic() < deadline, f"only {central.kinds()} arrived"
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(sim, 10)

    try:
        asyncio.run(scenario())
    finally:
        gateway.stop()
        central.close()
    declared = {d["device"] for d in central.birth}
    assert declared >= {d.device for d in site.devices}
    assert {d["protocol"] for d in central.birth if d["kind"] != "gateway"} == {
        "modbus",
        "ocpp",
        "rtsp",
        "mqtt",
    }
