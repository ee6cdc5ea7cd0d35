"""Who may see and change what: tokens, roles and per-compound scope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from sitewatch.assets.importer import import_ledger

from .ledger_builder import ledger, xlsx
from .test_api import API, TestClient, create_app, make_tokens

Api = tuple[TestClient, dict[str, dict[str, str]], dict[str, int]]


@pytest.fixture
def api(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Api]:
    """Client, auth headers per role, and compound ids by code."""
    assert import_ledger(
        sqlite_engine, xlsx(ledger(compounds=2, assets_per_compound=12), tmp_path / "l.xlsx")
    ).ok
    headers = {name: {"Authorization": f"Bearer {t}"} for name, t in make_tokens(sqlite_engine).items()}
    with TestClient(create_app(engine=sqlite_engine), raise_server_exceptions=False) as client:
        ids = {
            c["code"]: c["id"]
            for c in client.get(f"{API}/compounds", headers=headers["admin"]).json()["items"]
        }
        yield client, headers, ids


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer "}],
    ids=["missing", "unknown", "basic", "empty"],
)
def test_missing_or_wrong_token_is_401(api: Api, headers: dict[str, str]) -> None:
    client, _, _ = api
    for path in ("/compounds", "/assets", "/lookup/devices/C0001-EL0001", "/tokens"):
        r = client.get(f"{API}{path}", headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized", (path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"


def test_property_manager_sees_and_changes_only_its_compounds(api: Api) -> None:
    client, h, ids = api
    assert [c["code"] for c in client.get(f"{API}/compounds", headers=h["pm"]).json()["items"]] == ["C0001"]
    assert client.get(f"{API}/compounds/{ids['C0002']}", headers=h["pm"]).status_code == 404
    assets = client.get(f"{API}/assets", params={"limit": 100}, headers=h["pm"]).json()
    assert assets["total"] == 12 and all(a["compound_id"] == ids["C0001"] for a in assets["items"])
    assert client.get(f"{API}/lookup/devices/C0002-EL0001", headers=h["pm"]).status_code == 404
    found = client.post(
        f"{API}/lookup/devices", json={"device_ids": ["C0002-EL0001"]}, headers=h["pm"]
    ).json()
    assert found["found"] == {} and found["unknown"] == ["C0002-EL0001"]
    # Writing outside its scope is answered exactly as writing to something that does not exist.
    en = {**h["pm"], "Accept-Language": "en"}
    for method, path, body in [
        ("PATCH", f"/compounds/{ids['C0002']}", {"households": 1}),
        ("DELETE", f"/compounds/{ids['C0002']}", None),
    ]:
        outside = client.request(method, f"{API}{path}", json=body, headers=en)
        absent = client.request(method, f"{API}{path.rsplit('/', 1)[0]}/999999", json=body, headers=en)
        assert outside.status_code == absent.status_code == 404, (path, outside.text)
        assert outside.json()["detail"].replace(str(ids["C0002"]), "N") == absent.json()["detail"].replace(
            "999999", "N"
        )
        assert "C0002" not in outside.text
    r = client.post(f"{API}/assets", json={"asset_code": "X1", "compound_id": ids["C0002"], "kind": "camera"},
                    headers=en)  # fmt: skip
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "compound_id" and "C0002" not in r.text
    other_asset = client.get(f"{API}/assets", params={"compound_code": "C0002"}, headers=h["admin"]).json()[
        "items"
    ][0]
    assert client.delete(f"{API}/assets/{other_asset['id']}", headers=h["pm"]).status_code == 404
    assert (
        client.patch(f"{API}/assets/{other_asset['id']}", json={"name": "x"}, headers=h["pm"]).status_code
        == 404
    )
    r = client.post(
        f"{API}/devices", json={"device_id": "C0002-X1", "asset_id": other_asset["id"]}, headers=h["pm"]
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "asset_id"
    assert client.delete(f"{API}/devices/C0002-EL0001", headers=h["pm"]).status_code == 404
    assert (
        client.patch(f"{API}/compounds/{ids['C0001']}", json={"households": 500}, headers=h["pm"]).status_code
        == 200
    )
    # nor may it hand its compound to another company
    r = client.patch(f"{API}/compounds/{ids['C0001']}", json={"manager_org_id": 1}, headers=h["pm"])
    assert r.status_code in (403, 422)
    assert client.get(f"{API}/compounds", headers=h["pm_other"]).json()["items"][0]["code"] == "C0002"


def test_crew_reads_only_what_it_maintains_and_cannot_write(api: Api) -> None:
    client, h, ids = api
    assets = client.get(f"{API}/assets", params={"limit": 100}, headers=h["crew"]).json()
    kinds = {a["kind"] for a in assets["items"]}
    assert assets["total"] > 0 and kinds <= {
        "elevator",
        "camera",
        "charger",
        "streetlight",
    }  # not water meters
    assert {a["compound_id"] for a in assets["items"]} == {ids["C0001"]}
    assert client.get(f"{API}/lookup/devices/C0001-EL0001", headers=h["crew"]).status_code == 200
    assert client.get(f"{API}/lookup/devices/C0001-WM0001", headers=h["crew"]).status_code == 404
    assert [c["contract_no"] for c in client.get(f"{API}/contracts", headers=h["crew"]).json()["items"]] == [
        "HT-C0001"
    ]
    asset_id = assets["items"][0]["id"]
    for method, path, body in [
        ("PATCH", f"/assets/{asset_id}", {"name": "x"}),
        ("DELETE", f"/assets/{asset_id}", None),
        ("POST", "/assets", {"asset_code": "X", "compound_id": ids["C0001"], "kind": "camera"}),
        ("PATCH", f"/compounds/{ids['C0001']}", {"households": 1}),
        ("POST", "/devices", {"device_id": "C0001-X", "asset_id": asset_id}),
        ("POST", "/organisations", {"name": "x", "type": "contractor"}),
        ("GET", "/tokens", None),
    ]:
        r = client.request(method, f"{API}{path}", json=body, headers=h["crew"])
        assert r.status_code == 403, (method, path, r.text)


def test_bureau_reads_everything_but_writes_nothing(api: Api) -> None:
    client, h, ids = api
    assert client.get(f"{API}/compounds", headers=h["bureau"]).json()["total"] == 2
    assert client.get(f"{API}/assets", headers=h["bureau"]).json()["total"] == 24
    assert (
        client.patch(
            f"{API}/compounds/{ids['C0001']}", json={"households": 1}, headers=h["bureau"]
        ).status_code
        == 403
    )
    assert client.post(f"{API}/tokens", json={"role": "admin"}, headers=h["bureau"]).status_code == 403


def test_only_admin_manages_tokens_and_organisations(api: Api) -> None:
    client, h, _ = api
    for role in ("pm", "crew", "bureau"):
        assert (
            client.post(
                f"{API}/organisations", json={"name": "新单位", "type": "utility"}, headers=h[role]
            ).status_code
            == 403
        )
    r = client.post(f"{API}/organisations", json={"name": "新单位", "type": "utility"}, headers=h["admin"])
    assert r.status_code == 201
    r = client.post(f"{API}/organisations", json={"name": "新单位", "type": "utility"}, headers=h["admin"])
    assert r.status_code == 409
