"""Each class of hostile input against the real registry API, on SQLite and on PostgreSQL:
numbers, ownership of device ids, control characters, sizes, errors, scope, look-alikes, tokens."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from sitewatch.assets.db import transaction
from sitewatch.assets.importer import import_ledger
from sitewatch.assets.models import ApiToken, Organisation
from sitewatch.server import create_app

from .ledger_builder import ledger, xlsx
from .test_api import API, TestClient, make_tokens

Api = tuple[TestClient, dict[str, dict[str, str]]]
EN = {"Accept-Language": "en"}


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[Api]:
    """A client over a registry with 2 compounds of 12 assets, and auth headers per role."""
    assert import_ledger(engine, xlsx(ledger(compounds=2, assets_per_compound=12), tmp_path / "l.xlsx")).ok
    headers = {name: {"Authorization": f"Bearer {t}"} for name, t in make_tokens(engine).items()}
    with TestClient(create_app(engine=engine), raise_server_exceptions=False) as client:
        yield client, headers


def _compound(client: TestClient, h: dict[str, str], code: str) -> dict[str, Any]:
    return client.get(f"{API}/compounds", params={"q": code}, headers=h).json()["items"][0]  # type: ignore[no-any-return]


def _new_compound(code: str, community_id: int, **extra: Any) -> dict[str, Any]:
    return {"code": code, "name_zh": f"{code}小区", "community_id": community_id, "year_built": 1995,
            "buildings_count": 1, "households": 10, "management_mode": "self_governance", **extra}  # fmt: skip


def _numeric_fields(client: TestClient) -> list[tuple[str, str, str]]:
    """(method, path, field) of every number in every request body of the OpenAPI schema."""
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    def numeric(prop: dict[str, Any]) -> bool:
        options = prop.get("anyOf", [prop])
        return any(o.get("type") in ("number", "integer") for o in options)

    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" in ref:
                props = schemas[ref["$ref"].rsplit("/", 1)[1]]["properties"]
                out += [(method.upper(), path, name) for name, prop in props.items() if numeric(prop)]
    return out


def test_no_number_crashes_a_request(api: Api) -> None:
    client, h = api
    fields = _numeric_fields(client)
    assert len(fields) >= 20 and {p for _, p, _ in fields} >= {
        f"{API}/assets",
        f"{API}/compounds",
        f"{API}/tokens",
    }
    headers = {**h["admin"], **EN, "Content-Type": "application/json"}
    for method, path, field in fields:
        url = path.replace("{asset_id}", "1").replace("{compound_id}", "1")
        for token in ("NaN", "-Infinity", "1e309"):
            r = client.request(method, url, content=f'{{"{field}": {token}}}', headers=headers)
            assert r.status_code == 422, (method, path, field, r.text)
            assert r.json()["errors"] == [{"field": field, "code": "non_finite",
                                           "message": r.json()["errors"][0]["message"], "input": token}]  # fmt: skip
        for text in ("NaN", "-inf", "1e309", str(10**400)):
            r = client.request(method, url, json={field: text}, headers=headers)
            assert 400 <= r.status_code < 500, (method, path, field, text, r.text)
            json.dumps(r.json(), allow_nan=False)  # the echo is strict JSON too


def test_a_compound_code_that_would_make_device_ids_ambiguous_is_refused(
    api: Api, engine: Engine, tmp_path: Path
) -> None:
    client, h = api
    community = _compound(client, h["admin"], "C0001")["community_id"]
    admin = {**h["admin"], **EN}
    for code in (
        "C0001-0001",
        "c0001",
        "C0001-EL0001",
    ):  # a longer code, a case twin, one that owns C0001's devices
        r = client.post(f"{API}/compounds", json=_new_compound(code, community), headers=admin)
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "code", (code, r.text)
        assert "C0001" not in r.json()["detail"].replace(code, "")  # the other code is not named
    assert (
        client.post(f"{API}/compounds", json=_new_compound("C0003-A", community), headers=admin).status_code
        == 201
    )
    r = client.post(f"{API}/compounds", json=_new_compound("C0003", community), headers=admin)  # the reverse
    assert r.status_code == 409
    assert (
        client.post(f"{API}/compounds", json=_new_compound("C000", community), headers=admin).status_code
        == 201
    )
    # the same rule in a ledger import
    data = ledger(compounds=2, assets_per_compound=2)
    twin = {**data["compounds"][0], "code": "C0002-9"}
    data["compounds"] = [twin]
    for sheet in ("buildings", "assets", "crews", "contracts"):
        del data[sheet]
    report = import_ledger(engine, xlsx(data, tmp_path / "twin.xlsx"))
    assert not report.ok and [i.code for i in report.issues.kept] == ["code_clash"]
    # a device id binds only to an asset of the compound it names
    asset = client.get(f"{API}/assets", params={"compound_code": "C0001"}, headers=admin).json()["items"][0]
    for device in ("C0002-EL9", "C000-X", "c0001-X"):
        r = client.post(f"{API}/devices", json={"device_id": device, "asset_id": asset["id"]}, headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["code"] == "foreign_device", (device, r.text)
    r = client.post(
        f"{API}/devices", json={"device_id": "C0001-9-EL1", "asset_id": asset["id"]}, headers=admin
    )
    assert r.status_code == 201, r.text  # '-' in the local name is fine: no compound C0001-9 exists


def test_clashing_codes_created_at_one_moment_cannot_both_exist(api: Api) -> None:
    client, h = api
    community = _compound(client, h["admin"], "C0001")["community_id"]
    statuses: list[int] = []

    def create(code: str, barrier: threading.Barrier) -> None:
        barrier.wait()
        r = client.post(f"{API}/compounds", json=_new_compound(code, community), headers=h["admin"])
        statuses.append(r.status_code)

    for n in range(8):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=create, args=(code, barrier)) for code in (f"R{n}", f"R{n}-1")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert sorted(statuses) == [201] * 8 + [409] * 8, statuses


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "维保\x1b[31m单位"), ("name", "\u202eevil.exe"), ("name", "a\nb"), ("contact", "x\x00"),
     ("phone", "138\u2066000"), ("name", "x\ufeff")],
)  # fmt: skip
def test_control_characters_are_refused_with_the_field_named(api: Api, field: str, value: str) -> None:
    client, h = api
    body = {"name": "新单位", "type": "utility", field: value}
    r = client.post(f"{API}/organisations", json=body, headers={**h["admin"], **EN})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field and r.json()["errors"][0]["code"] == "control_character"
    assert "U+" in r.json()["detail"]


def test_multiline_text_keeps_line_breaks_but_no_other_control(api: Api) -> None:
    client, h = api
    compound = _compound(client, h["admin"], "C0001")
    url = f"{API}/compounds/{compound['id']}"
    r = client.patch(url, json={"renovation_content": "加装电梯\r\n改造管网\t完成"}, headers=h["admin"])
    assert r.status_code == 200 and r.json()["renovation_content"] == "加装电梯\r\n改造管网\t完成"
    r = client.patch(url, json={"renovation_content": "加装\x07电梯"}, headers=h["admin"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "renovation_content"


def test_the_default_body_limit_is_one_mebibyte(api: Api) -> None:
    client, h = api
    r = client.post(f"{API}/lookup/devices", json={"device_ids": ["x" * 200] * 6000}, headers=h["admin"])
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    r = client.post(
        f"{API}/organisations", json={"name": "n" * 900_000, "type": "utility"}, headers=h["admin"]
    )
    assert r.status_code == 422 and len(r.content) < 1500  # the 900 KB value is not echoed back


def test_look_alike_organisation_names_are_one_name(api: Api, engine: Engine, tmp_path: Path) -> None:
    client, h = api
    admin = {**h["admin"], **EN}
    assert client.post(f"{API}/organisations", json={"name": "长春物业（集团）", "type": "property_company"},
                       headers=admin).status_code == 201  # fmt: skip
    for twin in ("长春物业(集团)", " 长春物业（集团） "):
        r = client.post(
            f"{API}/organisations", json={"name": twin, "type": "property_company"}, headers=admin
        )
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name", twin
    assert client.post(f"{API}/organisations", json={"name": "ＡＢＣ Utility", "type": "utility"},
                       headers=admin).status_code == 201  # fmt: skip
    assert client.post(f"{API}/organisations", json={"name": "abc  utility", "type": "utility"},
                       headers=admin).status_code == 409  # fmt: skip
    # "e" + combining acute (NFD) and "é" (NFC) are one name
    assert (
        client.post(
            f"{API}/organisations", json={"name": "Caf\u00e9", "type": "utility"}, headers=admin
        ).status_code
        == 201
    )
    assert (
        client.post(
            f"{API}/organisations", json={"name": "Cafe\u0301", "type": "utility"}, headers=admin
        ).status_code
        == 409
    )
    # a ledger naming an organisation in another form refers to the same one, and creates no twin
    data = ledger(compounds=2, assets_per_compound=2)
    data["compounds"][0]["manager_org"] = "长春物业(集团)"
    data["organisations"].append({"name": "长春物业(集团)", "type": "物业公司"})
    report = import_ledger(engine, xlsx(data, tmp_path / "twin.xlsx"))
    assert report.ok, [i.message("en") for i in report.issues.kept]
    with transaction(engine) as session:
        names = [n for n in session.scalars(select(Organisation.name)) if "长春物业" in n]
    assert len(names) == 1
    c1 = _compound(client, h["admin"], "C0001")
    org = client.get(f"{API}/organisations/{c1['manager_org_id']}", headers=admin).json()
    assert org["name"] in ("长春物业（集团）", "长春物业(集团)")


def test_tokens_expire_record_their_last_use_and_are_listed(api: Api, engine: Engine) -> None:
    client, h = api
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat()
    r = client.post(
        f"{API}/tokens", json={"role": "bureau", "label": "short", "expires_at": soon}, headers=h["admin"]
    )
    assert r.status_code == 201 and r.json()["expires_at"] is not None
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.get(f"{API}/compounds", headers=auth).status_code == 200
    deadline = time.monotonic() + 30
    while client.get(f"{API}/compounds", headers=auth).status_code == 200:
        assert time.monotonic() < deadline, "an expired token still works"
        time.sleep(0.2)
    assert client.get(f"{API}/compounds", headers=auth).json()["code"] == "unauthorized"
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    r = client.post(f"{API}/tokens", json={"role": "bureau", "expires_at": past}, headers=h["admin"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "expires_at"
    client.app.state.access.authenticator.flush_usage()  # what the application does every minute
    with transaction(engine) as session:
        used = {t.label: t.last_used_at for t in session.scalars(select(ApiToken))}
    assert used["short"] is not None
    listed = client.get(f"{API}/tokens", params={"limit": 100}, headers=h["admin"]).json()["items"]
    assert all({"expires_at", "last_used_at"} <= set(t) for t in listed)
