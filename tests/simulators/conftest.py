"""Fixtures of the simulator tests: a small generated city and a 30-day backfill with every fault type."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from sitewatch.simulators.backfill import BackfillResult, backfill
from sitewatch.simulators.city import generate_city
from sitewatch.simulators.faults import FAULT_TYPES, Band
from sitewatch.simulators.site import Site, sites_from_records

START_MS = 1_790_000_000_000 - 1_790_000_000_000 % 86_400_000 - 8 * 3_600_000  # a local (UTC+8) midnight


@pytest.fixture(scope="session")
def city() -> dict[str, list[dict[str, Any]]]:
    """Ledger records of a three-compound city."""
    return generate_city(3, seed=2)


@pytest.fixture(scope="session")
def sites(city: dict[str, list[dict[str, Any]]]) -> list[Site]:
    """Sites of the three-compound city."""
    return sites_from_records(city)


@pytest.fixture(scope="session")
def month(
    sites: list[Site], tmp_path_factory: pytest.TempPathFactory
) -> tuple[BackfillResult, pd.DataFrame, pd.DataFrame]:
    """Thirty days of the smallest compound (91 devices) with every fault type injected."""
    out = tmp_path_factory.mktemp("backfill")
    result = backfill(sites[2:3], START_MS, 30, out, seed=3, faults="all")
    readings = pd.read_parquet(out / "readings.parquet")
    events = pd.read_parquet(out / "events.parquet")
    for col in ("device", "kind"):
        events[col] = events[col].astype(str)
    return result, readings, events


@pytest.fixture(scope="session")
def wide(month: tuple[BackfillResult, pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    """The month's readings, one row per (device, ts), one column per metric."""
    _, readings, _ = month
    frame = readings.assign(device=readings["device"].astype(str), metric=readings["metric"].astype(str))
    return frame.pivot_table(index=["device", "ts_ms"], columns="metric", values="value", aggfunc="first")


def fits_a_day(fault: str, band: Band) -> bool:
    """Whether a fault of this band can be as short as a few hours (a clear out-of-service lasts a day
    or more, so a one-day plan cannot hold it)."""
    spec = FAULT_TYPES[fault]
    shortest = spec.magnitude.range(band)[0] * spec.magnitude_is_duration if spec.magnitude_is_duration else 0.0
    return shortest <= 2.0
