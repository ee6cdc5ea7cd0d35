"""The live service's windowed scoring: detectors on a real store (embedded, InfluxDB), findings over a
real Mosquitto, once per episode across restarts, and a store that is down."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from sitewatch.analytics.cli_run import engine_factory
from sitewatch.analytics.compounds import devices_from_ledger, from_ledger
from sitewatch.analytics.detectors.findings import DETECTOR_RUNS, GENERIC_RUNS, detector_findings
from sitewatch.analytics.scoring import Scorer
from sitewatch.analytics.service import AnalyticsService
from sitewatch.cli import main
from sitewatch.contract import Finding, FindingState
from sitewatch.devtools.bench.analytics import score_metrics
from sitewatch.devtools.services import wait_until
from sitewatch.settings import Settings, load_settings
from sitewatch.store import open_store
from sitewatch.store.loader import load_backfill

from .service_support import Findings

pytestmark = pytest.mark.slow
HOUR_MS = 3_600_000
# the runs these tests follow (wear, leak, water balance); the generic ones have tests of their own
SCORED = tuple(run for run in DETECTOR_RUNS if run not in GENERIC_RUNS)
WEAR = ("trend_slope",)  # a phase scores only the run it follows


@pytest.fixture(scope="module")
def backfill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 days of one compound with every fault; readings cut to what the detectors read."""
    root = tmp_path_factory.mktemp("scoring")
    runner = CliRunner()
    city = runner.invoke(main, ["--lang", "en", "simulate", "city", "--compounds", "1", "--seed", "12",
                                "--out", str(root / "city.xlsx")])  # fmt: skip
    assert city.exit_code == 0, city.output
    out = runner.invoke(main, ["--lang", "en", "simulate", "backfill", "--ledger", str(root / "city.xlsx"),
                               "--days", "12", "--start", "2026-03-02", "--seed", "12", "--faults", "all",
                               "--out", str(root / "history")])  # fmt: skip
    assert out.exit_code == 0, out.output
    table = pq.read_table(root / "history" / "readings.parquet")
    metric = pc.cast(table["metric"], "string")
    keep = pc.is_in(metric, value_set=pa.array(score_metrics()))  # what the scorer's runs read, as the bench
    (root / "load").mkdir()
    pq.write_table(table.filter(keep), root / "load" / "readings.parquet")
    return root


@pytest.fixture(scope="module")
def evaluated(backfill: Path) -> list[Finding]:
    """What ``analytics evaluate`` finds on the same history (the whole of it)."""
    return detector_findings(backfill / "history")


@pytest.fixture(params=["embedded", "influxdb"])
def settings(request: pytest.FixtureRequest, backfill: Path, tmp_path: Path, mosquitto: object) -> Settings:
    store: dict[str, object] = {}
    if request.param == "influxdb":
        influx = request.getfixturevalue("influxdb")
        store = {
            "backend": "influxdb",
            "influx_url": influx.url,
            "influx_database": request.getfixturevalue("influx_database"),
        }
    made = load_settings(data_dir=tmp_path / "data", mqtt={"url": mosquitto.url}, store=store,  # type: ignore[attr-defined]
                         analytics={"checkpoint_interval_s": 0.2, "tick_s": 1.0, "score_interval_s": 3600.0})  # fmt: skip
    with open_store(made) as opened:
        load_backfill(backfill / "load", opened)
    return made


@pytest.fixture
def findings(mosquitto: object) -> Iterator[Findings]:
    collector = Findings(mosquitto.port)  # type: ignore[attr-defined]
    yield collector
    collector.close()


def _service(
    settings: Settings, ledger: Path, clock_ms: int, runs: tuple[str, ...] | None = None
) -> AnalyticsService:
    places = from_ledger(ledger)
    devices = devices_from_ledger(ledger)
    service = AnalyticsService(
        settings, engine_factory(settings, places), lambda: list(places), client_id="scoring-test",
        clock=lambda: clock_ms, open_store=lambda: open_store(settings, create=False), places=lambda: devices,
        score_in_child=True,  # as analytics run does
        score_runs=[run for run in SCORED if runs is None or run.name in runs],
    )  # fmt: skip
    service.start()
    assert service.wait_connected(20)
    return service


