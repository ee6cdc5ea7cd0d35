"""CPU cost of each step ingest takes per reading, in this process, without any server.

The steps are the ones a worker runs on every message: decode and validate, enrich into a batch,
the store's own input checks, InfluxDB line protocol, and the gzip of the request body. The HTTP
request itself, MQTT and the server's work are not included (``sitewatch bench ingest`` measures
the whole path).
"""

from __future__ import annotations

import gc
import gzip
import time

from ...contract import Channel, Checker, now_ms, topic
from ...ingest.cli import GC_THRESHOLDS
from ...ingest.pipeline import Inbound, build_batch, decode, limits_from
from ...settings import UnknownDevicePolicy, load_settings
from ...store.checks import check_batch
from ...store.influx_store import InfluxStore
from ..loadgen import LoadSpec, encoded_bodies, frame, readings_per_message

STEPS = ("decode", "enrich", "checks", "line protocol", "gzip")


def step_costs(samples_per_message: int = 100, messages: int = 400, rounds: int = 3) -> dict[str, float]:
    """Microseconds per reading of each step (the best of ``rounds``), on bench messages.

    The garbage collector is set as in an ingest worker (``cli.GC_THRESHOLDS``) meanwhile.
    """
    spec = LoadSpec(0, "BENCH01", samples_per_message)
    gateway = f"{spec.compound}-GW01"
    data_topic = topic(spec.compound, gateway, Channel.DATA)
    payloads = [
        frame(spec, gateway, i, body)
        for i, body in enumerate(encoded_bodies(spec, messages, now_ms() - 30 * 86_400_000))
    ]
    settings = load_settings()
    limits = limits_from(settings.contract)
    per_batch = max(1, settings.ingest.batch_readings // readings_per_message(spec))
    store = InfluxStore("http://127.0.0.1:9", "steps")  # never contacted: only lines are built
    readings = messages * readings_per_message(spec)
    best = dict.fromkeys(STEPS, float("inf"))

    def note(name: str, started: float) -> float:
        best[name] = min(best[name], (time.perf_counter() - started) * 1e6 / readings)
        return time.perf_counter()

    checker = Checker()  # one per decoder, as in an ingest worker
    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            processed = [
                decode(Inbound(0, i, 1, data_topic, p, now_ms()), limits, checker)
                for i, p in enumerate(payloads)
            ]
            started = note("decode", started)
            batches = [
                build_batch(processed[i : i + per_batch], None, UnknownDevicePolicy.DEADLETTER)
                for i in range(0, len(processed), per_batch)
            ]
            started = note("enrich", started)
            for batch in batches:
                check_batch(batch.samples, batch.events, validated=True)  # as ingest's prepare does
            started = note("checks", started)
            lines = [store._sample_lines(batch.samples) for batch in batches]
            started = note("line protocol", started)
            for batch_lines in lines:
                gzip.compress("\n".join(batch_lines).encode(), compresslevel=1)
            note("gzip", started)
    finally:
        gc.set_threshold(*thresholds)
        store.close()
    return best
