"""Findings scored against a backfill's ground truth (``sitewatch analytics evaluate``).

Matching (docs/analytics.md): a finding matches a label when it names the label's device and fault
type and its span [started, ended] overlaps the label's [start, end + TOLERANCE_MS). A label is
detected when a finding matches it; its time to detect is from the label's start to the first
matching finding's active message (0 if the finding was already on). A finding that matches no
label of its fault type on its device is false, unless it matches a label left out of recall
(not observable) or, for findings of no fault type, an outage of its device or gateway (their
own row). Labels the data cannot show (``observable`` false) are left out of recall and counted.

Lead time (gradual faults): the label's end minus the first matching finding's active message.
The target (issue 17) is a lead of at least LEAD_TARGET_H; it is judged only on the labels the
history shows for at least LEAD_TARGET_H + LEAD_SHOW_H (from the later of the label's start and
the history's first reading): a degradation starts from nothing, so one that lasts a day and a
half cannot be flagged a day before its end. Shorter ones are reported with their lead as a
share of the span the history shows (``lead_fraction_min``).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..contract import Finding, FindingState
from .replay import ProgressFn, replay
from .rules import RuleSet

log = logging.getLogger(__name__)
TOLERANCE_MS = 3_600_000  # a finding in the hour after a fault's end still counts as finding it
BANDS = ("subtle", "moderate", "clear")
GRADUAL = ("bearing_wear", "storage_full", "over_temperature", "day_burning", "battery_low")
GENERIC = "(none)"
MS_PER_MONTH = 30 * 86_400_000
HOUR_MS = 3_600_000
LEAD_TARGET_H = 24.0  # degradation flagged at least a day before the fault's end (issue 17)
LEAD_SHOW_H = 24.0  # a gradual fault's first day, in which it grows from nothing: not asked to be flagged


def extra_findings(history: Path) -> list[Finding]:
    """Findings of the fault-specific detectors over ``history`` (bearing wear, leak) added to the rules'."""
    from .detectors.findings import detector_findings  # pandas/scikit work only when evaluating

    return detector_findings(history)


@dataclass(slots=True)
class Episode:
    """One finding's episode: its active message's time and its span."""

    finding: Finding
    raised_ms: int
    end_ms: int


@dataclass(slots=True)
class FaultScore:
    """How one fault type did."""

    fault: str
    labelled: int = 0
    detected: int = 0
    unobservable: int = 0
    false: int = 0
    true_findings: int = 0
    by_band: dict[str, list[int]] = field(
        default_factory=lambda: {b: [0, 0] for b in BANDS}
    )  # [found, labelled]
    announced: list[int] = field(default_factory=lambda: [0, 0])
    unannounced: list[int] = field(default_factory=lambda: [0, 0])
    ttd_s: list[float] = field(default_factory=list)
    lead_h: list[float] = field(default_factory=list)
    lead_fraction: list[float] = field(default_factory=list)  # lead / span the history shows
    lead_long: list[int] = field(default_factory=lambda: [0, 0])  # [lead >= target, labelled long enough]
    lead_long_h: list[float] = field(default_factory=list)  # leads of the long-enough labels found
    found_magnitudes: list[tuple[float, bool]] = field(default_factory=list)
    unit: str = ""

    def to_json(self) -> dict[str, Any]:
        """As plain JSON (None where there is nothing to divide by)."""
        findings = self.true_findings + self.false

        def ratio(a: int, b: int) -> float | None:
            return a / b if b else None

        gradual = self.fault in GRADUAL

        return {
            "labelled": self.labelled, "detected": self.detected, "missed": self.labelled - self.detected,
            "unobservable": self.unobservable, "false_findings": self.false, "true_findings": self.true_findings,
            "precision": ratio(self.true_findings, findings), "recall": ratio(self.detected, self.labelled),
            "recall_by_band": {b: ratio(*self.by_band[b]) for b in BANDS},
            "labelled_by_band": {b: self.by_band[b][1] for b in BANDS},
            "recall_announced": ratio(*self.announced), "recall_unannounced": ratio(*self.unannounced),
            "ttd_median_s": _pct(self.ttd_s, 50), "ttd_p95_s": _pct(self.ttd_s, 95),
            "lead_median_h": _pct(self.lead_h, 50) if gradual else None,
            "lead_min_h": min(self.lead_h) if self.lead_h and gradual else None,
            "lead_target_h": LEAD_TARGET_H if gradual else None,
            "lead_long_labelled": self.lead_long[1] if gradual else None,
            "lead_long_met": self.lead_long[0] if gradual else None,
            "lead_long_min_h": min(self.lead_long_h) if self.lead_long_h and gradual else None,
            "lead_fraction_min": min(self.lead_fraction) if self.lead_fraction and gradual else None,
            "min_magnitude_recall_80": _smallest(self.found_magnitudes), "unit": self.unit,
        }  # fmt: skip


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _smallest(found: list[tuple[float, bool]]) -> float | None:
    """The smallest magnitude m with recall >= 0.8 over the labels of magnitude >= m."""
    best = None
    ordered = sorted(found, reverse=True)
    hits = 0
    for n, (magnitude, hit) in enumerate(ordered, start=1):
        hits += hit
        if hits / n >= 0.8:
            best = magnitude
    return best


