"""``sitewatch bench ingest`` runs end to end on a small load and prints every figure."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sitewatch.devtools.bench.ingest import _children_ready, _forget_sessions, _gather
from sitewatch.devtools.services import MosquittoService, ServiceError, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_ingest_small_run_prints_the_figures() -> None:
    args = [
        sys.executable, "-m", "sitewatch", "bench", "ingest", "--store", "embedded", "--repeats", "1",
        "--duration", "1", "--warmup", "0", "--backlog", "150000", "--workers", "2", "--publishers", "1",
        "--direct-writers", "2", "--json",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)["embedded"]
    for name in ("capacity", "end_to_end", "direct", "latency_p50_ms", "latency_p99_ms", "peak_rss_mb"):
        assert figures[name] > 0, (name, figures)
    assert figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    (run,) = figures["runs"]  # the limit is the faster direct write: one writer, or --direct-writers
    assert 0 < figures["ratio"] == round(run["end_to_end"] / run["direct"], 3)
    assert run["direct_one_writer"] > 0 and run["direct_writers"] > 0
    assert run["direct"] == max(run["direct_one_writer"], run["direct_writers"])
    assert figures["end_to_end_target"] == 100_000 and isinstance(figures["end_to_end_met"], bool)


def test_a_phase_leaves_no_broker_session_behind(mosquitto: MosquittoService) -> None:
    # a worker's persistent session, as ingest leaves it when stopped ...
    client_id = "bench-forget-w0"
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    worker = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    worker.connect("127.0.0.1", mosquitto.port, clean_start=False, properties=props)
    worker.loop_start()
    wait_until(worker.is_connected, 10, "worker connected")
    worker.subscribe("sitewatch/v1/+/+/data", qos=1)
    time.sleep(0.3)
    worker.disconnect()
    worker.loop_stop()
    # ... is ended by the bench, so nothing published later is queued for it
    _forget_sessions(mosquitto.port, [client_id])
    present: list[bool] = []
    again = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    again.on_connect = lambda c, u, flags, rc, p: present.append(flags.session_present)
    again.connect("127.0.0.1", mosquitto.port, clean_start=False, properties=props)
    again.loop_start()
    try:
        wait_until(lambda: bool(present), 10, "reconnected")
    finally:
        again.disconnect()
        again.loop_stop()
    assert present == [False]


def test_a_child_process_that_dies_is_reported_at_once() -> None:
    # a publisher or direct writer that crashes must stop the bench now, not after its 300 s wait
    ctx = multiprocessing.get_context("spawn")
    results: Any = ctx.Queue()
    ready = ctx.Event()
    child = ctx.Process(target=os._exit, args=(3,), daemon=True)
    child.start()
    began = time.monotonic()
    with pytest.raises(ServiceError, match=r"exited \(code 3\) before it was ready"):
        _children_ready([(child, ready)], "direct writer")
    child = ctx.Process(target=os._exit, args=(4,), daemon=True)
    child.start()
    with pytest.raises(ServiceError, match=r"direct writer process \d+ failed \(exit code 4\)"):
        _gather(results, [child], "direct writer")
    assert time.monotonic() - began < 30
