"""The degradation lead of the evaluation on a few hand-made labels (no backfill: fast)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sitewatch.analytics.evaluate import LEAD_SHOW_H, LEAD_TARGET_H, score
from sitewatch.contract import DeviceKind, Finding, FindingState, Severity

H = 3_600_000
T0 = 1_775_433_600_000  # the history's first reading


def _label(device: str, start_h: float, end_h: float) -> dict[str, object]:
    return {"device": device, "compound": "C", "kind": "elevator", "fault": "bearing_wear",
            "start_ms": T0 + int(start_h * H), "end_ms": T0 + int(end_h * H), "detail": "", "magnitude": 2.0,
            "unit": "×", "band": "moderate", "announced": False, "announced_ms": None, "observable": True,
            "hidden": "[]"}  # fmt: skip


def _finding(device: str, at_h: float) -> Finding:
    return Finding(id=f"detector:t.{device}", compound="C", device=device, kind=DeviceKind.ELEVATOR,
                   source="detector:t", fault="bearing_wear", severity=Severity.WARNING,
                   state=FindingState.ACTIVE, started_ms=T0 + int(at_h * H), ts_ms=T0 + int(at_h * H),
                   message="m")  # fmt: skip


@pytest.fixture
def history(tmp_path: Path) -> Path:
    labels = [
        _label("E1", 0, 200),  # long: flagged 30 h before its end
        _label("E2", 0, 100),  # long: flagged 10 h before its end
        _label("E3", 0, 30),  # too short for the target: flagged 6 h before its end
        _label("E4", -100, 20),  # began before the history: the history shows 20 h of it
        _label("E5", 0, 300),  # long, missed
    ]
    pd.DataFrame(labels).to_parquet(tmp_path / "labels.parquet")
    pd.DataFrame({"device": ["E1", "E2", "E3", "E4", "E5", "E6"]}).to_parquet(tmp_path / "devices.parquet")
    return tmp_path


def test_lead_is_judged_on_the_faults_long_enough_to_allow_it(history: Path) -> None:
    found = [_finding("E1", 170), _finding("E2", 90), _finding("E3", 24), _finding("E4", 5)]
    row = score(history, found, T0, T0 + 400 * H)["faults"]["bearing_wear"]
    assert row["detected"] == 4 and row["labelled"] == 5
    assert row["lead_min_h"] == pytest.approx(6.0)
    assert row["lead_median_h"] == pytest.approx((10.0 + 15.0) / 2)
    assert row["lead_target_h"] == LEAD_TARGET_H
    # E1, E2 and the missed E5 span 48 h or more; E3 (30 h) and E4 (20 h seen) do not
    assert LEAD_TARGET_H + LEAD_SHOW_H == 48.0
    assert row["lead_long_labelled"] == 3 and row["lead_long_met"] == 1
    assert row["lead_long_min_h"] == pytest.approx(10.0)
    # E3: 6 h of a 30 h span; E4: 15 h of the 20 h the history shows
    assert row["lead_fraction_min"] == pytest.approx(0.1)  # E2: 10 of 100 h


def test_lead_fields_only_for_gradual_faults(history: Path) -> None:
    labels = pd.read_parquet(history / "labels.parquet").assign(fault="entrapment")
    labels.to_parquet(history / "labels.parquet")
    row = score(history, [], T0, T0 + 400 * H)["faults"]["entrapment"]
    assert (
        row["lead_min_h"] is None and row["lead_long_labelled"] is None and row["lead_fraction_min"] is None
    )
