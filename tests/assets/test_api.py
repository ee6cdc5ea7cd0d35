"""The REST API over a real database (SQLite and PostgreSQL): lists, filters, writes, lookup, errors."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from sitewatch.assets.db import transaction
from sitewatch.assets.importer import import_ledger
from sitewatch.assets.models import Role
from sitewatch.assets.tokens import create_token
from sitewatch.server import create_app

from .ledger_builder import ledger, xlsx

with warnings.catch_warnings():  # starlette asks for the httpx2 fork; plain httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1"


def make_tokens(engine: Engine) -> dict[str, str]:
    """One token per role; the property manager runs C0001, the crew's company maintains C0001."""
    specs = {
        "admin": (Role.ADMIN, None), "bureau": (Role.BUREAU, None),
        "pm": (Role.PROPERTY_MANAGER, "物业公司2"), "pm_other": (Role.PROPERTY_MANAGER, "物业公司3"),
        "crew": (Role.CREW, "维保单位2"),
    }  # fmt: skip
    out = {}
    with transaction(engine) as session:
        for name, (role, org) in specs.items():
            out[name], _ = create_token(session, role, org)
    return out


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """A client over a registry with 2 compounds of 12 assets, and auth headers per role."""
    assert import_ledger(engine, xlsx(ledger(compounds=2, assets_per_compound=12), tmp_path / "l.xlsx")).ok
    headers = {name: {"Authorization": f"Bearer {t}"} for name, t in make_tokens(engine).items()}
    with TestClient(create_app(engine=engine), raise_server_exceptions=False) as client:
        yield client, headers


