"""A building meter that misses water for hours, seen from both sides of its balance (``ParentLoss``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sitewatch.analytics.detectors.balance import BalanceEpisode, WaterBalance, water_balance_findings
from sitewatch.analytics.detectors.parent_loss import ParentLoss

START = int(pd.Timestamp("2026-04-06 00:00", tz="Asia/Shanghai").value // 1_000_000)
MIN = 60_000
HOUR = 60
DAY = 1440
DAYS = 8
COMPOUND = "220103-0001"
BUILDINGS = {"C-WM001": ("C-WM002", "C-WM003", "C-WM004", "C-WM005"),
             "C-WM010": ("C-WM011", "C-WM012", "C-WM013", "C-WM014")}  # fmt: skip
TOP = "C-WM100"


def _devices() -> pd.DataFrame:
    rows = [{"device": TOP, "compound": COMPOUND, "kind": "water_meter", "building": "", "scope": "compound"}]
    for k, (meter, flats) in enumerate(BUILDINGS.items()):
        rows.append({"device": meter, "compound": COMPOUND, "kind": "water_meter", "building": str(k + 1),
                     "scope": "building"})  # fmt: skip
        rows += [{"device": d, "compound": COMPOUND, "kind": "water_meter", "building": str(k + 1),
                  "scope": "household"} for d in flats]  # fmt: skip
    return pd.DataFrame(rows).set_index("device")


def _readings(*, lost: tuple[str, int, int, float] | None = None, pipes_burst: tuple[int, int, float] | None = None,
              late: int | None = None, seed: int = 5) -> pd.DataFrame:  # fmt: skip
    """Minute draws of 8 flats (busy by day, quiet at night), two building meters over them (plus
    their pipes' 10 L/h), a compound meter over both (plus 20 L/h); ``lost``: (meter, from, to
    minute, share it misses); ``pipes_burst``: litres an hour in building 1's pipes in [a, b);
    ``late``: the minute from which building 1's meter reads its register 4 minutes late, once."""
    rng = np.random.default_rng(seed)
    n = DAYS * DAY
    hour = (np.arange(n) // 60) % 24
    busy = np.where((hour >= 6) & (hour < 23), 1.0, 0.0)
    true: dict[str, np.ndarray] = {}
    for meter, flats in BUILDINGS.items():
        for d in flats:
            true[d] = rng.poisson(0.05 * busy) * rng.gamma(2.0, 15.0, n)
        true[meter] = sum(true[d] for d in flats) + 10.0 / 60.0
    if pipes_burst is not None:
        true["C-WM001"][pipes_burst[0] : pipes_burst[1]] += pipes_burst[2] / 60.0
    true[TOP] = true["C-WM001"] + true["C-WM010"] + 20.0 / 60.0
    rows = []
    for k, (device, litres) in enumerate(true.items()):
        counted = litres.copy()
        if lost is not None and device == lost[0]:
            counted[lost[1] : lost[2]] *= 1.0 - lost[3]
        register = 100.0 + np.cumsum(counted) / 1000.0
        step = 15 if device not in (*BUILDINGS, TOP) else 5
        for i in range(2 + k % 4, n, step):
            read = i - 4 if late is not None and device == "C-WM001" and late <= i < late + step else i
            rows.append((START + (i + 1) * MIN, device, "volume_register", round(float(register[read]), 3)))
    return pd.DataFrame(rows, columns=["ts_ms", "device", "metric", "value"])


def _episodes(readings: pd.DataFrame, others: list[BalanceEpisode] | None = None,
              levels: ParentLoss | None = None) -> list[BalanceEpisode]:  # fmt: skip
    balance = WaterBalance()
    return (levels or ParentLoss()).episodes(
        balance.hourly_registers(readings), _devices(), balance, others or []
    )


def test_a_normal_compound_gives_no_episode() -> None:
    assert _episodes(_readings()) == []


@pytest.mark.parametrize("share", [0.3, 0.6, 1.0])
def test_a_building_meter_missing_water_for_hours_is_tampered(share: float) -> None:
    a = 5 * DAY + 8 * HOUR
    found = _episodes(_readings(lost=("C-WM001", a, a + 3 * HOUR, share)))
    assert [(e.device, e.fault) for e in found] == [("C-WM001", "meter_tamper")]
    e = found[0]
    assert e.start_ms <= START + (a + 3 * HOUR) * MIN and e.end_ms >= START + a * MIN
    assert 0.5 <= e.evidence["fit"] <= 2.0 and e.evidence["days"] < 2


def test_a_flat_missing_water_is_not_its_building_meter_s() -> None:
    a = 5 * DAY + 8 * HOUR
    assert _episodes(_readings(lost=("C-WM003", a, a + 3 * HOUR, 0.8))) == []


def test_a_burst_in_the_building_s_pipes_is_no_loss() -> None:
    a = 5 * DAY + 8 * HOUR
    assert _episodes(_readings(pipes_burst=(a, a + 2 * HOUR, 400.0))) == []


def test_a_late_reading_of_the_building_meter_is_made_up_the_next_hour() -> None:
    assert _episodes(_readings(late=5 * DAY + 12 * HOUR - 10)) == []


def test_a_loss_for_days_is_left_to_the_daily_balance() -> None:
    a = 3 * DAY + 8 * HOUR
    assert _episodes(_readings(lost=("C-WM001", a, a + 3 * DAY, 0.5))) == []


def test_a_meter_the_daily_balance_named_is_left_to_it() -> None:
    a = 5 * DAY + 8 * HOUR
    readings = _readings(lost=("C-WM001", a, a + 3 * HOUR, 0.6))
    named = BalanceEpisode("C-WM001", "stuck_register", START + (a - DAY) * MIN, START + a * MIN, 1.0)
    assert _episodes(readings, [named]) == []


def test_an_episode_as_long_as_max_hours_is_a_worn_register() -> None:
    a = 5 * DAY + 8 * HOUR
    readings = _readings(lost=("C-WM001", a, a + 3 * HOUR, 0.6))
    assert [e.fault for e in _episodes(readings, levels=ParentLoss(max_hours=5.0))] == ["meter_tamper"]
    assert [e.fault for e in _episodes(readings, levels=ParentLoss(max_hours=2.0))] == ["stuck_register"]


def test_a_building_meter_missing_most_water_for_two_days_is_a_worn_register_and_no_burst() -> None:
    a = 3 * DAY + 2 * HOUR
    readings = _readings(lost=("C-WM001", a, a + 55 * HOUR, 0.9))
    found = water_balance_findings(readings, _devices())
    assert [(f.device, f.fault) for f in found] == [("C-WM001", "stuck_register")]
    assert found[0].started_ms <= START + (a + HOUR) * MIN
    assert found[0].ended_ms >= START + (a + 54 * HOUR) * MIN
    assert 0.8 <= found[0].evidence["share"] <= 0.95


def test_a_building_meter_s_loss_is_no_burst_above_it_or_below_it() -> None:
    # the bursts alone (no missing water given to them): the compound's residual rises by the water
    # the building's falls by, and the building's own rises back over a median the loss lowered
    a = 3 * DAY + 2 * HOUR
    readings = _readings(lost=("C-WM001", a, a + 55 * HOUR, 0.9))
    assert WaterBalance().bursts(readings, _devices()) == []


def test_a_burst_in_a_building_s_pipes_is_still_a_burst() -> None:
    a = 5 * DAY + 8 * HOUR
    found = WaterBalance().bursts(_readings(pipes_burst=(a, a + 2 * HOUR, 800.0)), _devices())
    assert [(e.device, e.fault) for e in found] == [("C-WM001", "burst")]


def test_a_share_under_min_share_is_not_named() -> None:
    a = 5 * DAY + 8 * HOUR
    readings = _readings(lost=("C-WM001", a, a + 3 * HOUR, 0.3))
    assert len(_episodes(readings, levels=ParentLoss(min_share=0.15))) == 1
    assert _episodes(readings, levels=ParentLoss(min_share=0.45)) == []


def test_the_findings_name_the_tampered_building_meter() -> None:
    a = 5 * DAY + 8 * HOUR
    found = water_balance_findings(_readings(lost=("C-WM010", a, a + 2 * HOUR, 0.7)), _devices())
    assert [(f.device, f.fault) for f in found] == [("C-WM010", "meter_tamper")]
    assert found[0].encode()


def test_an_episode_under_min_litres_is_not_named() -> None:
    a = 5 * DAY + 8 * HOUR
    readings = _readings(lost=("C-WM001", a, a + 3 * HOUR, 0.6))
    found = _episodes(readings, levels=ParentLoss(min_litres=0.0))
    assert len(found) == 1
    hours = round(found[0].evidence["days"] * 24) + 2  # the episode's hours and one more each side
    litres = found[0].evidence["missing_lph"] * hours
    assert len(_episodes(readings, levels=ParentLoss(min_litres=0.9 * litres))) == 1
    assert _episodes(readings, levels=ParentLoss(min_litres=1.1 * litres)) == []
