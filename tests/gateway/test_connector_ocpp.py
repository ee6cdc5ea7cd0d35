"""OCPP connector: a central system serving real ocpp charge points (the payload mapping is
tested in tests/edge/test_ocpp_payloads.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from peertools import ListSink, wait_for
from sitewatch.contract import OCPP_STATUSES, DeviceKind
from sitewatch.gateway.connectors.base import ConnectorConfigError, ConnectorContext, build_connector
from sitewatch.gateway.connectors.ocpp import MAX_OPEN_TRANSACTIONS, OcppConnector
from sitewatch.simulators.frontends.ocpp_chargers import charge_point, connection_of

CTX = ConnectorContext(compound="C001", gateway="gw1")


def test_config_errors() -> None:
    with pytest.raises(ConnectorConfigError, match="chargers: required field is missing"):
        build_connector({"type": "ocpp"}, CTX)
    with pytest.raises(ConnectorConfigError, match="chargers: List should have at least 1 item"):
        build_connector({"type": "ocpp", "chargers": []}, CTX)
    with pytest.raises(ConnectorConfigError, match="an ocpp_id is listed twice"):
        build_connector({"type": "ocpp", "chargers": [{"device": "CH-1", "ocpp_id": "X"}] * 2}, CTX)
    with pytest.raises(
        ConnectorConfigError, match=r"rate_limit_per_s: Input should be greater than or equal to 0\.01"
    ):
        build_connector({"type": "ocpp", "chargers": [{"device": "CH-1"}], "rate_limit_per_s": -1}, CTX)
    with pytest.raises(ConnectorConfigError, match=r"chargers\.0\.connectors\.x"):
        build_connector({"type": "ocpp", "chargers": [{"device": "CH-1", "connectors": {"x": "CH-2"}}]}, CTX)
    with pytest.raises(ConnectorConfigError, match="connector ids must be integers"):
        build_connector({"type": "ocpp", "chargers": [{"device": "CH-1", "connectors": {0: "CH-2"}}]}, CTX)
    with pytest.raises(ConnectorConfigError, match=r"chargers\.0\.ocpp_id: must be printable"):
        build_connector({"type": "ocpp", "chargers": [{"device": "CH-1", "ocpp_id": "a/b"}]}, CTX)
    with pytest.raises(ConnectorConfigError, match="heartbeat_intervall_s: unknown field"):
        build_connector({"type": "ocpp", "chargers": [{"device": "CH-1"}], "heartbeat_intervall_s": 5}, CTX)


# --- against real charge points -----------------------------------------------------------------


@asynccontextmanager
async def central(**extra: Any) -> AsyncIterator[tuple[OcppConnector, ListSink, str]]:
    spec = {
        "type": "ocpp",
        "name": "chargers",
        "host": "127.0.0.1",
        "port": 0,
        "chargers": [{"device": "CH-1", "ocpp_id": "CP-1"}, {"device": "CH-2", "ocpp_id": "CP-2"}],
        **extra,
    }
    connector = build_connector(spec, CTX)
    assert isinstance(connector, OcppConnector)
    sink, stop = ListSink(), asyncio.Event()
    task = asyncio.create_task(connector.run(sink, stop))
    await asyncio.wait_for(connector.listening.wait(), 5)
    try:
        yield connector, sink, f"ws://127.0.0.1:{connector.bound_port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def test_boot_status_meter_values_and_transactions() -> None:
    async def scenario() -> None:
        async with central() as (connector, sink, url):
            async with charge_point(url, "CP-1") as cp:
                assert await cp.boot() == "Accepted"
                assert await cp.heartbeat()
                await cp.status(1, "Available")
                await cp.status(1, "Preparing")
                tx = await cp.start_transaction(1, 1_000_000)
                await cp.status(1, "Charging")
                await cp.meter(
                    1, {"energy_register": 1002.5, "power": 7.1, "voltage": 229.5, "current": 31.0}, tx
                )
                await cp.stop_transaction(tx, 1_005_000, "EVDisconnected")
                await cp.status(1, "Faulted", "GroundFailure")
                await cp.status(1, "Available")
            await wait_for(lambda: len(sink.named("C001-CH-1", "offline")) == 1)
            counters = connector.counters()

        dev = "C001-CH-1"
        assert sink.values(dev, "energy_register") == [1000.0, 1002.5, 1005.0]
        assert sink.values(dev, "power") == [pytest.approx(7.1)]
        assert sink.values(dev, "voltage") == [229.5]
        assert sink.values(dev, "current") == [31.0]
        statuses = [OCPP_STATUSES[int(v)] for v in sink.values(dev, "status")]
        assert statuses == ["Available", "Preparing", "Charging", "Faulted", "Available"]
        assert [e.active for e in sink.named(dev, "faulted")] == [True, False]
        assert sink.named(dev, "faulted")[0].attrs["error_code"] == "GroundFailure"
        (started,) = sink.named(dev, "session_started")
        (stopped,) = sink.named(dev, "session_stopped")
        assert started.attrs["transaction_id"] == stopped.attrs["transaction_id"]
        assert stopped.attrs["energy_kwh"] == "5.000" and stopped.attrs["reason"] == "EVDisconnected"
        assert [e.name for e in sink.event_list if e.name in ("online", "offline")] == ["online", "offline"]
        assert all(s.kind is DeviceKind.CHARGER for s in sink.sample_list)
        assert counters["boots"] == 1 and counters["heartbeats"] == 1 and counters["transactions"] == 1
        assert counters["invalid"] == 0 and counters["rate_limited"] == 0

    asyncio.run(scenario())


def test_reconnect_without_boot_and_replaced_connection() -> None:
    async def scenario() -> None:
        async with central() as (connector, sink, url):
            async with charge_point(url, "CP-2") as cp:
                await cp.boot()
            async with charge_point(url, "CP-2") as cp:  # no BootNotification this time
                await cp.meter(1, {"energy_register": 50.0, "temperature": 85.0})
                await cp.meter(1, {"energy_register": 50.5, "temperature": 45.0})
                await cp.status(1, "Available")
                # a second socket for the same charger replaces the first
                async with charge_point(url, "CP-2") as again:
                    await again.heartbeat()
                    assert connector.connected() == ["CP-2"]
            await wait_for(lambda: connector.connected() == [])
        dev = "C001-CH-2"
        assert sink.values(dev, "energy_register") == [50.0, 50.5]
        assert [e.active for e in sink.named(dev, "over_temperature")] == [True, False]
        assert len(sink.named(dev, "online")) == 3
        assert len(sink.named(dev, "offline")) == 3
        assert connector.counters()["boots"] == 1

    asyncio.run(scenario())


def test_invalid_messages_unknown_charger_and_flood() -> None:
    answered = 0

    async def scenario() -> None:
        nonlocal answered
        async with central(rate_limit_per_s=2, rate_burst=5) as (connector, sink, url):
            with pytest.raises(InvalidStatus):
                async with connect(f"{url}/NOT-OURS", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
                    pass
            async with connect(f"{url}/CP-1", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
                await ws.send("this is not OCPP")
                bad_status = [
                    2,
                    "m1",
                    "StatusNotification",
                    {"connectorId": 1, "errorCode": "NoError", "status": "Exploded"},
                ]
                await ws.send(json.dumps(bad_status))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert reply[0] == 4 and reply[1] == "m1"  # a CallError for the invalid call
                await ws.send(json.dumps([2, "m2", "Reset", {"type": "Hard"}]))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert reply[0] == 4 and reply[2] in ("NotImplemented", "NotSupported")
            async with charge_point(url, "CP-1") as flooder, charge_point(url, "CP-2") as calm:
                answered, started = 0, time.monotonic()
                for _ in range(30):
                    if await flooder.heartbeat():
                        answered += 1
                elapsed = time.monotonic() - started
                assert (
                    5 <= answered <= 5 + 2 * elapsed + 1
                )  # the burst, plus what the rate refilled meanwhile
                assert await calm.heartbeat()  # the other charger is not affected
                await calm.meter(1, {"energy_register": 7.0})
                # the raw socket still works for the flooder once it slows down
                await asyncio.sleep(0.6)
                assert await flooder.heartbeat()
                assert connection_of(flooder) is not None
            counters = connector.counters()
        assert counters["unknown_charger"] == 1
        assert counters["invalid"] == 2
        assert counters["unsupported"] == 1
        assert counters["rate_limited"] == 30 - answered
        assert sink.values("C001-CH-2", "energy_register") == [7.0]
        assert sink.values("C001-CH-1", "status") == []

    asyncio.run(scenario())


def test_basic_auth_and_silence_watchdog() -> None:
    secret = "s3cret-key-0123456789"
    chargers = [
        {"device": "CH-1", "ocpp_id": "CP-1", "password": secret},
        {"device": "CH-2", "ocpp_id": "CP-2"},
    ]

    async def scenario() -> None:
        async with central(chargers=chargers, silence_timeout_s=0.5) as (connector, sink, url):
            with pytest.raises(InvalidStatus) as refused:
                async with charge_point(url, "CP-1"):
                    pass
            assert refused.value.response.status_code == 401
            with pytest.raises(InvalidStatus):
                async with charge_point(url, "CP-1", password="wrong-password-000000"):
                    pass
            async with charge_point(url, "CP-1", password=secret) as cp:
                assert await cp.boot() == "Accepted"
                await cp.meter(1, {"energy_register": 3.0})
            # a charger that stays connected but sends nothing is disconnected
            async with charge_point(url, "CP-2") as quiet:
                await quiet.boot()
                await wait_for(lambda: connector.counters()["silent"] == 1)
                await wait_for(lambda: connector.connected() == [])
            counters = connector.counters()
        assert counters["auth_failed"] == 2
        assert sink.values("C001-CH-1", "energy_register") == [3.0]
        assert [e.name for e in sink.event_list if e.device == "C001-CH-2"] == ["online", "offline"]

    asyncio.run(scenario())
    with pytest.raises(ConnectorConfigError, match="password: String should have at least 16 characters"):
        build_connector({"type": "ocpp", "chargers": [{"device": "CH-1", "password": "short"}]}, CTX)


# --- what a hostile or broken charge point sends ------------------------------------------------


def test_unsolicited_answers_long_causes_and_ids_are_dropped_counted_or_capped() -> None:
    async def scenario() -> None:
        async with central(rate_burst=100) as (connector, _sink, url):
            async with connect(f"{url}/CP-1", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
                # answers to calls the central system never made: dropped, counted, nothing sent back
                for i in range(10):
                    await ws.send(json.dumps([3, f"r{i}", {"data": "x" * 10_000}]))
                    await ws.send(json.dumps([4, f"e{i}", "GenericError", "y" * 10_000, {}]))
                # a call failing the schema with a huge value: the CallError echoes at most 200 characters
                bad = {"connectorId": 1, "errorCode": "NoError", "status": "z" * 50_000}
                await ws.send(json.dumps([2, "m1", "StatusNotification", bad]))
                reply = await asyncio.wait_for(ws.recv(), 5)
                assert len(reply) < 1000 and json.loads(reply)[:2] == [4, "m1"]
                # a unique id beyond OCPP-J's 36 characters: no answer (it could not be matched)
                await ws.send(json.dumps([2, "u" * 5000, "StatusNotification", bad]))
                await ws.send(json.dumps([2, "h1", "Heartbeat", {}]))  # still served
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert reply[:2] == [3, "h1"]
            counters = connector.counters()
        assert counters["unsolicited"] == 20 and counters["invalid"] == 3  # 2 schema + 1 id
        assert counters["heartbeats"] == 1

    asyncio.run(scenario())


def test_only_the_configured_path_is_accepted() -> None:
    async def scenario() -> None:
        async with central(path="/ocpp/") as (connector, _sink, url):
            for where in ("/CP-1", "/evil/ocpp/CP-1", "/ocpp/x/CP-1", "/ocppCP-1", "/ocpp/CP-1/"):
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(f"{url}{where}", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
                        pass
                assert refused.value.response.status_code == 404, where
            with pytest.raises(InvalidStatus):
                async with connect(f"{url}/ocpp/NOT-OURS", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
                    pass
            async with charge_point(f"{url}/ocpp", "CP-1") as cp:
                assert await cp.boot() == "Accepted"
            counters = connector.counters()
        assert counters["wrong_path"] == 5 and counters["unknown_charger"] == 1
        assert counters["boots"] == 1

    asyncio.run(scenario())
    with pytest.raises(ConnectorConfigError, match="path"):
        build_connector({"type": "ocpp", "chargers": [{"device": "CH-1"}], "path": "ocpp"}, CTX)


def test_a_charger_without_the_subprotocol_is_closed_with_1002() -> None:
    async def scenario() -> None:
        async with central() as (connector, sink, url):
            for offered in (None, ["ocpp2.0.1"]):
                async with connect(f"{url}/CP-1", subprotocols=offered) as ws:  # type: ignore[arg-type]
                    assert ws.subprotocol is None  # the handshake completes (OCPP-J), then the close
                    with pytest.raises(ConnectionClosed):
                        await asyncio.wait_for(ws.recv(), 5)
                    assert ws.close_code == 1002 and ws.close_reason == "ocpp1.6 subprotocol required"
            counters = connector.counters()
        assert counters["no_subprotocol"] == 2 and counters["connections"] == 0
        assert sink.event_list == []  # never online

    asyncio.run(scenario())


def test_an_oversized_frame_closes_only_its_own_connection() -> None:
    async def scenario() -> None:
        async with central(max_message_bytes=4096) as (connector, _sink, url):
            async with charge_point(url, "CP-2") as calm:
                async with connect(f"{url}/CP-1", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
                    await ws.send(json.dumps([2, "m1", "Heartbeat", {"pad": "x" * 5000}]))
                    with pytest.raises(ConnectionClosed):
                        await asyncio.wait_for(ws.recv(), 5)
                    assert ws.close_code == 1009  # message too big
                assert await calm.heartbeat()
            await wait_for(lambda: connector.counters()["oversized"] == 1)

    asyncio.run(scenario())


def test_transactions_never_stopped_are_bounded_per_device() -> None:
    async def scenario() -> None:
        async with central() as (_connector, sink, url), charge_point(url, "CP-1") as cp:
            txs = [await cp.start_transaction(1, 1000 * i) for i in range(MAX_OPEN_TRANSACTIONS + 5)]
            await cp.stop_transaction(txs[-1], 1_000_000)  # a recent one: still known
            await cp.stop_transaction(txs[0], 2_000_000)  # the oldest: forgotten, still mapped
        stopped = sink.named("C001-CH-1", "session_stopped")
        assert "energy_kwh" in stopped[0].attrs and "energy_kwh" not in stopped[1].attrs
        assert [e.device for e in stopped] == ["C001-CH-1", "C001-CH-1"]

    asyncio.run(scenario())
