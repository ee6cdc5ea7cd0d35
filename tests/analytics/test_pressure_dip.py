"""The pressure-dip burst detector (a building meter's pressure against its peers) on small seeded series."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sitewatch.analytics.detectors.pressure import PressureDip, pressure_dip_findings
from sitewatch.contract import FindingState

START = int(pd.Timestamp("2026-04-06 00:00", tz="Asia/Shanghai").value // 1_000_000)
MIN = 60_000
HOURS = 54
BUILDINGS = {"C-WM001": "1", "C-WM010": "2", "C-WM020": "3", "C-WM030": ""}  # "": the compound meter
FLATS = ("C-WM002", "C-WM003", "C-WM004")  # in building 1


def _devices() -> pd.DataFrame:
    rows = [{"device": d, "compound": "220103-0001", "kind": "water_meter", "building": b, "scope": "building"}
            for d, b in BUILDINGS.items()]  # fmt: skip
    rows += [{"device": d, "compound": "220103-0001", "kind": "water_meter", "building": "1", "scope": "household"}
             for d in FLATS]  # fmt: skip
    return pd.DataFrame(rows).set_index("device")


def _readings(*, dip: dict[str, tuple[int, int, float]] | None = None,
              extra: dict[str, tuple[int, int, float]] | None = None, seed: int = 5) -> pd.DataFrame:  # fmt: skip
    """Pressure (every 5 min) of 3 building meters and the compound meter, all moved by the
    compound's demand; flow (m³/h, every 15 min) of 3 flats with showers and of building 1's meter.
    ``dip``: MPa off a meter's pressure in [a, b) minutes; ``extra``: m³/h more through a meter."""
    rng = np.random.default_rng(seed)
    n = HOURS * 60
    minute = np.arange(n)
    load = 0.03 * np.sin(2 * np.pi * minute / 1440.0)  # the whole compound's demand
    rows: list[tuple[int, str, str, float]] = []
    for k, device in enumerate(BUILDINGS):
        p = 0.3 + 0.01 * k - load + rng.normal(0.0, 0.006, n)
        if dip and device in dip:
            a, b, mpa = dip[device]
            p[a:b] -= mpa
        for i in range(2 + k, n, 5):
            rows.append((START + i * MIN, device, "pressure", round(float(p[i]), 3)))
    flats_flow = np.zeros(n)
    for k, device in enumerate(FLATS):
        flow = np.where(rng.random(n) < 0.01, 0.4, 0.0) + 0.004  # a shower now and then
        if extra and device in extra:
            a, b, m3h = extra[device]
            flow[a:b] += m3h
        flats_flow += flow
        for i in range(14 + k, n, 15):
            rows.append((START + i * MIN, device, "flow", round(float(flow[i - 14 : i + 1].mean()), 4)))
    building = flats_flow + 0.01
    if extra and "C-WM001" in extra:
        a, b, m3h = extra["C-WM001"]
        building[a:b] += m3h
    for i in range(6, n, 5):
        rows.append((START + i * MIN, "C-WM001", "flow", round(float(building[i - 4 : i + 1].mean()), 4)))
    return pd.DataFrame(rows, columns=["ts_ms", "device", "metric", "value"])


BURST = (44 * 60, 45 * 60)  # minutes: an hour's burst on the second day


def test_quiet_compound_raises_nothing() -> None:
    assert PressureDip().episodes(_readings(), _devices()) == []


def test_flat_burst_found_by_its_building_dip() -> None:
    a, b = BURST
    found = PressureDip().episodes(_readings(dip={"C-WM001": (a, b, 0.12)}, extra={"C-WM003": (a, b, 0.11)}),
                                   _devices())  # fmt: skip
    assert [e.device for e in found] == ["C-WM003"]
    assert abs(found[0].start_ms - (START + a * MIN)) <= 5 * MIN
    assert abs(found[0].end_ms - (START + b * MIN)) <= 5 * MIN
    assert found[0].flow_m3h >= 0.1


def test_dip_everywhere_is_the_network_not_a_burst() -> None:
    a, b = BURST
    dips = {d: (a, b, 0.12) for d in BUILDINGS}
    assert PressureDip().episodes(_readings(dip=dips, extra={"C-WM003": (a, b, 0.11)}), _devices()) == []


def test_small_dip_or_single_report_is_noise() -> None:
    a, _ = BURST
    shallow = _readings(dip={"C-WM001": (a, a + 60, 0.03)}, extra={"C-WM003": (a, a + 60, 0.11)})
    blip = _readings(dip={"C-WM001": (a, a + 5, 0.12)}, extra={"C-WM003": (a, a + 60, 0.11)})
    assert PressureDip().episodes(shallow, _devices()) == []
    assert PressureDip().episodes(blip, _devices()) == []


def test_building_pipes_burst_names_the_building_meter() -> None:
    a, b = BURST
    found = PressureDip().episodes(_readings(dip={"C-WM001": (a, b, 0.12)}, extra={"C-WM001": (a, b, 1.5)}),
                                   _devices())  # fmt: skip
    assert [e.device for e in found] == ["C-WM001"]


def test_dip_no_meter_explains_raises_nothing() -> None:
    a, b = BURST
    assert PressureDip().episodes(_readings(dip={"C-WM001": (a, b, 0.12)}), _devices()) == []


def test_findings_are_critical_bursts_cleared_after_their_end() -> None:
    a, b = BURST
    found = pressure_dip_findings(_readings(dip={"C-WM001": (a, b, 0.12)}, extra={"C-WM002": (a, b, 0.2)}),
                                  _devices())  # fmt: skip
    assert len(found) == 1
    f = found[0]
    assert (f.fault, f.device, f.state, f.source) == (
        "burst",
        "C-WM002",
        FindingState.CLEARED,
        "detector:pressure_dip",
    )
    assert f.params["meter"] == "C-WM001"


def test_burst_behind_a_still_register_is_that_flats() -> None:
    a, b = BURST
    readings = _readings(dip={"C-WM001": (a, b, 0.12)}, extra={"C-WM001": (a, b, 1.5)})
    # the flat's register stood still from 12 h in to the end: what its burst passes goes unseen
    still = (readings["device"] == "C-WM004") & (readings["ts_ms"] > START + 12 * 60 * MIN)
    readings.loc[still, "value"] = 0.0
    found = PressureDip().episodes(readings, _devices())
    assert [e.device for e in found] == ["C-WM004"]


def test_burst_in_the_history_s_third_hour_is_found() -> None:
    """The level is judged from an hour of reports on: a burst from 2 h 45 min in (a backfill's
    first night) is found and named to its flat; before an hour of reports nothing is judged."""
    a, b = 165, 195
    found = PressureDip().episodes(_readings(dip={"C-WM001": (a, b, 0.12)}, extra={"C-WM003": (a, b, 0.9)}),
                                   _devices())  # fmt: skip
    assert [e.device for e in found] == ["C-WM003"]
    assert abs(found[0].start_ms - (START + a * MIN)) <= 5 * MIN
    early = PressureDip().episodes(_readings(dip={"C-WM001": (20, 50, 0.12)}, extra={"C-WM003": (20, 50, 0.9)}),
                                   _devices())  # fmt: skip
    assert early == []
