"""``sitewatch bench ingest``: gateways → Mosquitto → ingest → store, against the store's own limit.

For each store the bench starts its own Mosquitto (and InfluxDB) in a temporary directory, then per
repeat measures: the rate ingest drains a backlog the broker holds (its capacity); the rate it
sustains end to end while publisher processes offer that capacity; the rate the store accepts the
same points written directly, by one writer process and by ``direct_writers`` of them (the faster
of the two is the limit); the publish-to-stored latency at half the sustained rate; and the ingest
processes' peak RSS. Figures are medians over the repeats.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue as MpQueue
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import click
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ...contract import now_ms
from ...gateway.config import QueueConfig
from ...i18n import _
from ...settings import load_settings
from ...store import StoredSample, open_store
from ..loadgen import (
    LoadResult,
    LoadSpec,
    device_list,
    message_samples,
    publisher_process,
    readings_per_message,
)
from ..services import InfluxDBService, MosquittoService, ServiceError, wait_until
from .store import measure_direct_write

log = logging.getLogger(__name__)

RATIO_TARGET = 0.70  # end-to-end vs direct write, InfluxDB (design, section 6)
EMBEDDED_TARGET = 100_000  # readings/s end to end on the embedded store
LATENCY_P99_TARGET_MS = 2000
SETTLE_WINDOW_S = 0.5  # the store's server counts as idle when it used < 0.1 core over this window
# readings per capacity and direct-write phase: several seconds of work at each store's rate, so that
# start-up and the store's first flush weigh little in the figure
BACKLOG_READINGS = {"influxdb": 3_000_000, "embedded": 1_000_000}
GATEWAY_BATCH_ROWS = QueueConfig.model_fields["batch_rows"].default  # samples per message under load


@dataclass(frozen=True)
class Rate:
    """Readings/s, with the CPU spent per reading (µs) by the client processes and by the server."""

    per_s: float
    cpu_us: float
    server_cpu_us: float


@dataclass
class Figures:
    """One repeat's measurements for one store."""

    direct: float = 0.0  # the limit: the faster of the two direct writes below
    direct_one_writer: float = 0.0
    direct_writers: float = 0.0  # --direct-writers processes, each with its own compound
    # CPU per reading (µs) while draining the backlog, and while writing directly (the limit's run)
    ingest_cpu_us: float = 0.0
    server_cpu_us: float = 0.0  # InfluxDB; 0 for the embedded store (it works inside ingest)
    direct_cpu_us: float = 0.0
    direct_server_cpu_us: float = 0.0
    capacity: float = 0.0  # draining a backlog
    end_to_end: float = 0.0  # sustained while publishers send at the capacity
    backlog: int = 0  # readings published and not yet stored when the sustained phase ended
    published: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_rate: float = 0.0
    peak_rss_mb: float = 0.0
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) process ``pid`` has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class _Ingest:
    """``sitewatch ingest run`` as subprocesses (``workers`` on one shared subscription), with stats files."""

    def __init__(self, workdir: Path, env: dict[str, str], name: str, workers: int = 1) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.paths: list[Path] = []
        self.client_ids: list[str] = []
        for w in range(workers):
            wname = f"{name}-w{w}" if workers > 1 else name
            self.client_ids.append(wname)
            self.paths.append(workdir / f"{wname}.json")
            args = [sys.executable, "-m", "sitewatch", "--log-level", "WARNING", "ingest", "run"]
            args += ["--client-id", wname, "--stats-file", str(self.paths[-1]), "--stats-interval", "0.25"]
            if workers > 1:
                args += ["--shared-group", name]
            with open(workdir / f"{wname}.log", "ab") as out:
                self.procs.append(
                    subprocess.Popen(args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
                )
        self.log_path = workdir / f"{name}-w0.log" if workers > 1 else workdir / f"{name}.log"
        wait_until(lambda: self.alive() and bool(self.stats().get("connected")), 30, "ingest")

    def alive(self) -> bool:
        """True while every worker runs; ServiceError with its log when one exited."""
        for proc in self.procs:
            if proc.poll() is not None:
                raise ServiceError(f"ingest exited: {self.log_path.read_text()[-2000:]}")
        return True

    def _each(self) -> list[dict[str, Any]]:
        out = []
        for path in self.paths:
            try:
                out.append(dict(json.loads(path.read_text())))
            except (FileNotFoundError, json.JSONDecodeError):
                out.append({})
        return out

    def stats(self) -> dict[str, Any]:
        """Counters summed over the workers; latency percentiles are the workers' worst."""
        each = self._each()
        if not all(each):
            return {}
        latency = [e.get("latency_ms", {}) for e in each]
        return {
            "connected": all(e.get("connected") for e in each),
            "stored_readings": sum(int(e["stored_readings"]) for e in each),
            "at_s": statistics.fmean(float(e["at_s"]) for e in each),
            "latency_ms": {k: max(float(x.get(k, 0)) for x in latency) for k in ("p50", "p99", "max")},
        }

    def next_stats(self) -> dict[str, Any]:
        """The next stats snapshot written after now (by every worker)."""
        first = [e.get("at_s") for e in self._each()]
        wait_until(
            lambda: all(e.get("at_s") != f for e, f in zip(self._each(), first, strict=True)),
            5,
            "ingest stats",
        )
        return self.stats()

    def cpu_s(self) -> float:
        """CPU seconds the workers have used."""
        return sum(_cpu_s(proc.pid) for proc in self.procs)

    def rss_kb(self, field: str) -> int:
        """Largest ``field`` (VmRSS, VmHWM) of the workers."""
        return max(_proc_status_kb(proc.pid, field) for proc in self.procs)

    def stop(self) -> dict[str, Any]:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return self.stats()


def _forget_sessions(port: int, client_ids: list[str]) -> None:
    """End the broker's persistent sessions of ``client_ids``.

    A stopped worker's session stays subscribed to every compound: left alone, the broker would
    queue every message of the later phases for it, and each phase would run slower than the last.
    """
    for client_id in client_ids:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0  # with a clean start: the old session goes, the new one at disconnect
        client.connect("127.0.0.1", port, 30, clean_start=True, properties=props)
        client.loop_start()
        try:
            wait_until(client.is_connected, 10, f"broker session of {client_id}")
        finally:
            client.disconnect()
            client.loop_stop()


def _snapshots_until(
    ingest: _Ingest, total: int, timeout: float, server_cpu: Callable[[], float]
) -> list[dict[str, Any]]:
    """Every distinct counter snapshot of the workers until ``total`` readings are stored.

    Each snapshot also holds the CPU seconds the workers (``cpu_s``) and the store's server
    (``server_cpu_s``) had used when it was read.
    """
    snapshots: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ingest.alive()
        stats = ingest.stats()
        if stats and (not snapshots or stats["at_s"] != snapshots[-1]["at_s"]):
            snapshots.append(stats | {"cpu_s": ingest.cpu_s(), "server_cpu_s": server_cpu()})
            if stats["stored_readings"] >= total:
                return snapshots
        time.sleep(0.02)
    raise ServiceError(f"backlog of {total:,} readings not drained after {timeout:.0f} s")


def _direct_writer(
    store_options: dict[str, Any],
    data_dir: str,
    spec: LoadSpec,
    readings: int,
    go: MpEvent,
    ready: MpEvent,
    results: MpQueue[tuple[float, float, int, float]],
) -> None:
    """One direct writer process: build its points, wait for ``go``, write them as ingest would.

    Puts (start, end, readings, CPU seconds of the write) on ``results``.
    """
    settings = load_settings(data_dir=Path(data_dir), store=store_options)
    devices = device_list(spec)
    start = now_ms() - 30 * 86_400_000
    samples: list[StoredSample] = []
    for index in range(max(1, readings // readings_per_message(spec))):
        samples.extend(StoredSample(s, spec.compound) for s in message_samples(spec, devices, index, start))
    store = open_store(settings)
    try:
        ready.set()
        go.wait(120)
        began, cpu = time.monotonic(), time.process_time()  # monotonic: the same clock in every process
        measure_direct_write(store, samples, settings.ingest.batch_readings)
        cpu = time.process_time() - cpu
        results.put((began, time.monotonic(), sum(s.reading_count for s in samples), cpu))
    finally:
        store.close()


def _children_ready(started: Sequence[tuple[BaseProcess, MpEvent]], what: str, timeout: float = 120) -> None:
    """Wait until every child process has set its ready event; ServiceError as soon as one exits first."""
    deadline = time.monotonic() + timeout
    for proc, ready in started:
        while not ready.wait(0.2):
            if proc.exitcode is not None:
                raise ServiceError(
                    f"{what} process {proc.pid} exited (code {proc.exitcode}) before it was ready"
                )
            if time.monotonic() > deadline:
                raise ServiceError(f"{what} process {proc.pid} did not get ready in {timeout:.0f} s")


def _gather(results: Any, procs: Sequence[BaseProcess], what: str, timeout: float = 300) -> list[Any]:
    """One result from each child process; ServiceError as soon as one exits without leaving it."""
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < len(procs):
        try:
            out.append(results.get(timeout=0.5))
            continue
        except queue.Empty:
            pass
        failed = [p for p in procs if p.exitcode not in (None, 0)]
        if failed:
            raise ServiceError(
                f"{what} process {failed[0].pid} failed (exit code {failed[0].exitcode}); its error is above"
            )
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} processes gave {len(out)} of {len(procs)} results in {timeout:.0f} s")
    for proc in procs:
        proc.join(10)
    return out


def _run_publishers(specs: list[LoadSpec]) -> Callable[[], list[LoadResult]]:
    """Start one process per publisher, let them encode their payloads, then start them together.

    Returns a function that waits for their results.
    """
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    results: Any = ctx.Queue()
    started = []
    for spec in specs:
        ready = ctx.Event()
        proc = ctx.Process(target=publisher_process, args=(spec, go, ready, results), daemon=True)
        proc.start()
        started.append((proc, ready))
    _children_ready(started, "publisher")
    go.set()

    def collect() -> list[LoadResult]:
        return _gather(results, [proc for proc, _ in started], "publisher")

    return collect


class IngestBench:
    """Measurements on one store backend against one broker."""

    def __init__(
        self,
        work: Path,
        backend: str,
        broker: MosquittoService,
        influx: InfluxDBService | None,
        *,
        publishers: int,
        samples_per_message: int,
        duration_s: float,
        warmup_s: float,
        backlog_readings: int,
        workers: int = 1,
        direct_writers: int = 3,
    ) -> None:
        self.work = work
        self.backend = backend
        self.broker = broker
        self.influx = influx
        self.publishers = publishers
        self.samples_per_message = samples_per_message
        self.duration_s = duration_s
        self.warmup_s = warmup_s
        self.backlog_readings = backlog_readings
        self.workers = workers
        self.direct_writers = direct_writers

    def _env(self, tag: str) -> dict[str, str]:
        env = {
            "SITEWATCH_MQTT__URL": self.broker.url,
            "SITEWATCH_DATA_DIR": str(self.work / tag),
            "SITEWATCH_STORE__BACKEND": self.backend,
        }
        if self.influx is not None:
            env |= {"SITEWATCH_STORE__INFLUX_URL": self.influx.url, "SITEWATCH_STORE__INFLUX_DATABASE": tag}
        return env

    def _store_options(self, tag: str) -> dict[str, Any]:
        store: dict[str, Any] = {"backend": self.backend}
        if self.influx is not None:
            store |= {"influx_url": self.influx.url, "influx_database": tag}
        return store

    def _specs(self, tag: str, rate_total: float | None, duration: float) -> list[LoadSpec]:
        rate = rate_total / self.publishers if rate_total else None
        return [
            LoadSpec(self.broker.port, f"{tag}P{i}", self.samples_per_message, 200, rate, duration)
            for i in range(self.publishers)
        ]

    def _server_cpu_s(self) -> float:
        """CPU seconds the InfluxDB server has used (0 for the embedded store: it has no server)."""
        proc = self.influx.proc if self.influx is not None else None
        return _cpu_s(proc.pid) if proc is not None else 0.0

    def settle(self, idle_cores: float = 0.1, timeout_s: float = 60.0) -> None:
        """Wait until the store's server is idle: what it still does for an earlier phase (InfluxDB
        compacts what was just written) must not slow the next phase down."""
        if self.influx is None:
            return
        deadline = time.monotonic() + timeout_s
        before = self._server_cpu_s()
        while time.monotonic() < deadline:
            time.sleep(SETTLE_WINDOW_S)
            now = self._server_cpu_s()
            if (now - before) / SETTLE_WINDOW_S < idle_cores:
                return
            before = now
        log.warning("InfluxDB was still busy after %.0f s; measuring anyway", timeout_s)

    def direct(self, tag: str, readings: int, writers: int = 1) -> Rate:
        """Readings/s the store accepts when the same points are written directly by ``writers``.

        Each writer is a process of its own with its own share of the points (its own compound), as
        each ingest worker is; the rate counts from the first writer's start to the last one's end.
        """
        ctx = multiprocessing.get_context("spawn")
        go = ctx.Event()
        results: Any = ctx.Queue()
        started = []
        for w in range(writers):
            spec = LoadSpec(0, f"{tag}D{w}", self.samples_per_message)
            ready = ctx.Event()
            proc = ctx.Process(
                target=_direct_writer,
                args=(self._store_options(tag), str(self.work / tag), spec, readings // writers, go, ready, results),
                daemon=True,
            )  # fmt: skip
            proc.start()
            started.append((proc, ready))
        _children_ready(started, "direct writer")
        self.settle()
        server_cpu = self._server_cpu_s()
        go.set()
        spans = _gather(results, [proc for proc, _ in started], "direct writer")
        server_cpu = self._server_cpu_s() - server_cpu
        written = sum(span[2] for span in spans)
        seconds = max(span[1] for span in spans) - min(span[0] for span in spans)
        return Rate(
            written / seconds, sum(span[3] for span in spans) * 1e6 / written, server_cpu * 1e6 / written
        )

    def capacity(self, tag: str, readings: int) -> Rate:
        """Readings/s ingest drains from a broker holding a backlog (its session filled while it was down)."""
        Path(self.work / tag).mkdir(parents=True, exist_ok=True)
        name = f"ingest-{tag}"
        _Ingest(self.work / tag, self._env(tag), name, self.workers).stop()  # creates the persistent session
        per_message = readings_per_message(self._specs(tag, None, 1)[0])
        count = max(1, readings // per_message // self.publishers)
        specs = [replace(spec, messages=count, duration_s=600) for spec in self._specs(tag, None, 600)]
        total = sum(r.readings for r in _run_publishers(specs)())
        self.settle()
        ingest = _Ingest(self.work / tag, self._env(tag), name, self.workers)
        try:
            wait_until(lambda: ingest.stats().get("stored_readings", 0) > 0, 60, "first stored batch")
            snapshots = _snapshots_until(ingest, total, 300, self._server_cpu_s)
        finally:
            ingest.stop()
            _forget_sessions(self.broker.port, ingest.client_ids)
        first = snapshots[0]
        # end at the last snapshot taken while the backlog was still draining: the idle time
        # between the last store and the next snapshot (up to a stats interval) is not capacity
        # (a snapshot that stored nothing since the first cannot end the span: it would measure 0)
        draining = [s for s in snapshots if first["stored_readings"] < s["stored_readings"] < total]
        last = draining[-1] if draining else snapshots[-1]
        if last["at_s"] <= first["at_s"] or last["stored_readings"] <= first["stored_readings"]:
            raise click.ClickException(
                f"the backlog of {total:,} readings drained between two counter snapshots: raise --backlog"
            )
        stored = last["stored_readings"] - first["stored_readings"]
        return Rate(
            stored / (last["at_s"] - first["at_s"]),
            (last["cpu_s"] - first["cpu_s"]) * 1e6 / stored,
            (last["server_cpu_s"] - first["server_cpu_s"]) * 1e6 / stored,
        )

    def end_to_end(self, tag: str, offered: float) -> tuple[float, float, float, float, float, int]:
        """Publishing at ``offered`` readings/s: (stored/s, published/s, peak RSS MB, RSS start and end MB, backlog)."""
        Path(self.work / tag).mkdir(parents=True, exist_ok=True)
        self.settle()
        ingest = _Ingest(self.work / tag, self._env(tag), f"ingest-{tag}", self.workers)
        per_message = readings_per_message(self._specs(tag, None, 1)[0])
        try:
            results = _run_publishers(
                self._specs(tag, offered / per_message, self.warmup_s + self.duration_s)
            )
            time.sleep(self.warmup_s)
            first = ingest.next_stats()
            rss_start = ingest.rss_kb("VmRSS") / 1024
            time.sleep(self.duration_s)
            last = ingest.next_stats()
            rss_end = ingest.rss_kb("VmRSS") / 1024
            peak = ingest.rss_kb("VmHWM") / 1024
            done = results()
            published_total = sum(r.readings for r in done)
            backlog = published_total - int(ingest.next_stats()["stored_readings"])
        finally:
            ingest.stop()
            _forget_sessions(self.broker.port, ingest.client_ids)
        rate = (last["stored_readings"] - first["stored_readings"]) / (last["at_s"] - first["at_s"])
        published = published_total / max(r.seconds for r in done)
        return rate, published, peak, rss_start, rss_end, backlog

    def latency(self, tag: str, rate_readings: float) -> tuple[float, float, float]:
        """(p50 ms, p99 ms, readings/s offered) publishing at ``rate_readings``."""
        Path(self.work / tag).mkdir(parents=True, exist_ok=True)
        self.settle()
        ingest = _Ingest(self.work / tag, self._env(tag), f"ingest-{tag}", self.workers)
        per_message = readings_per_message(self._specs(tag, None, 1)[0])
        try:
            done = _run_publishers(self._specs(tag, rate_readings / per_message, self.duration_s))()
            total = sum(r.readings for r in done)
            wait_until(lambda: ingest.stats().get("stored_readings", 0) >= total, 60, "latency run drained")
        finally:
            stats = ingest.stop()
            _forget_sessions(self.broker.port, ingest.client_ids)
        latency = stats.get("latency_ms", {})
        return float(latency.get("p50", 0)), float(latency.get("p99", 0)), total / self.duration_s

    def repeat(self, index: int, progress: Callable[[str], None]) -> Figures:
        """One full round of measurements."""
        f = Figures()
        tag = f"{self.backend[:3]}{index}"
        progress(_("capacity: draining a backlog"))
        drain = self.capacity(f"{tag}c", self.backlog_readings)
        f.capacity, f.ingest_cpu_us, f.server_cpu_us = drain.per_s, drain.cpu_us, drain.server_cpu_us
        progress(_("end-to-end, sustained"))
        f.end_to_end, f.published, f.peak_rss_mb, f.rss_start_mb, f.rss_end_mb, f.backlog = self.end_to_end(
            f"{tag}e", f.capacity
        )
        progress(_("direct write, same points, one writer"))
        limit = self.direct(f"{tag}d", self.backlog_readings)
        f.direct_one_writer = limit.per_s
        if self.direct_writers > 1:
            n = self.direct_writers
            progress(_("direct write, {n} writers", n=n))
            writers = self.direct(f"{tag}w", self.backlog_readings, n)
            f.direct_writers = writers.per_s
            limit = max(limit, writers, key=lambda r: r.per_s)
        f.direct, f.direct_cpu_us, f.direct_server_cpu_us = limit.per_s, limit.cpu_us, limit.server_cpu_us
        progress(_("latency at half load"))
        f.latency_p50_ms, f.latency_p99_ms, f.latency_rate = self.latency(f"{tag}l", f.end_to_end / 2)
        return f


@contextmanager
def _services(work: Path, backend: str) -> Iterator[tuple[MosquittoService, InfluxDBService | None]]:
    broker = MosquittoService(work / f"mosquitto-{backend}")
    influx = InfluxDBService(work / "influxdb") if backend == "influxdb" else None
    broker.start()
    try:
        if influx is not None:
            influx.start()
        yield broker, influx
    finally:
        broker.stop()
        if influx is not None:
            influx.stop()


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def summarise(backend: str, runs: list[Figures]) -> dict[str, Any]:
    """Medians over the repeats and the verdicts against the targets."""
    out: dict[str, Any] = {
        name: round(_median([getattr(r, name) for r in runs]), 2 if name.endswith("_us") else 1)
        for name in Figures.__dataclass_fields__
    }
    # the ratio of each repeat, then their median: a repeat's phases run within a minute of each
    # other, while the machine's speed drifts between repeats (medians of each figure apart would
    # pair an end-to-end rate from a slow minute with a direct rate from a fast one)
    out["ratio"] = round(_median([r.end_to_end / r.direct for r in runs if r.direct]), 3)
    out["repeats"] = len(runs)
    out["runs"] = [vars(r) for r in runs]
    if backend == "influxdb":
        out["ratio_target"] = RATIO_TARGET
        out["ratio_met"] = out["ratio"] >= RATIO_TARGET
    else:
        out["end_to_end_target"] = EMBEDDED_TARGET
        out["end_to_end_met"] = out["end_to_end"] >= EMBEDDED_TARGET
    out["latency_p99_target_ms"] = LATENCY_P99_TARGET_MS
    out["latency_met"] = out["latency_p99_ms"] < LATENCY_P99_TARGET_MS
    return out


def _table(results: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=_("sitewatch bench ingest (medians)"))
    table.add_column(_("figure"))
    for backend in results:
        table.add_column(backend, justify="right")

    def row(label: str, render: Callable[[dict[str, Any]], str]) -> None:
        table.add_row(label, *(render(r) for r in results.values()))

    def verdict(ok: bool) -> str:
        return "[green]PASS[/]" if ok else "[red]MISS[/]"

    row(_("capacity, draining a backlog"), lambda r: f"{r['capacity']:,.0f}")
    row(_("end-to-end sustained readings/s"), lambda r: f"{r['end_to_end']:,.0f}")
    row(_("offered by publishers"), lambda r: f"{r['published']:,.0f}")
    row(_("backlog at the end"), lambda r: f"{r['backlog']:,.0f}")
    row(_("direct write, one writer"), lambda r: f"{r['direct_one_writer']:,.0f}")
    row(
        _("direct write, --direct-writers processes"),
        lambda r: f"{r['direct_writers']:,.0f}" if r["direct_writers"] else "—",
    )
    row(_("limit: the faster direct write"), lambda r: f"{r['direct']:,.0f}")
    row(
        _("ratio (target ≥ 70%, InfluxDB)"),
        lambda r: f"{r['ratio']:.0%} " + (verdict(r["ratio_met"]) if "ratio_met" in r else ""),
    )
    row(
        _("embedded target ≥ 100k/s"),
        lambda r: verdict(r["end_to_end_met"]) if "end_to_end_met" in r else "—",
    )
    row(_("latency offered readings/s"), lambda r: f"{r['latency_rate']:,.0f}")
    row(_("latency p50 ms"), lambda r: f"{r['latency_p50_ms']:,.0f}")
    row(
        _("latency p99 ms (target < 2000)"),
        lambda r: f"{r['latency_p99_ms']:,.0f} " + verdict(r["latency_met"]),
    )
    row(
        _("CPU µs per reading: ingest"),
        lambda r: f"{r['ingest_cpu_us']:.2f}",
    )
    row(
        _("server (InfluxDB) while ingest drains"),
        lambda r: f"{r['server_cpu_us']:.2f}" if r["server_cpu_us"] else "—",
    )
    row(_("direct writers"), lambda r: f"{r['direct_cpu_us']:.2f}")
    row(
        _("server while written directly"),
        lambda r: f"{r['direct_server_cpu_us']:.2f}" if r["direct_server_cpu_us"] else "—",
    )
    row(_("ingest peak RSS MB"), lambda r: f"{r['peak_rss_mb']:,.0f}")
    row(_("ingest RSS start→end MB"), lambda r: f"{r['rss_start_mb']:,.0f} → {r['rss_end_mb']:,.0f}")
    return table


def _print_steps(samples_per_message: int, as_json: bool) -> None:
    from .ingest_steps import step_costs

    costs = step_costs(samples_per_message)
    if as_json:
        click.echo(json.dumps({"us_per_reading": {k: round(v, 3) for k, v in costs.items()}}, indent=2))
        return
    table = Table(title=_("ingest steps, CPU per reading"))
    table.add_column(_("step"))
    table.add_column(_("µs per reading"), justify="right")
    for name, value in costs.items():
        table.add_row(name, f"{value:.3f}")
    table.add_row(_("total"), f"{sum(costs.values()):.3f}")
    Console().print(table)


@click.command("ingest")
@click.option(
    "--store", "stores", type=click.Choice(["influxdb", "embedded", "both"]), default="both", show_default=True,
    help="Which store ingest writes to.",
)  # fmt: skip
@click.option(
    "--repeats", type=click.IntRange(1, 20), default=2, show_default=True, help="Rounds; medians shown."
)
@click.option(
    "--duration",
    type=click.FloatRange(1, 600),
    default=8.0,
    show_default=True,
    help="Seconds per measured phase.",
)
@click.option(
    "--warmup", type=click.FloatRange(0, 60), default=1.0, show_default=True, help="Seconds before measuring."
)
@click.option(
    "--publishers", type=click.IntRange(1, 32), default=2, show_default=True, help="Publisher processes."
)
@click.option(
    "--samples-per-message", type=click.IntRange(1, 10_000), default=GATEWAY_BATCH_ROWS, show_default=True,
    help="Samples per MQTT message (the gateway's queue.batch_rows: what it sends under load).",
)  # fmt: skip
@click.option(
    "--backlog", type=click.IntRange(10_000), default=None,
    help="Readings queued in the broker for the capacity phase, and written directly for the limit "
    f"(default: {BACKLOG_READINGS['influxdb']:,} for InfluxDB, {BACKLOG_READINGS['embedded']:,} for the "
    "embedded store: several seconds of work each).",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(1, 16), default=1, show_default=True,
    help="Ingest processes sharing the load (more than one: an MQTT 5 shared subscription). Each "
    "keeps ingest.store_writers writes in flight (SITEWATCH_INGEST__STORE_WRITERS).",
)  # fmt: skip
@click.option(
    "--direct-writers", type=click.IntRange(1, 16), default=3, show_default=True,
    help="Writer processes of the second direct write, each with its own points; the limit is the "
    "faster of one writer and these.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option(
    "--steps", is_flag=True,
    help="Only print the CPU cost per reading of each ingest step in this process (no servers).",
)  # fmt: skip
def bench_ingest(
    stores: str,
    repeats: int,
    duration: float,
    warmup: float,
    publishers: int,
    samples_per_message: int,
    backlog: int | None,
    workers: int,
    direct_writers: int,
    as_json: bool,
    steps: bool,
) -> None:
    """Measure ingest end to end (gateways → Mosquitto → ingest → store) against direct writes.

    Prints readings/s sustained, the store's direct-write rate, their ratio, latency p50/p99 at
    half load and ingest's peak RSS, as medians over the repeats.
    """
    if steps:
        _print_steps(samples_per_message, as_json)
        return
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("sitewatch.store").setLevel(logging.WARNING)  # "created database" per phase
    backends = ["influxdb", "embedded"] if stores == "both" else [stores]
    results: dict[str, dict[str, Any]] = {}
    console = Console(stderr=True, quiet=as_json)
    with (
        tempfile.TemporaryDirectory(prefix="sitewatch-bench-ingest-") as tmp,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar,
    ):
        for backend in backends:
            task = bar.add_task(backend, total=None)
            with _services(Path(tmp) / backend, backend) as (broker, influx):
                bench = IngestBench(
                    Path(tmp) / backend, backend, broker, influx, publishers=publishers,
                    samples_per_message=samples_per_message, duration_s=duration, warmup_s=warmup,
                    backlog_readings=backlog or BACKLOG_READINGS[backend], workers=workers,
                    direct_writers=direct_writers,
                )  # fmt: skip
                runs = []
                for i in range(repeats):

                    def progress(phase: str, i: int = i, backend: str = backend, task: TaskID = task) -> None:
                        bar.update(task, description=f"{backend} {i + 1}/{repeats}: {phase}")

                    runs.append(bench.repeat(i, progress))
                results[backend] = summarise(backend, runs)
            bar.remove_task(task)
    settings = {
        "publishers": publishers, "workers": workers, "direct_writers": direct_writers,
        "store_writers": load_settings().ingest.store_writers, "samples_per_message": samples_per_message,
        "duration_s": duration, "repeats": repeats,
        "backlog_readings": {b: backlog or BACKLOG_READINGS[b] for b in backends},
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps({"settings": settings, **results}, indent=2))
        return
    Console().print(_table(results))
    Console().print(" ".join(f"{k}={v}" for k, v in settings.items()))
