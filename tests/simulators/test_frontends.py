"""Simulated devices behind real protocols, read by the gateway's real connectors from the written config."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from peertools import ListSink, wait_for
from sitewatch.cli import main
from sitewatch.contract import OCPP_STATUSES, DeviceKind
from sitewatch.devtools.services import MosquittoService
from sitewatch.gateway.config import build_connectors, parse_config
from sitewatch.simulators.city import generate_city
from sitewatch.simulators.frontends.ocpp_chargers import ChargerModel
from sitewatch.simulators.frontends.site import SimulatedSite, SiteOptions
from sitewatch.simulators.live import LiveSite
from sitewatch.simulators.site import Site, sites_from_records


def small_site() -> Site:
    """The first generated compound, cut to three devices of each kind (keeps the test fast)."""
    site = sites_from_records(generate_city(1, seed=3))[0]
    keep: list[object] = []
    for kind in (DeviceKind.ELEVATOR, DeviceKind.WATER_METER, DeviceKind.CHARGER, DeviceKind.CAMERA,
                 DeviceKind.STREETLIGHT):  # fmt: skip
        keep += site.of_kind(kind)[:3]
    return dataclasses.replace(site, devices=tuple(keep))  # type: ignore[arg-type]


def test_charger_model_readings() -> None:
    model = ChargerModel(rated_kw=7.0, energy_kwh=100.0, charging=True)
    model.advance(3600)
    readings = model.readings()
    assert readings["energy_register"] == pytest.approx(107.0)
    assert readings["power"] == 7.0 and readings["current"] == pytest.approx(30.43, abs=0.01)


def test_site_devices_flow_through_the_real_connectors(mosquitto: MosquittoService, tmp_path: Path) -> None:
    site = small_site()
    options = SiteOptions(site_broker=mosquitto.url, modbus_poll_s=0.2, camera_interval_s=0.2,
                          charger_interval_s=0.2, step_s=0.2)  # fmt: skip
    simulated = SimulatedSite(LiveSite(site, seed=2, faults="none"), options)
    assert simulated.device_count() == {"modbus": 6, "ocpp": 3, "camera": 3, "mqtt": 3}
    config = parse_config(simulated.gateway_config(mosquitto.url, tmp_path / "q.db"), "gateway.yaml")
    connectors = build_connectors(config)
    assert [c.name for c in connectors] == ["modbus", "ocpp", "cameras", "streetlights"]
    declared = {d.device for c in connectors for d in c.devices()}
    assert declared == {d.device for d in site.devices}

    polled = site.of_kind(DeviceKind.WATER_METER) + site.of_kind(DeviceKind.ELEVATOR)

    def caught_up() -> bool:
        """Whether every polled device's last read is the model's latest (to register precision)."""
        for device in polled:
            reads = sink.of(device.device)
            model = simulated.latest[device.device]
            if not reads or any(
                abs(v - model[m]) > max(0.06, 1e-3 * abs(model[m])) for m, v in reads[-1].values.items()
            ):
                return False
        return True

    sink, stop = ListSink(), asyncio.Event()

    async def scenario() -> None:
        tasks = [asyncio.create_task(c.run(sink, stop)) for c in connectors]
        await simulated.start()
        sim_stop = asyncio.Event()
        sim = asyncio.create_task(simulated.run(sim_stop))
        try:
            for kind in (DeviceKind.ELEVATOR, DeviceKind.WATER_METER, DeviceKind.CHARGER, DeviceKind.CAMERA,
                         DeviceKind.STREETLIGHT):  # fmt: skip
                await wait_for(
                    lambda k=kind: len(sink.devices(k)) == 3,
                    timeout=20,  # type: ignore[misc]
                    what=lambda k=kind: f"{k}: {sink.devices(k)}; {[c.counters() for c in connectors]}",  # type: ignore[misc]
                )
        finally:
            sim_stop.set()
            await asyncio.wait_for(sim, 10)
            # the model's last step may come after the gateway's last poll: a few polls more (at most 3 s)
            # so that the last reads are of the final values, which the assertions below compare
            deadline = time.monotonic() + 3.0
            while not caught_up() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)

        # what the gateway read over Modbus is what the model produced (to register precision)
        for device in polled:
            read = sink.last(device.device).values
            model = simulated.latest[device.device]
            for metric, value in read.items():
                assert value == pytest.approx(model[metric], abs=0.06, rel=1e-3), (device.device, metric)
        for device in site.of_kind(DeviceKind.CHARGER):
            with sink.lock:
                statuses = [
                    s.values["status"]
                    for s in sink.sample_list
                    if s.device == device.device and "status" in s.values
                ]
            assert statuses and OCPP_STATUSES[int(statuses[-1])] in OCPP_STATUSES
        for device in site.of_kind(DeviceKind.STREETLIGHT):
            with sink.lock:
                lit = [
                    s for s in sink.sample_list if s.device == device.device and "burning_hours" in s.values
                ]
            assert lit, device.device
        for connector in connectors:
            counters = connector.counters()
            for bad in ("garbage", "invalid", "bad_payload", "rejected", "unknown_device", "unknown_charger"):
                assert counters.get(bad, 0) == 0, (connector.name, bad, counters)
        assert simulated.stats.modbus_reads > 0 and simulated.stats.camera_requests > 0
        assert simulated.stats.ocpp_reports > 0 and simulated.stats.mqtt_messages > 0

    asyncio.run(scenario())


def test_simulate_site_command_writes_a_valid_gateway_config(tmp_path: Path) -> None:
    from sitewatch.assets.workbook import HeaderStyle, write_xlsx

    ledger = tmp_path / "city.xlsx"
    records = generate_city(1, seed=5)
    write_xlsx(records, ledger, HeaderStyle("zh"))
    compound = records["compounds"][0]["code"]
    out = tmp_path / "gw" / "gateway.yaml"
    result = CliRunner().invoke(
        main,
        ["--lang", "en", "simulate", "site", "--ledger", str(ledger), "--compound", compound, "--out", str(out),
         "--kinds", "elevator,camera", "--camera-probe", "onvif", "--duration", "0.5",
         "--broker", "mqtt://127.0.0.1:1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "gateway configuration written to" in result.output and "stopped." in result.output
    config = parse_config(yaml.safe_load(out.read_text(encoding="utf-8")), str(out))
    assert config.compound == compound
    assert [c["type"] for c in config.connectors] == ["modbus", "camera"]
    assert {c["probe"] for c in config.connectors[1]["cameras"]} == {"onvif"}
    assert len(build_connectors(config)) == 2

    result = CliRunner().invoke(
        main,
        [
            "--lang",
            "zh_CN",
            "simulate",
            "site",
            "--ledger",
            str(ledger),
            "--compound",
            "NOPE",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2 and "无法使用台账" in result.output
    result = CliRunner().invoke(main, ["simulate", "site", "--help"])
    assert result.exit_code == 0 and "gateway.yaml" in result.output
