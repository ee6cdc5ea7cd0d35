"""Trained models on disk: one joblib file per model and a JSON manifest that says what each is.

``train_models`` reads hourly features from the store (gauges and flags as hourly means, counters
as hourly increases), fits one model per kind on every device's hours pooled and one per device
whose history has at least ``min_hours`` hours with values, and writes them under ``out``:

    out/manifest.json              {"format": 1, "sitewatch": ..., "models": [entry, ...]}
    out/<kind>/_kind.joblib        the kind's pooled model
    out/<kind>/<device>.joblib     a device's own model

Each entry names the file, its SHA-256, the detector and its parameters, the features in order,
the training window, the rows it saw, and the versions of sitewatch and scikit-learn that made it.
:func:`load_models` checks every file against its hash before unpickling it (a pickle runs code:
load only a directory you trust) and refuses models made by another scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import sklearn

from ... import __version__
from ...contract import KINDS, DeviceKind
from ...contract.kinds import MetricType
from ...i18n import N_
from ...store import Aggregation, SeriesQuery, Store, Window
from ...store.frames import points_frame
from . import make_detector
from .base import Detector, DetectorError

FORMAT = 1
MANIFEST = "manifest.json"
KIND_MODEL = "_kind"
MAX_POOLED_ROWS = 200_000


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """What the manifest says of one saved model."""

    kind: str
    device: str | None  # None: the kind's pooled model
    detector: str
    params: dict[str, Any]
    features: tuple[str, ...]
    start_ms: int
    end_ms: int
    rows: int
    file: str
    sha256: str
    model_version: int = FORMAT
    sitewatch: str = __version__
    sklearn: str = sklearn.__version__
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


@dataclass
class ModelSet:
    """Loaded models: the device's own where there is one, else its kind's."""

    entries: list[ModelEntry]
    models: dict[tuple[str, str | None], Detector]

    def get(self, kind: str, device: str | None = None) -> Detector | None:
        """The model for ``device`` (its own, else its kind's), or None."""
        return self.models.get((kind, device)) or self.models.get((kind, None))

    def entry(self, kind: str, device: str | None = None) -> ModelEntry | None:
        """The manifest entry of the model :meth:`get` gives."""
        for key in ((kind, device), (kind, None)):
            for e in self.entries:
                if (e.kind, e.device) == key:
                    return e
        return None


def hourly_features(store: Store, kind: DeviceKind, start_ms: int, end_ms: int, *, tz: str,
                    devices: Iterable[str] = ()) -> pd.DataFrame:  # fmt: skip
    """One row per (device, hour): gauges and flags as means, counters as increases (column ``<name>_increase``)."""
    spec = KINDS[kind]
    means = tuple(m for m, s in spec.metrics.items() if s.type in (MetricType.GAUGE, MetricType.FLAG))
    counters = tuple(m for m, s in spec.metrics.items() if s.type is MetricType.COUNTER)
    hour = Window.parse("1h")
    parts = []
    if means:
        parts.append(points_frame(store.scan(SeriesQuery(kind, means, start_ms, end_ms, devices=tuple(devices),
                                                         window=hour, aggregation=Aggregation.MEAN, tz=tz))))  # fmt: skip
    if counters:
        inc = points_frame(store.scan(SeriesQuery(kind, counters, start_ms, end_ms, devices=tuple(devices),
                                                  window=hour, aggregation=Aggregation.INCREASE, tz=tz)))  # fmt: skip
        parts.append(inc.add_suffix("_increase"))
    parts = [p for p in parts if len(p.columns)]
    if not parts:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=["device", "ts_ms"]))
    return pd.concat(parts, axis=1).sort_index()


