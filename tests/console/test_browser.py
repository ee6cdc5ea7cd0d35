"""The console in a real headless Chromium (Debian's, driven by Playwright; no browser is downloaded):
pages load without console errors, show the data set's numbers, switch language, keep a manager to
its compound, show HTML in names as text, and draw the device's charts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import HTML_NAME, DataSet

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for this module. Not for the session: Playwright's synchronous API runs
    an asyncio loop in the main thread while it is open, and later tests start loops of their own."""
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


class Watched:
    """A page that records console errors, uncaught exceptions and failed requests."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        page.on("response", lambda r: self.errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None)

    def goto(self, url: str, expect: int = 200) -> Any:
        """Open ``url``, expecting its status; returns the page."""
        answer = self.page.goto(url, wait_until="load")
        assert answer is not None and answer.status == expect, (url, answer and answer.status)
        if expect >= 400:  # the page's own refusal is expected
            self.errors = [e for e in self.errors if not e.endswith(url) and "status of" not in e]
        return self.page


def _signed_in(browser: Any, served: str, token: str, locale: str = "zh-CN") -> Watched:
    context = browser.new_context(locale=locale, extra_http_headers={"Accept-Language": locale})
    page = Watched(context.new_page())
    page.goto(f"{served}/login")
    page.page.fill("#token", token)
    page.page.click("button[type=submit]")
    page.page.wait_for_url(f"{served}/")
    return page


@pytest.fixture(scope="module")
def admin(browser: Any, served: str, data: DataSet) -> Iterator[Watched]:
    """An admin's browser tab, signed in through the login form."""
    page = _signed_in(browser, served, data.tokens["admin"])
    yield page
    page.page.context.close()


def test_every_page_loads_without_console_errors(admin: Watched, served: str, data: DataSet) -> None:
    for path in ["/", "/alerts", f"/alerts/{data.alert_ids[0]}", "/registry", "/registry?tab=assets",
                 "/registry?tab=contracts", "/registry?tab=crews", f"/compounds/{data.a}",
                 f"/compounds/{data.a}?kind=water_meter&page=2", f"/devices/{data.html_device}"]:  # fmt: skip
        admin.goto(served + path)
    admin.page.wait_for_timeout(300)
    assert admin.errors == []


def test_the_overview_shows_the_data_set_s_numbers(admin: Watched, served: str, data: DataSet) -> None:
    page = admin.goto(served + "/")
    devices = data.registered[data.a] + data.registered[data.b]
    online = data.online[data.a]
    assert page.text_content("#fig-compounds").strip() == "2"
    assert page.text_content("#fig-online").strip() == f"{online:,} / {devices:,}"
    assert page.text_content("#fig-alerts").strip() == "2"
    row = page.locator(f'tr[data-code="{data.a}"] td[data-online]')
    assert row.get_attribute("data-online") == str(online)
    assert page.locator("#city-map circle").count() == 2
    assert page.locator("#city-map circle.h-down").count() == 1  # B: its gateway is offline


def test_the_overview_table_sorts(admin: Watched, served: str, data: DataSet) -> None:
    page = admin.goto(served + "/?sort=code&dir=asc")
    codes = page.locator("#compounds tbody tr").evaluate_all("rows => rows.map(r => r.dataset.code)")
    assert codes == sorted([data.a, data.b])
    page.click("#compounds th:nth-child(2) a")  # the code column again: descending
    page.wait_for_url("**dir=desc**")
    codes = page.locator("#compounds tbody tr").evaluate_all("rows => rows.map(r => r.dataset.code)")
    assert codes == sorted([data.a, data.b], reverse=True)


def test_the_overview_updates_itself(admin: Watched, served: str) -> None:
    page = admin.goto(served + "/")
    with page.expect_response(lambda r: "/overview/live" in r.url and r.status == 200, timeout=15_000):
        pass  # htmx polls every poll_s (5 s in the tests)
    assert page.locator("#live").count() == 1


def test_the_language_switch(admin: Watched, served: str) -> None:
    page = admin.goto(served + "/alerts")
    assert page.text_content("h1").strip() == "告警"
    page.click('a[data-lang="en"]')
    page.wait_for_url("**lang=en**")
    assert page.text_content("h1").strip() == "Alerts"
    admin.goto(served + "/")
    assert page.text_content("h1").strip() == "City overview"  # remembered by the cookie
    page.click('a[data-lang="zh_CN"]')
    page.wait_for_url("**lang=zh_CN**")
    assert page.text_content("h1").strip() == "城市总览"


def test_html_in_a_name_is_shown_as_text(admin: Watched, served: str, data: DataSet) -> None:
    dialogs: list[str] = []
    admin.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page = admin.goto(served + f"/devices/{data.html_device}")
    assert page.text_content("#device-title") == HTML_NAME
    assert page.locator("main script, main b").count() == 0
    page.wait_for_selector("#charts[data-ready]")
    assert page.locator("#charts canvas").count() >= 1
    missing = admin.goto(served + "/devices/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", expect=404)
    assert "<img src=x onerror=alert(1)>" in missing.text_content(".error")
    assert missing.locator("main img").count() == 0
    assert dialogs == []


def test_acknowledge_from_the_list(admin: Watched, served: str, data: DataSet) -> None:
    page = admin.goto(served + "/alerts?state=all")
    row = page.locator(f"#alert-{data.alert_ids[0]}")
    if row.locator("button").count():
        row.locator("button").click()
        page.wait_for_selector(f"#alert-{data.alert_ids[0]} td.state:has-text('已确认')")
    assert page.locator(f"#alert-{data.alert_ids[0]} button").count() == 0


def test_a_manager_cannot_open_another_compound(browser: Any, served: str, data: DataSet) -> None:
    page = _signed_in(browser, served, data.tokens["manager_a"], "en")
    try:
        overview = page.goto(served + "/")
        assert overview.locator("#compounds tbody tr").count() == 1
        assert page.goto(served + f"/compounds/{data.a}").locator("#devices").count() == 1
        refused = page.goto(served + f"/compounds/{data.b}", expect=403)
        assert data.b in refused.text_content(".error")
    finally:
        page.page.context.close()