def episodes(findings: list[Finding], end_ms: int) -> list[Episode]:
    """Active and cleared messages paired by id into episodes (still open: until ``end_ms``)."""
    opened: dict[str, Episode] = {}
    for f in findings:
        if f.state is FindingState.ACTIVE and f.id not in opened:
            opened[f.id] = Episode(f, f.ts_ms, end_ms)
        elif f.state is FindingState.CLEARED:
            ep = opened.get(f.id)
            if ep is None:
                opened[f.id] = Episode(f, f.ts_ms, f.ended_ms or f.ts_ms)
            else:
                ep.end_ms = f.ended_ms if f.ended_ms is not None else f.ts_ms
    return list(opened.values())


def score(history: Path, findings: list[Finding], first_ms: int, end_ms: int) -> dict[str, Any]:
    """The evaluation's result as plain JSON (shape in docs/analytics.md)."""
    labels = pd.read_parquet(history / "labels.parquet")
    devices = pd.read_parquet(history / "devices.parquet", columns=["device"])
    outages = pd.read_parquet(history / "outages.parquet") if (history / "outages.parquet").exists() else None
    eps = episodes(findings, end_ms)
    by_device: dict[str, list[Episode]] = {}
    for ep in eps:
        by_device.setdefault(ep.finding.device, []).append(ep)
    used: set[str] = set()  # ids of findings that matched a label (or an excused one)
    scores: dict[str, FaultScore] = {}
    for row in labels.to_dict("records"):
        fault = str(row["fault"])
        sc = scores.setdefault(fault, FaultScore(fault))
        s, e = int(row["start_ms"]), int(row["end_ms"])
        hits = [ep for ep in by_device.get(str(row["device"]), ())
                if ep.finding.fault == fault and ep.finding.started_ms < e + TOLERANCE_MS and ep.end_ms >= s]  # fmt: skip
        used.update(ep.finding.id for ep in hits)
        if not bool(row["observable"]):
            sc.unobservable += 1
            continue
        sc.labelled += 1
        sc.unit = sc.unit or str(row["unit"])
        found = bool(hits)
        band = str(row["band"])
        if band in sc.by_band:
            sc.by_band[band][1] += 1
            sc.by_band[band][0] += found
        pair = sc.announced if bool(row["announced"]) else sc.unannounced
        pair[1] += 1
        pair[0] += found
        if str(row["unit"]) == sc.unit:
            sc.found_magnitudes.append((float(row["magnitude"]), found))
        first = min(ep.raised_ms for ep in hits) if hits else None
        if first is not None:
            sc.detected += 1
            sc.ttd_s.append(max(0, first - s) / 1000)
            sc.lead_h.append((e - first) / HOUR_MS)
        if fault in GRADUAL:
            _lead(sc, max(s, first_ms), e, first)
    outage_spans: dict[str, list[tuple[int, int]]] = {}
    if outages is not None:
        for o in outages.to_dict("records"):
            span = (int(o["start_ms"]), int(o["end_ms"]))
            for device in str(o["device_ids"]).split(","):
                outage_spans.setdefault(device, []).append(span)
            if bool(o["gateway_dark"]):
                outage_spans.setdefault(f"{o['compound']}-GW01", []).append(span)
    generic = FaultScore(GENERIC)
    labelled = spans_by_device(labels)
    outage_findings = 0
    for ep in eps:
        f = ep.finding
        if f.fault is None:
            spans = outage_spans.get(f.device, ())
            if any(a < ep.end_ms + TOLERANCE_MS and b + TOLERANCE_MS > f.started_ms for a, b in spans):
                outage_findings += 1
                continue
            own = labelled.get(f.device, ())
            if any(a < ep.end_ms and b + TOLERANCE_MS > f.started_ms for a, b in own):
                generic.true_findings += 1
            else:
                generic.false += 1
            continue
        sc = scores.setdefault(f.fault, FaultScore(f.fault))
        if f.id in used:
            sc.true_findings += 1
        else:
            sc.false += 1
    months = len(devices) * max(0, end_ms - first_ms) / MS_PER_MONTH
    false_total = sum(s.false for s in scores.values()) + generic.false
    return {
        "faults": {k: scores[k].to_json() for k in sorted(scores)},
        "generic": generic.to_json() | {"outage_findings": outage_findings},
        "overall": {
            "false_findings": false_total,
            "device_months": round(months, 1),
            "false_findings_per_100_device_months": 100 * false_total / months if months else None,
            "findings": len(eps),
            "unobservable_left_out": sum(s.unobservable for s in scores.values()),
            "tolerance_s": TOLERANCE_MS / 1000,
        },
    }


