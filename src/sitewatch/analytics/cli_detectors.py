"""``sitewatch analytics score | detectors | train``: the detectors from the shell.

Standalone click commands, registered on the ``analytics`` group in ``cli.py``.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd

from ..i18n import N_, _

TIME_COLUMNS = ("timestamp", "time", "ts", "ts_ms", "datetime", "date")
MAX_INPUT_BYTES = 2 * 1024**3  # a file larger than this is refused, not read into memory


def read_table(path: Path, time_column: str | None = None) -> pd.DataFrame:
    """A CSV or Parquet file as a frame on a DatetimeIndex (naive times are local); raises DetectorError."""
    from .detectors import DetectorError

    if path.stat().st_size > MAX_INPUT_BYTES:
        raise DetectorError(
            N_("{file} is larger than {limit} GiB"), file=path.name, limit=MAX_INPUT_BYTES // 1024**3
        )
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            raw = pd.read_parquet(path)
        elif suffix in (".csv", ".txt"):
            raw = pd.read_csv(path, encoding="utf-8-sig")
        else:
            raise DetectorError(N_("{file}: only .csv and .parquet files are read"), file=path.name)
    except DetectorError:
        raise
    except Exception as exc:  # the readers raise many kinds of errors for a damaged file
        raise DetectorError(
            N_("{file} could not be read: {error}"), file=path.name, error=type(exc).__name__
        ) from None
    columns = {str(c).strip().lower(): c for c in raw.columns}
    name = time_column or next((columns[c] for c in TIME_COLUMNS if c in columns), None)
    if name is None or name not in raw.columns:
        raise DetectorError(N_("{file} has no timestamp column (one of: {names})"), file=path.name,
                            names=", ".join(TIME_COLUMNS))  # fmt: skip
    stamps = raw.pop(name)
    if pd.api.types.is_numeric_dtype(stamps):  # epoch: milliseconds (ts_ms) or seconds
        unit = "s" if stamps.abs().max() < 1e11 else "ms"
        index = pd.to_datetime(stamps, unit=unit, utc=True, errors="coerce")  # type: ignore[call-overload]
    else:
        try:
            index = pd.to_datetime(stamps, errors="coerce", format="mixed")
        except (ValueError, TypeError):  # offsets that differ from row to row: read them as UTC
            index = pd.to_datetime(stamps, errors="coerce", utc=True, format="mixed")
    stamps_index = pd.DatetimeIndex(index)
    frame = raw.set_axis(stamps_index)
    unread = np.asarray(stamps_index.isna())
    if len(frame) and unread.all():
        raise DetectorError(N_("{file}: no timestamp could be read"), file=path.name)
    return frame[~unread]


def write_scores(path: Path, scores: pd.Series, flags: pd.Series) -> None:
    """``timestamp,score,anomaly`` in the input's order, as CSV or Parquet by the file's suffix."""
    index = pd.DatetimeIndex(scores.index)
    out = pd.DataFrame({
        "timestamp": index.map(lambda t: t.isoformat()), "score": scores.to_numpy(), "anomaly": flags.to_numpy()
    })  # fmt: skip
    if path.suffix.lower() in (".parquet", ".pq"):
        out["timestamp"] = index
        out.to_parquet(path, index=False)
    else:
        out.to_csv(path, index=False, float_format="%.6g")


@click.command("detectors")
def detectors_cmd() -> None:
    """List the detectors, one line each."""
    from .detectors import DETECTORS

    width = max(len(n) for n in DETECTORS)
    for name, cls in DETECTORS.items():
        training = _("needs training") if cls.needs_training else _("no training")
        click.echo(f"{name:<{width}}  {_(cls.description)} ({training})")


@click.command("score")
@click.option(
    "--detector", "name", required=True, help="Detector name (see `sitewatch analytics detectors`)."
)
@click.option(
    "--train",
    "train_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Mostly normal data to fit on (CSV or Parquet); default: fit on the input itself.",
)
@click.option(
    "--input",
    "input_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Data to score: a timestamp column and numeric columns (CSV or Parquet).",
)
@click.option(
    "--out",
    "out_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write timestamp,score,anomaly (.csv or .parquet).",
)
@click.option(
    "--time-column", help="Name of the timestamp column (default: timestamp, time, ts, ts_ms, ...)."
)
def score_cmd(
    name: str, train_file: Path | None, input_file: Path, out_file: Path, time_column: str | None
) -> None:
    """Score any time series with one detector; writes timestamp,score,anomaly per input row.

    Detectors that learn as they read start from nothing (or from --train). Detectors that need
    training fit on --train, else on the input itself (then the input must be mostly normal).
    """
    from .detectors import DetectorError, make_detector

    began = time.monotonic()
    try:
        detector = make_detector(name)
        data = read_table(input_file, time_column)
        if train_file is not None:
            detector.fit(read_table(train_file, time_column))
        elif detector.needs_training:
            detector.fit(data)
        scores = detector.score(data)
        flags = (scores > detector.threshold_).astype("int64")
    except DetectorError as exc:
        raise click.ClickException(str(exc)) from None
    write_scores(out_file, scores, flags)
    click.echo(_("{rows} rows scored with {detector}: {anomalies} anomalous, written to {out} in {seconds:.1f} s",
                 rows=len(scores), detector=name, anomalies=int(flags.sum()), out=out_file,
                 seconds=time.monotonic() - began))  # fmt: skip


@click.command("train")
@click.option(
    "--since", default="30d", show_default=True, help="Start of the training window (30d, or ISO 8601)."
)
@click.option("--until", default="now", show_default=True, help="End of the training window.")
@click.option(
    "--kind", "kinds", multiple=True, help="Device kind to train (repeatable; default: every kind)."
)
@click.option("--detector", "name", default="pca_t2q", show_default=True, help="Detector to train.")
@click.option(
    "--min-hours",
    default=168,
    show_default=True,
    type=click.IntRange(min=24),
    help="Complete hours a device needs for a model of its own.",
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory of the models (default: <data dir>/models).",
)
def train_cmd(
    since: str, until: str, kinds: tuple[str, ...], name: str, min_hours: int, out_dir: Path | None
) -> None:
    """Train models per kind (and per device where history allows) from the configured store."""
    from ..contract import DeviceKind, now_ms
    from ..settings import load_settings
    from ..store import StoreUnavailable, open_store
    from ..store.cli import parse_time_ms
    from .detectors import DetectorError
    from .detectors.models import train_models

    settings = load_settings()
    now = now_ms()
    try:
        start, end = (
            parse_time_ms(since, now, settings.timezone),
            parse_time_ms(until, now, settings.timezone),
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since/--until") from None
    if end <= start:
        raise click.BadParameter(_("--until must be after --since"), param_hint="--until")
    try:
        chosen = [DeviceKind(k) for k in kinds] or [k for k in DeviceKind if k is not DeviceKind.GATEWAY]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--kind") from None
    out = out_dir or settings.data_dir / "models"
    began = time.monotonic()
    try:
        store = open_store(settings, create=False)
    except FileNotFoundError:
        raise click.ClickException(_("no store to train from: {path}", path=settings.store_path)) from None
    try:
        with contextlib.closing(store):
            entries = train_models(store, out, start_ms=start, end_ms=end, kinds=chosen, detector=name,
                                   min_hours=min_hours, tz=settings.timezone,
                                   progress=lambda text: click.echo(_("trained: {what}", what=text), err=True))  # fmt: skip
    except (StoreUnavailable, DetectorError) as exc:
        raise click.ClickException(str(exc)) from None
    devices = sum(1 for e in entries if e.device is not None)
    click.echo(_("{models} models ({devices} of single devices) written to {out} in {seconds:.1f} s",
                 models=len(entries), devices=devices, out=out, seconds=time.monotonic() - began))  # fmt: skip
