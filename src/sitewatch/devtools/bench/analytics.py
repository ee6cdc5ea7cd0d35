"""``sitewatch bench analytics``: the live analytics service on a recorded city stream.

1. **Record**: the simulators' live generator (``LiveSite``, the same code ``simulate live`` and the
   demo run) steps a whole city (267 compounds by default) through ``--minutes`` of simulated time
   in 10 s steps, with faults at ``--fault-rate`` times their yearly rates so that rules fire, and
   every step is encoded as the gateway would send it (births, data messages of at most 500
   samples, event messages). The first step reports every device once (the gateway's first
   report), so the engine ends up holding every device of the city. The city's **live reading
   rate** is the readings of the later steps over the simulated time they cover: what the city's
   sampling intervals produce.
2. **Processing path**, in this process: the live service's own path (``analytics.processor``:
   the contract's decoders, the rules engine, the published-set; each finding encoded), message by
   message, the engine's timer every 5 simulated seconds: readings/s over wall time, beside the
   live rate (target ≥ 5×). The engine's state of the whole city: this process's RSS growth over
   the run, per device, and the checkpoint's size.
3. **Through a real broker** (``--broker``, on by default): Mosquitto, one ``sitewatch analytics
   run`` worker process, and the stream published at ``--pace`` times the live rate (5: the target)
   with its timestamps shifted so that it ends at the present. Printed: whether the worker kept up
   (its backlog when publishing ended), the p99 from a message's arrival at the worker to the
   publication of the findings it caused (event-driven rules; target ≤ 1 s), and the worker's peak
   RSS with the city's state in it (target < 2 GiB).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

STEP_MS = 10_000
MAX_SAMPLES = 500
TICK_MS = 5_000
TARGET_FACTOR = 5.0
TARGET_P99_MS = 1000.0
TARGET_RSS_BYTES = 2 * 1024**3


@dataclass
class Recording:
    """A city's stream as the gateways would publish it."""

    messages: list[tuple[int, str, bytes, int]] = field(default_factory=list)  # (sim ms, topic, payload, readings)
    births: list[tuple[str, bytes]] = field(default_factory=list)
    places: dict[str, tuple[float, float]] = field(default_factory=dict)
    devices: int = 0
    start_ms: int = 0
    end_ms: int = 0
    live_readings: int = 0  # readings after the first report (the live rate's numerator)
    readings: int = 0
    events: int = 0

    @property
    def live_rate(self) -> float:
        """Readings per second the city produces live."""
        span_s = (self.end_ms - self.start_ms) / 1000
        return self.live_readings / span_s if span_s > 0 else 0.0


