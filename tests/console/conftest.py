"""A known data set for the console's tests: two compounds of the simulators' city in a real SQLite
registry, readings and gateway state in a real embedded store at a fixed "now", alerts raised from
findings, and tokens of each role; plus the application over it, served by uvicorn on a free port
for the browser tests."""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, select, update

from sitewatch.alerts.api import alerts_component
from sitewatch.alerts.db import transaction
from sitewatch.alerts.dispatch import Dispatcher
from sitewatch.alerts.inhibit import load_rules
from sitewatch.alerts.lifecycle import apply_finding
from sitewatch.assets.api.component import registry_component
from sitewatch.assets.db import create_engine_for, upgrade
from sitewatch.assets.importer import import_ledger
from sitewatch.assets.models import Asset, Compound, DeviceBinding, Organisation
from sitewatch.assets.tokens import create_token
from sitewatch.assets.workbook import HeaderStyle, write_csv_dir
from sitewatch.console.component import console_component
from sitewatch.console.health import PRESENCE
from sitewatch.contract import DeviceKind, Event, Finding, FindingState, Sample, Severity, gateway_device
from sitewatch.ports import free_port, port_open
from sitewatch.server import create_app
from sitewatch.settings import Settings, load_settings
from sitewatch.simulators.city import generate_city
from sitewatch.store import StoredEvent, StoredSample
from sitewatch.store.embedded_store import EmbeddedStore
from sitewatch.web.principal import Role

with warnings.catch_warnings():  # starlette asks for the httpx2 fork; plain httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NOW_MS = int(dt.datetime(2026, 12, 1, 4, 0, tzinfo=dt.UTC).timestamp() * 1000)
HTML_NAME = '<script>alert("x")</script><b>电梯</b>'


@dataclass
class DataSet:
    """What the tests know about the data: counts to expect, tokens, ids."""

    root: Path
    engine: Engine
    store_path: Path
    settings: Settings
    a: str = ""  # the compound with readings
    b: str = ""  # the compound without readings, its gateway offline
    registered: dict[str, int] = field(default_factory=dict)  # devices per compound (no gateways)
    online: dict[str, int] = field(default_factory=dict)  # devices with a reading at NOW - 1 min
    elevators_online_a: int = 0
    tokens: dict[str, str] = field(default_factory=dict)  # admin, bureau, manager_a, manager_b
    html_device: str = ""  # a device of compound A whose asset name holds HTML
    camera_a: str = ""  # a camera of compound A
    alert_ids: list[int] = field(default_factory=list)

    def app(self) -> FastAPI:
        """The web application over this data set, its clock at NOW_MS."""
        parts = [
            registry_component(self.settings, self.engine), alerts_component(self.settings),
            console_component(self.settings, store=lambda: EmbeddedStore(self.store_path, create=False),
                              clock=lambda: NOW_MS, poll_s=5),
        ]  # fmt: skip
        return create_app(self.settings, engine=self.engine, parts=parts)


