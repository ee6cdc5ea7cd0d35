"""The web application's shared machinery over the real registry app: one error format in the
reader's language, the body limit, strict JSON, 404/405, no database text, no plain-text 500."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends
from sqlalchemy import Engine

from sitewatch.assets.db import create_engine_for, transaction, upgrade
from sitewatch.assets.tokens import create_token
from sitewatch.server import components, create_app
from sitewatch.settings import load_settings
from sitewatch.web.component import Component
from sitewatch.web.deps import LanguageDep, PrincipalDep, ScopeDep, require_roles
from sitewatch.web.inputs import Finite
from sitewatch.web.principal import Principal, Role

with warnings.catch_warnings():  # starlette asks for the httpx2 fork; plain httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1"

ERROR_KEYS = {"status", "code", "detail", "errors"}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty registry."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def admin(engine: Engine) -> dict[str, str]:
    """An admin's auth header."""
    with transaction(engine) as session:
        secret, _ = create_token(session, Role.ADMIN)
    return {"Authorization": f"Bearer {secret}"}


def _boom() -> Component:
    router = APIRouter()

    @router.get("/boom")
    def boom(scope: ScopeDep) -> None:
        raise RuntimeError("secret internals: table api_tokens")

    return Component(name="boom", api=[router])


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    """The application with a 4 KiB body limit, plus one route that fails unexpectedly."""
    settings = load_settings(data_dir=tmp_path, web={"max_body_bytes": 4096})
    app = create_app(settings, engine=engine, parts=[*components(settings, engine), _boom()])
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _error(r: object, status: int, code: str) -> dict[str, object]:
    body = r.json()  # type: ignore[attr-defined]
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"] == "application/json", r.headers  # type: ignore[attr-defined]
    assert set(body) == ERROR_KEYS and body["status"] == status and body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    return body  # type: ignore[no-any-return]


def test_language_follows_accept_language_then_the_cookie_then_the_setting(client: TestClient) -> None:
    zh = _error(client.get(f"{API}/compounds"), 401, "unauthorized")
    assert "令牌" in zh["detail"]  # default: the language setting, zh_CN
    en = _error(
        client.get(f"{API}/compounds", headers={"Accept-Language": "en-US,en;q=0.9"}), 401, "unauthorized"
    )
    assert "token" in en["detail"] and not any("\u4e00" <= ch <= "\u9fff" for ch in en["detail"])
    r = client.get(f"{API}/compounds", headers={"Accept-Language": "fr, en;q=0.5, zh;q=0.1"})
    assert "token" in r.json()["detail"] and r.headers["content-language"] == "en"
    client.cookies.set("sitewatch_lang", "zh-CN")
    r = client.get(f"{API}/compounds", headers={"Accept-Language": "en"})
    assert "令牌" in r.json()["detail"] and r.headers["content-language"] == "zh-CN"


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_routing_errors_are_in_the_format(client: TestClient, admin: dict[str, str], language: str) -> None:
    headers = {**admin, "Accept-Language": language}
    _error(client.get("/api/v1/nothing-here", headers=headers), 404, "not_found")
    body = _error(client.put(f"{API}/compounds", headers=headers, json={}), 405, "method_not_allowed")
    assert "GET" in body["detail"]
    body = _error(client.get(f"{API}/assets/123456", headers=headers), 404, "not_found")
    assert "123456" in body["detail"]
    body = _error(client.get(f"{API}/assets", params={"limit": "many"}, headers=headers), 422, "invalid")
    assert body["errors"] == [
        {
            "field": "query.limit",
            "code": "int_parsing",
            "message": body["errors"][0]["message"],
            "input": "many",
        }
    ]
    chinese = any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"])
    assert chinese == (language == "zh-CN"), body["detail"]


def test_malformed_json_is_400_and_non_finite_numbers_are_422_naming_the_field(
    client: TestClient, admin: dict[str, str]
) -> None:
    headers = {**admin, "Content-Type": "application/json", "Accept-Language": "en"}
    for raw in (b'{"name": ', b"not json", b'{"a": "\\ud800"}', b"\xff\xfe"):
        _error(client.post(f"{API}/organisations", content=raw, headers=headers), 400, "malformed")
    for token in ("NaN", "Infinity", "-Infinity", "1e309", "-1e400"):
        raw = f'{{"asset_code": "X", "compound_id": 1, "kind": "charger", "charger_power_kw": {token}}}'
        body = _error(client.post(f"{API}/assets", content=raw, headers=headers), 422, "invalid")
        assert body["errors"] == [{"field": "charger_power_kw", "code": "non_finite",
                                   "message": body["errors"][0]["message"], "input": token}]  # fmt: skip
    raw = '{"device_ids": [1e999, "x"], "nested": {"deep": [NaN]}}'
    body = _error(client.post(f"{API}/lookup/devices", content=raw, headers=headers), 422, "invalid")
    assert {e["field"] for e in body["errors"]} == {"device_ids.0", "nested.deep.0"}
    # non-finite numbers sent as strings are refused by the models, and echoed as text
    body = _error(client.post(f"{API}/compounds", json={"code": "X1", "name_zh": "x", "community_id": 1,
                  "year_built": 2000, "buildings_count": 1, "households": 1, "management_mode": "self_governance",
                  "longitude": "NaN", "floor_area_m2": "-inf"}, headers=headers), 422, "invalid")  # fmt: skip
    assert {e["field"]: e["input"] for e in body["errors"]} == {"longitude": "NaN", "floor_area_m2": "-inf"}