def _rss_bytes(pid: int | str = "self", field_name: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def record(compounds: int, seed: int, minutes: float, fault_rate: float, advance: Callable[[int], None]) -> Recording:
    """Step a generated city through ``minutes`` of simulated time, ending now (see the module docstring)."""
    from ...contract import (
        Channel,
        DataMessage,
        Envelope,
        EventMessage,
        StateMessage,
        now_ms,
        topic,
    )
    from ...simulators import LiveSite, sites_from_records
    from ...simulators.city import generate_city

    records = generate_city(compounds, seed)
    sites = sites_from_records(records)
    out = Recording()
    out.places = {c["code"]: (float(c["latitude"]), float(c["longitude"])) for c in records["compounds"]}
    span = int(minutes * 60_000) // STEP_MS * STEP_MS
    out.end_ms = now_ms() // STEP_MS * STEP_MS
    out.start_ms = out.end_ms - span
    lives = [
        LiveSite(s, seed=seed + i, faults="random", fault_rate=fault_rate, start_ms=out.start_ms, site_index=i)
        for i, s in enumerate(sites)
    ]
    # one passenger trapped per compound with an elevator, spread over the span: event-driven findings
    # whose latency the broker run measures (random faults of a few minutes announce few alarms)
    for i, live in enumerate(lives):
        elevators = [d.device for d in live.site.devices if d.kind.value == "elevator"]
        if elevators:
            begin = out.start_ms + STEP_MS + i * span // max(1, len(lives))
            live.inject(elevators[0], "entrapment", begin, begin + 20 * 60_000)
    seqs = dict.fromkeys((s.compound for s in sites), 0)
    for live in lives:
        out.devices += len(live.site.devices)
        birth = StateMessage(live.compound, live.gateway, 1, True, out.start_ms, live.device_infos())
        out.births.append((topic(live.compound, live.gateway, Channel.STATE), birth.encode()))
    t = out.start_ms
    while t <= out.end_ms:
        for live in lives:
            samples, events = live.step(t)

            def envelope(live: Any = live, t: int = t) -> Envelope:
                seqs[live.compound] = (seqs[live.compound] + 1) % 256
                return Envelope(live.compound, live.gateway, 1, seqs[live.compound], t)

            for i in range(0, len(samples), MAX_SAMPLES):
                chunk = tuple(samples[i : i + MAX_SAMPLES])
                readings = sum(len(s.values) for s in chunk)
                payload = DataMessage(envelope(), chunk).encode()
                out.messages.append((t, topic(live.compound, live.gateway, Channel.DATA), payload, readings))
                out.readings += readings
                if t > out.start_ms:
                    out.live_readings += readings
            if events:
                payload = EventMessage(envelope(), tuple(events)).encode()
                out.messages.append((t, topic(live.compound, live.gateway, Channel.EVENT), payload, 0))
                out.events += len(events)
        advance(STEP_MS)
        t += STEP_MS
    return out


def process_in_memory(rec: Recording, advance: Callable[[int], None]) -> dict[str, Any]:
    """The live service's path over the recording, in this process (see the module docstring)."""
    from ...analytics.checkpoint import Published
    from ...analytics.engine import Engine, Site
    from ...analytics.processor import Processor
    from ...analytics.rules import load_rules
    from ...analytics.stats import AnalyticsStats, percentiles
    from ...contract import Limits, now_ms

    sites = {c: Site(lat, lon) for c, (lat, lon) in rec.places.items()}
    stats = AnalyticsStats()
    engine = Engine(load_rules(), sites)
    processor = Processor(engine, Limits(), stats, Published())
    latencies: list[float] = []
    findings = encoded = 0
    next_tick = rec.start_ms + TICK_MS
    received = now_ms()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for topic_name, payload in rec.births:
        processor.handle(topic_name, payload, received)
    for n, (sim_ms, topic_name, payload, _readings) in enumerate(rec.messages):
        while sim_ms >= next_tick:
            for f in processor.tick(next_tick):
                encoded += len(f.encode())
                findings += 1
            next_tick += TICK_MS
        began = time.perf_counter()
        found = processor.handle(topic_name, payload, received)
        if found:
            for f in found:
                encoded += len(f.encode())
            findings += len(found)
            latencies.append((time.perf_counter() - began) * 1000)
        if n % 200 == 199:
            advance(200)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    began = time.perf_counter()
    snapshot = engine.snapshot()
    snapshot_ms = (time.perf_counter() - began) * 1000
    devices = engine.device_count()
    # the state's own memory: the same state restored into a fresh engine, every allocation traced
    # (the RSS growth over the run understates it: the engine reuses what the recording freed)
    del engine, processor
    gc.collect()
    tracemalloc.start()
    restored = Engine.restore(snapshot, load_rules(), sites)
    growth = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert restored.device_count() == devices
    del restored
    return {
        "readings": rec.readings, "messages": len(rec.messages), "wall_s": wall, "cpu_s": cpu,
        "readings_per_s": rec.readings / wall, "findings": findings, "finding_bytes": encoded,
        "refused": stats.snapshot()["refused"], "engine_errors": stats.engine_errors,
        "handle_ms_when_finding": percentiles(sorted(latencies)), "engine_devices": devices,
        "state_bytes": growth, "state_bytes_per_device": growth / devices if devices else 0.0,
        "snapshot_bytes": len(snapshot), "snapshot_ms": snapshot_ms,
    }  # fmt: skip


def _shifted(payload: bytes, delta: int) -> bytes:
    body = orjson.loads(payload)
    body["sent"] += delta
    for item in body.get("samples", ()) or body.get("events", ()):
        item["ts"] += delta
    return orjson.dumps(body)


SCORE_DAYS = 17  # the longest window the live scorer reads (the leak detector's)


def score_metrics() -> tuple[str, ...]:
    """What the detectors of each scorer run read. The hourly runs (``every_h``: the generic
    anomaly runs, which read every metric of four kinds) are left out: at most one scorer run an
    hour includes them, and their cost is measured by ``analytics evaluate``."""
    from ...analytics.detectors.findings import DETECTOR_RUNS

    return tuple(sorted({m for run in DETECTOR_RUNS if not run.every_h for m in run.metrics}))


def prepare_scoring(folder: Path, compounds: int, seed: int, score_compounds: int) -> dict[str, Any]:
    """The city's ledger (the same ``generate_city``), and ``score_compounds`` of its compounds'
    last ``SCORE_DAYS`` days (a ``simulate backfill`` with every fault, cut to the metrics the
    detectors read) in the embedded store under ``folder/data``, for the worker's scorer."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ...analytics.compounds import from_ledger
    from ...store.embedded_store import EmbeddedStore
    from ...store.loader import load_backfill

    began = time.monotonic()
    city = folder / "city"
    run = [sys.executable, "-m", "sitewatch", "--lang", "en", "simulate"]
    subprocess.run([*run, "city", "--compounds", str(compounds), "--seed", str(seed), "--headers", "key",
                    "--out", str(city)], check=True, capture_output=True)  # fmt: skip
    codes = sorted(from_ledger(city))  # the ledger reader's codes, as the scorer reads them
    chosen = codes[:score_compounds]
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    start = today - dt.timedelta(days=SCORE_DAYS)
    history = folder / "history"
    subprocess.run([*run, "backfill", "--ledger", str(city), *[a for c in chosen for a in ("--compound", c)],
                    "--days", str(SCORE_DAYS), "--start", start.isoformat(), "--faults", "all", "--seed", str(seed),
                    "--out", str(history)], check=True, capture_output=True)  # fmt: skip
    table = pq.read_table(history / "readings.parquet")
    cut = folder / "cut"
    cut.mkdir()
    keep = pc.is_in(pc.cast(table["metric"], pa.string()), value_set=pa.array(score_metrics()))
    pq.write_table(table.filter(keep), cut / "readings.parquet")
    (folder / "data").mkdir(exist_ok=True)
    with EmbeddedStore(folder / "data" / "readings.db") as store:
        loaded = load_backfill(cut, store)
    return {"compounds": chosen, "days": SCORE_DAYS, "readings": loaded.readings,
            "prepare_s": time.monotonic() - began}  # fmt: skip


def score_alone(compounds: int, seed: int, score_compounds: int, repeats: int) -> dict[str, Any]:
    """The scorer part alone, in this process: :func:`prepare_scoring`'s store, then ``repeats`` runs
    of the worker's :class:`~sitewatch.analytics.scoring.Scorer` (every detector run, each compound of
    the city's ledger, the ledger's buildings and scopes) one after another, each timed in wall and
    CPU seconds (no broker, no live stream beside it)."""
    from ...analytics.compounds import devices_from_ledger, from_ledger
    from ...analytics.scoring import Scorer
    from ...store.embedded_store import EmbeddedStore

    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-scorer-") as tmp:
        folder = Path(tmp)
        scoring = prepare_scoring(folder, compounds, seed, score_compounds)
        codes = sorted(from_ledger(folder / "city"))
        devices = devices_from_ledger(folder / "city")
        runs = []
        for n in range(repeats):
            scorer = Scorer(lambda: EmbeddedStore(folder / "data" / "readings.db"), lambda: codes,
                            lambda _f: lambda: True, folder / f"scores{n}.ckpt", places=lambda: devices)  # fmt: skip
            wall, cpu = time.perf_counter(), time.process_time()
            found = scorer.run_once()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            runs.append({"wall_s": wall, "cpu_s": cpu, "points": scorer.stats.last_points, "findings": len(found),
                         "wall_s_per_compound": wall / score_compounds, "cpu_s_per_compound": cpu / score_compounds})  # fmt: skip
    return scoring | {"city_compounds": compounds, "runs": runs}


def through_broker(
    rec: Recording, pace: float, advance: Callable[[int], None], *, seed: int = 1, score_compounds: int = 0
) -> dict[str, Any]:
    """Mosquitto, one ``analytics run`` worker, the stream at ``pace`` × live (see the module docstring)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ...contract import FINDING_SUBSCRIPTION, now_ms
    from ..services import MosquittoService, wait_until

    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-analytics-") as tmp:
        folder = Path(tmp)
        ledger = folder / "ledger"
        ledger.mkdir()
        (ledger / "compounds.csv").write_text(
            "code,latitude,longitude\n" + "".join(f"{c},{la},{lo}\n" for c, (la, lo) in rec.places.items())
        )
        scoring: dict[str, Any] = {}
        if score_compounds:
            scoring = prepare_scoring(folder, len(rec.places), seed, score_compounds)
            # the whole ledger: the detectors also read the devices' buildings and scopes
            ledger = folder / "city"
        broker = MosquittoService(folder / "broker")
        broker.start()
        worker: subprocess.Popen[bytes] | None = None
        try:
            stats_file = folder / "worker.json"
            env = {k: v for k, v in os.environ.items() if not k.startswith("SITEWATCH_")} | {
                "SITEWATCH_MQTT__URL": broker.url, "SITEWATCH_DATA_DIR": str(folder / "data"),
                # with a store to score: back to back (a run starts a second after the last ended); else off
                "SITEWATCH_ANALYTICS__SCORE_INTERVAL_S": "1" if score_compounds else "0",
            }  # fmt: skip

            def start_worker() -> subprocess.Popen[bytes]:
                stats_file.unlink(missing_ok=True)
                with open(folder / "worker.log", "ab") as log_out:
                    return subprocess.Popen(
                        [sys.executable, "-m", "sitewatch", "analytics", "run", "--ledger", str(ledger),
                         "--client-id", "bench-analytics", "--stats-file", str(stats_file),
                         "--stats-interval", "0.2"],
                        env=env, stdout=log_out, stderr=subprocess.STDOUT,
                    )  # fmt: skip

            def worker_stats() -> dict[str, Any]:
                return dict(json.loads(stats_file.read_text()))

            worker = start_worker()
            wait_until(lambda: worker_stats()["connected"], 60, "the analytics worker")
            findings = [0]
            sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            sub.on_message = lambda _c, _u, m: findings.__setitem__(  # a batch counts its findings
                0, findings[0] + len(orjson.loads(m.payload).get("findings", ((),)))
            )
            sub.connect("127.0.0.1", broker.port)
            sub.subscribe(FINDING_SUBSCRIPTION, qos=1)
            sub.loop_start()
            pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-analytics-pub", protocol=mqtt.MQTTv5)
            pub.max_inflight_messages_set(1000)
            pub.max_queued_messages_set(0)
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            span_s = (rec.end_ms - rec.start_ms) / 1000
            wall_s = span_s / pace
            delta = now_ms() + int(wall_s * 1000) - rec.end_ms  # the stream ends at the present
            # 1. the births and the city's first report (every device once), all at once, as after a
            # restart of every gateway; then the worker is restarted: it restores the whole city's
            # state from its checkpoint, and the live stream's figures are its own
            first = [m for m in rec.messages if m[0] == rec.start_ms]
            for topic_name, payload in rec.births:
                birth = orjson.loads(payload)
                birth["ts"] += delta
                pub.publish(topic_name, orjson.dumps(birth), qos=1, retain=True)
            for _sim, topic_name, payload, _r in first:
                pub.publish(topic_name, _shifted(payload, delta), qos=1)
            wanted = len(rec.births) + len(first)
            wait_until(lambda: worker_stats()["acked"] >= wanted, 600, "the first report checkpointed")
            worker.send_signal(signal.SIGTERM)
            worker.wait(120)
            began = time.monotonic()
            worker = start_worker()
            wait_until(lambda: worker_stats()["connected"], 120, "the restarted analytics worker")
            restore_s = time.monotonic() - began
            # 2. the live stream at ``pace`` times the live rate
            live = [m for m in rec.messages if m[0] > rec.start_ms]
            t0 = time.monotonic() - (live[0][0] - rec.start_ms) / 1000 / pace if live else time.monotonic()
            for sent, (sim_ms, topic_name, payload, _r) in enumerate(live, 1):
                due = t0 + (sim_ms - rec.start_ms) / 1000 / pace
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                pub.publish(topic_name, _shifted(payload, delta), qos=1)
                if sent % 200 == 0:
                    advance(200)
            published_s = time.monotonic() - t0
            backlog = len(live) - worker_stats()["processed"]
            wait_until(lambda: worker_stats()["processed"] >= len(live), 600, "the worker to drain")
            drained_s = time.monotonic() - t0
            final = worker_stats()
            peak_rss = _rss_bytes(worker.pid, "VmHWM")
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
            pub.loop_stop()
            sub.loop_stop()
            live_readings = sum(m[3] for m in live)
            return {
                "pace": pace, "published_s": published_s, "drained_s": drained_s, "restore_s": restore_s,
                "offered_readings_per_s": live_readings / published_s,
                "backlog_messages_at_end": max(0, backlog), "latency_ms": final["latency_ms"],
                "findings_published": final["findings_published"], "findings_received": findings[0],
                "worker_peak_rss_bytes": peak_rss, "worker_devices": final["devices"],
                "checkpoints": final["checkpoints"], "checkpoint_bytes": final["checkpoint_bytes"],
                "checkpoint_ms": final["checkpoint_ms"], "checkpoint_fork_ms": final["checkpoint_fork_ms"],
                "refused": final["refused"],
                "engine_errors": final["engine_errors"],
                "scoring": scoring | {k: v for k, v in final.items() if k.startswith("score_")},
            }  # fmt: skip
        finally:
            if worker is not None and worker.poll() is None:
                worker.kill()
            broker.stop()


