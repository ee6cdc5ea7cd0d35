"""``sitewatch bench gateway``: readings/s one gateway forwards live and when replaying a backlog.

Everything runs on this machine against a private Mosquitto: the real gateway (sink → SQLite
queue → paho publisher → PUBACK → delete), and beside it a plain paho client publishing the same
payloads at QoS 1 with the same in-flight window, which is the most the broker and paho allow.

- live: a producer hands samples to the gateway's sink as fast as it can while the gateway sends;
  the clock runs from the first sample to the last PUBACK.
- replay: the broker is down while the same readings are queued (the outage); the clock runs from
  the moment the gateway is connected again until the queue is empty.
- raw: the plain client publishes the same messages; the clock runs to the last PUBACK.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ...contract import KINDS, DeviceKind, Envelope, Sample, now_ms
from ...gateway.config import GatewayConfig
from ...i18n import N_, _

COMPOUND, GATEWAY = "990000-0001", "990000-0001-GW01"
CHUNK = 100  # samples per sink call, as a connector polling a bus segment would hand them over


def _samples(n_readings: int, devices: int) -> list[Sample]:
    metrics = list(KINDS[DeviceKind.WATER_METER].metrics)
    per_sample = len(metrics)
    base = now_ms() - 3_600_000
    out = []
    for i in range(n_readings // per_sample):
        j, d = divmod(i, devices)
        values = {
            "volume_register": float(j),
            "flow": round((i * 7919 % 1000) / 100, 2),
            "pressure": 0.3,
            "battery": 87.5,
            "tamper": 0.0,
            "reverse_flow": 0.0,
        }
        out.append(Sample(f"{COMPOUND}-WM{d:05d}", DeviceKind.WATER_METER, base + j * 1000, values))
    return out


def _config(workdir: Path, port: int, batch_rows: int, inflight: int) -> GatewayConfig:
    from ...gateway.config import parse_config

    return parse_config(
        {
            "compound": COMPOUND,
            "gateway": GATEWAY,
            "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "max_inflight": inflight},
            "queue": {"path": str(workdir / "queue.db"), "budget_bytes": "4 GiB", "batch_rows": batch_rows},
            "counters_interval_s": 3600,
            "connect_timeout_s": 5,
            "reconnect_max_s": 0.1,
            "drain_timeout_s": 0,
        }
    )


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise click.ClickException(f"timed out waiting for {what}")
        time.sleep(0.002)


def _live(workdir: Path, port: int, samples: list[Sample], batch_rows: int, inflight: int) -> float:
    from ...gateway.runtime import Gateway, GatewayThread

    gw = Gateway(_config(workdir, port, batch_rows, inflight), connectors=[])
    runner = GatewayThread(gw)
    try:
        _wait(lambda: gw.publisher.connected, 10, "the gateway to connect")
        total = sum(len(s.values) for s in samples)
        started = time.perf_counter()
        for i in range(0, len(samples), CHUNK):
            gw.sink.samples(samples[i : i + CHUNK])
        _wait(lambda: gw.counters.get("acknowledged") >= total, 600, "the live run to be acknowledged")
        elapsed = time.perf_counter() - started
    finally:
        runner.stop()
    return total / elapsed


def _replay(
    workdir: Path, broker: Any, samples: list[Sample], batch_rows: int, inflight: int
) -> tuple[float, list[int]]:
    """Backlog readings/s, and the queue-to-PUBACK latencies (ms) of a live meter meanwhile."""
    from ...gateway.runtime import Gateway, GatewayThread

    broker.stop()  # the outage
    gw = Gateway(_config(workdir, broker.port, batch_rows, inflight), connectors=[])
    runner = GatewayThread(gw)
    done = threading.Event()

    def trickle() -> None:  # one live meter sampling every 5 ms while the backlog drains
        while not done.wait(0.005):
            gw.sink.samples([Sample(f"{COMPOUND}-LIVE1", DeviceKind.WATER_METER, now_ms(), {"flow": 1.0})])

    try:
        for i in range(0, len(samples), CHUNK):
            gw.sink.samples(samples[i : i + CHUNK])
        total = gw.queue.readings
        broker.start()
        _wait(lambda: gw.publisher.connected, 30, "the gateway to reconnect")
        started = time.perf_counter()
        live = threading.Thread(target=trickle, daemon=True)
        live.start()
        try:
            _wait(lambda: gw.counters.get("replayed") >= total, 600, "the backlog to be sent")
        finally:
            done.set()
            live.join()
        _wait(lambda: gw.queue.rows == 0, 600, "the backlog to drain")
        elapsed = time.perf_counter() - started
        if gw.counters.get("replayed") != total:
            raise click.ClickException(f"replayed {gw.counters.get('replayed')} of {total} readings")
        latencies = list(gw.publisher.live_latency_ms)
    finally:
        runner.stop()
    return total / elapsed, latencies


def _raw(port: int, samples: list[Sample], batch_rows: int, inflight: int) -> float:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ...contract import Channel, topic
    from ...gateway.publisher import frame_payload

    bodies = [orjson.dumps(s.to_json()) for s in samples]
    payloads = []
    for seq, i in enumerate(range(0, len(bodies), batch_rows)):
        header = Envelope(COMPOUND, GATEWAY, 0, seq % 256, now_ms()).to_json()
        payloads.append(frame_payload(header, b"samples", bodies[i : i + batch_rows]))
    done = threading.Event()
    acked = [0]

    def on_publish(c: Any, u: Any, mid: int, reason: Any, props: Any) -> None:
        acked[0] += 1
        if acked[0] == len(payloads):
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(inflight)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port, 30)
    client.loop_start()
    try:
        target = topic(COMPOUND, GATEWAY, Channel.DATA)
        started = time.perf_counter()
        for payload in payloads:
            client.publish(target, payload, qos=1)
        if not done.wait(600):
            raise click.ClickException("the raw client's messages were not all acknowledged")
        elapsed = time.perf_counter() - started
    finally:
        client.disconnect()
        client.loop_stop()
    return sum(len(s.values) for s in samples) / elapsed


@click.command("gateway")
@click.option("--readings", type=int, default=600_000, show_default=True, help="Readings per run.")
@click.option(
    "--repeats", type=int, default=5, show_default=True, help="Runs of each kind; the median is shown."
)
@click.option("--devices", type=int, default=200, show_default=True, help="Simulated water meters.")
@click.option("--batch-rows", type=int, default=500, show_default=True, help="Samples per MQTT message.")
@click.option(
    "--max-inflight", type=int, default=200, show_default=True, help="QoS 1 messages awaiting PUBACK."
)
@click.option(
    "--site-rate",
    type=float,
    default=200.0,
    show_default=True,
    help="Readings/s a compound's devices produce live, against which the replay speed is judged "
    "(≥ 10x). Default: a large compound, 2,000 devices × 6 readings a minute; the design's city "
    "average is ~4 readings/s per compound (1k readings/s over 267 compounds).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON too.")
def bench_gateway(
    readings: int,
    repeats: int,
    devices: int,
    batch_rows: int,
    max_inflight: int,
    site_rate: float,
    as_json: bool,
) -> None:
    """Readings/s one gateway forwards live and replaying a backlog, beside a plain paho client."""
    from ..services import MosquittoService, ServiceError

    logging.getLogger("sitewatch.gateway").setLevel(logging.WARNING)  # connects/births: not news here
    samples = _samples(readings, devices)
    results: dict[str, list[float]] = {"live": [], "replay": [], "raw": []}
    live_waits: list[int] = []
    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-gw-") as tmp:
        try:
            broker = MosquittoService(Path(tmp) / "broker")
            broker.start()
        except ServiceError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            with Progress(transient=True) as progress:
                task = progress.add_task(_("gateway benchmark"), total=3 * repeats)
                for r in range(repeats):
                    for kind in ("raw", "live", "replay"):
                        workdir = Path(tmp) / f"{kind}{r}"
                        workdir.mkdir()
                        if kind == "raw":
                            rate = _raw(broker.port, samples, batch_rows, max_inflight)
                        elif kind == "live":
                            rate = _live(workdir, broker.port, samples, batch_rows, max_inflight)
                        else:
                            rate, waits = _replay(workdir, broker, samples, batch_rows, max_inflight)
                            live_waits.extend(waits)
                        results[kind].append(rate)
                        progress.advance(task)
        finally:
            broker.kill()
    median = {k: statistics.median(v) for k, v in results.items()}
    n = len(samples) * len(samples[0].values)
    table = Table(
        title=_(
            "Gateway forwarding ({n:,} readings per run, median of {repeats}, {batch_rows} samples/message)",
            n=n, repeats=repeats, batch_rows=batch_rows,
        )
    )  # fmt: skip
    for column in (N_("run"), N_("readings/s"), N_("vs raw client"), N_("what")):
        table.add_column(_(column))
    what = {
        "raw": N_("plain paho client, QoS 1, same payloads"),
        "live": N_("gateway: sink → disk queue → PUBACK → delete"),
        "replay": N_("gateway draining a backlog after an outage"),
    }
    for kind in ("raw", "live", "replay"):
        table.add_row(kind, f"{median[kind]:,.0f}", f"{median[kind] / median['raw']:.2f}", _(what[kind]))
    Console().print(table)
    factor = median["replay"] / site_rate
    click.echo(
        _(
            "replay / site live rate ({site_rate:,.0f} readings/s) = {factor:,.0f}x (target >= 10x); "
            "gateway live = {live:.0%} of the raw client, replay = {replay:.0%}",
            site_rate=site_rate, factor=factor, live=median["live"] / median["raw"],
            replay=median["replay"] / median["raw"],
        )
    )  # fmt: skip
    waits = sorted(live_waits) or [0]
    p50, p99, worst = waits[len(waits) // 2], waits[min(len(waits) - 1, int(len(waits) * 0.99))], waits[-1]
    if not live_waits:
        click.echo(_("replay too short for a live batch to complete meanwhile; use a larger --readings"))
    else:
        click.echo(
            _(
                "live readings during replay (one every 5 ms), queued -> acknowledged: p50 {p50} ms, "
                "p99 {p99} ms, max {worst} ms ({batches} batches)",
                p50=p50, p99=p99, worst=worst, batches=len(live_waits),
            )
        )  # fmt: skip
    if as_json:
        latency = {"p50_ms": p50, "p99_ms": p99, "max_ms": worst, "batches": len(live_waits)}
        click.echo(
            json.dumps(
                {"readings": n, "repeats": results, "median": median, "replay_vs_site": factor,
                 "live_latency_during_replay": latency}
            )
        )  # fmt: skip
