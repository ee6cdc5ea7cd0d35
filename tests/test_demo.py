"""``sitewatch demo`` end to end in a subprocess: through real gateways, ends cleanly, stops on SIGINT, amqtt."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sitewatch.contract import DeviceKind
from sitewatch.devtools.services import wait_until
from sitewatch.settings import load_settings
from sitewatch.store import open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIVE = {
    DeviceKind.ELEVATOR,
    DeviceKind.CAMERA,
    DeviceKind.CHARGER,
    DeviceKind.STREETLIGHT,
    DeviceKind.WATER_METER,
}


def demo(tmp_path: Path, *args: str, lang: str = "en") -> subprocess.Popen[str]:
    env = {**os.environ, "SITEWATCH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "120"}
    return subprocess.Popen(
        [sys.executable, "-m", "sitewatch", "--lang", lang, "demo", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def stored_kinds(tmp_path: Path) -> tuple[int, set[DeviceKind]]:
    store = open_store(load_settings(data_dir=tmp_path / "data"), create=False)
    try:
        return store.count_readings(), {s.kind for s in store.series()}
    finally:
        store.close()


def gateway_figures(out: str, pattern: str) -> tuple[int, int, int, int]:
    """(published, acknowledged, dropped, left queued) from the demo's closing gateway line."""
    match = re.search(pattern, " ".join(out.split()))
    assert match, out
    published, acknowledged, dropped, queued = (int(g.replace(",", "")) for g in match.groups())
    return published, acknowledged, dropped, queued


EN_LINE = r"Gateways: ([\d,]+) readings published, ([\d,]+) acknowledged \(PUBACK\), ([\d,]+) dropped, ([\d,]+) left"
ZH_LINE = r"网关：已发布 ([\d,]+) 条读数，代理已确认 ([\d,]+) 条，丢弃 ([\d,]+) 条， ?队列剩余 ([\d,]+) 条"


def test_demo_with_duration_ends_cleanly_with_all_five_kinds(tmp_path: Path) -> None:
    proc = demo(tmp_path, "--duration", "20")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    readings, kinds = stored_kinds(tmp_path)
    assert readings > 1000 and kinds >= FIVE, out
    assert "Stored" in out and "sitewatch query latest --path" in out
    assert "dead letters" in out and "faults injected" in out
    # the readings came through one real gateway per compound: queued on disk, published, PUBACKed
    assert "acknowledged by the broker" in out and "gateway queues (readings)" in out
    published, acknowledged, dropped, queued = gateway_figures(out, EN_LINE)
    assert published == acknowledged > 1000 and dropped == 0 and queued == 0, out
    assert acknowledged <= readings  # what was stored also holds the gateways' own counter samples
    ran = re.search(
        r"Ran \d+ s \(ready after [\d.]+ s\): ([\d,]+) readings/s stored on average, CPU (\d+)%", out
    )
    assert ran and int(ran.group(1).replace(",", "")) > 100, out
    assert "checked by ingest: 0 gaps, 0 messages missing" in out, out  # every seq arrived, in order
    queues = sorted(p.name for p in (tmp_path / "data" / "gateways").glob("*.db"))
    assert len(queues) == 3 and all(name.endswith("-GW01.db") for name in queues), queues
    # the injected faults became alerts, and their notifications reached the local webhook sink
    alerts = re.search(
        r"Alerts: (\d+) open, (\d+) notifications, (\d+) delivered to the local webhook",
        " ".join(out.split()),
    )
    assert alerts and int(alerts.group(1)) >= 1 and 1 <= int(alerts.group(3)) <= int(alerts.group(2)), out
    # the alerts came from the real analytics service: its findings, and its panel in the live view
    findings = re.search(r"Analytics: ([\d,]+) findings published", " ".join(out.split()))
    assert findings and int(findings.group(1).replace(",", "")) >= 1, out
    assert "latest findings (analytics)" in out and "entrapment" in out and "critical" in out, out
    assert "found by" in out and "rule:elevator." in out, out  # which rule found each one