def test_bodies_over_the_limit_are_413_before_they_are_parsed(
    client: TestClient, admin: dict[str, str]
) -> None:
    big = json.dumps({"device_ids": ["x" * 100] * 100})  # about 10 KiB > 4 KiB
    _error(client.post(f"{API}/lookup/devices", content=big, headers=admin), 413, "too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body streams in
        yield b'{"device_ids": ['
        for _ in range(200):
            yield b'"0123456789012345678901234567890123456789", '
        yield b'"x"]}'

    _error(client.post(f"{API}/lookup/devices", content=chunks(), headers=admin), 413, "too_large")
    ok = client.post(f"{API}/lookup/devices", json={"device_ids": ["x" * 100] * 10}, headers=admin)
    assert ok.status_code == 200


def test_echoed_input_is_cut(client: TestClient, admin: dict[str, str]) -> None:
    r = client.post(f"{API}/organisations", json={"name": "名" * 1000, "type": "utility"}, headers=admin)
    body = _error(r, 422, "invalid")
    assert body["errors"][0]["field"] == "name" and len(body["errors"][0]["input"]) == 61  # 60 and "…"
    assert len(r.content) < 1200


def test_an_unexpected_fault_is_a_json_500_without_internals(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = _error(client.get(f"{API}/boom", headers=admin), 500, "internal")
    assert "secret" not in json.dumps(body) and "api_tokens" not in json.dumps(body)


def test_a_conflict_names_the_field_never_the_database(client: TestClient, admin: dict[str, str]) -> None:
    headers = {**admin, "Accept-Language": "en"}
    assert (
        client.post(
            f"{API}/organisations", json={"name": "甲", "type": "utility"}, headers=headers
        ).status_code
        == 201
    )
    body = _error(client.post(f"{API}/organisations", json={"name": "甲", "type": "utility"}, headers=headers),
                  409, "conflict")  # fmt: skip
    text = json.dumps(body)
    assert body["errors"][0]["field"] == "name"
    assert "UNIQUE" not in text and "constraint" not in text and "organisations." not in text


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def test_a_unique_violation_is_reduced_to_the_field(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The fallback for a conflict no route checks first (two writers at one moment): the column,
    taken from SQLite's message or PostgreSQL's constraint name, and nothing else."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from sitewatch.assets.models import Asset, Organisation
    from sitewatch.web.errors import _unique_field

    url = (
        f"sqlite:///{tmp_path / 'u.db'}" if database == "sqlite" else request.getfixturevalue("postgres_url")
    )
    engine = create_engine_for(url)
    upgrade(engine)
    with transaction(engine) as session:
        session.add(Organisation(name="甲", type="utility"))
    with pytest.raises(IntegrityError) as caught, transaction(engine) as session:
        session.execute(insert(Organisation), [{"name": "甲", "name_key": "other", "type": "utility"}])
    assert _unique_field(caught.value) == "name"
    with pytest.raises(IntegrityError) as caught, transaction(engine) as session:
        session.execute(insert(Asset), [{"asset_code": "A", "compound_id": 999, "kind": "camera"}])
    assert _unique_field(caught.value) is None  # a foreign key: no field to name
    engine.dispose()


def _probe() -> Component:
    """A component as another package would write one, using only sitewatch.web."""

    router = APIRouter(prefix="/probe")

    @router.get("")
    def probe(
        scope: ScopeDep, who: PrincipalDep, language: LanguageDep, x: Finite = 0.0
    ) -> dict[str, object]:
        kinds = {code: sorted(k) if k is not None else None for code, k in scope.compounds.items()}
        return {
            "role": who.role.value,
            "everything": scope.everything,
            "compounds": kinds,
            "language": language,
            "x": x,
        }

    @router.post("/admin-only")
    def admin_only(who: Annotated[Principal, Depends(require_roles(Role.ADMIN))]) -> dict[str, int]:
        return {"token": who.token_id}

    return Component(name="probe", api=[router])


def test_a_components_routes_get_caller_scope_language_and_finite_numbers(tmp_path: Path) -> None:
    from assets.ledger_builder import ledger, xlsx  # type: ignore[import-not-found]
    from assets.test_api import make_tokens  # type: ignore[import-not-found]
    from sitewatch.assets.importer import import_ledger

    engine = create_engine_for(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    assert import_ledger(engine, xlsx(ledger(compounds=2, assets_per_compound=12), tmp_path / "l.xlsx")).ok
    tokens = {name: {"Authorization": f"Bearer {t}"} for name, t in make_tokens(engine).items()}
    settings = load_settings(data_dir=tmp_path)
    app = create_app(settings, engine=engine, parts=[*components(settings, engine), _probe()])
    with TestClient(app, raise_server_exceptions=False) as client:
        bureau = client.get(
            f"{API}/probe", params={"x": 1.5}, headers={**tokens["bureau"], "Accept-Language": "en"}
        )
        assert bureau.json() == {
            "role": "bureau",
            "everything": True,
            "compounds": {},
            "language": "en",
            "x": 1.5,
        }
        pm = client.get(f"{API}/probe", headers=tokens["pm"]).json()
        assert pm["everything"] is False and pm["compounds"] == {"C0001": None} and pm["language"] == "zh_CN"
        crew = client.get(f"{API}/probe", headers=tokens["crew"]).json()
        assert list(crew["compounds"]) == ["C0001"] and "water_meter" not in crew["compounds"]["C0001"]
        assert "elevator" in crew["compounds"]["C0001"]
        for bad in ("NaN", "inf", "-Infinity", "1e309"):
            r = client.get(f"{API}/probe", params={"x": bad}, headers=tokens["bureau"])
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.x", bad
        assert client.post(f"{API}/probe/admin-only", headers=tokens["pm"]).json()["code"] == "forbidden"
        assert client.post(f"{API}/probe/admin-only", headers=tokens["admin"]).status_code == 200
    engine.dispose()
