"""Windowed scoring in the live service: the fault-specific detectors on the store, every few minutes.

The rules engine acts on each message; the detectors (bearing wear, leak: ``DETECTOR_RUNS`` in
``detectors/findings.py``) need days of history, so a :class:`Scorer` reads it from the store. Every
``analytics.score_interval_s`` (counted from the end of the last run) it runs each detector: for
each compound of the worker's partition, the detector's metrics over its ``window_hours`` up to now are read from the store
(``Store.scan``, raw points), the compound's devices from the store's device list (building and
water meters' scope from the registry or the ledger, else the store's building tag), and the same
function ``analytics evaluate`` runs on a backfill turns them into findings.

Findings are published once per (id, state). The id is the detector's deterministic one
(detector, device, episode start). Because the window slides, an episode may be seen with a later
start once its beginning leaves the window: a finding of the same detector and device that
overlaps an episode already published as active keeps that episode's id and start. An episode the
detector ends (or no longer sees, while its device's compound still has readings) is published as
cleared. An episode still within ``merge_hours`` of the window's end is taken as going on (the
detector would join a new flag to it), so a lift that idles overnight does not clear and re-raise.
A cleared episode that was never published active and began inside the window's first
``warmup_hours`` is not published: the detector had too little history there for its start to be
the one later runs find.

Restart: the published (id, state) pairs and the open episodes live in the scorer's checkpoint
(``<state dir>/<client id>.scores.ckpt``, written atomically after the broker confirmed the run's
findings); a restarted scorer does not publish them again. A finding published and confirmed but
not yet written there when the process died is published once more (at least once).

Models: when the model directory (``analytics train``) holds a kind's pooled model made by the
detector a run uses, on features that include the metric it scores, that model replaces the
defaults; otherwise (no directory, a manifest or file that does not check out, another detector,
other features) the untrained default runs, and the log says which.

A store that cannot be read (down, a timeout) ends the run with a warning; the next one is tried
after ``min(score_interval_s, RETRY_S)``.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..contract import Finding, FindingState, Limits, decode_finding, finding_topic, now_ms
from ..store import SeriesQuery, Store
from . import checkpoint as ckpt
from .compounds import DevicePlace

if TYPE_CHECKING:  # pandas and the detectors load with the first scorer (a second or two)
    import pandas as pd

    from ..settings import Settings
    from .detectors.base import Detector
    from .detectors.findings import DetectorRun

log = logging.getLogger(__name__)
HOUR_MS = 3_600_000

RETRY_S = 30.0  # a failed run is tried again after at most this long
CONFIRM_TIMEOUT_S = 30.0  # how long a run waits for the broker to confirm its findings
CHILD_NICE = 10  # the scoring child's lower CPU priority

Publish = Callable[[Finding], Callable[[], bool]]  # publishes; returns "has the broker confirmed it?"


@dataclass
class ScoreStats:
    """Counters of the scorer (read by the log line and the stats file)."""

    runs: int = 0  # runs that read every compound
    failed_runs: int = 0  # runs the store (or a detector) broke off
    published: int = 0  # findings published (active and cleared)
    last_run_ms: float = 0.0  # wall time of the last complete run
    last_points: int = 0  # points it read
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready copy."""
        with self.lock:
            return {
                "score_runs": self.runs, "score_failed_runs": self.failed_runs,
                "score_published": self.published, "score_last_run_ms": self.last_run_ms,
                "score_last_points": self.last_points,
            }  # fmt: skip


def read_window(store: Store, run: DetectorRun, compound: str, start_ms: int, end_ms: int) -> pd.DataFrame:
    """``run``'s metrics of ``compound``'s devices in [start_ms, end_ms), long form (READING_COLUMNS)."""
    return _placed(_scan(store, run, compound, start_ms, end_ms), run, compound)


def _scan(store: Store, run: DetectorRun, compound: str, start_ms: int, end_ms: int) -> pd.DataFrame:
    query = SeriesQuery(run.kind, run.metrics, start_ms, end_ms, compound=compound)
    return store.scan_frame(query)  # columns, not a Point per reading


def _placed(frame: pd.DataFrame, run: DetectorRun, compound: str) -> pd.DataFrame:
    frame["kind"] = run.kind.value
    frame["compound"] = compound
    return frame