def _lead(sc: FaultScore, shown_ms: int, end_ms: int, raised_ms: int | None) -> None:
    """Count a gradual label toward the lead target: ``shown_ms`` is when the history starts showing it,
    ``raised_ms`` the first matching finding's active message (None: missed)."""
    span_h = (end_ms - shown_ms) / HOUR_MS
    lead = None if raised_ms is None else (end_ms - raised_ms) / HOUR_MS
    if lead is not None and span_h > 0:
        sc.lead_fraction.append(min(1.0, max(0.0, lead / span_h)))
    if span_h < LEAD_TARGET_H + LEAD_SHOW_H:
        return
    sc.lead_long[1] += 1
    if lead is not None:
        sc.lead_long_h.append(lead)
        sc.lead_long[0] += lead >= LEAD_TARGET_H


def spans_by_device(labels: pd.DataFrame) -> dict[str, list[tuple[int, int]]]:
    """The labelled spans of each device."""
    table: dict[str, list[tuple[int, int]]] = {}
    for d, a, b in zip(labels["device"], labels["start_ms"], labels["end_ms"], strict=True):
        table.setdefault(str(d), []).append((int(a), int(b)))
    return table


@contextmanager
def _beside(history: Path, extra: Callable[[Path], list[Finding]]) -> Iterator[Callable[[], list[Finding]]]:
    """``extra(history)`` run in a process of its own while the caller replays, when this process may
    use two cores or more and ``extra`` is the shipped hook (a function another process can import);
    else run here when asked for. The detectors' pandas work and the engine's Python loop then take a
    core each: the same findings, in about the time of the longer of the two."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if extra is not extra_findings or cores < 2:
        yield lambda: extra(history)
        return
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        future = pool.submit(extra, history)

        def result() -> list[Finding]:
            try:
                return future.result()
            except BrokenProcessPool:  # e.g. a script that evaluates without `if __name__ == "__main__":`
                log.warning("the detectors' process failed to start; running them here")
                return extra(history)

        try:
            yield result
        finally:
            future.cancel()


def evaluate(history: Path, rules: RuleSet, progress: ProgressFn | None = None,
             extra: Callable[[Path], list[Finding]] = extra_findings,
             keep: list[Finding] | None = None) -> dict[str, Any]:  # fmt: skip
    """Replay ``history`` through the rules (plus ``extra`` findings) and score it."""
    started = time.perf_counter()
    with _beside(history, extra) as detected:
        run = replay(history, rules, progress)
        findings = run.findings + detected()
    if keep is not None:
        keep.extend(findings)
    result = score(history, findings, run.first_ms, run.end_ms)
    result["overall"]["seconds"] = round(time.perf_counter() - started, 1)
    result["overall"] |= {
        "readings": run.readings, "samples": run.samples, "engine_s": round(run.engine_s, 1),
        "engine_readings_per_s": round(run.readings / run.engine_s) if run.engine_s else None,
    }  # fmt: skip
    return result


def dumps(result: dict[str, Any]) -> str:
    """The result as one JSON object."""
    return json.dumps(result, ensure_ascii=False, indent=1)
