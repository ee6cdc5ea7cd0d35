"""Enrichment from the real asset registry (FastAPI over SQLite, served by uvicorn) through a real broker."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from peertools import cyclic_garbage
from sitewatch.assets.db import create_engine_for, transaction, upgrade
from sitewatch.assets.importer import import_ledger
from sitewatch.assets.models import Role
from sitewatch.assets.tokens import create_token
from sitewatch.assets.workbook import HeaderStyle, write_xlsx
from sitewatch.contract import (
    Channel,
    DataMessage,
    DeviceKind,
    Envelope,
    Event,
    EventMessage,
    Sample,
    now_ms,
    topic,
)
from sitewatch.devtools.services import MosquittoService, free_port, port_open, wait_until
from sitewatch.ingest import IngestService
from sitewatch.ingest.registry import RegistryClient
from sitewatch.server import create_app
from sitewatch.simulators import sites_from_records
from sitewatch.simulators.city import generate_city
from sitewatch.store import open_store

from .conftest import make_settings
from .traffic import Publisher

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, list[object], str]]:
    """A registry of one simulated compound, served on a free port: (url, bureau token, sites, admin token)."""
    tmp = tmp_path_factory.mktemp("registry")
    records = generate_city(1, seed=3)
    write_xlsx(records, tmp / "city.xlsx", HeaderStyle("zh"))
    engine = create_engine_for(f"sqlite:///{tmp / 'registry.db'}")
    upgrade(engine)
    assert import_ledger(engine, tmp / "city.xlsx").committed
    with transaction(engine) as session:
        token, _ = create_token(session, Role.BUREAU)
        admin, _ = create_token(session, Role.ADMIN)
    port = free_port()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = uvicorn.Server(
            uvicorn.Config(create_app(engine=engine), "127.0.0.1", port, log_level="warning")
        )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: port_open(port), 30, "registry API")
    yield f"http://127.0.0.1:{port}", token, list(sites_from_records(records)), admin
    server.should_exit = True
    thread.join(10)
    engine.dispose()


@pytest.mark.parametrize("policy", ["deadletter", "flag"])
def test_registry_enrichment_and_unknown_devices(
    registry: tuple[str, str, list[object], str],
    mosquitto: MosquittoService,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
    policy: str,
) -> None:
    url, token, sites, _admin = registry
    site = sites[0]
    compound, gateway = site.compound, site.gateway  # type: ignore[attr-defined]
    elevator = next(d.device for d in site.devices if d.kind is DeviceKind.ELEVATOR)  # type: ignore[attr-defined]
    camera = next(d.device for d in site.devices if d.kind is DeviceKind.CAMERA)  # type: ignore[attr-defined]
    settings = make_settings(mosquitto.url, tmp_path, unknown_devices=policy)
    client = RegistryClient(url, token)
    service = run_ingest(settings, unique("ingest-reg"), registry=client)
    ts = now_ms() - 10_000
    samples = (
        Sample(elevator, DeviceKind.ELEVATOR, ts, {"car_load": 10.0, "motor_current": 3.5}),
        Sample(camera, DeviceKind.CHARGER, ts, {"power": 1.0}),  # registered as a camera
        Sample(f"{compound}-EL9999", DeviceKind.ELEVATOR, ts, {"car_load": 1.0}),  # not in the registry
    )
    event = Event(elevator, DeviceKind.ELEVATOR, ts, "door_fault")
    publisher = Publisher(mosquitto.port, unique("pub"))
    publisher.publish(
        [
            (topic(compound, gateway, Channel.DATA), DataMessage(Envelope(compound, gateway, 1, 0, ts), samples).encode()),
            (topic(compound, gateway, Channel.EVENT), EventMessage(Envelope(compound, gateway, 1, 1, ts), (event,)).encode()),
        ]
    )  # fmt: skip
    publisher.wait_acked()
    wait_until(lambda: service.stats.snapshot().acked == 2, 30, "both messages stored and acknowledged")
    stats = service.stats.snapshot()
    store = open_store(settings)
    if policy == "deadletter":
        assert store.count_readings(compound=compound) == 2
        assert stats.rejected == {"kind_mismatch": 1, "unknown_device": 1}
        assert stats.flagged_readings == 0
    else:
        assert store.count_readings(compound=compound) == 3
        assert stats.rejected == {"kind_mismatch": 1} and stats.flagged_readings == 1
    [stored_event] = store.events(ts, ts + 1, compound=compound)
    assert stored_event.tags.keys() >= {"district", "street", "community"}
    assert stats.registry_errors == 0 and client.requests == 1  # one batched lookup, then the cache
    store.close()
    publisher.close()


def test_cached_lookups_follow_registry_changes(registry: tuple[str, str, list[object], str]) -> None:
    """A device unbound and bound again through the API is seen at the next lookup, long before the
    cache entries would expire, because the registry's revision counter moved."""
    url, token, sites, admin = registry
    site = sites[0]
    device = next(d.device for d in site.devices if d.kind is DeviceKind.CHARGER)  # type: ignore[attr-defined]
    client = RegistryClient(url, token, ttl_s=3600, unknown_ttl_s=3600, revision_check_s=0.0)
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    try:
        record = client.lookup([device])[device]
        assert record is not None and record.kind == "charger"
        asset_id = api.get(f"/api/v1/lookup/devices/{device}").json()["asset_id"]
        requests = client.requests
        assert client.lookup([device])[device] == record and client.requests == requests  # cached

        assert api.delete(f"/api/v1/devices/{device}").status_code == 204  # unbound
        assert client.lookup([device])[device] is None
        assert (
            client.lookup([device])[device] is None and client.requests == requests + 1
        )  # cached as unknown

        r = api.post("/api/v1/devices", json={"device_id": device, "asset_id": asset_id})
        assert r.status_code in (200, 201), r.text
        assert client.lookup([device])[device] == record
    finally:
        api.close()
        client.close()


