"""The trivial-threshold baseline: the obvious rule per fault type, scored against a backfill's labels.

Each rule is what anyone would write first (a lamp on drawing under 5 W, a camera that does not
answer, night flow above a few litres an hour). Scored on a backfill, it shows which faults the
yardstick hides from such rules at ``subtle`` and ``moderate`` sizes, and how many false alarms
they raise on harmless anomalies, outages, other faults and clean data. ``sitewatch simulate
baseline`` prints it; docs/simulators.md records a run.

An alarm episode is a run of readings where the rule holds, runs less than an hour apart merged.
A label is found when an episode on its device overlaps it (or the hour after it); an episode
that overlaps no label of its fault type on its device is a false alarm, put down to the first of:
an outage on the device, another fault of the device, a harmless anomaly of the device, one of the
compound's (each going on when the episode began, or in the hour before), or clean data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..i18n import N_
from .clock import MS_PER_H, local_hour
from .faults import BANDS, FAULT_TYPES

MERGE_MS = MS_PER_H  # alarm runs closer than this are one episode
TOLERANCE_MS = MS_PER_H  # an alarm in the hour after a fault still counts as finding it

Frame = pd.DataFrame
Condition = Callable[[Frame], "pd.Series[bool]"]


@dataclass(frozen=True, slots=True)
class Rule:
    """The obvious rule for one fault type: the metrics it reads and when it fires."""

    fault: str
    text: str
    metrics: tuple[str, ...]
    when: Condition


def _rolling_sum(frame: Frame, values: pd.Series, readings: int) -> pd.Series:
    """Sum of ``values`` over each device's last ``readings`` readings (frame sorted by device, time)."""
    v = values.fillna(0.0).to_numpy(np.float64)
    cs = np.concatenate([[0.0], np.cumsum(v)])
    idx = np.arange(len(v))
    first = _first_row(frame)
    lo = np.maximum(idx + 1 - readings, first)
    return pd.Series(cs[idx + 1] - cs[lo], index=frame.index)


def _first_row(frame: Frame) -> np.ndarray:
    """Row number of each row's device's first row (frame sorted by device)."""
    dev = frame["device"].to_numpy()
    starts = np.flatnonzero(np.concatenate([[True], dev[1:] != dev[:-1]]))
    return np.repeat(starts, np.diff(np.concatenate([starts, [len(dev)]])))


def _run(frame: Frame, cond: pd.Series, readings: int) -> pd.Series:
    """``cond`` held for ``readings`` consecutive readings of the device (at each reading)."""
    return _rolling_sum(frame, cond.astype(float), readings) >= readings


def _increments(frame: Frame, metric: str) -> pd.Series:
    values = frame[metric].to_numpy(np.float64)
    out = np.diff(values, prepend=np.nan)
    out[_first_row(frame) == np.arange(len(values))] = 0.0
    return pd.Series(np.nan_to_num(out), index=frame.index)


def _per_device(frame: Frame, metric: str, how: Literal["mean", "median"]) -> pd.Series:
    return frame.groupby("device")[metric].transform(how)


def _household(frame: Frame) -> pd.Series:
    return frame["pressure"].isna() if "pressure" in frame else pd.Series(True, index=frame.index)


def _night_leak(frame: Frame) -> pd.Series:
    """The night's minimum flow (02:00-04:00) above 5 L/h, a fifth of the mean at building meters."""
    ts = frame["ts_ms"].to_numpy()
    hour = local_hour(ts)
    night = (hour >= 2) & (hour < 4)
    date = (ts + 8 * MS_PER_H) // (24 * MS_PER_H)
    low = frame["flow"].where(night).groupby([frame["device"], date]).transform("min")
    limit = np.where(_household(frame), 0.005, 0.2 * _per_device(frame, "flow", "mean"))
    return pd.Series(night & (low > limit).to_numpy(), index=frame.index)


def _burst(frame: Frame) -> pd.Series:
    """Flow above 1 m³/h at a household meter, ten times the mean at a building meter, two reports running."""
    mean = _per_device(frame, "flow", "mean")
    high = np.where(_household(frame), frame["flow"] > 1.0, frame["flow"] > 10.0 * mean)
    return _run(frame, pd.Series(high, index=frame.index), 2)


def _stuck(frame: Frame) -> pd.Series:
    """The register has not moved for 24 hours (since its last change)."""
    changed = (_increments(frame, "volume_register") != 0.0).astype(int)
    run = frame["device"] + ":" + changed.groupby(frame["device"]).cumsum().astype(str)
    return (frame["ts_ms"] - frame.groupby(run)["ts_ms"].transform("min")) >= 24 * MS_PER_H


def _flicker(frame: Frame) -> pd.Series:
    """Three reports within an hour with the lamp switched on but drawing almost nothing."""
    dark = (frame["lamp_on"] == 1) & (frame["lamp_current"] < 0.02)
    return _rolling_sum(frame, dark.astype(float), 12) >= 3