def test_demo_stops_cleanly_on_sigint_and_data_stays_queryable(tmp_path: Path) -> None:
    proc = demo(tmp_path, "--compounds", "1", lang="zh_CN")  # no duration: runs until stopped
    store_file = tmp_path / "data" / "readings.db"
    wait_until(
        lambda: proc.poll() is None and store_file.exists() and stored_kinds(tmp_path)[0] > 0, 60, "demo data"
    )
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "正在停止" in out and "已在" in out
    assert "最新研判结果（分析）" in out and "分析：已发布" in out, out  # the findings panel, in Chinese
    published, acknowledged, dropped, queued = gateway_figures(out, ZH_LINE)
    assert published == acknowledged > 0 and dropped == 0 and queued == 0, out  # drained, nothing left
    assert "0 处断号，缺失 0 条消息" in out, out
    query = subprocess.run(
        [sys.executable, "-m", "sitewatch", "query", "latest", "--path", str(store_file), "--csv"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert query.returncode == 0, query.stderr
    assert len(query.stdout.splitlines()) > 10


def test_demo_on_the_embedded_amqtt_broker(tmp_path: Path) -> None:
    proc = demo(tmp_path, "--broker", "amqtt", "--compounds", "1", "--duration", "10")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "amqtt mqtt://127.0.0.1:" in out
    readings, kinds = stored_kinds(tmp_path)
    assert readings > 100 and kinds >= FIVE, out
    # through the real gateway, which speaks amqtt's MQTT 3.1.1 here, as ingest does
    published, acknowledged, dropped, queued = gateway_figures(out, EN_LINE)
    assert published == acknowledged > 100 and dropped == 0 and queued == 0, out
    assert (tmp_path / "data" / "gateways").is_dir() and "WARNING" not in out and "ERROR" not in out, out


def test_demo_through_real_device_protocols(tmp_path: Path) -> None:
    proc = demo(tmp_path, "--protocols", "--duration", "20")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "behind real protocols (Modbus TCP, OCPP 1.6J, RTSP, MQTT)" in out
    # every kind was read by the gateway's own connector for its protocol, then stored
    readings, kinds = stored_kinds(tmp_path)
    assert readings > 1000 and kinds >= FIVE, out
    published, acknowledged, dropped, queued = gateway_figures(out, EN_LINE)
    assert published == acknowledged > 1000 and dropped == 0 and queued == 0, out
    assert "WARNING" not in out and "ERROR" not in out, out


def test_protocols_refused_on_amqtt_with_the_reason(tmp_path: Path) -> None:
    proc = demo(tmp_path, "--protocols", "--broker", "amqtt")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "--protocols needs Mosquitto" in out


def test_without_mosquitto_the_demo_falls_back_to_the_embedded_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    import sitewatch.devtools.services
    from sitewatch.demo import _broker
    from sitewatch.devtools.amqtt_broker import EmbeddedBroker
    from sitewatch.i18n import using

    monkeypatch.setattr(sitewatch.devtools.services, "find_binary", lambda *_args: None)  # no Mosquitto anywhere
    out = io.StringIO()
    with using("en"), _broker(load_settings(data_dir=tmp_path), "auto", Console(file=out)) as (service, label):
        assert label == "amqtt"
        assert "Mosquitto not found" in out.getvalue()
        assert isinstance(service, EmbeddedBroker) and service.url.startswith("mqtt://127.0.0.1:")


@pytest.mark.timeout(120)
def test_the_stop_flag_ends_a_demo_without_duration_at_its_next_tick(tmp_path: Path) -> None:
    """What the SIGINT and SIGTERM handlers set: the display loop reads it and the demo drains and returns."""
    import io
    import threading

    from rich.console import Console

    from sitewatch import demo as demo_module
    from sitewatch.settings import StoreBackend

    settings = load_settings(data_dir=tmp_path / "data")
    settings = settings.model_copy(
        update={"store": settings.store.model_copy(update={"backend": StoreBackend.EMBEDDED})}
    )
    demo_module._stop_requested.clear()
    timer = threading.Timer(6.0, demo_module._stop_requested.set)  # as a signal handler would, from outside the loop
    screen = io.StringIO()
    timer.start()
    try:
        figures = demo_module.run_demo(
            settings, compounds=1, speed=60.0, duration=None, seed=1, broker="amqtt", fault_rate=1.0,
            console=Console(width=120, file=screen), alerts=False, web=False,
        )  # fmt: skip
    finally:
        timer.cancel()
        demo_module._stop_requested.clear()
    assert figures["readings"] > 0 and figures["gaps"] == 0 and figures["missing_messages"] == 0, figures
    assert stored_kinds(tmp_path)[0] >= figures["readings"]
    assert demo_module._("Stopping…") in screen.getvalue(), screen.getvalue()[-2000:]  # in the catalog's language
