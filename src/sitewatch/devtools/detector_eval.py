"""Score the detectors' findings on a backfill against its labels: bearing wear lead time, leak recall,
false findings per 100 device-months (``python -m sitewatch.devtools.detector_eval DIR``).

A finding matches a label of its fault on the same device when it overlaps the label's span plus
24 hours; a finding with no such label is false. Developer tooling (English only); the full
evaluation of rules and detectors is ``sitewatch analytics evaluate``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import pandas as pd

from ..analytics.detectors.findings import detector_findings

TOLERANCE_MS = 24 * 3_600_000


def main(history: Path) -> None:
    """Print one line per label of bearing_wear and leak, then the false findings."""
    began = time.monotonic()
    findings = detector_findings(history)
    labels = pd.read_parquet(history / "labels.parquet")
    devices = pd.read_parquet(history / "devices.parquet")
    readings = pd.read_parquet(history / "readings.parquet", columns=["ts_ms"])
    months = (int(readings["ts_ms"].max()) - int(readings["ts_ms"].min())) / (30 * 86_400_000)
    click.echo(f"{len(findings)} findings in {time.monotonic() - began:.1f} s")
    false = 0
    for fault in ("bearing_wear", "leak"):
        mine = [f for f in findings if f.fault == fault]
        rows = labels[labels["fault"] == fault]

        def overlaps(f: object, label: pd.Series) -> bool:
            ended = f.ended_ms if f.ended_ms is not None else 2**62  # type: ignore[attr-defined]
            return bool(f.device == label["device"] and f.started_ms <= label["end_ms"] + TOLERANCE_MS  # type: ignore[attr-defined]
                        and ended >= label["start_ms"])  # fmt: skip

        found = 0
        for _, label in rows.iterrows():
            hits = [f for f in mine if overlaps(f, label)]
            found += bool(hits)
            first = min((f.started_ms for f in hits), default=None)
            lead = "" if first is None else f"lead {(label['end_ms'] - first) / 3.6e6:.0f} h"
            click.echo(f"{fault} {label['device']} {label['band']} {label['magnitude']:.3g} "
                       f"{'found' if hits else 'MISSED'} {lead}")  # fmt: skip
        wrong = [f for f in mine if not any(overlaps(f, label) for _, label in rows.iterrows())]
        false += len(wrong)
        click.echo(f"{fault}: {found}/{len(rows)} found, {len(wrong)} false")
    device_months = len(devices[devices["kind"].isin(["elevator", "water_meter"])]) * months
    click.echo(f"false findings per 100 device-months (elevators and water meters): {100 * false / device_months:.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