def test_lookups_leave_no_garbage_for_the_cyclic_collector(
    registry: tuple[str, str, list[object], str],
) -> None:
    # ingest runs the cyclic collector rarely, and checks the registry's revision every 5 s whatever
    # its load: a reference cycle per request would hold each request until a full collection
    url, token, sites, _ = registry
    devices = [d.device for d in sites[0].devices][:50]  # type: ignore[attr-defined]
    client = RegistryClient(url, token, ttl_s=0.0, unknown_ttl_s=0.0, revision_check_s=0.0)
    try:
        assert client.lookup(devices[:1])  # the connection is open
        with cyclic_garbage() as left:
            for _ in range(5):
                assert all(client.lookup(devices).values())  # fetched again: nothing stays cached
        assert client.requests == 6
        assert not [name for name in left if name.startswith(("httpx", "httpcore"))], left[:10]
    finally:
        client.close()


def test_a_look_alike_compound_cannot_capture_another_compounds_devices(
    registry: tuple[str, str, list[object], str],
    mosquitto: MosquittoService,
    tmp_path: Path,
    unique: Callable[[str], str],
    run_ingest: Callable[..., IngestService],
) -> None:
    """A compound code that is the start of another's (``220102`` beside ``220102-0001``) would make
    ``220102-0001-CA9001`` an id of both. The registry refuses such a code; and a gateway publishing
    under it (its broker account would allow the topic) gets every device of the other compound
    dead-lettered, bound or not yet bound, even when ingest accepts unknown devices flagged."""
    url, token, sites, admin = registry
    site = sites[0]
    rightful, gateway = site.compound, site.gateway  # type: ignore[attr-defined]
    look_alike = rightful.split("-")[0]
    assert rightful.startswith(look_alike + "-")
    camera = next(d.device for d in site.devices if d.kind is DeviceKind.CAMERA)  # type: ignore[attr-defined]
    future = f"{rightful}-CA9001"  # not bound yet: the look-alike would have claimed it first
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    try:
        compound = api.get("/api/v1/compounds", params={"q": rightful}).json()["items"][0]
        body = {**{k: compound[k] for k in ("community_id", "year_built", "buildings_count", "households",
                                            "management_mode")}, "name_zh": "仿冒小区"}  # fmt: skip
        for code in (look_alike, rightful, f"{rightful}-ca9001"):  # shorter, equal, longer
            r = api.post("/api/v1/compounds", json={**body, "code": code})
            assert r.status_code == 409 and r.json()["errors"][0]["field"] == "code", (code, r.text)

        settings = make_settings(mosquitto.url, tmp_path, unknown_devices="flag")
        client = RegistryClient(url, token)
        service = run_ingest(settings, unique("ingest-lookalike"), registry=client)
        ts = now_ms() - 10_000
        publisher = Publisher(mosquitto.port, unique("pub"))
        messages = []
        for seq, (code, gw) in enumerate(((look_alike, f"{look_alike}-GW01"), (rightful, gateway))):
            samples = (
                Sample(camera, DeviceKind.CAMERA, ts + seq, {"online": 1.0}),
                Sample(future, DeviceKind.CAMERA, ts + seq, {"online": 1.0}),
            )
            messages.append(
                (topic(code, gw, Channel.DATA), DataMessage(Envelope(code, gw, 1, 0, ts), samples).encode())
            )
        publisher.publish(messages)
        publisher.wait_acked()
        wait_until(lambda: service.stats.snapshot().acked == 2, 30, "both messages handled and acknowledged")
        stats = service.stats.snapshot()
        assert stats.rejected == {"foreign_device": 2}, stats.rejected
        store = open_store(settings)
        try:
            assert store.count_readings(compound=look_alike) == 0
            assert store.count_readings(compound=rightful) == 2  # the bound camera, and the new one flagged
        finally:
            store.close()
            publisher.close()
        # the rightful manager binds the new device to one of its assets: nobody holds it
        asset = api.get("/api/v1/assets", params={"compound_code": rightful, "kind": "camera"}).json()[
            "items"
        ][0]
        r = api.post("/api/v1/devices", json={"device_id": future, "asset_id": asset["id"]})
        assert r.status_code == 201, r.text
        assert (
            api.post("/api/v1/devices", json={"device_id": camera, "asset_id": asset["id"]}).status_code
            == 201
        )
    finally:
        api.close()