RULES: tuple[Rule, ...] = (
    Rule("door_fault_burst", N_("3 or more door faults within an hour"), ("door_faults",),
         lambda f: _rolling_sum(f, _increments(f, "door_faults"), 60) >= 3),
    Rule("bearing_wear", N_("vibration above 0.5 m/s²"), ("vibration_rms",), lambda f: f["vibration_rms"] > 0.5),
    Rule("entrapment", N_("entrapment flag set"), ("entrapment",), lambda f: f["entrapment"] == 1),
    Rule("out_of_service", N_("run state out of service"), ("run_state",), lambda f: f["run_state"] == 6),
    Rule("camera_offline", N_("camera not answering (online = 0)"), ("online",), lambda f: f["online"] == 0),
    Rule("video_loss", N_("frame rate 0"), ("frame_rate",), lambda f: f["frame_rate"] == 0),
    Rule("storage_full", N_("free storage below 5%"), ("storage_free",), lambda f: f["storage_free"] < 5),
    Rule("camera_tamper", N_("bitrate below a quarter of the camera's median"), ("bitrate",),
         lambda f: f["bitrate"] < 0.25 * _per_device(f, "bitrate", "median")),
    Rule("charger_faulted", N_("status Faulted"), ("status",), lambda f: f["status"] == 8),
    Rule("over_temperature", N_("temperature above 55 °C"), ("temperature",), lambda f: f["temperature"] > 55),
    Rule("stuck_session", N_("Charging at 0 kW for 10 minutes"), ("status", "power"),
         lambda f: _run(f, (f["status"] == 2) & (f["power"] == 0), 10)),
    Rule("lamp_failure", N_("lamp on, power below 5 W"), ("lamp_on", "power"),
         lambda f: (f["lamp_on"] == 1) & (f["power"] < 5)),
    Rule("day_burning", N_("lamp on above 1,000 lx"), ("lamp_on", "ambient_light"),
         lambda f: (f["lamp_on"] == 1) & (f["ambient_light"] > 1000)),
    Rule("flicker", N_("3 reports within an hour of a lamp on drawing almost no current"), ("lamp_on", "lamp_current"),
         _flicker),
    Rule("leak", N_("minimum night flow (02-04) above 5 L/h (a fifth of the mean at building meters)"),
         ("flow", "pressure"), _night_leak),
    Rule("burst", N_("flow above 1 m³/h (10 times the mean at building meters) in 2 reports running"),
         ("flow", "pressure"), _burst),
    Rule("stuck_register", N_("register unchanged for 24 h"), ("volume_register",), _stuck),
    Rule("reverse_flow", N_("negative flow"), ("flow",), lambda f: f["flow"] < 0),
    Rule("battery_low", N_("battery below 10%"), ("battery",), lambda f: f["battery"] < 10),
    Rule("meter_tamper", N_("tamper flag set"), ("tamper",), lambda f: f["tamper"] == 1),
)  # fmt: skip


@dataclass(slots=True)
class RuleScore:
    """How one rule did: labels and finds per band, false alarms by what they fell on."""

    fault: str
    text: str
    labels: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    false_alarms: dict[str, int] = field(default_factory=dict)  # harmless:<name>, outage, other_fault, clean

    def recall(self, band: str) -> float | None:
        """Share of the band's labels found (None when there are none)."""
        n = self.labels.get(band, 0)
        return self.found.get(band, 0) / n if n else None

    def to_json(self) -> dict[str, Any]:
        """As plain JSON."""
        return {"fault": self.fault, "rule": self.text, "labels": self.labels, "found": self.found,
                "recall": {b.value: self.recall(b.value) for b in BANDS},
                "false_alarms": self.false_alarms, "false_alarms_total": sum(self.false_alarms.values())}  # fmt: skip


def _episodes(frame: Frame, alarm: pd.Series) -> Frame:
    """Alarm episodes per device: (device, start_ms, end_ms)."""
    hits = frame.loc[alarm.fillna(False).to_numpy(bool), ["device", "ts_ms"]]
    if hits.empty:
        return pd.DataFrame(columns=["device", "start_ms", "end_ms"])
    hits = hits.sort_values(["device", "ts_ms"])
    gap = hits.groupby("device")["ts_ms"].diff()
    episode = (gap.isna() | (gap > MERGE_MS)).cumsum()
    out = hits.groupby(episode).agg(
        device=("device", "first"), start_ms=("ts_ms", "min"), end_ms=("ts_ms", "max")
    )
    out["end_ms"] += 1
    return out.reset_index(drop=True)


def _overlaps(rows: Frame, start: int, end: int) -> Frame:
    return rows[(rows["start_ms"] < end) & (rows["end_ms"] > start)]


