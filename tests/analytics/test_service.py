"""``analytics run`` against a real Mosquitto: findings out within seconds, hostile input counted and
skipped, two partitions sharing a city, and a worker SIGKILLed mid-stream that loses and doubles no
finding."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sitewatch.analytics.cli_run import engine_factory
from sitewatch.analytics.compounds import CompoundPlace
from sitewatch.analytics.partition import Partition
from sitewatch.analytics.service import AnalyticsService
from sitewatch.contract import Channel, DeviceKind, Sample, decode_findings, now_ms
from sitewatch.devtools.services import MosquittoService, wait_until
from sitewatch.settings import Settings

from .service_support import Findings, Gateway, entrapment, make_settings

pytestmark = pytest.mark.integration

_ids = itertools.count()
HOUR = 3_600_000


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 10000}x{next(_ids)}"


@pytest.fixture
def run_service() -> Iterator[Callable[..., AnalyticsService]]:
    """Start in-process analytics workers (the real rules engine); all are stopped afterwards."""
    started: list[AnalyticsService] = []

    def start(settings: Settings, compounds: list[str], partition: Partition | None = None) -> AnalyticsService:
        places = {c: CompoundPlace(c, 43.88, 125.32) for c in compounds}
        service = AnalyticsService(
            settings, engine_factory(settings, places), lambda: list(places), partition=partition or Partition(),
            client_id=unique("an"),
        )  # fmt: skip
        service.start()
        assert service.wait_connected(10), "analytics did not connect"
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def test_an_entrapment_event_becomes_a_finding_within_seconds(
    mosquitto: MosquittoService, tmp_path: Path, run_service: Callable[..., AnalyticsService]
) -> None:
    compound = unique("E")
    device = f"{compound}-EL0001"
    findings = Findings(mosquitto.port)
    service = run_service(make_settings(mosquitto.url, tmp_path), [compound])
    gateway = Gateway(mosquitto.port, compound, unique("gw"))
    try:
        start = now_ms() - 2 * HOUR
        sent = time.time()
        gateway.events([entrapment(device, start, True)])
        wait_until(lambda: findings.of(compound, "entrapment"), 30, "the entrapment finding")
        first = findings.of(compound, "entrapment")[0]
        assert first["state"] == "active" and first["device"] == device and first["severity"] == "critical"
        assert first["started"] == start and str(first["id"]).endswith(f":{device}:{start}")
        assert float(first["_received"]) - sent < 5  # "within seconds" (the bench measures the p99)
        # the passenger is freed: entrapments are never damped, so the clear goes out with its message
        gateway.events([entrapment(device, start + HOUR, False)])
        wait_until(lambda: len(findings.of(compound, "entrapment")) == 2, 30, "the cleared finding")
        cleared = findings.of(compound, "entrapment")[1]
        assert cleared["state"] == "cleared" and cleared["id"] == first["id"] and cleared["ended"] == start + HOUR
        wait_until(lambda: service.stats.snapshot()["in_flight"] == 0, 30, "acknowledgements")
        snap = service.stats.snapshot()
        assert snap["acked"] == snap["received"] == 2 and snap["checkpoints"] >= 1
        assert service.state_path.exists() and snap["latency_ms"]["count"] == 2  # both made by a message
    finally:
        gateway.close()
        findings.close()


def test_findings_made_together_are_published_as_one_batch(
    mosquitto: MosquittoService, tmp_path: Path, run_service: Callable[..., AnalyticsService]
) -> None:
    compound = unique("B")
    devices = [f"{compound}-EL{n:04d}" for n in range(1, 6)]
    findings = Findings(mosquitto.port)
    service = run_service(make_settings(mosquitto.url, tmp_path), [compound])
    gateway = Gateway(mosquitto.port, compound, unique("gw"))
    try:
        start = now_ms() - HOUR
        gateway.events([entrapment(d, start, True) for d in devices])  # one message makes five
        wait_until(lambda: len(findings.of(compound, "entrapment")) == 5, 30, "the five findings")
        assert sorted(str(f["device"]) for f in findings.of(compound, "entrapment")) == devices
        with findings.lock:
            payloads = [(t, p) for t, p in findings.payloads if f"/{compound}/" in t]
        assert len(payloads) == 1  # one batch on the compound's finding topic, which alerting decodes
        decoded = decode_findings(*payloads[0])
        assert decoded.ok and [f.device for f in decoded.message or ()] == devices
        assert service.stats.snapshot()["findings_published"] == 5
    finally:
        gateway.close()
        findings.close()


def test_hostile_payloads_are_counted_and_skipped(
    mosquitto: MosquittoService, tmp_path: Path, run_service: Callable[..., AnalyticsService]
) -> None:
    compound, other = unique("H"), unique("O")
    device = f"{compound}-EL0001"
    findings = Findings(mosquitto.port)
    service = run_service(make_settings(mosquitto.url, tmp_path), [compound])
    gateway = Gateway(mosquitto.port, compound, unique("gw"))
    gw = gateway.gateway
    ts = now_ms() - HOUR
    valid_head = f'"v":1,"compound":"{compound}","gateway":"{gw}","bdseq":1,"seq":1,"sent":{ts}'
    hostile: list[tuple[Channel, bytes]] = [
        (Channel.DATA, b"not json at all"),
        (Channel.DATA, bytes(range(256)) * 10),  # binary garbage
        (Channel.DATA, b"{" * 5000 + b"}" * 5000),  # nested too deep
        (Channel.DATA, b"x" * 2_000_000),  # over the 1 MiB payload limit
        (Channel.DATA, ('{"v":2,' + valid_head[6:] + ',"samples":[]}').encode()),  # another version
        (Channel.DATA, ("{" + valid_head + ',"samples":[{"device":"' + device
                        + '","kind":"elevator","ts":' + str(ts) + ',"values":{"car_load":NaN}}]}').encode()),
        (Channel.DATA, ("{" + valid_head + ',"samples":[{"device":"' + device
                        + '","kind":"elevator","ts":' + str(ts) + ',"values":{"car_load":1e308}}]}').encode()),
        (Channel.DATA, ("{" + valid_head + ',"samples":[{"device":"' + f"{other}-EL0001"
                        + '","kind":"elevator","ts":' + str(ts) + ',"values":{"car_load":1}}]}').encode()),
        (Channel.EVENT, ("{" + valid_head + ',"events":[{"device":"' + device
                         + '","kind":"elevator","ts":' + str(ts) + ',"event":"self_destruct"}]}').encode()),
        (Channel.EVENT, ("{" + valid_head + ',"compound":"' + compound + '","events":[]}').encode()),  # key twice
        (Channel.STATE, ('{"v":1,"compound":"' + compound + '","gateway":"' + gw + '","bdseq":1,"ts":1,'
                         '"state":"sideways"}').encode()),
        (Channel.DATA, ("{" + valid_head + ',"samples":[{"device":"' + device
                        + '","kind":"elevator","ts":"yesterday","values":{}}]}').encode()),
    ]  # fmt: skip
    try:
        for channel, payload in hostile[:6]:
            gateway.raw(channel, payload)
        gateway.events([entrapment(device, ts, True)])  # a valid message in the middle of it
        for channel, payload in hostile[6:]:
            gateway.raw(channel, payload)
        wait_until(lambda: findings.of(compound, "entrapment"), 30, "the finding despite the garbage")
        wait_until(lambda: service.stats.snapshot()["acked"] == len(hostile) + 1, 30, "every message acked")
        snap = service.stats.snapshot()
        assert snap["refused_messages"] == len(hostile) and snap["engine_errors"] == 0, snap
        for reason in ("bad_json", "oversized", "unknown_version", "non_finite", "out_of_range",
                       "foreign_device", "unknown_event", "bad_shape", "bad_timestamp"):  # fmt: skip
            assert snap["refused"].get(reason, 0) >= 1, (reason, snap["refused"])
        assert not service.failed.is_set() and snap["in_flight"] == 0
        # and it goes on working
        gateway.events([entrapment(f"{compound}-EL0002", ts, True)])
        wait_until(lambda: len(findings.of(compound, "entrapment")) == 2, 30, "a finding after the garbage")
    finally:
        gateway.close()
        findings.close()


def test_two_partitions_share_the_compounds_with_no_device_on_both(
    mosquitto: MosquittoService, tmp_path: Path, run_service: Callable[..., AnalyticsService]
) -> None:
    compounds = [unique("P") for _ in range(8)]
    settings = make_settings(mosquitto.url, tmp_path)
    findings = Findings(mosquitto.port)
    workers = [run_service(settings, compounds, Partition(k, 2)) for k in (1, 2)]
    shares = [set(w.compounds) for w in workers]
    assert shares[0] | shares[1] == set(compounds) and not shares[0] & shares[1] and all(shares)
    gateways = [Gateway(mosquitto.port, c, unique("gw")) for c in compounds]
    try:
        ts = now_ms() - HOUR
        for g in gateways:
            g.events([entrapment(f"{g.compound}-EL{n:04d}", ts, True) for n in range(1, 4)])
        wait_until(lambda: sum(len(findings.of(c, "entrapment")) for c in compounds) == 24, 15, "24 findings")
        time.sleep(0.5)  # nothing more may come
        assert sum(len(findings.of(c, "entrapment")) for c in compounds) == 24  # each device once, by one worker
        for worker, share in zip(workers, shares, strict=True):
            snap = worker.stats.snapshot()
            assert snap["received"] == len(share)  # it heard its compounds' messages only
            assert {f.compound for f in worker.recent} == share
    finally:
        for g in gateways:
            g.close()
        findings.close()


class Worker:
    """``sitewatch analytics run`` in a subprocess."""

    def __init__(self, settings_env: dict[str, str], ledger: Path, log: Path) -> None:
        self.env, self.ledger, self.log = settings_env, ledger, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sitewatch", "analytics", "run", "--ledger", str(self.ledger),
                 "--client-id", "kill-test", "--stats-file", str(self.log.with_suffix(".json")),
                 "--stats-interval", "0.2"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


@pytest.mark.slow
def test_a_worker_killed_mid_stream_loses_and_doubles_no_finding(
    service_factory: Callable[..., MosquittoService], tmp_path: Path
) -> None:
    broker = service_factory("mosquitto")
    compounds = [f"K{n}" for n in range(3)]
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    (ledger / "compounds.csv").write_text(
        "code,latitude,longitude\n" + "".join(f"{c},43.88,125.32\n" for c in compounds)
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SITEWATCH_")},
        "SITEWATCH_MQTT__URL": broker.url, "SITEWATCH_DATA_DIR": str(tmp_path / "data"),
        "SITEWATCH_ANALYTICS__CHECKPOINT_INTERVAL_S": "0.1", "SITEWATCH_ANALYTICS__TICK_S": "0.3",
    }  # fmt: skip
    worker = Worker(env, ledger, tmp_path / "worker.log")
    worker.start()
    findings = Findings(broker.port)
    gateways = [Gateway(broker.port, c, f"gw-{c}") for c in compounds]
    wait_until(lambda: (tmp_path / "worker.json").exists(), 30, "the worker's first stats")
    # 40 elevators per compound, one episode each: active, a few normal samples, cleared 1 h later.
    # All in the past, so the ticks clear them at once (after the 30 min flap window).
    base = now_ms() - 3 * 86_400_000
    episodes = [(g, n, base + n * 60_000) for g in gateways for n in range(1, 41)]
    done = threading.Event()

    def publish() -> None:
        for i, (g, n, start) in enumerate(episodes):
            device = f"{g.compound}-EL{n:04d}"
            g.events([entrapment(device, start, True)])
            g.samples([Sample(device, DeviceKind.ELEVATOR, start + k * 60_000, {"car_load": 20.0, "run_state": 0})
                       for k in range(1, 6)])  # fmt: skip
            g.events([entrapment(device, start + HOUR, False)])
            time.sleep(0.03 if i % 2 else 0)
        done.set()

    try:
        thread = threading.Thread(target=publish)
        thread.start()
        wait_until(lambda: len(findings.of("K0", "entrapment")) + len(findings.of("K1", "entrapment")) > 30,
                   30, "findings before the kill")  # fmt: skip
        worker.kill()  # mid-stream: messages keep coming, queued by the broker for the worker's session
        killed_at = sum(len(findings.of(c, "entrapment")) for c in compounds)
        time.sleep(1.0)
        worker.start()
        thread.join(60)
        assert done.is_set()
        for g in gateways:
            g.wait_acked()
        expected = 2 * len(episodes)
        wait_until(lambda: len({(f["id"], f["state"]) for c in compounds for f in findings.of(c, "entrapment")})
                   >= expected, 60, "every episode's findings")  # fmt: skip
        time.sleep(1.0)  # anything doubled would have arrived by now
        assert worker.stop() == 0, (tmp_path / "worker.log").read_text()
    finally:
        for g in gateways:
            g.close()
        findings.close()
        if worker.proc is not None and worker.proc.poll() is None:
            worker.kill()
    got = [f for c in compounds for f in findings.of(c, "entrapment")]
    pairs = {(f["id"], f["state"]) for f in got}
    ids = {f["id"] for f in got}
    assert killed_at < expected  # the kill did fall mid-stream
    assert len(pairs) == expected and len(ids) == len(episodes)  # none lost, no second episode anywhere
    assert {(f["device"], f["started"]) for f in got} == {
        (f"{g.compound}-EL{n:04d}", start) for g, n, start in episodes
    }
    # a message published again after the crash is an exact copy of one already out: (id, state) dedup
    by_pair: dict[tuple[object, object], set[tuple[object, object, object]]] = {}
    for f in got:
        by_pair.setdefault((f["id"], f["state"]), set()).add((f["started"], f["ended"], f["severity"]))
    assert all(len(v) == 1 for v in by_pair.values())
    assert "restored" in (tmp_path / "worker.log").read_text()  # the second run started from the checkpoint
    copies = len(got) - len(pairs)
    assert copies <= 40, copies  # at most the findings of the messages since the last checkpoint


def test_a_compound_registered_later_is_picked_up(
    mosquitto: MosquittoService, tmp_path: Path
) -> None:
    first, later = unique("R"), unique("R")
    known = [first]
    places = {c: CompoundPlace(c, 43.88, 125.32) for c in (first, later)}
    settings = make_settings(mosquitto.url, tmp_path, sites_refresh_s=0.3)
    findings = Findings(mosquitto.port)
    service = AnalyticsService(settings, engine_factory(settings, places), lambda: list(known), client_id=unique("an"))
    service.start()
    gateway = Gateway(mosquitto.port, later, unique("gw"))
    try:
        assert service.wait_connected(10) and service.compounds == {first}
        known.append(later)  # registered while the worker runs
        wait_until(lambda: later in service.compounds, 10, "the new compound's subscription")
        time.sleep(0.3)
        gateway.events([entrapment(f"{later}-EL0001", now_ms() - HOUR, True)])
        wait_until(lambda: findings.of(later, "entrapment"), 10, "a finding of the new compound")
    finally:
        gateway.close()
        findings.close()
        service.stop()