def _scored(service: AnalyticsService, runs: int) -> bool:
    assert service.scorer is not None
    return service.scorer.stats.runs >= runs


def test_the_live_scorer_publishes_a_wear_once_and_its_end(
    settings: Settings, backfill: Path, evaluated: list[Finding], findings: Findings
) -> None:
    ledger = backfill / "city.xlsx"
    # evaluate gives each episode as its messages: active from its first flag, then cleared; the last one
    wear = min((f for f in evaluated if f.fault == "bearing_wear" and f.state is FindingState.CLEARED),
               key=lambda f: f.started_ms)  # fmt: skip
    at = wear.started_ms + 6 * HOUR_MS  # six hours into the episode: it is going on
    service = _service(settings, ledger, at, WEAR)
    try:
        wait_until(lambda: _scored(service, 1), 120, "the first scoring run")
        wait_until(lambda: bool(findings.of(wear.compound, "bearing_wear")), 20, "the wear finding")
    finally:
        service.stop()
    before = len(findings.of(wear.compound))
    got = [f for f in findings.of(wear.compound, "bearing_wear") if f["device"] == wear.device]
    assert [(f["id"], f["device"], f["state"], f["started"]) for f in got] == [
        (
            wear.id,
            wear.device,
            "active",
            wear.started_ms,
        )  # the same episode evaluate finds on the whole history
    ]
    assert got[0]["source"] == "detector:trend_slope" and "rise" in got[0]["evidence"]  # type: ignore[operator]

    # restarted at the same time: the checkpoint says it was published
    service = _service(settings, ledger, at, WEAR)
    try:
        wait_until(lambda: _scored(service, 1), 120, "the restarted scorer's run")
    finally:
        service.stop()
    assert len(findings.of(wear.compound)) == before
    assert service.scorer is not None and service.scorer.stats.published == 0

    # at the history's end the episode is over (evaluate: cleared more than a day before the end)
    end = pc.max(pq.read_table(backfill / "load" / "readings.parquet", columns=["ts_ms"])["ts_ms"]).as_py()
    assert (
        wear.state is FindingState.CLEARED
        and wear.ended_ms is not None
        and wear.ended_ms < end - 24 * HOUR_MS
    )
    service = _service(settings, ledger, end + 60_000, WEAR)
    try:
        wait_until(lambda: _scored(service, 1), 120, "the scorer at the history's end")
        wait_until(lambda: any(f["id"] == wear.id and f["state"] == "cleared" for f in findings.of(wear.compound)),
                   20, "the cleared state")  # fmt: skip
    finally:
        service.stop()
    states = [(f["id"], f["state"]) for f in findings.of(wear.compound, "bearing_wear") if f["id"] == wear.id]
    assert states == [(wear.id, "active"), (wear.id, "cleared")]

    # six hours into the first leak evaluate finds, the live scorer sees it too (and no other leak)
    leak = min((f for f in evaluated if f.fault == "leak"), key=lambda f: f.started_ms)
    service = _service(settings, ledger, leak.started_ms + 6 * HOUR_MS, ("night_flow",))
    try:
        wait_until(lambda: _scored(service, 1), 120, "the scorer in the leak")
    finally:
        service.stop()
    leaks = {f["device"] for f in findings.of(leak.compound, "leak")}
    assert leak.device in leaks
    assert leaks <= {f.device for f in evaluated if f.fault == "leak"}