def evaluate(history: Path | str) -> list[RuleScore]:
    """Score every rule on the backfill in ``history``."""
    out = Path(history)
    labels = pd.read_parquet(out / "labels.parquet")
    harmless = pd.read_parquet(out / "harmless.parquet") if (out / "harmless.parquet").exists() else None
    outages = pd.read_parquet(out / "outages.parquet") if (out / "outages.parquet").exists() else None
    outage_rows = _outage_rows(outages)
    scores = []
    cache: dict[str, Frame] = {}
    for rule in RULES:
        kind = FAULT_TYPES[rule.fault].kind.value
        frame = _frame(out, kind, cache)
        score = RuleScore(rule.fault, rule.text)
        mine = labels[labels["fault"] == rule.fault]
        for band in BANDS:
            score.labels[band.value] = int((mine["band"] == band.value).sum())
            score.found[band.value] = 0
        episodes = _episodes(frame, rule.when(frame) if len(frame) else pd.Series(dtype=bool))
        spans: dict[str, list[tuple[int, int]]] = {}
        for device, x, y in zip(episodes["device"].tolist(), episodes["start_ms"].tolist(),
                                episodes["end_ms"].tolist(), strict=True):  # fmt: skip
            spans.setdefault(str(device), []).append((int(x), int(y)))
        own: dict[str, list[tuple[int, int]]] = {}
        for device, x, y, band in zip(mine["device"].tolist(), mine["start_ms"].tolist(), mine["end_ms"].tolist(),
                                      mine["band"].tolist(), strict=True):  # fmt: skip
            own.setdefault(str(device), []).append((int(x), int(y)))
            if any(a < y + TOLERANCE_MS and b > x for a, b in spans.get(str(device), ())):
                score.found[str(band)] += 1
        for device, eps in spans.items():
            for a, b in eps:
                if any(x < b and y + TOLERANCE_MS > a for x, y in own.get(device, ())):
                    continue
                cause = _cause(device, kind, a, labels, harmless, outage_rows)
                score.false_alarms[cause] = score.false_alarms.get(cause, 0) + 1
        scores.append(score)
    return scores


def _frame(out: Path, kind: str, cache: dict[str, Frame]) -> Frame:
    """The readings of ``kind`` the rules need, one column per metric, sorted by device and time."""
    if kind not in cache:
        metrics = sorted({m for r in RULES if FAULT_TYPES[r.fault].kind.value == kind for m in r.metrics})
        table = pq.read_table(out / "readings.parquet", columns=["ts_ms", "device", "metric", "value"],
                              filters=[("kind", "=", kind), ("metric", "in", metrics)])  # fmt: skip
        long = table.to_pandas()
        long["device"] = long["device"].astype(str)
        long["metric"] = long["metric"].astype(str)
        wide = long.set_index(["device", "ts_ms", "metric"])["value"].unstack("metric")
        wide = wide.reset_index().sort_values(["device", "ts_ms"]).reset_index(drop=True)
        for m in metrics:
            if m not in wide:
                wide[m] = np.nan
        cache[kind] = wide
    return cache[kind]


def _outage_rows(outages: Frame | None) -> Frame:
    """One row per (device, outage)."""
    if outages is None or outages.empty:
        return pd.DataFrame(columns=["device", "start_ms", "end_ms"])
    rows = [
        (d, o.start_ms, o.end_ms) for o in outages.itertuples() for d in str(o.device_ids).split(",") if d
    ]
    return pd.DataFrame(rows, columns=["device", "start_ms", "end_ms"])


# Compound-wide anomalies and the kinds they affect.
COMPOUND_WIDE = {"holiday": None, "dark_afternoon": "streetlight", "heat_wave": "charger",
                 "pressure_transient": "water_meter"}  # fmt: skip


def _cause(device: str, kind: str, start: int, labels: Frame, harmless: Frame | None, outages: Frame) -> str:
    """What a false alarm fell on: what was going on on its device (or compound) as it began."""
    if len(_overlaps(outages[outages["device"] == device], start - TOLERANCE_MS, start + 1)):
        return "outage"
    if len(_overlaps(labels[labels["device"] == device], start - TOLERANCE_MS, start + 1)):
        return "other_fault"
    if harmless is not None and len(harmless):
        near = _overlaps(harmless, start - TOLERANCE_MS, start + 1)
        wide = (
            near["anomaly"]
            .map(lambda a: a in COMPOUND_WIDE and COMPOUND_WIDE[a] in (None, kind))
            .astype(bool)
        )
        compound = device[: device.rindex("-")]
        own = near[near["device"] == device]
        shared = near[(near["device"] == "") & (near["compound"] == compound) & wide]
        if len(own) or len(shared):
            return "harmless:" + str((own if len(own) else shared)["anomaly"].iloc[0])
    return "clean"
