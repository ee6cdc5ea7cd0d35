"""Fault tests: the broker SIGKILLed mid-run, the gateway process SIGKILLed, the disk budget exhausted.

Outages last 30 s by default (a broker or gateway down for half a minute mid-run); set
``GATEWAY_TEST_OUTAGE_S=5`` for a quick run while developing (nothing else changes).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from gwtools import (
    COMPOUND,
    GATEWAY,
    GatewayThread,
    Recorder,
    assert_per_device_order,
    config,
    device_readings,
    explain_missing,
    first_arrivals,
    read_journal,
    wait_for,
)

from sitewatch.devtools.services import LocalService, MosquittoService
from sitewatch.gateway.runtime import Gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = float(os.environ.get("GATEWAY_TEST_OUTAGE_S", "30"))
RATE = 100  # samples per second per device (interval 0.01 s)
DEVICES = 4
METRICS = 6  # a water meter's metrics


def _broker(factory: Callable[..., LocalService]) -> MosquittoService:
    # save the broker's state on every change, so a SIGKILL loses no acknowledged message
    broker = factory("mosquitto", extra_config="autosave_on_changes true")
    assert isinstance(broker, MosquittoService)
    return broker


def _recorder(broker: MosquittoService, name: str) -> Recorder:
    return Recorder(broker.port, f"sitewatch/v1/{COMPOUND}/#", f"rec-{name}-{os.getpid()}")


def _unique(recorder: Recorder) -> set[tuple[str, str, int]]:
    return {(r.device, r.metric, r.ts) for r in device_readings(recorder.readings())}


def test_broker_killed_mid_run_loses_nothing(
    service_factory: Callable[..., LocalService], tmp_path: Path
) -> None:
    broker = _broker(service_factory)
    recorder = _recorder(broker, "brokerkill")
    count = int((OUTAGE_S + 4) * RATE)
    journal = tmp_path / "journal.tsv"
    cfg = config(
        tmp_path,
        broker.port,
        connectors=[{"type": "synthetic", "name": "meters", "devices": DEVICES, "interval_s": 1 / RATE,
                     "count": count, "journal": str(journal)}],
    )  # fmt: skip
    gw = Gateway(cfg)
    runner = GatewayThread(gw)
    try:
        wait_for(lambda: gw.counters.get("acknowledged") > 1000, 20, "live flow")
        broker.kill()
        killed_at = time.monotonic()
        killed_wall = time.time_ns() // 1_000_000
        wait_for(lambda: not gw.publisher.connected, 10, "gateway notices the outage")
        deepest = 0
        while time.monotonic() - killed_at < OUTAGE_S:
            deepest = max(deepest, gw.queue.readings)
            time.sleep(0.1)
        assert deepest >= RATE * DEVICES * METRICS * min(OUTAGE_S, 3) * 0.5  # the backlog built up
        broker.start()
        wait_for(lambda: len(read_journal(journal)) == count * DEVICES, 60, "all samples produced")
        wait_for(lambda: gw.queue.rows == 0, 60, "backlog drained")
        snap = gw.snapshot()
    finally:
        runner.stop()
    expected = {(d, m, ts) for d, _, ts in read_journal(journal) for m in _metrics()}
    try:
        wait_for(lambda: _unique(recorder) >= expected, 30, "every reading at the subscriber")
    except Exception:
        raise AssertionError(
            explain_missing(expected, _unique(recorder)) + f" killed at {killed_wall}"
        ) from None
    recorder.close()
    readings = device_readings(recorder.readings())
    assert _unique(recorder) == expected  # nothing lost, nothing invented
    assert len(first_arrivals(readings)) == len(expected)
    assert_per_device_order(readings)
    assert snap["dropped"] == 0 and snap["replayed"] > 0 and snap["disconnects"] >= 1
    assert any(r.replay for r in readings) and any(not r.replay for r in readings)
    assert snap["acknowledged"] == snap["buffered"] == len(expected)


def _metrics() -> list[str]:
    from sitewatch.contract import KINDS, DeviceKind

    return list(KINDS[DeviceKind.WATER_METER].metrics)


def _queue_rows(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM items").fetchone()[0])


def test_gateway_process_killed_and_restarted_loses_nothing(
    service_factory: Callable[..., LocalService], tmp_path: Path
) -> None:
    broker = _broker(service_factory)
    recorder = _recorder(broker, "gwkill")
    journal = tmp_path / "journal.tsv"
    count = 4 * RATE
    path = tmp_path / "gateway.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "compound": COMPOUND,
                "gateway": GATEWAY,
                "mqtt": {"url": broker.url, "max_inflight": 20},
                "queue": {"path": "queue.db", "batch_rows": 50},
                "counters_interval_s": 1,
                "drain_timeout_s": 20,
                "connectors": [
                    {"type": "synthetic", "name": "meters", "devices": DEVICES, "interval_s": 1 / RATE,
                     "count": count, "journal": str(journal)}
                ],
            }
        )
    )  # fmt: skip
    command = [sys.executable, "-m", "sitewatch", "gateway", "run", "--config", str(path)]
    log = (tmp_path / "gateway.log").open("ab")
    first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(read_journal(journal)) >= DEVICES * RATE, 30, "the first run producing")
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    first_run = read_journal(journal)
    assert _queue_rows(tmp_path / "queue.db") > 0 or len(first_run) < count * DEVICES
    second = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(read_journal(journal)) == len(first_run) + count * DEVICES, 30, "second run")
        wait_for(lambda: _queue_rows(tmp_path / "queue.db") == 0, 30, "queue drained")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    finally:
        if second.poll() is None:
            second.kill()
        log.close()
    expected = {(d, m, ts) for d, _, ts in read_journal(journal) for m in _metrics()}
    wait_for(lambda: _unique(recorder) >= expected, 30, "every journaled reading at the subscriber")
    recorder.close()
    readings = device_readings(recorder.readings())
    extra = _unique(recorder) - expected
    # the only readings allowed beyond the journal: those of the one batch on disk whose journal line
    # the SIGKILL cut off (the gateway had them, so it must send them)
    assert len(extra) <= DEVICES * METRICS * 10
    second_start = min(ts for d, k, ts in read_journal(journal)[len(first_run) :])
    assert all(ts < second_start for _, _, ts in extra)
    assert len(first_arrivals(readings)) == len(expected) + len(extra)
    assert_per_device_order(readings)
    births = [s.bdseq for s in recorder.states() if s.online]
    assert len(births) >= 2 and births == sorted(births) and len(set(births)) == len(births)
    assert any(r.replay for r in readings)  # the first run's leftovers went out as replay


def test_disk_budget_exhausted_drops_oldest_and_counts_exactly(
    service_factory: Callable[..., LocalService], tmp_path: Path
) -> None:
    """Production ends during the outage, so every drop happens while nothing is in flight."""
    broker = _broker(service_factory)
    recorder = _recorder(broker, "budget")
    journal = tmp_path / "journal.tsv"
    budget = 64 * 1024
    count = int(max(2.0, OUTAGE_S * 0.6) * RATE)
    cfg = config(
        tmp_path,
        broker.port,
        queue={"budget_bytes": budget},
        connectors=[{"type": "synthetic", "name": "meters", "devices": DEVICES, "interval_s": 1 / RATE,
                     "count": count, "journal": str(journal)}],
    )  # fmt: skip
    gw = Gateway(cfg)
    runner = GatewayThread(gw)
    largest_file = 0
    try:
        wait_for(lambda: gw.counters.get("acknowledged") > 0, 20, "live flow")
        broker.kill()
        started = time.monotonic()
        while time.monotonic() - started < OUTAGE_S or len(read_journal(journal)) < count * DEVICES:
            assert gw.queue.bytes <= budget  # never past the budget, sampled through the outage
            largest_file = max(largest_file, gw.queue.file_bytes())
            assert time.monotonic() - started < OUTAGE_S + 30, "production did not finish"
            time.sleep(0.05)
        assert gw.counters.get("dropped") > 0 and not gw.publisher.connected
        broker.start()
        wait_for(lambda: gw.queue.rows == 0, 60, "drained")
        wait_for(lambda: gw.counters.get("events_acknowledged") > 0, 10, "queue_overflow event sent")
        snap = gw.snapshot()
    finally:
        runner.stop()
    expected = {(d, m, ts) for d, _, ts in read_journal(journal) for m in _metrics()}
    try:
        wait_for(lambda: len(expected - _unique(recorder)) == snap["dropped"], 30, "arrivals settle")
    except Exception:
        raise AssertionError(
            explain_missing(expected, _unique(recorder)) + f"; dropped {snap['dropped']}"
        ) from None
    arrived = _unique(recorder)
    missing = expected - arrived
    recorder.close()
    assert arrived <= expected
    assert len(missing) == snap["dropped"] > 0  # the counter says exactly what is missing
    assert snap["events_dropped"] == 0
    # the oldest went: every reading that arrived is older or newer than all the dropped ones
    lo, hi = min(ts for *_, ts in missing), max(ts for *_, ts in missing)
    assert not [r for r in arrived if lo < r[2] < hi]  # (one timestamp may straddle the cut)
    overflow = [e for e in recorder.events() if e.name == "queue_overflow"]
    assert overflow and sum(int(e.attrs["dropped_readings"]) for e in overflow) == snap["dropped"]
    # disk use: the database plus its write-ahead log stayed near the budget
    assert largest_file <= 2 * budget + 512 * 1024, largest_file
