"""Fixtures of the store tests: the same suite runs on the embedded file and on a real InfluxDB."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from sitewatch.contract import DeviceKind, Event, Sample
from sitewatch.devtools.services import InfluxDBService
from sitewatch.settings import Settings, load_settings
from sitewatch.store import Store, StoredEvent, StoredSample, open_store

T0 = 1_700_000_000_000  # a multiple of every window the tests use (1 s, 10 s, 1 min)


def sample(
    device: str,
    ts_ms: int,
    values: Mapping[str, float],
    *,
    compound: str = "C1",
    kind: DeviceKind = DeviceKind.ELEVATOR,
    tags: Mapping[str, str] | None = None,
    flagged: bool = False,
) -> StoredSample:
    """A stored sample with short arguments."""
    return StoredSample(Sample(device, kind, ts_ms, dict(values)), compound, dict(tags or {}), flagged)


def event(
    device: str,
    ts_ms: int,
    name: str,
    *,
    compound: str = "C1",
    kind: DeviceKind = DeviceKind.ELEVATOR,
    active: bool | None = None,
    attrs: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> StoredEvent:
    """A stored event with short arguments."""
    return StoredEvent(
        Event(device, kind, ts_ms, name, active, dict(attrs or {})), compound, dict(tags or {})
    )


def influx_settings(service: InfluxDBService, database: str, **store: object) -> Settings:
    """Settings of an InfluxDB store on ``service``."""
    return load_settings(
        store={"backend": "influxdb", "influx_url": service.url, "influx_database": database, **store}
    )


@pytest.fixture(params=["embedded", pytest.param("influxdb", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store, once embedded (in tmp_path) and once on the session's InfluxDB."""
    if request.param == "embedded":
        settings = load_settings(data_dir=tmp_path)
    else:
        service = request.getfixturevalue("influxdb")
        database = request.getfixturevalue("influx_database")
        settings = influx_settings(service, database)
    opened = open_store(settings)
    yield opened
    opened.close()
