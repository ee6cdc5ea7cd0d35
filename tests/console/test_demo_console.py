"""``sitewatch demo`` prints the console's address, and the console shows the demo's compounds live."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LINE = re.compile(r"Console: (http://127\.0\.0\.1:\d+/) \(sign in with the token (sw_[A-Za-z0-9_-]+)")


def test_the_demo_serves_its_compounds_live_on_the_console(tmp_path: Path) -> None:
    env = {**os.environ, "SITEWATCH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "400"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitewatch", "--lang", "en", "demo", "--compounds", "2", "--duration", "90",
         "--no-alerts"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 60
        found = None
        while found is None and time.monotonic() < deadline and proc.poll() is None:
            found = next((m for m in map(LINE.search, list(lines)) if m), None)
            time.sleep(0.2)
        assert found is not None, "".join(lines)
        url, token = found.groups()
        assert httpx.get(url, timeout=10).status_code == 303  # without the token: to the login page
        with httpx.Client(base_url=url, cookies={"sitewatch_session": token}, timeout=10) as client:
            online = 0
            while online == 0 and time.monotonic() < deadline:
                page = client.get("/")
                assert page.status_code == 200
                figure = re.search(r'id="fig-online">([\d,]+) / ([\d,]+)<', page.text)
                assert figure is not None, page.text[:2000]
                online = int(figure.group(1).replace(",", ""))
                time.sleep(1)
            assert online > 0  # readings flow in by simulated time, and the console counts them
            assert page.text.count('<tr data-code="') == 2
            code = re.search(r'<tr data-code="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            assert client.get(f"/compounds/{code}").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        reader.join(5)
        proc.stdout.close()  # type: ignore[union-attr]
    assert proc.returncode == 0, "".join(lines)
