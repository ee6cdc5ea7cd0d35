"""A simulated compound through the real gateway to a real broker: the ``simulated`` connector
type, which the simulators provide through the ``sitewatch.connectors`` entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from gwtools import Recorder

from sitewatch.contract import DeviceKind
from sitewatch.devtools.services import MosquittoService, wait_until
from sitewatch.gateway.config import parse_config
from sitewatch.gateway.runtime import Gateway, GatewayThread
from sitewatch.simulators import sites_from_records
from sitewatch.simulators.city import generate_city
from sitewatch.simulators.connector import SimulatedConnector

SITE = sites_from_records(generate_city(1, 1))[0]


@pytest.mark.integration
def test_a_simulated_compound_through_the_gateway_and_broker(
    mosquitto: MosquittoService, tmp_path: Path
) -> None:
    config = parse_config(
        {
            "compound": SITE.compound,
            "gateway": SITE.gateway,
            "mqtt": {"url": mosquitto.url},
            "queue": {"path": str(tmp_path / "gw.db")},
            "counters_interval_s": 0.5,
            "connectors": [
                {"type": "simulated", "speed": 300, "start_behind_s": 7200, "step_s": 0.25, "faults": "all"}
            ],
        }
    )
    recorder = Recorder(mosquitto.port, f"sitewatch/v1/{SITE.compound}/#", "sim-recorder")
    gateway = Gateway(config)
    connector = gateway.connectors[0]
    assert isinstance(connector, SimulatedConnector)
    camera = SITE.of_kind(DeviceKind.CAMERA)[0].device
    begin = connector.clock.start_ms + 60_000
    connector.live.inject(camera, "camera_offline", begin, begin + 3_600_000)  # an event for sure
    thread = GatewayThread(gateway)
    try:
        wait_until(lambda: gateway.connector_counters()["simulated"]["steps"] >= 8, 30, "simulated steps")
    finally:
        thread.stop()
    wait_until(lambda: any(not s.online for s in recorder.states()), 10, "death message")
    recorder.close()

    births = [s for s in recorder.states() if s.online]
    assert births and {d.device for d in births[0].devices} == {d.device for d in SITE.devices} | {
        SITE.gateway
    }
    snap = gateway.snapshot()
    produced = snap["simulated.reads"]
    device_readings = [r for r in recorder.readings() if r.device != SITE.gateway]
    assert produced > 1000
    # everything the connector produced was queued, published, acknowledged and received, then deleted
    assert snap["rejected"] == 0 and snap["dropped"] == 0
    assert snap["buffered"] == snap["sent"] == snap["acknowledged"] == produced == len(device_readings)
    assert snap["queue_rows"] == 0
    assert {r.bdseq for r in device_readings} == {births[0].bdseq}
    assert snap["events_acknowledged"] == snap["simulated.events"] == len(recorder.events()) > 0