def _build(root: Path) -> DataSet:
    settings = load_settings().model_copy(update={"data_dir": root})
    engine = create_engine_for(f"sqlite:///{root / 'registry.db'}")
    upgrade(engine)
    records = generate_city(2, 3)
    with tempfile.TemporaryDirectory() as folder:
        write_csv_dir(records, Path(folder), HeaderStyle.EN)
        report = import_ledger(engine, Path(folder))
    assert report.ok
    data = DataSet(root, engine, root / "readings.db", settings)
    data.a, data.b = (c["code"] for c in records["compounds"])
    with transaction(engine) as session:
        # each compound its own manager, so a manager's token sees one of them
        orgs = list(session.scalars(select(Organisation).where(Organisation.type == "property_company")))
        for code, org in zip((data.a, data.b), orgs[:2], strict=True):
            session.execute(update(Compound).where(Compound.code == code).values(manager_org_id=org.id))
        data.tokens["admin"] = create_token(session, Role.ADMIN)[0]
        data.tokens["bureau"] = create_token(session, Role.BUREAU)[0]
        data.tokens["manager_a"] = create_token(session, Role.PROPERTY_MANAGER, orgs[0].name)[0]
        data.tokens["manager_b"] = create_token(session, Role.PROPERTY_MANAGER, orgs[1].name)[0]
        elevator_contract = next(c for c in records["contracts"] if c["compound_code"] == data.a
                                 and c["kinds"] == DeviceKind.ELEVATOR.value)  # fmt: skip
        data.tokens["crew_a"] = create_token(session, Role.CREW, elevator_contract["org"])[0]
        bound = session.execute(
            select(Compound.code, Asset.kind, DeviceBinding.device_id, Asset.id)
            .join(Asset, Asset.compound_id == Compound.id)
            .join(DeviceBinding, (DeviceBinding.asset_id == Asset.id) & DeviceBinding.valid_to.is_(None))
            .order_by(DeviceBinding.device_id)
        ).all()
        first_elevator = next(r for r in bound if r[0] == data.a and r[1] == DeviceKind.ELEVATOR.value)
        data.html_device = first_elevator[2]
        data.camera_a = next(r[2] for r in bound if r[0] == data.a and r[1] == DeviceKind.CAMERA.value)
        session.execute(update(Asset).where(Asset.id == first_elevator[3]).values(name=HTML_NAME))
    samples: list[StoredSample] = []
    for i, (code, kind, device, _asset) in enumerate(r for r in bound if r[1] != DeviceKind.GATEWAY.value):
        data.registered[code] = data.registered.get(code, 0) + 1
        if code != data.a or (i % 4 == 3 and device != data.html_device):  # B: nothing; A: three in four
            continue
        data.online[code] = data.online.get(code, 0) + 1
        data.elevators_online_a += kind == DeviceKind.ELEVATOR.value
        metric = PRESENCE[DeviceKind(kind)][0]
        for minutes in range(56, 0, -5):  # an hour of readings, the newest a minute ago
            samples.append(StoredSample(Sample(device, DeviceKind(kind), NOW_MS - minutes * 60_000,
                                               {metric: 1.0}), code))  # fmt: skip
    events = [
        StoredEvent(Event(gateway_device(data.a, "GW01"), DeviceKind.GATEWAY, NOW_MS - 3_600_000, "online"), data.a),
        StoredEvent(Event(gateway_device(data.b, "GW01"), DeviceKind.GATEWAY, NOW_MS - 600_000, "offline"), data.b),
        StoredEvent(Event(data.html_device, DeviceKind.ELEVATOR, NOW_MS - 1_800_000, "door_fault"), data.a),
    ]  # fmt: skip
    with EmbeddedStore(data.store_path) as store:
        store.write(samples, events)
    dispatcher = Dispatcher(settings, load_rules())
    now = dt.datetime(2026, 12, 1, 4, 0)
    for n, (code, device, fault, severity) in enumerate((
        (data.a, data.html_device, "door_fault", Severity.WARNING),
        (data.b, gateway_device(data.b, "GW01"), "offline", Severity.CRITICAL),
    )):  # fmt: skip
        kind = DeviceKind.ELEVATOR if device == data.html_device else DeviceKind.GATEWAY
        finding = Finding(id=f"test:{n}", compound=code, device=device, kind=kind, source="rule:test", fault=fault,
                          severity=severity, state=FindingState.ACTIVE, started_ms=NOW_MS - 600_000, ended_ms=None,
                          ts_ms=NOW_MS - 600_000, message="{description} (simulated fault)",
                          params={"description": fault})  # fmt: skip
        with transaction(engine) as session:
            alert, _applied = apply_finding(session, finding, dispatcher.alerts, now, dispatcher.touch)
            assert alert is not None
            data.alert_ids.append(alert.id)
    return data


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataSet]:
    """The known data set (built once per session)."""
    built = _build(tmp_path_factory.mktemp("console"))
    yield built
    built.engine.dispose()


@pytest.fixture
def client(data: DataSet) -> Iterator[TestClient]:
    """A client of the application (no session cookie)."""
    with TestClient(data.app(), follow_redirects=False) as test_client:
        yield test_client


def signed_in(client: TestClient, token: str) -> TestClient:
    """``client`` with a session cookie for ``token``."""
    client.cookies.set("sitewatch_session", token)
    return client


@pytest.fixture(scope="session")
def served(data: DataSet) -> Iterator[str]:
    """The application served by uvicorn on a free port (for the browser): its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(data.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError("the console did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