def test_a_store_that_is_down_is_logged_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An InfluxDB nobody serves: every run fails with a warning; the thread goes on."""
    down = load_settings(data_dir=tmp_path, store={"backend": "influxdb", "influx_url": "http://127.0.0.1:9",
                                                   "influx_database": "nowhere"})  # fmt: skip
    published: list[Finding] = []

    def publish(finding: Finding) -> object:
        published.append(finding)
        return lambda: True

    scorer = Scorer(lambda: open_store(down, create=False), lambda: ["220104-0001"], publish,  # type: ignore[arg-type]
                    tmp_path / "s.ckpt", interval_s=0.2)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="sitewatch.analytics.scoring"):
        scorer.start()
        try:
            wait_until(lambda: scorer.stats.failed_runs >= 2, 60, "two failed runs")
            assert scorer._thread is not None and scorer._thread.is_alive()
        finally:
            scorer.stop()
    assert scorer.stats.runs == 0 and not published
    assert any(
        "scoring run failed" in r.getMessage() and "StoreUnavailable" in r.getMessage()
        for r in caplog.records
    )
    assert not (tmp_path / "s.ckpt").exists()


def test_trained_models_are_used_only_when_their_manifest_fits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A kind's model made by the run's own detector replaces its defaults; another detector's
    model, a damaged directory or none at all leave the defaults, and the log says so."""
    from sitewatch.analytics.detectors.findings import DETECTOR_RUNS
    from sitewatch.analytics.detectors.models import train_models
    from sitewatch.analytics.detectors.multivariate import PCADetector
    from sitewatch.analytics.detectors.trend import TheilSenTrend
    from sitewatch.analytics.scoring import choose_models
    from sitewatch.contract import DeviceKind

    from .test_detectors_cli import T0, elevators

    with open_store(load_settings(data_dir=tmp_path)) as store:
        store.write(elevators(24 * 8))
        window = {"start_ms": T0, "end_ms": T0 + 9 * 24 * HOUR_MS, "kinds": [DeviceKind.ELEVATOR]}
        train_models(store, tmp_path / "pca", detector="pca_t2q", **window)  # type: ignore[arg-type]
        train_models(store, tmp_path / "trend", detector="trend_slope", **window)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="sitewatch.analytics.scoring"):
        assert choose_models(tmp_path / "nowhere", DETECTOR_RUNS) == {}
        by_pca = choose_models(tmp_path / "pca", DETECTOR_RUNS)  # the generic run of elevators takes it
        chosen = choose_models(tmp_path / "trend", DETECTOR_RUNS)
        (tmp_path / "trend" / "elevator" / "_kind.joblib").write_bytes(b"tampered")
        assert choose_models(tmp_path / "trend", DETECTOR_RUNS) == {}
    assert list(chosen) == ["trend_slope"] and isinstance(chosen["trend_slope"], TheilSenTrend)
    assert list(by_pca) == ["pca_t2q.elevator"] and isinstance(by_pca["pca_t2q.elevator"], PCADetector)
    text = [r.getMessage() for r in caplog.records]
    assert any("no trained models" in t for t in text)
    assert any("_kind.joblib (pca_t2q" in t and "does not fit trend_slope" in t for t in text)
    assert any(t.startswith("trend_slope uses model elevator/_kind.joblib") for t in text)
    assert any(t.startswith("pca_t2q.elevator uses model elevator/_kind.joblib") for t in text)
    assert any("not used" in t and "does not match" in t for t in text)
    assert any("no model of kind water_meter" in t for t in text)


def test_the_child_process_scores_as_the_thread_does(
    settings: Settings, backfill: Path, evaluated: list[Finding]
) -> None:
    """``analytics run`` scores in a spawned child with its own store connection: same findings
    (the specific runs and one generic run: the others differ from it by their kind only)."""
    from sitewatch.analytics.scoring import ChildScoring, score_compound

    places = devices_from_ledger(backfill / "city.xlsx")
    # evaluate gives each episode as its messages: active from its first flag, then cleared; the last one
    wear = min((f for f in evaluated if f.fault == "bearing_wear" and f.state is FindingState.CLEARED),
               key=lambda f: f.started_ms)  # fmt: skip
    at = wear.started_ms + 6 * HOUR_MS
    child = ChildScoring(settings)
    try:
        with open_store(settings, create=False) as store:
            for run in (*SCORED, GENERIC_RUNS[0]):
                start = at - int(run.window_hours * HOUR_MS)
                here = score_compound(store, run, wear.compound, start, at, places, None)
                there = child.score(run.name, wear.compound, start, at, places, None)
                assert there == here
                # the load holds the specific detectors' metrics (and elevators' vibration)
                assert there[1] > 0 or run.kind.value not in ("elevator", "water_meter")
                if run.name == "trend_slope":
                    assert wear.id in {f.id for f in there[0]}
    finally:
        child.close()