def device_frame(store: Store, run: DetectorRun, compound: str, readings: pd.DataFrame,
                 places: Mapping[str, DevicePlace]) -> pd.DataFrame:  # fmt: skip
    """The devices of ``readings``: compound, building and scope from ``places`` (the registry or
    the ledger), the building from the store's tags for a device ``places`` does not know."""
    import pandas as pd

    names = sorted({str(d) for d in readings["device"].unique()})  # not a str per reading
    tagged: dict[str, str] = {}
    if any(d not in places for d in names):
        tagged = {ref.device: ref.tag("building") for ref in store.devices(kind=run.kind, compound=compound)}
    unknown = DevicePlace("", "")
    return pd.DataFrame(
        {
            "kind": [run.kind.value] * len(names),
            "compound": [compound] * len(names),
            "building": [places[d].building if d in places else tagged.get(d, "") for d in names],
            "scope": [places.get(d, unknown).scope for d in names],
        },
        index=pd.Index(names, name="device"),
    )


def choose_models(directory: Path | None, runs: Iterable[DetectorRun]) -> dict[str, Detector]:
    """The trained model each run uses (by run name); a run without one uses its defaults (logged)."""
    import pandas as pd

    from .detectors.base import DetectorError

    chosen: dict[str, Detector] = {}
    runs = list(runs)
    if directory is None or not (directory / "manifest.json").is_file():
        log.info("no trained models in %s: the detectors run with their defaults", directory)
        return chosen
    from .detectors.models import FORMAT, load_models

    try:
        models = load_models(directory)
    except DetectorError as exc:
        log.warning("models in %s not used (%s): the detectors run with their defaults", directory, exc)
        return chosen
    for run in runs:
        entry = models.entry(run.kind.value)
        model = models.get(run.kind.value)
        scored = run.metrics[0]
        if entry is None or model is None:
            log.info(
                "no model of kind %s in %s: %s runs with its defaults", run.kind.value, directory, run.name
            )
        elif entry.detector != run.detector or entry.model_version != FORMAT or scored not in entry.features:
            log.warning(
                "model %s (%s, version %s, features %s) does not fit %s (needs %s): %s runs with its defaults",
                entry.file, entry.detector, entry.model_version, ",".join(entry.features), run.name, scored,
                run.name,
            )  # fmt: skip
        else:
            log.info("%s uses model %s (trained on %d rows, %s..%s)", run.name, entry.file, entry.rows,
                     pd.Timestamp(entry.start_ms, unit="ms", tz="UTC"), pd.Timestamp(entry.end_ms, unit="ms", tz="UTC"))  # fmt: skip
            chosen[run.name] = model
    return chosen


