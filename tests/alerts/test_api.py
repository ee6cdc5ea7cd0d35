"""REST routes: roles and compound scoping (a crew cannot see or acknowledge another crew's
alerts), acknowledge and resolve with history, silences, refusals with reasons."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from sitewatch.alerts.core import Alerting
from sitewatch.assets.db import transaction
from sitewatch.assets.models import Role
from sitewatch.assets.tokens import create_token
from sitewatch.server import create_app

from .conftest import finding
from .harness import Clock, settings

with warnings.catch_warnings():  # starlette asks for the httpx2 fork; plain httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1"
Api = tuple[TestClient, dict[str, dict[str, str]], dict[str, int]]


@pytest.fixture
def api(engine: Engine) -> Iterator[Api]:
    """Alerts on C0001 (crew CR02 of 维保单位2, managed by 物业公司2) and C0002 (CR03, 物业公司3)."""
    core = Alerting(engine, settings(), clock=Clock())
    ids = {}
    for device in ("C0001-EL0001", "C0002-EL0001"):
        core.apply(finding(device))
    specs = {"admin": (Role.ADMIN, None), "bureau": (Role.BUREAU, None), "pm": (Role.PROPERTY_MANAGER, "物业公司2"),
             "pm_other": (Role.PROPERTY_MANAGER, "物业公司3"), "crew": (Role.CREW, "维保单位2")}  # fmt: skip
    headers = {}
    with transaction(engine) as session:
        for name, (role, org) in specs.items():
            headers[name] = {"Authorization": f"Bearer {create_token(session, role, org)[0]}"}
    app = create_app(settings(), engine=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        for item in client.get(f"{API}/alerts", headers=headers["admin"]).json()["items"]:
            ids[item["compound"]] = item["id"]
        yield client, headers, ids


def test_tokens_are_required(api: Api) -> None:
    client, _, ids = api
    assert client.get(f"{API}/alerts").status_code == 401
    assert client.post(f"{API}/alerts/{ids['C0001']}/ack").status_code == 401


def test_each_role_sees_its_scope(api: Api) -> None:
    client, h, _ = api

    def compounds(who: str) -> list[str]:
        return sorted(a["compound"] for a in client.get(f"{API}/alerts", headers=h[who]).json()["items"])

    assert compounds("admin") == compounds("bureau") == ["C0001", "C0002"]
    assert compounds("pm") == ["C0001"] and compounds("pm_other") == ["C0002"]
    assert compounds("crew") == ["C0001"]


def test_a_crew_cannot_see_or_acknowledge_another_crews_alert(api: Api) -> None:
    client, h, ids = api
    assert client.get(f"{API}/alerts/{ids['C0002']}", headers=h["crew"]).status_code == 404
    r = client.post(f"{API}/alerts/{ids['C0002']}/ack", headers=h["crew"], json={"by": "张工"})
    assert r.status_code == 404
    r = client.post(f"{API}/alerts/{ids['C0001']}/ack", headers=h["crew"], json={"by": "张工"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert r.json()["acknowledged_by"].startswith("张工 (token ")
    detail = client.get(f"{API}/alerts/{ids['C0001']}", headers=h["crew"]).json()
    assert [e["event"] for e in detail["history"]] == ["fired", "acknowledged"]
    r = client.post(f"{API}/alerts/{ids['C0001']}/ack", headers=h["crew"])
    assert r.status_code == 409  # already acknowledged


def test_the_bureau_reads_but_does_not_act(api: Api) -> None:
    client, h, ids = api
    assert client.get(f"{API}/alerts/{ids['C0002']}", headers=h["bureau"]).status_code == 200
    assert client.post(f"{API}/alerts/{ids['C0002']}/ack", headers=h["bureau"]).status_code == 403


def test_resolve_needs_a_reason_and_is_recorded(api: Api) -> None:
    client, h, ids = api
    url = f"{API}/alerts/{ids['C0002']}/resolve"
    assert client.post(url, headers=h["pm_other"], json={}).status_code == 422
    assert client.post(url, headers=h["pm"], json={"reason": "x"}).status_code == 404  # not its compound
    r = client.post(url, headers=h["pm_other"], json={"reason": "passenger released", "by": "王经理"})
    assert (
        r.status_code == 200
        and r.json()["state"] == "resolved"
        and r.json()["resolve_reason"] == "passenger released"
    )
    listed = client.get(f"{API}/alerts", params={"state": "resolved"}, headers=h["admin"]).json()
    assert [a["id"] for a in listed["items"]] == [ids["C0002"]]


def test_silences_within_scope(api: Api) -> None:
    client, h, _ = api
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
    body = {"matchers": ["kind=elevator"], "ends_at": soon, "reason": "lift maintenance"}
    for matchers in (["kind=elevator"], ["compound=C0002", "kind=elevator"], ["compound=C0001"]):
        r = client.post(f"{API}/silences", headers=h["crew"], json=body | {"matchers": matchers})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "matchers", (matchers, r.text)
    assert client.post(f"{API}/silences", headers=h["bureau"], json=body).status_code == 403  # reads only
    body["matchers"] = ["compound=C0001", "kind=elevator"]
    r = client.post(f"{API}/silences", headers=h["crew"], json=body)
    assert r.status_code == 201 and r.json()["state"] == "active" and r.json()["matchers"] == body["matchers"]
    silence_id = r.json()["id"]
    assert [s["id"] for s in client.get(f"{API}/silences", headers=h["bureau"]).json()] == [silence_id]
    assert (
        client.delete(f"{API}/silences/{silence_id}", headers=h["pm_other"]).status_code == 404
    )  # not its compound
    assert client.delete(f"{API}/silences/{silence_id}", headers=h["crew"]).status_code == 200
    assert client.get(f"{API}/silences", headers=h["crew"]).json() == []


@pytest.mark.parametrize(
    "body",
    [
        {
            "matchers": ["compound=C0001"],
            "starts_at": "2099-01-02T00:00:00Z",
            "ends_at": "2099-01-01T00:00:00Z",
            "reason": "r",
        },
        {"matchers": ["compound=~("], "ends_at": "2099-01-01T00:00:00Z", "reason": "r"},
        {"matchers": [], "ends_at": "2099-01-01T00:00:00Z", "reason": "r"},
        {"matchers": ["compound=C0001"], "ends_at": "2099-01-01T00:00:00Z", "reason": ""},
        {"matchers": ["compound=C0001"], "ends_at": "not a time", "reason": "r"},
    ],
    ids=["end-before-start", "bad-regex", "no-matchers", "no-reason", "bad-time"],
)
def test_bad_silences_are_422_with_a_reason(api: Api, body: dict[str, object]) -> None:
    client, h, _ = api
    r = client.post(f"{API}/silences", headers=h["admin"], json=body)
    assert r.status_code == 422 and r.json()["detail"]


def test_messages_follow_accept_language(api: Api) -> None:
    client, h, _ = api
    zh = client.get(f"{API}/alerts/999999", headers=h["admin"]).json()
    en = client.get(f"{API}/alerts/999999", headers=h["admin"] | {"Accept-Language": "en-US"}).json()
    assert en["code"] == zh["code"] == "not_found" and en["detail"].startswith("alert 999999 not found")
    assert zh["detail"] != en["detail"] and "999999" in zh["detail"]