def test_lookup_single_and_batch(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, h = api
    r = client.get(f"{API}/lookup/devices/C0001-EL0001", headers=h["bureau"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["asset_code"] == "C0001-EL0001"
        and body["kind"] == "elevator"
        and body["compound_code"] == "C0001"
    )
    assert body["city"] == "长春市" and body["district"] and body["street"] and body["community"]
    assert body["maintainer_org"] == "维保单位2" and body["building_no"] is not None
    r = client.post(
        f"{API}/lookup/devices",
        json={"device_ids": ["C0001-EL0001", "C0002-CA0001", "NOPE-1"]},
        headers=h["admin"],
    )
    assert r.status_code == 200
    assert set(r.json()["found"]) == {"C0001-EL0001", "C0002-CA0001"} and r.json()["unknown"] == ["NOPE-1"]
    r = client.get(f"{API}/lookup/devices/NOPE-1", headers=h["admin"])
    assert r.status_code == 404 and "NOPE-1" in r.json()["detail"]


def test_lists_filters_search_and_pagination(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, h = api
    r = client.get(f"{API}/assets", params={"kind": "elevator", "limit": 1}, headers=h["bureau"])
    page = r.json()
    assert r.status_code == 200 and page["limit"] == 1 and len(page["items"]) == 1 and page["total"] >= 2
    assert all(a["kind"] == "elevator" for a in page["items"])
    r = client.get(f"{API}/assets", params={"compound_code": "C0002", "limit": 100}, headers=h["bureau"])
    assert r.json()["total"] == 12 and {a["asset_code"][:5] for a in r.json()["items"]} == {"C0002"}
    r = client.get(f"{API}/assets", params={"q": "EL0001"}, headers=h["bureau"])
    assert {a["asset_code"] for a in r.json()["items"]} == {"C0001-EL0001", "C0002-EL0001"}
    r = client.get(f"{API}/compounds", params={"q": "幸福2"}, headers=h["bureau"])
    assert [c["code"] for c in r.json()["items"]] == ["C0002"]
    r = client.get(f"{API}/compounds", params={"q": "%"}, headers=h["bureau"])
    assert r.json()["total"] == 0  # wildcards are literal
    for path in (
        "districts",
        "streets",
        "communities",
        "buildings",
        "devices",
        "organisations",
        "crews",
        "contracts",
    ):
        r = client.get(f"{API}/{path}", headers=h["bureau"])
        assert r.status_code == 200 and r.json()["total"] > 0, path


def test_write_and_conflicts(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, h = api
    compound = client.get(f"{API}/compounds", params={"q": "C0001"}, headers=h["pm"]).json()["items"][0]
    new = {"asset_code": "C0001-NEW1", "compound_id": compound["id"], "kind": "charger", "serial_no": "SN-NEW-1",
           "charger_power_kw": 7.0}  # fmt: skip
    r = client.post(f"{API}/assets", json=new, headers=h["pm"])
    assert r.status_code == 201, r.text
    asset_id = r.json()["id"]
    r = client.post(f"{API}/assets", json={**new, "asset_code": "C0001-NEW2"}, headers=h["pm"])
    assert r.status_code == 409 and "detail" in r.json()  # serial number taken
    r = client.patch(f"{API}/assets/{asset_id}", json={"manufacturer": "星星充电"}, headers=h["pm"])
    assert r.status_code == 200 and r.json()["manufacturer"] == "星星充电"
    r = client.post(
        f"{API}/devices", json={"device_id": "C0001-EV9999", "asset_id": asset_id}, headers=h["pm"]
    )
    assert r.status_code == 201 and r.json()["valid_to"] is None
    r = client.post(
        f"{API}/devices", json={"device_id": "C0001-EV9998", "asset_id": asset_id}, headers=h["pm"]
    )
    assert r.status_code == 201
    history = client.get(f"{API}/devices/C0001-EV9999", headers=h["pm"]).json()
    assert history[0]["valid_to"] is not None
    r = client.post(f"{API}/devices", json={"device_id": "C0002-EV1", "asset_id": asset_id}, headers=h["pm"])
    assert r.status_code == 422
    assert client.delete(f"{API}/devices/C0001-EV9998", headers=h["pm"]).status_code == 204
    assert client.get(f"{API}/lookup/devices/C0001-EV9998", headers=h["pm"]).status_code == 404
    assert client.delete(f"{API}/assets/{asset_id}", headers=h["pm"]).status_code == 204
    r = client.post(f"{API}/assets", json={**new, "compound_id": 999999}, headers=h["admin"])
    assert r.status_code == 422


def test_deleting_a_compound_removes_what_it_holds(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, h = api
    compound = client.get(f"{API}/compounds", params={"q": "C0002"}, headers=h["admin"]).json()["items"][0]
    assert client.delete(f"{API}/compounds/{compound['id']}", headers=h["admin"]).status_code == 204
    assert client.get(f"{API}/compounds/{compound['id']}", headers=h["admin"]).status_code == 404
    assert (
        client.get(f"{API}/assets", params={"compound_id": compound["id"]}, headers=h["admin"]).json()[
            "total"
        ]
        == 0
    )
    assert client.get(f"{API}/lookup/devices/C0002-CA0001", headers=h["admin"]).status_code == 404
    assert client.get(f"{API}/assets", headers=h["admin"]).json()["total"] == 12


def test_token_lifecycle(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, h = api
    r = client.post(f"{API}/tokens", json={"role": "bureau", "label": "dashboard"}, headers=h["admin"])
    assert r.status_code == 201
    token, token_id = r.json()["token"], r.json()["id"]
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{API}/compounds", headers=auth).status_code == 200
    assert "token" not in client.get(f"{API}/tokens", headers=h["admin"]).json()["items"][0]
    assert client.delete(f"{API}/tokens/{token_id}", headers=h["admin"]).status_code == 204
    assert client.get(f"{API}/compounds", headers=auth).status_code == 401
    r = client.post(f"{API}/tokens", json={"role": "crew"}, headers=h["admin"])
    assert r.status_code == 422


def test_openapi_docs_served(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, _ = api
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/lookup/devices/{device_id}" in paths and "/api/v1/lookup/devices" in paths


def test_revision_moves_on_every_registry_change_and_only_then(
    api: tuple[TestClient, dict[str, dict[str, str]]], engine: Engine, tmp_path: Path
) -> None:
    client, h = api

    def revision() -> int:
        r = client.get(f"{API}/lookup/revision", headers=h["crew"])
        assert r.status_code == 200, r.text
        return int(r.json()["revision"])

    start = revision()
    assert start >= 1  # the import that filled the registry counted
    assert client.get(f"{API}/lookup/revision").status_code == 401
    # Reading, and re-importing the same ledger, change nothing.
    client.get(f"{API}/assets", headers=h["admin"])
    assert import_ledger(
        engine, xlsx(ledger(compounds=2, assets_per_compound=12), tmp_path / "again.xlsx")
    ).ok
    assert revision() == start
    # Tokens are not registry data.
    assert client.post(f"{API}/tokens", json={"role": "bureau"}, headers=h["admin"]).status_code in (200, 201)
    assert revision() == start
    # An ORM write through the API, and a bulk import with a change, each move it once.
    asset = client.get(f"{API}/assets", params={"compound_code": "C0001"}, headers=h["admin"]).json()[
        "items"
    ][0]
    r = client.patch(f"{API}/assets/{asset['id']}", json={"manufacturer": "三菱电梯"}, headers=h["admin"])
    assert r.status_code == 200, r.text
    assert revision() == start + 1
    assert import_ledger(engine, xlsx(ledger(compounds=3, assets_per_compound=12), tmp_path / "more.xlsx")).ok
    assert revision() == start + 2
    # A refused write does not.
    r = client.patch(f"{API}/assets/{asset['id']}", json={"install_date": "not a date"}, headers=h["admin"])
    assert r.status_code == 422
    assert revision() == start + 2