class Scorer:
    """The detectors on the store for one worker's compounds (see the module docstring)."""

    def __init__(
        self,
        open_store: Callable[[], Store],
        compounds: Callable[[], Iterable[str]],
        publish: Publish,
        state_path: Path,
        *,
        interval_s: float = 300.0,
        models_dir: Path | None = None,
        places: Callable[[], Mapping[str, DevicePlace]] = dict,
        runs: Iterable[DetectorRun] | None = None,
        clock: Callable[[], int] = now_ms,
        child: ChildScoring | None = None,
    ) -> None:
        self.open_store = open_store
        self.child = child  # the detectors in a child process, else in this thread
        self.compounds = compounds
        self.publish = publish
        self.state_path = state_path
        self.interval_s = interval_s
        self.models_dir = models_dir
        self.places = places
        if runs is None:
            from .detectors.findings import DETECTOR_RUNS

            runs = DETECTOR_RUNS
        self.runs = tuple(runs)
        self.clock = clock
        self.stats = ScoreStats()
        self.published = ckpt.Published()
        self.open: dict[tuple[str, str], Finding] = {}  # (detector, device) → the episode published active
        self.models: dict[str, Detector] | None = None
        self.ran: dict[str, int] = {}  # run name → when it last ran (a run with ``every_h`` waits)
        self._store: Store | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._restore()

    # --- state ---------------------------------------------------------------------------------

    def _restore(self) -> None:
        restored = ckpt.load(self.state_path)
        if restored is None:
            return
        self.published = restored.published
        for compound, payload in restored.meta.get("open", []):
            decoded = decode_finding(finding_topic(compound), payload.encode("utf-8"), limits=Limits())
            if decoded.message is None:
                raise ckpt.CheckpointError(f"{self.state_path}: an open episode cannot be read")
            f = decoded.message
            self.open[(f.source.removeprefix("detector:"), f.device)] = f
        log.info(
            "restored %s (%d findings published, %d open)",
            self.state_path,
            len(self.published),
            len(self.open),
        )

    def _save(self) -> None:
        meta = {"open": [[f.compound, f.encode().decode("utf-8")] for f in self.open.values()]}
        ckpt.save(self.state_path, ckpt.Checkpoint(b"", self.published, meta))

    # --- one run -------------------------------------------------------------------------------

    def run_once(self) -> list[Finding]:
        """Run every detector on every compound; publish and remember what is new. Returns it.

        Raises what the store raises (``StoreUnavailable``, ``OSError``...): nothing of the run is
        then published."""
        began = time.perf_counter()
        if self.models is None:
            self.models = choose_models(self.models_dir, self.runs)
        now = self.clock()
        compounds = sorted(set(self.compounds()))
        places = _by_compound(self.places(), compounds)
        out: list[Finding] = []
        points = 0
        done: list[str] = []
        for run in self.runs:
            if run.every_h and run.name in self.ran and now - self.ran[run.name] < run.every_h * HOUR_MS:
                continue
            start = now - int(run.window_hours * HOUR_MS)
            for compound in compounds:
                if self._stop.is_set():  # stopping: this run is dropped, nothing of it published
                    return []
                task = (run.name, compound, start, now, places.get(compound, {}), self.models.get(run.name))
                found, read = self.child.score(*task) if self.child is not None else self._score(*task)
                points += read
                out += self._reconcile(run, compound, found, start, now)
            self.ran[run.name] = now
            done.append(run.name)
        fresh = [f for f in out if (f.id, f.state.value) not in self.published]
        if fresh:
            self._deliver(fresh)
        with self.stats.lock:
            self.stats.runs += 1
            self.stats.published += len(fresh)
            self.stats.last_run_ms = (time.perf_counter() - began) * 1000
            self.stats.last_points = points
        log.info("scored %s on %d compounds: %d points read, %d findings published, in %.1f s",
                 ",".join(done) or "nothing", len(compounds), points, len(fresh), self.stats.last_run_ms / 1000)  # fmt: skip
        return fresh

    def _score(self, run_name: str, compound: str, start: int, end: int, places: Mapping[str, DevicePlace],
               model: Detector | None) -> tuple[list[Finding], int]:  # fmt: skip
        if self._store is None:
            self._store = self.open_store()
        return score_compound(self._store, self._run(run_name), compound, start, end, places, model)

    def _run(self, name: str) -> DetectorRun:
        return next(r for r in self.runs if r.name == name)

    def _reconcile(
        self, run: DetectorRun, compound: str, found: list[Finding], start: int, now: int
    ) -> list[Finding]:
        """The findings to publish for ``found``: ids kept across the sliding window, episodes
        still open kept active, episodes no longer seen cleared (see the module docstring)."""
        out: list[Finding] = []
        seen: set[tuple[str, str]] = set()
        merge = int(run.merge_hours * HOUR_MS)
        for f in found:
            key = (run.name, f.device)
            last = f.ended_ms if f.ended_ms is not None else f.ts_ms
            if f.state is FindingState.CLEARED and f.ended_ms is not None and f.ended_ms > now - merge:
                f = replace(f, state=FindingState.ACTIVE, ended_ms=None)  # could still be joined
            opened = self.open.get(key)
            if opened is not None and f.started_ms <= opened.ts_ms + merge and last >= opened.started_ms:
                f = replace(f, id=opened.id, started_ms=opened.started_ms)
                seen.add(key)
                if f.state is FindingState.ACTIVE:  # the same episode, seen until later: remember how far
                    self.open[key] = replace(opened, ts_ms=max(opened.ts_ms, f.ts_ms))
            elif f.state is FindingState.CLEARED and f.started_ms < start + run.warmup_hours * HOUR_MS:
                continue  # began where the detector had too little history: its start is not stable
            out.append(f)
        for key, opened in list(self.open.items()):
            if key[0] == run.name and opened.compound == compound and key not in seen:
                out.append(replace(opened, state=FindingState.CLEARED, ended_ms=opened.ts_ms, ts_ms=now))
        return out

    def _deliver(self, fresh: list[Finding]) -> None:
        """Publish, wait for the broker's confirmation, then remember and checkpoint. Not confirmed
        in time: nothing is remembered, and the next run publishes them again."""
        confirmed = [self.publish(f) for f in fresh]
        deadline = time.monotonic() + CONFIRM_TIMEOUT_S
        while not all(c() for c in confirmed):
            if time.monotonic() > deadline or self._stop.is_set():
                raise TimeoutError(f"the broker did not confirm {len(fresh)} finding(s) in time")
            time.sleep(0.01)
        for f in fresh:
            self.published.add((f.id, f.state.value))
            key = (f.source.removeprefix("detector:"), f.device)
            if f.state is FindingState.ACTIVE:
                self.open[key] = f
            elif key in self.open and self.open[key].id == f.id:
                del self.open[key]
        self._save()

    # --- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        """Score in a thread of its own (first run at once) until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="analytics-scorer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current run."""
        self._stop.set()
        if self.child is not None:
            self.child.close()  # a run waiting for the child ends at once
        if self._thread is not None:
            self._thread.join(timeout)
        self._drop_store()

    def _loop(self) -> None:
        wait = 0.0
        while not self._stop.wait(wait):
            try:
                self.run_once()
                wait = self.interval_s
                if self._stop.is_set():
                    return
            except Exception as exc:  # the store away, a broker that does not confirm: try again later
                if self._stop.is_set():
                    return
                with self.stats.lock:
                    self.stats.failed_runs += 1
                log.warning("scoring run failed (%s: %s); trying again in %.1f s", type(exc).__name__, exc,
                            min(self.interval_s, RETRY_S), exc_info=log.isEnabledFor(logging.DEBUG))  # fmt: skip
                self._drop_store()
                if self.child is not None:
                    self.child.reset()
                wait = min(self.interval_s, RETRY_S)

    def _drop_store(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # closing a store that is gone
                log.debug("closing the store failed", exc_info=True)
        self._store = None


def score_compound(store: Store, run: DetectorRun, compound: str, start: int, end: int,
                   places: Mapping[str, DevicePlace], model: Detector | None) -> tuple[list[Finding], int]:  # fmt: skip
    """``run``'s findings on ``compound``'s window [start, end) of ``store``, and the points read."""
    readings = _scan(store, run, compound, start, end)
    if readings.empty:  # a compound without readings in the window: no columns added to nothing
        return [], 0
    readings = _placed(readings, run, compound)
    devices = device_frame(store, run, compound, readings, places)
    return run.function(readings, devices, detector=model), len(readings)


def _by_compound(
    places: Mapping[str, DevicePlace], compounds: Iterable[str]
) -> dict[str, dict[str, DevicePlace]]:
    """``places`` split by compound (a device id starts with its compound's code and a hyphen)."""
    out: dict[str, dict[str, DevicePlace]] = {c: {} for c in compounds}
    for device, place in places.items():
        part = out.get(device.rsplit("-", 1)[0])
        if part is not None:
            part[device] = place
    return out


class ChildScoring:
    """The detectors in a child process of their own (started with ``spawn``, so it shares nothing
    with the worker: not the interpreter's lock the event-driven rules need, not the engine's
    memory that checkpoints fork), with its own store connection made from ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def score(self, run_name: str, compound: str, start: int, end: int, places: Mapping[str, DevicePlace],
              model: Detector | None) -> tuple[list[Finding], int]:  # fmt: skip
        """``score_compound`` in the child; raises what it raised there."""
        if self._closed:
            raise RuntimeError("the scoring child process was closed")
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_child_start,
                initargs=(self.settings,),
            )
        return self._pool.submit(_child_score, run_name, compound, start, end, dict(places), model).result()

    def reset(self) -> None:
        """After a failure: a new child (and store connection) for the next run."""
        self._end()

    def close(self) -> None:
        """End the child, without waiting for the compound it is on (its answer is not needed)."""
        self._closed = True
        self._end()

    def _end(self) -> None:
        if self._pool is not None:
            # the pool's own shutdown would wait for the running task at the interpreter's exit
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


_CHILD: dict[str, Any] = {}


def _child_start(settings: Settings) -> None:
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker stops it (a terminal's ^C reaches both)
    os.nice(CHILD_NICE)  # spare CPU only: the worker's event-driven rules come first
    _CHILD["settings"] = settings


def _child_score(run_name: str, compound: str, start: int, end: int, places: dict[str, DevicePlace],
                 model: Detector | None) -> tuple[list[Finding], int]:  # fmt: skip
    from ..store import open_store
    from .detectors.findings import DETECTOR_RUNS

    store = _CHILD.get("store")
    if store is None:
        store = _CHILD["store"] = open_store(_CHILD["settings"], create=False)
    try:
        return score_compound(store, next(r for r in DETECTOR_RUNS if r.name == run_name), compound, start, end,
                              places, model)  # fmt: skip
    except Exception:
        _CHILD.pop("store", None)
        store.close()
        raise