@click.command("analytics")
@click.option("--compounds", type=click.IntRange(1, 20_000), default=267, show_default=True,
              help="Compounds of the generated city.")  # fmt: skip
@click.option("--minutes", type=click.FloatRange(1, 240), default=10.0, show_default=True,
              help="Simulated minutes of the recorded stream.")  # fmt: skip
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--fault-rate", type=click.FloatRange(0, 1e6), default=200.0, show_default=True,
              help="Multiplier of the yearly fault rates, so that rules fire during the recording.")  # fmt: skip
@click.option("--pace", type=click.FloatRange(0.1, 1000), default=TARGET_FACTOR, show_default=True,
              help="Through the broker, publish the stream at this many times the live rate.")  # fmt: skip
@click.option("--broker/--no-broker", default=True, show_default=True,
              help="Also run a real worker process behind Mosquitto (latency, the worker's memory).")
@click.option("--score-compounds", type=click.IntRange(0, 20_000), default=2, show_default=True,
              help="Through the broker, also fill the worker's store with this many compounds' last 17 days "
                   "and let its scorer run the detectors on them back to back during the stream (0: no scoring).")  # fmt: skip
@click.option("--scorer-only", "scorer_only", type=click.IntRange(0, 100), default=0, show_default=True,
              help="Only the scorer part: fill a store as --score-compounds says and time this many scorer runs "
                   "on it in this process (no stream, no broker); prints JSON.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_analytics(
    compounds: int, minutes: float, seed: int, fault_rate: float, pace: float, broker: bool, score_compounds: int,
    scorer_only: int, as_json: bool,
) -> None:  # fmt: skip
    """Run the live analytics service on a recorded city stream; print readings/s beside the city's live
    rate, the p99 from a message's arrival to its findings, and the memory of a whole city's state."""
    from ...i18n import _

    logging.getLogger("sitewatch.analytics").setLevel(logging.WARNING)
    if scorer_only:  # figures only as JSON
        alone = score_alone(compounds, seed, max(1, min(score_compounds, compounds)), scorer_only)
        click.echo(json.dumps(alone, indent=2))
        return
    console = Console(stderr=True)
    figures: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True, disable=as_json) as bar:  # fmt: skip
        steps = int(minutes * 60_000) // STEP_MS + 1
        task = bar.add_task(_("recording the city's stream"), total=steps)
        rec = record(compounds, seed, minutes, fault_rate, lambda ms: bar.advance(task, ms / STEP_MS))
        task = bar.add_task(_("processing path (decode, engine, findings)"), total=len(rec.messages))
        figures["record"] = {
            "compounds": compounds, "devices": rec.devices, "minutes": minutes, "messages": len(rec.messages),
            "readings": rec.readings, "events": rec.events, "live_readings_per_s": rec.live_rate,
        }  # fmt: skip
        figures["processing"] = process_in_memory(rec, lambda n: bar.advance(task, n))
        if broker:
            task = bar.add_task(_("through Mosquitto, one worker process"), total=len(rec.messages))
            figures["broker"] = through_broker(rec, pace, lambda n: bar.advance(task, n), seed=seed,
                                               score_compounds=min(score_compounds, compounds))  # fmt: skip
    live = rec.live_rate
    p = figures["processing"]
    factor = p["readings_per_s"] / live if live else 0.0
    figures["targets"] = {"factor": TARGET_FACTOR, "p99_ms": TARGET_P99_MS, "rss_bytes": TARGET_RSS_BYTES}
    figures["factor"] = factor
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    table = Table(title=_("Analytics on a recorded city stream ({compounds} compounds, {devices:,} devices, "
                          "{minutes:g} simulated minutes)", compounds=compounds, devices=rec.devices,
                          minutes=minutes))  # fmt: skip
    for column in (_("figure"), _("value"), _("limit")):
        table.add_column(column)
    ok = {True: _("met"), False: _("NOT met")}
    rows: list[tuple[str, str, str]] = [
        (_("city's live reading rate (from its sampling intervals)"), f"{live:,.0f} " + _("readings/s"), ""),
        (_("processing path: decode + engine + finding encode"), f"{p['readings_per_s']:,.0f} " + _("readings/s"),
         ""),
        (_("processing rate / live rate"), f"{factor:,.1f}×", f"≥ {TARGET_FACTOR:g}× ({ok[factor >= TARGET_FACTOR]})"),
        (_("findings (all rules) / engine errors"), f"{p['findings']:,} / {p['engine_errors']}", ""),
        (_("devices with state"), f"{p['engine_devices']:,}", ""),
        (_("engine state per device (traced allocations)"), f"{p['state_bytes_per_device']:,.0f} B", ""),
        (_("engine state of the whole city"), f"{p['state_bytes'] / 2**20:,.0f} MiB", ""),
        (_("checkpoint size / snapshot time"), f"{p['snapshot_bytes'] / 2**20:,.1f} MiB / {p['snapshot_ms']:,.0f} ms",
         ""),
    ]  # fmt: skip
    if "broker" in figures:
        b = figures["broker"]
        p99 = float(b["latency_ms"].get("p99", 0.0))
        rss = int(b["worker_peak_rss_bytes"])
        rows += [
            (_("worker restarted with the city's state: restored and connected in"), f"{b['restore_s']:,.1f} s", ""),
            (_("through Mosquitto: offered ({pace:g}× live)", pace=pace),
             f"{b['offered_readings_per_s']:,.0f} " + _("readings/s"), ""),
            (_("backlog when publishing ended (messages)"), f"{b['backlog_messages_at_end']:,}",
             ok[b["backlog_messages_at_end"] <= 50]),
            (_("arrival → finding published, p50 / p99 ({count:,} findings)", count=int(b["latency_ms"]["count"])),
             f"{b['latency_ms'].get('p50', 0):,.0f} / {p99:,.0f} ms",
             f"p99 ≤ {TARGET_P99_MS:,.0f} ms ("
             + (ok[p99 <= TARGET_P99_MS] if b["latency_ms"]["count"] else _("no finding: not measured")) + ")"),
            (_("worker peak RSS with the whole city's state"), f"{rss / 2**20:,.0f} MiB",
             f"< {TARGET_RSS_BYTES / 2**30:g} GiB ({ok[0 < rss < TARGET_RSS_BYTES]})"),
            (_("worker checkpoints (last: size, time, worker paused for the fork)"),
             f"{b['checkpoints']:,} ({b['checkpoint_bytes'] / 2**20:,.1f} MiB, {b['checkpoint_ms']:,.0f} ms, "
             f"{b['checkpoint_fork_ms']:,.0f} ms)", ""),
        ]  # fmt: skip
        sc = b["scoring"]
        if sc.get("compounds"):
            runs = int(sc.get("score_runs", 0))
            per = float(sc.get("score_last_run_ms", 0.0)) / 1000 / len(sc["compounds"])
            rows += [
                (_("scorer during the stream: compounds with {days} days in the store, runs done",
                   days=sc["days"]), f"{len(sc['compounds'])} / {runs:,}", ""),
                (_("scorer: last run (points read, seconds, seconds per compound)"),
                 f"{int(sc.get('score_last_points', 0)):,} / {sc.get('score_last_run_ms', 0) / 1000:,.1f} s / "
                 f"{per:,.1f} s" if runs else _("no complete run"), ""),
                (_("scorer: a run on all {compounds} compounds at that rate (estimate)", compounds=compounds),
                 f"{per * compounds / 60:,.0f} min" if runs else "-", ""),
            ]  # fmt: skip
    for row in rows:
        table.add_row(*row)
    Console().print(table)
