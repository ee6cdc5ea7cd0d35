"""Screenshots of the console's main pages, for docs/screenshots/:

    python -m sitewatch.devtools.screenshots --out docs/screenshots

A small simulated city (20 compounds, three hours of readings, alerts from findings) in a temporary
registry and embedded store, served by uvicorn on a free port, photographed by Debian's headless
Chromium through Playwright (``pip install -e '.[test]'`` and ``apt-get install chromium
fonts-noto-cjk``; no browser is downloaded).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
END_MS = int(dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.UTC).timestamp() * 1000)  # 14:00 in Shanghai
HOURS = 3


def _city(root: Path, compounds: int, seed: int) -> tuple[object, str, list[str], list[str]]:
    """(app, admin token, compound codes, elevator ids) over a fresh simulated city."""
    from sqlalchemy import select

    from ..alerts.api import alerts_component
    from ..alerts.db import transaction
    from ..alerts.dispatch import Dispatcher
    from ..alerts.inhibit import load_rules
    from ..alerts.lifecycle import apply_finding
    from ..assets.api.component import registry_component
    from ..assets.models import DeviceBinding
    from ..assets.tokens import create_token
    from ..console.component import console_component
    from ..contract import DeviceKind, Finding, FindingState, Severity
    from ..i18n import translate
    from ..server import create_app
    from ..settings import load_settings
    from ..simulators.city import generate_city
    from ..simulators.faults import FAULT_TYPES
    from ..store import open_store
    from ..web.principal import Role
    from .bench.console import _fill, _registry

    out = Console(stderr=True)
    settings = load_settings().model_copy(update={"data_dir": root})
    records = generate_city(compounds, seed)
    engine, _seconds = _registry(settings, records, out)
    store = open_store(settings)
    try:
        _fill(store, records, seed, END_MS - HOURS * 3_600_000, END_MS, out)
    finally:
        store.close()
    codes = [c["code"] for c in records["compounds"]]
    with transaction(engine) as session:
        token = create_token(session, Role.ADMIN, label="screenshots")[0]
        elevators = sorted(d for d in session.scalars(select(DeviceBinding.device_id)) if "-EL" in d)
    dispatcher = Dispatcher(settings, load_rules())
    now = dt.datetime.fromtimestamp(END_MS / 1000, dt.UTC).replace(tzinfo=None)
    for n, (device, fault, severity) in enumerate(((elevators[0], "entrapment", Severity.CRITICAL),
                                                   (elevators[-1], "bearing_wear", Severity.WARNING))):  # fmt: skip
        code = next(c for c in codes if device.startswith(c + "-"))
        finding = Finding(id=f"screenshot:{n}", compound=code, device=device, kind=DeviceKind.ELEVATOR,
                          source="rule:screenshots", fault=fault, severity=severity, state=FindingState.ACTIVE,
                          started_ms=END_MS - 900_000, ended_ms=None, ts_ms=END_MS - 900_000,
                          message="{description} (simulated fault)",
                          params={"description": translate(FAULT_TYPES[fault].description, "zh_CN")})  # fmt: skip
        with transaction(engine) as session:
            apply_finding(session, finding, dispatcher.alerts, now, dispatcher.touch)
    reader = open_store(settings, create=False)
    parts = [registry_component(settings, engine), alerts_component(settings),
             console_component(settings, store=lambda: reader, clock=lambda: END_MS)]  # fmt: skip
    return create_app(settings, engine=engine, parts=parts), token, codes, elevators


def shoot(out_dir: Path, compounds: int = 20, seed: int = 1) -> list[Path]:
    """Photograph the main pages into ``out_dir``; returns the files written."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from ..ports import free_port, port_open

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium fonts-noto-cjk")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as scratch:
        app, token, codes, elevators = _city(Path(scratch), compounds, seed)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not port_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        shots = [
            ("login", "/login", "zh-CN", False), ("overview", "/", "zh-CN", True),
            ("overview-en", "/?lang=en", "en", True), ("compound", f"/compounds/{codes[0]}?kind=elevator", "zh-CN", True),
            ("device", f"/devices/{elevators[0]}?range=6h", "zh-CN", True), ("alerts", "/alerts", "zh-CN", True),
            ("registry", "/registry?tab=assets", "zh-CN", True),
        ]  # fmt: skip
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
                for name, path, locale, signed in shots:
                    context = browser.new_context(locale=locale, viewport={"width": 1366, "height": 860},
                                                  extra_http_headers={"Accept-Language": locale})  # fmt: skip
                    if signed:
                        context.add_cookies([{"name": "sitewatch_session", "value": token, "url": base}])
                    page = context.new_page()
                    page.goto(base + path, wait_until="networkidle")
                    if name == "device":
                        page.wait_for_selector("#charts[data-ready]", timeout=10_000)
                    target = out_dir / f"{name}.png"
                    page.screenshot(path=str(target), full_page=name not in ("registry",))
                    written.append(target)
                    context.close()
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--out DIR`` (default docs/screenshots)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--compounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for path in shoot(args.out, args.compounds, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
