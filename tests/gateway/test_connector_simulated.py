"""The ``simulated`` connector: a simulator LiveSite through the real gateway to a real broker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from gwtools import Recorder

from peertools import ListSink
from sitewatch.contract import DeviceKind, now_ms
from sitewatch.gateway.config import GatewayConfigError, build_connectors, parse_config
from sitewatch.gateway.connectors.base import ConnectorConfigError, ConnectorContext, build_connector
from sitewatch.gateway.connectors.simulated import SimClock, SimulatedConnector
from sitewatch.gateway.runtime import Gateway, GatewayThread
from sitewatch.services import MosquittoService, wait_until
from sitewatch.simulators import LiveSite, sites_from_records
from sitewatch.simulators.city import generate_city

SITE = sites_from_records(generate_city(1, 1))[0]
CONTEXT = ConnectorContext(compound=SITE.compound, gateway=SITE.gateway)


def test_sim_clock_runs_at_its_speed_and_never_passes_the_present() -> None:
    start = now_ms() - 3_600_000
    clock = SimClock(start, speed=100)
    clock.begin()
    time.sleep(0.2)
    elapsed = clock.now() - start
    assert 15_000 <= elapsed <= 60_000  # 0.2 s of wall time at x100 (generous for a busy machine)
    ahead = SimClock(now_ms(), speed=1000)
    ahead.begin()
    time.sleep(0.1)
    assert ahead.now() <= now_ms()  # capped: simulated time goes no further than the present
    with pytest.raises(ValueError, match="speed"):
        SimClock(speed=0)


def test_from_config_takes_the_gateways_compound_from_the_synthetic_city() -> None:
    connector = build_connector({"type": "simulated", "name": "sim", "speed": 60}, CONTEXT)
    assert isinstance(connector, SimulatedConnector)
    assert connector.name == "sim"
    devices = connector.devices()
    assert len(devices) == len(SITE.devices) > 100
    assert {d.kind for d in devices} >= {DeviceKind.ELEVATOR, DeviceKind.CAMERA, DeviceKind.WATER_METER}
    assert all(d.device.startswith(SITE.compound + "-") for d in devices)


def test_bad_configuration_is_refused_with_the_reason() -> None:
    with pytest.raises(ConnectorConfigError, match="not in the synthetic city"):
        build_connector({"type": "simulated"}, ConnectorContext(compound="999999-0001", gateway="gw"))
    with pytest.raises(ConnectorConfigError, match="speed"):
        build_connector({"type": "simulated", "speed": -1}, CONTEXT)
    with pytest.raises(ConnectorConfigError, match="bogus"):
        build_connector({"type": "simulated", "bogus": 1}, CONTEXT)
    with pytest.raises(ConnectorConfigError, match="ledger"):
        build_connector({"type": "simulated", "ledger": "/nonexistent/ledger.xlsx"}, CONTEXT)
    config = parse_config({"compound": "999999-0001", "gateway": "GW", "connectors": [{"type": "simulated"}]})
    with pytest.raises(GatewayConfigError, match=r"connectors\.0 \(type 'simulated'\)"):
        build_connectors(config)


def test_steps_follow_the_simulated_clock() -> None:
    start = now_ms() - 6 * 3_600_000
    clock = SimClock(start, speed=600)  # ten simulated minutes per second
    live = LiveSite(SITE, seed=3, faults="none", start_ms=start)
    connector = SimulatedConnector(live, clock, step_s=0.1)
    sink = ListSink()

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(sink, stop))
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    first = sink.batches[0]
    assert {s.device for s in first} == {d.device for d in SITE.devices}  # one sample of every device
    assert len({s.ts_ms for s in first}) == 1
    everything = [s for batch in sink.batches for s in batch]
    last_ts = max(s.ts_ms for s in everything)
    assert start <= min(s.ts_ms for s in everything)
    assert last_ts - start >= 5 * 60_000  # at x600, 1.5 s of wall time is well past five simulated minutes
    assert last_ts <= clock.now()
    counts = connector.counters()
    assert counts["steps"] == len(sink.batches) >= 5
    assert counts["samples"] == len(everything) > len(first)
    assert counts["reads"] == sum(len(s.values) for s in everything)
    assert counts["errors"] == 0


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
