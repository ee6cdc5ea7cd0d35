"""The console over HTTP (TestClient, no browser): sign-in, scope, CSRF, escaping, numbers, hostile input."""

from __future__ import annotations

import re
import warnings

from sqlalchemy.orm import Session

from sitewatch.alerts.actions import AlertScope
from sitewatch.console.health import CitySummary, Health, city_overview
from sitewatch.store.embedded_store import EmbeddedStore
from sitewatch.web.principal import CompoundScope

from .conftest import HTML_NAME, NOW_MS, DataSet, signed_in

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PAGES = ["/", "/overview/live", "/alerts", "/registry", "/registry?tab=assets", "/registry?tab=crews",
         "/registry?tab=contracts", "/registry?tab=buildings"]  # fmt: skip


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_pages_need_a_session_and_send_people_to_the_login_page(client: TestClient, data: DataSet) -> None:
    for path in [*PAGES, f"/compounds/{data.a}", f"/devices/{data.html_device}"]:
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=")
    assert client.get("/", headers={"HX-Request": "true"}).headers["HX-Redirect"].startswith("/login")
    assert client.get("/api/v1/compounds").status_code == 401  # the API still answers JSON


def test_login_sets_an_httponly_strict_cookie_and_follows_only_local_paths(client: TestClient, data: DataSet) -> None:
    page = client.get("/login?next=//evil.example/x")
    answer = client.post("/login", data={"csrf": _csrf(page.text), "token": data.tokens["admin"],
                                         "next": "//evil.example/x"})  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("sitewatch_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/").status_code == 200


def test_login_refuses_a_bad_token_and_a_form_without_its_csrf_value(client: TestClient) -> None:
    page = client.get("/login")
    wrong = client.post("/login", data={"csrf": _csrf(page.text), "token": "sw_not-a-token"})
    assert wrong.status_code == 401
    assert "sitewatch_session" not in wrong.headers.get("set-cookie", "")
    client.cookies.clear()
    forged = client.post("/login", data={"csrf": "x", "token": "sw_x"})
    assert forged.status_code == 403
    controls = client.post("/login", data={"csrf": _csrf(client.get("/login").text), "token": "sw_\x1b[31m"})
    assert controls.status_code == 401


def test_every_page_answers_for_an_admin(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["admin"])
    for path in [*PAGES, f"/compounds/{data.a}", f"/compounds/{data.b}/live?kind=camera",
                 f"/devices/{data.html_device}", f"/alerts/{data.alert_ids[0]}"]:  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-security-policy"].startswith("default-src 'self'")
        assert "<script>alert" not in answer.text


def test_the_overview_counts_what_the_store_and_registry_hold(data: DataSet) -> None:
    with data.engine.connect() as connection, EmbeddedStore(data.store_path, create=False) as store:
        snapshot = CitySummary(lambda: store, lambda: NOW_MS, 5).refresh()
        rows = {r.code: r for r in city_overview(Session(connection), snapshot, CompoundScope.all(), AlertScope())}
    assert rows[data.a].devices == data.registered[data.a]
    assert rows[data.a].online == data.online[data.a]
    assert rows[data.b].online == 0
    assert rows[data.b].gateway_online is False
    assert rows[data.b].health is Health.DOWN
    assert rows[data.a].gateway_online is True
    assert rows[data.a].alerts_open == 1
    assert rows[data.a].health is Health.DEGRADED  # a quarter of its devices are silent, an alert open


def test_a_manager_sees_only_its_compound(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["manager_a"])
    overview = client.get("/").text
    assert data.a in overview and data.b not in overview
    assert client.get(f"/compounds/{data.a}").status_code == 200
    assert client.get(f"/compounds/{data.b}").status_code == 403
    assert client.get(f"/compounds/{data.b}/live").status_code == 403
    assert client.get("/compounds/NO-SUCH").status_code == 403  # absent or not yours: one answer
    signed_in(client, data.tokens["manager_b"])
    assert client.get(f"/devices/{data.html_device}").status_code == 403
    assert client.get(f"/devices/{data.html_device}/series.json").status_code == 403
    assert client.get(f"/alerts/{data.alert_ids[0]}").status_code == 404
    assert data.html_device not in client.get("/alerts?state=all").text