def _save(detector: Detector, out: Path, kind: str, device: str | None, frame: pd.DataFrame) -> ModelEntry:
    relative = Path(kind) / f"{device or KIND_MODEL}.joblib"
    path = out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(detector, path)
    stamps = frame.index
    return ModelEntry(
        kind=kind, device=device, detector=detector.name,
        params={k: v for k, v in detector.params().items() if isinstance(v, str | int | float | bool)},
        features=tuple(getattr(detector, "columns_", tuple(frame.columns))),
        start_ms=int(stamps.min().value // 1_000_000), end_ms=int(stamps.max().value // 1_000_000) + 3_600_000,
        rows=len(frame), file=relative.as_posix(), sha256=_sha256(path),
    )  # fmt: skip


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _as_frame(rows: pd.DataFrame) -> pd.DataFrame:
    frame = rows.reset_index(level="device", drop=True) if "device" in rows.index.names else rows
    frame.index = pd.to_datetime(frame.index, unit="ms", utc=True)
    return frame.dropna(axis=1, how="all")


def train_models(store: Store, out: Path, *, start_ms: int, end_ms: int, kinds: Iterable[DeviceKind],
                 detector: str = "pca_t2q", min_hours: int = 168, tz: str = "Asia/Shanghai",
                 progress: Callable[[str], None] | None = None) -> list[ModelEntry]:  # fmt: skip
    """Fit and save the models (see the module docstring); returns the manifest's entries."""
    make_detector(detector)  # an unknown name fails before any work
    out.mkdir(parents=True, exist_ok=True)
    entries: list[ModelEntry] = []
    for kind in kinds:
        features = hourly_features(store, kind, start_ms, end_ms, tz=tz)
        if features.empty:
            continue
        pooled = _as_frame(features)
        if len(pooled) > MAX_POOLED_ROWS:
            pooled = pooled.sample(MAX_POOLED_ROWS, random_state=0).sort_index()
        try:
            entries.append(_save(make_detector(detector).fit(pooled), out, kind.value, None, pooled))
        except DetectorError as exc:
            if progress:
                progress(f"{kind.value}: {exc}")
            continue
        for device, rows in features.groupby(level="device"):
            frame = _as_frame(rows)
            if int(frame.notna().all(axis=1).sum()) < min_hours:
                continue
            try:
                entries.append(_save(make_detector(detector).fit(frame), out, kind.value, str(device), frame))
            except DetectorError as exc:
                if progress:
                    progress(f"{device}: {exc}")
        if progress:
            progress(kind.value)
    manifest = {"format": FORMAT, "sitewatch": __version__, "models": [_entry_json(e) for e in entries]}
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return entries


def _entry_json(entry: ModelEntry) -> dict[str, Any]:
    data = {name: getattr(entry, name) for name in ModelEntry.__slots__}
    data["features"] = list(entry.features)
    data["params"] = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in entry.params.items()
    }
    return data


def load_models(directory: Path) -> ModelSet:
    """The models of a ``train_models`` directory; raises DetectorError if the manifest or a file is wrong."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DetectorError(N_("no readable model manifest in {directory}: {error}"), directory=directory,
                            error=type(exc).__name__) from None  # fmt: skip
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("models"), list)
    ):
        raise DetectorError(N_("the model manifest in {directory} is not of format {format}"), directory=directory,
                            format=FORMAT)  # fmt: skip
    entries, models = [], {}
    root = directory.resolve()
    for raw in manifest["models"]:
        try:
            entry = ModelEntry(**{**raw, "features": tuple(raw["features"])})
        except (TypeError, KeyError):
            raise DetectorError(
                N_("the model manifest in {directory} has a malformed entry"), directory=directory
            ) from None
        path = (directory / entry.file).resolve()
        if not path.is_relative_to(root) or not path.is_file() or _sha256(path) != entry.sha256:
            raise DetectorError(
                N_("model file {file} is missing or does not match its manifest"), file=entry.file
            )
        if entry.sklearn != sklearn.__version__:
            raise DetectorError(N_("model file {file} was made with scikit-learn {made}, this is {have}: train again"),
                                file=entry.file, made=entry.sklearn, have=sklearn.__version__)  # fmt: skip
        model = joblib.load(path)
        if not isinstance(model, Detector):
            raise DetectorError(
                N_("model file {file} is missing or does not match its manifest"), file=entry.file
            )
        entries.append(entry)
        models[(entry.kind, entry.device)] = model
    return ModelSet(entries, models)
