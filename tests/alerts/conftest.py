"""Fixtures of the alerting tests: a migrated registry with a small synthetic city, on SQLite and
on a real PostgreSQL; findings made through the contract."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from assets.fixture_ledger import synthetic_ledger  # tests/assets: compounds C0001.., crews CR01..
from sitewatch.alerts.db import alerts_engine, migrate, transaction
from sitewatch.alerts.models import Channel, ChannelScope, ChannelType
from sitewatch.assets.importer import import_ledger
from sitewatch.assets.workbook import HeaderStyle, write_csv_dir
from sitewatch.contract import DeviceKind, Finding, FindingState, Severity

_ids = itertools.count(1)


def registry(engine: Engine, tmp_path: Path, compounds: int = 2, assets: int = 12) -> None:
    """Import a synthetic ledger (compounds C0001..., crews CR01..CR04) into ``engine``."""
    folder = tmp_path / f"ledger{next(_ids)}"
    write_csv_dir(synthetic_ledger(compounds, assets), folder, HeaderStyle.EN)
    report = import_ledger(engine, folder)
    assert report.ok, report


def _engine(url: str, tmp_path: Path) -> Engine:
    engine = alerts_engine(url)
    migrate(engine)
    registry(engine, tmp_path)
    return engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated registry with a synthetic city, in a SQLite file."""
    engine = _engine(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated registry with a synthetic city, once on SQLite and once on PostgreSQL."""
    url = (
        f"sqlite:///{tmp_path / 'registry.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = _engine(url, tmp_path)
    yield engine
    engine.dispose()


def finding(
    device: str = "C0001-EL0001",
    *,
    fault: str | None = "entrapment",
    state: FindingState = FindingState.ACTIVE,
    severity: Severity = Severity.CRITICAL,
    kind: DeviceKind = DeviceKind.ELEVATOR,
    started_ms: int = 1_790_000_000_000,
    episode: str | None = None,
    compound: str | None = None,
    source: str | None = None,
    params: dict[str, Any] | None = None,
    **extra: Any,
) -> Finding:
    """A finding for tests (the same episode id for its active and cleared messages)."""
    compound = compound or device.split("-")[0]
    source = source or f"rule:{kind.value}.{fault or 'anomaly'}"
    fid = episode or f"{source}:{device}:{started_ms}"
    return Finding(
        id=fid, compound=compound, device=device, kind=kind, source=source, fault=fault, severity=severity,
        state=state, started_ms=started_ms, ts_ms=started_ms + 100,
        message="Passenger trapped in {device}", params=params or {"device": device},
        ended_ms=started_ms + 60_000 if state is FindingState.CLEARED else None, **extra,
    )  # fmt: skip


def add_channel(engine: Engine, name: str, url: str, *, type_: ChannelType = ChannelType.WEBHOOK,
                scope: ChannelScope = ChannelScope.CREW, target: str = "CR02", **extra: Any) -> int:  # fmt: skip
    """Store a channel; returns its id."""
    with transaction(engine) as session:
        channel = Channel(name=name, type=type_.value, url=url, scope=scope.value, target=target,
                          created_at=dt.datetime(2026, 1, 1), **extra)  # fmt: skip
        session.add(channel)
        session.flush()
        return channel.id
