"""Replay does not starve live data: live batches go out between backlog batches."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from gwtools import COMPOUND, GatewayThread, Recorder, config, wait_for

from sitewatch.contract import DeviceKind, Sample, now_ms
from sitewatch.devtools.services import LocalService, MosquittoService
from sitewatch.gateway.runtime import Gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_live_readings_flow_while_a_backlog_drains(
    service_factory: Callable[..., LocalService], tmp_path: Path
) -> None:
    broker = service_factory("mosquitto")
    assert isinstance(broker, MosquittoService)
    live_device = f"{COMPOUND}-LIVE0001"
    cfg = config(
        tmp_path,
        broker.port,
        queue={"batch_rows": 20},
        connectors=[
            {"type": "synthetic", "name": "live", "prefix": "LIVE", "devices": 1, "interval_s": 0.005}
        ],
    )
    broker.stop()  # an outage: the backlog builds up on disk
    gw = Gateway(cfg)
    old = now_ms() - 3_600_000
    backlog = [
        Sample(f"{COMPOUND}-WM{i % 50:04d}", DeviceKind.WATER_METER, old + i // 50, {"flow": 1.0})
        for i in range(40_000)
    ]
    for i in range(0, len(backlog), 1000):
        gw.sink.samples(backlog[i : i + 1000])
    broker.start()
    # subscribed before the gateway connects, so that no replayed message can pass unrecorded
    recorder = Recorder(broker.port, f"sitewatch/v1/{COMPOUND}/+/data", f"rec-fair-{os.getpid()}")
    wait_for(recorder.subscribed.is_set, 30, "recorder subscribed")
    runner = GatewayThread(gw)
    try:
        wait_for(lambda: gw.counters.get("replayed") >= len(backlog), 120, "backlog replayed")
        wait_for(lambda: gw.queue.rows < 50, 30, "queue drained")
    finally:
        runner.stop()
        recorder.close()
    messages = recorder.snapshot()
    arrived = recorder.arrived_ms
    flags = [orjson.loads(p).get("replay", False) for _, p, _ in messages]
    last_replay = max(i for i, f in enumerate(flags) if f)
    first_replay = flags.index(True)
    # live messages were delivered between replayed ones, not after the whole backlog
    interleaved = [i for i, f in enumerate(flags) if not f and first_replay < i < last_replay]
    assert len(interleaved) >= 3, (
        f"{len(interleaved)} live messages during a {last_replay - first_replay}-message replay"
    )
    # and they were fresh: no live sample waited for the backlog (2 s leaves room for a loaded CI)
    lateness = []
    for i in interleaved:
        body = orjson.loads(messages[i][1])
        lateness += [arrived[i] - s["ts"] for s in body["samples"] if s["device"] == live_device]
    assert lateness and max(lateness) < 2000, sorted(lateness)[-5:]


def test_replay_rate_cap(service_factory: Callable[..., LocalService], tmp_path: Path) -> None:
    """queue.replay_readings_per_s spreads a backlog over time (protecting the centre after a city-wide outage)."""
    broker = service_factory("mosquitto")
    assert isinstance(broker, MosquittoService)
    cfg = config(
        tmp_path, broker.port, queue={"batch_rows": 50, "replay_readings_per_s": 4000}, connectors=[]
    )
    broker.stop()
    gw = Gateway(cfg)
    old = now_ms() - 60_000
    backlog = [
        Sample(f"{COMPOUND}-WM{i % 20:04d}", DeviceKind.WATER_METER, old + i, {"flow": 1.0})
        for i in range(16_000)
    ]
    gw.sink.samples(backlog)
    runner = GatewayThread(gw)
    try:
        broker.start()
        wait_for(lambda: gw.publisher.connected, 20, "reconnect")
        started = time.monotonic()
        wait_for(lambda: gw.queue.rows == 0, 30, "drain")
        elapsed = time.monotonic() - started
    finally:
        runner.stop()
    # 16,000 readings at 4,000/s with one second of burst: about 3 s, not the ~0.05 s uncapped
    assert 2.5 <= elapsed <= 8, elapsed
    assert gw.counters.get("replayed") == 16_000