def test_html_in_names_and_addresses_is_escaped(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["admin"])
    page = client.get(f"/devices/{data.html_device}").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;电梯&lt;/b&gt;" in page
    assert HTML_NAME not in page
    missing = client.get("/devices/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert missing.status_code == 404
    assert "<img" not in missing.text and "&lt;img src=x onerror=alert(1)&gt;" in missing.text
    listed = client.get(f"/compounds/{data.a}?kind=elevator").text
    assert HTML_NAME not in listed and "&lt;script&gt;" in listed


def test_posts_need_the_session_s_csrf_token(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["admin"])
    alert = data.alert_ids[1]
    assert client.post(f"/alerts/{alert}/ack", data={"csrf": "0" * 64}).status_code == 403
    assert client.post(f"/alerts/{alert}/ack", data={}).status_code == 403
    assert client.post("/logout", data={"csrf": "nope"}).status_code == 403


def test_acknowledge_and_silence_through_the_actions_api(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["bureau"])
    csrf = _csrf(client.get("/alerts").text)
    assert client.post(f"/alerts/{data.alert_ids[1]}/ack", data={"csrf": csrf}).status_code == 403  # reads only
    signed_in(client, data.tokens["admin"])
    csrf = _csrf(client.get("/alerts").text)
    row = client.post(f"/alerts/{data.alert_ids[1]}/ack", data={"csrf": csrf}, headers={"HX-Request": "true"})
    assert row.status_code == 200
    assert 'id="alert-' in row.text and "/ack" not in row.text and ">已确认<" in row.text
    again = client.post(f"/alerts/{data.alert_ids[1]}/ack", data={"csrf": csrf})
    assert again.status_code == 409
    made = client.post("/silences", data={"csrf": csrf, "compound": data.a, "kind": "elevator", "hours": "2",
                                          "reason": "半月保养"})  # fmt: skip
    assert made.status_code == 303
    assert f"compound={data.a}" in client.get("/alerts").text
    bad = client.post("/silences", data={"csrf": csrf, "compound": data.a, "hours": "nan", "reason": "x"})
    assert bad.status_code == 422
    bad = client.post("/silences", data={"csrf": csrf, "compound": data.a, "hours": "1", "reason": "a\x1bb"})
    assert bad.status_code == 422 and "U+001B" in bad.text


def test_a_manager_cannot_silence_another_compound(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["manager_a"])
    csrf = _csrf(client.get("/alerts").text)
    answer = client.post("/silences", data={"csrf": csrf, "compound": data.b, "hours": "1", "reason": "x"})
    assert answer.status_code == 422


def test_hostile_queries_and_forms_are_refused_clearly(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["admin"])
    assert client.get("/?sort=drop%20table").status_code == 422
    assert client.get("/registry?q=%00").status_code == 422
    assert client.get("/registry?page=0").status_code == 422
    assert client.get(f"/devices/{data.html_device}?range=1y").status_code == 422
    assert client.get("/compounds/" + "x" * 65).status_code == 422
    big = client.post("/silences", content=b"csrf=" + b"a" * 20_000,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert big.status_code == 413
    assert client.get("/registry?q=%25_%5C").status_code == 200  # LIKE wildcards are literal


def test_language_switch_sets_a_cookie_and_the_page_language(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["admin"])
    english = client.get("/?lang=en")
    assert english.headers["content-language"] == "en"
    assert "City overview" in english.text
    assert "sitewatch_lang=en" in english.headers["set-cookie"]
    assert "City overview" in client.get("/").text  # the cookie keeps it
    chinese = client.get("/?lang=zh_CN")
    assert chinese.headers["content-language"] == "zh-CN"
    assert "城市总览" in chinese.text


def test_device_series_json_has_the_readings(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["admin"])
    series = client.get(f"/devices/{data.html_device}/series.json?range=1h").json()
    assert len(series["ts"]) == 12  # a reading every 5 minutes for an hour, one per 1-minute window
    assert [s["metric"] for s in series["series"]] == ["run_state"]


def test_a_crew_sees_the_kinds_its_contracts_cover(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["crew_a"])
    page = client.get(f"/compounds/{data.a}")
    assert page.status_code == 200
    assert 'data-kind="elevator"' in page.text and 'data-kind="camera"' not in page.text
    assert client.get(f"/devices/{data.html_device}").status_code == 200
    assert client.get(f"/devices/{data.camera_a}").status_code == 403
    assert data.camera_a not in client.get("/registry?tab=assets&q=CA").text


def test_logout_forgets_the_session(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["admin"])
    csrf = _csrf(client.get("/").text)
    answer = client.post("/logout", data={"csrf": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert 'sitewatch_session=""' in answer.headers["set-cookie"]


def test_an_alert_page_lists_the_rules_and_detectors_that_found_it(client: TestClient, data: DataSet) -> None:
    signed_in(client, data.tokens["admin"])
    page = client.get(f"/alerts/{data.alert_ids[0]}").text
    sources = page.split('id="sources"', 1)[1].split("</table>", 1)[0]
    assert "<td>rule:test</td><td>进行中</td>" in sources and "发现来源" in page
    assert "test:0" in page.split('id="history"', 1)[1]  # the history's details: the episode that fired it
