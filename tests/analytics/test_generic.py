"""The generic anomaly detector (``detectors/generic.py``): hourly features, episodes, findings with no fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sitewatch.analytics.detectors import generic
from sitewatch.analytics.detectors.multivariate import PCADetector
from sitewatch.contract import DeviceKind, FindingState, Sample
from sitewatch.store import StoredSample

HOUR_MS = 3_600_000
T0 = 1_775_001_600_000  # 2026-04-01 00:00 UTC


def lamps(days: int, *, broken: tuple[str, int, int] | None = None, seed: int = 3,
          names: tuple[str, ...] = ("C-SL0001", "C-SL0002")) -> pd.DataFrame:  # fmt: skip
    """Two streetlights polled every 10 minutes: power follows the lamp's current (230 V), on by
    night. ``broken`` = (device, first hour, hours): power no longer follows the current."""
    rng = np.random.default_rng(seed)
    rows = []
    for device in names:
        burning = 0.0
        for step in range(days * 24 * 6):
            ts = T0 + step * 600_000
            hour = (step // 6) % 24
            on = 1.0 if hour >= 18 or hour < 6 else 0.0
            current = on * (0.4 + rng.normal(0, 0.01))
            power = current * 230 + rng.normal(0, 0.5)
            if broken and device == broken[0] and broken[1] <= step // 6 < broken[1] + broken[2]:
                power = 150.0 + rng.normal(0, 0.5)  # the driver fails: power no longer follows the current
            burning += on / 6
            ambient = 5.0 if on else 20_000.0 + rng.normal(0, 500)
            for metric, value in (("lamp_on", on), ("power", power), ("lamp_current", current),
                                  ("ambient_light", ambient), ("burning_hours", burning)):  # fmt: skip
                rows.append((ts, device, metric, value))
    frame = pd.DataFrame(rows, columns=["ts_ms", "device", "metric", "value"])
    frame["kind"] = "streetlight"
    frame["compound"] = "C"
    return frame


def devices(names: tuple[str, ...] = ("C-SL0001", "C-SL0002"), compounds: str = "CC") -> pd.DataFrame:
    return pd.DataFrame({"compound": list(compounds), "building": [""] * len(names)},
                        index=pd.Index(list(names), name="device"))  # fmt: skip


FOUR = ("C-SL0001", "C-SL0002", "C-SL0003", "C-SL0004")


def test_hourly_rows_hold_means_and_increases_with_resets_not_negative() -> None:
    readings = pd.DataFrame({
        "ts_ms": [T0, T0 + 600_000, T0 + 1_200_000, T0, T0 + 600_000, T0 + HOUR_MS, T0 + HOUR_MS + 60_000],
        "device": ["A"] * 7,
        "metric": ["power", "power", "power", "burning_hours", "burning_hours", "burning_hours", "burning_hours"],
        "value": [10.0, 20.0, np.inf, 5.0, 5.5, 9.0, 1.0],  # an infinite value ignored; the register reset
    })  # fmt: skip
    rows = generic.hourly(readings, DeviceKind.STREETLIGHT)
    assert list(rows.columns) == ["burning_hours_increase", "power"]
    assert rows.loc[("A", T0), "power"] == 15.0
    assert rows.loc[("A", T0), "burning_hours_increase"] == 0.5
    assert rows.loc[("A", T0 + HOUR_MS), "burning_hours_increase"] == 0.0
    assert np.isnan(rows.loc[("A", T0 + HOUR_MS), "power"])


@pytest.mark.parametrize(
    ("flagged", "expected"),
    [
        ([range(0, 5)], []),  # five hours: too short
        ([range(0, 6)], [(0, 6)]),
        ([range(0, 6), range(17, 23)], [(0, 23)]),  # 11 h apart: one episode
        ([range(0, 6), range(18, 24)], [(0, 6), (18, 24)]),  # 12 h apart: two
    ],
)
def test_episodes_need_six_flagged_hours_and_join_within_twelve(
    flagged: list[range], expected: list[tuple[int, int]]
) -> None:
    hours = np.arange(48)
    values = np.full(48, 0.5)
    for part in flagged:
        values[list(part)] = generic.LEVEL + 1
    values[2] = generic.LEVEL + 9 if flagged[0].stop > 2 else values[2]
    got = generic.runs(pd.Series(values, index=hours * HOUR_MS))
    assert [(a // HOUR_MS, b // HOUR_MS) for a, b, _ in got] == expected
    assert all(peak == generic.LEVEL + 9 for a, _, peak in got if a == 0)


def test_a_lamp_whose_power_stops_following_its_current_is_one_finding_with_no_fault() -> None:
    broken = ("C-SL0001", 10 * 24 + 20, 8)  # day 10, 20:00-04:00 UTC: eight hours lit
    found = generic.generic_anomaly(lamps(12, broken=broken), devices())
    assert [(f.device, f.fault, f.source) for f in found] == [("C-SL0001", None, "detector:pca_t2q")]
    finding = found[0]
    start = T0 + broken[1] * HOUR_MS
    assert start <= finding.started_ms <= start + 2 * HOUR_MS
    assert finding.state is FindingState.CLEARED and finding.ended_ms is not None
    assert finding.ended_ms <= start + (broken[2] + 1) * HOUR_MS
    assert finding.params["hours"] >= generic.MIN_HOURS and finding.score is not None and finding.score > generic.LEVEL


def test_normal_lamps_make_no_finding_and_a_first_week_is_not_judged() -> None:
    assert generic.generic_anomaly(lamps(12, seed=5), devices()) == []
    # the same fault inside the first week: no week before it to compare with
    assert generic.generic_anomaly(lamps(7, broken=("C-SL0001", 3 * 24 + 20, 8)), devices()) == []


def test_a_lamp_repaired_after_a_fault_that_filled_its_week_is_judged_by_its_peers() -> None:
    """Its driver failed before the history began and was repaired on day 9: unlike its faulty
    week, but like the lamps beside it. With fewer than two peers in its compound it is reported."""
    readings = lamps(12, broken=("C-SL0001", 0, 9 * 24 + 12), names=FOUR)
    alone = generic.generic_anomaly(readings, devices(FOUR, "CCDD"))  # one peer only: no vote
    assert [f.device for f in alone] and {f.device for f in alone} == {"C-SL0001"}
    assert min(f.started_ms for f in alone) >= T0 + (9 * 24 + 12) * HOUR_MS  # the repair
    assert generic.generic_anomaly(readings, devices(FOUR, "CCCC")) == []  # three peers: like them


def test_a_fault_among_peers_is_still_found() -> None:
    broken = ("C-SL0001", 10 * 24 + 20, 8)
    found = generic.generic_anomaly(lamps(12, broken=broken, names=FOUR), devices(FOUR, "CCCC"))
    assert [f.device for f in found] == ["C-SL0001"]
    assert T0 + broken[1] * HOUR_MS <= found[0].started_ms <= T0 + (broken[1] + 2) * HOUR_MS


def test_like_peers_needs_two_peers_and_more_than_half_of_them() -> None:
    readings = lamps(12, broken=("C-SL0001", 10 * 24 + 20, 8), names=FOUR)
    rows = {d: r.droplevel("device") for d, r in generic.hourly(readings, DeviceKind.STREETLIGHT).groupby(level="device")}
    fits = {d: generic.weekly_fits(r) for d, r in rows.items()}
    normal = (T0 + 11 * 24 * HOUR_MS, T0 + 11 * 24 * HOUR_MS + 8 * HOUR_MS)  # a normal night of C-SL0002
    broken = (T0 + (10 * 24 + 20) * HOUR_MS, T0 + (10 * 24 + 28) * HOUR_MS)  # C-SL0001's faulty night
    peers = [(rows[d], fits[d]) for d in ("C-SL0003", "C-SL0004")]
    assert generic.like_peers(rows["C-SL0002"], *normal, peers)
    assert not generic.like_peers(rows["C-SL0002"], *normal, peers[:1])  # one peer: no vote
    assert not generic.like_peers(rows["C-SL0001"], *broken, peers)
    # a peer whose lamp draws three times the power: the normal night is unlike it
    strong = rows["C-SL0003"].assign(power=rows["C-SL0003"]["power"] * 3)
    unlike = (strong, generic.weekly_fits(strong))
    assert not generic.like_peers(rows["C-SL0002"], *normal, [unlike, unlike])
    assert generic.like_peers(rows["C-SL0002"], *normal, [*peers, unlike])  # two of three
    assert not generic.like_peers(rows["C-SL0002"], *normal, [*peers, unlike, unlike])  # half: not more


def test_a_trained_model_replaces_the_weekly_fits() -> None:
    readings = lamps(12, broken=("C-SL0001", 10 * 24 + 20, 8))
    rows = generic.hourly(readings[readings["device"] == "C-SL0002"], DeviceKind.STREETLIGHT).droplevel("device")
    model = PCADetector().fit(rows.set_axis(pd.to_datetime(rows.index, unit="ms", utc=True)))
    found = generic.generic_anomaly(readings, devices(), detector=model)
    assert "C-SL0001" in {f.device for f in found} and "C-SL0002" not in {f.device for f in found}
    # a trained model is used from the first hour: no week of history needed
    assert min(f.started_ms for f in found) >= T0 + 10 * 24 * HOUR_MS


def test_fit_values_matches_fit_on_a_frame() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(200, 1))
    values = np.hstack([base, 2 * base + rng.normal(0, 0.1, size=(200, 1)), rng.normal(size=(200, 1))])
    frame = pd.DataFrame(values, columns=["a", "b", "c"], index=pd.date_range("2026-04-01", periods=200, freq="h", tz="UTC"))
    by_frame = PCADetector().fit(frame)
    by_values = PCADetector().fit_values(values, ("a", "b", "c"))
    test = values + np.array([0.0, 3.0, 0.0])
    np.testing.assert_allclose(by_values.score_values(test), by_frame.score(frame.set_axis(frame.index).assign(
        a=test[:, 0], b=test[:, 1], c=test[:, 2])).to_numpy())  # fmt: skip
    assert np.isnan(by_values.score_values(np.full((1, 3), np.nan)))[0]


def test_garbage_and_empty_input_give_no_finding() -> None:
    empty = lamps(1).iloc[:0]
    assert generic.generic_anomaly(empty, devices()) == []
    constant = lamps(9)
    constant["value"] = 1.0  # nothing moves
    assert generic.generic_anomaly(constant, devices()) == []
    unknown = lamps(9)
    unknown["metric"] = "no_such_metric"
    assert generic.generic_anomaly(unknown, devices()) == []


def test_the_live_scorer_runs_an_hourly_run_once_an_hour(tmp_path: Path) -> None:
    """A run with ``every_h`` waits that long between its live runs; the others run each time."""
    from sitewatch.analytics.detectors.findings import DetectorRun
    from sitewatch.analytics.scoring import Scorer
    from sitewatch.settings import load_settings
    from sitewatch.store import open_store

    calls = {"each": 0, "hourly": 0}

    def counting(name: str):  # type: ignore[no-untyped-def]
        def function(readings: pd.DataFrame, devices: pd.DataFrame, *, detector: object = None) -> list:
            calls[name] += 1
            return []

        return function

    runs = [DetectorRun(name, DeviceKind.STREETLIGHT, ("power",), counting(name), window_hours=24, warmup_hours=0,
                        merge_hours=1, every_h=1.0 if name == "hourly" else 0.0) for name in calls]  # fmt: skip
    settings = load_settings(data_dir=tmp_path)
    with open_store(settings) as store:
        store.write([StoredSample(Sample("C-SL0001", DeviceKind.STREETLIGHT, T0 + i * 600_000, {"power": 90.0}), "C")
                     for i in range(6)])  # fmt: skip
    now = [T0 + HOUR_MS]
    scorer = Scorer(lambda: open_store(settings, create=False), lambda: ["C"], lambda f: (lambda: True),  # type: ignore[arg-type,return-value]
                    tmp_path / "s.ckpt", runs=runs, clock=lambda: now[0])  # fmt: skip
    for minutes in (0, 30, 59, 61, 90, 125):
        now[0] = T0 + HOUR_MS + minutes * 60_000
        scorer.run_once()
    assert calls == {"each": 6, "hourly": 3}  # at 0, 61 and 125 minutes
