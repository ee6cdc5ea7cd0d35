"""The ``simulated`` connector the simulators provide: its clock, configuration and steps."""

from __future__ import annotations

import asyncio
import time

import pytest

from peertools import ListSink
from sitewatch.contract import DeviceKind, now_ms
from sitewatch.gateway.config import GatewayConfigError, build_connectors, parse_config
from sitewatch.gateway.connectors.base import ConnectorConfigError, ConnectorContext, build_connector
from sitewatch.simulators import LiveSite, sites_from_records
from sitewatch.simulators.city import generate_city
from sitewatch.simulators.connector import SimClock, SimulatedConnector

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
