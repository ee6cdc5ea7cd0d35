"""Alerting's Alembic branch: up from empty beside the registry's, down to base, and the migrated
schema matches the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from sitewatch.alerts.models import AlertsBase
from sitewatch.assets.db import create_engine_for, current_revision, downgrade, upgrade


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _alerts_tables(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or name in AlertsBase.metadata.tables


def test_alerts_branch_up_beside_the_registry_and_down(url: str) -> None:
    engine = create_engine_for(url)
    upgrade(engine)
    assert "a0001" in (current_revision(engine) or "").split(",")
    assert set(AlertsBase.metadata.tables) <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _alerts_tables}
        )
        assert compare_metadata(context, AlertsBase.metadata) == []
    downgrade(engine, "alerts@base")  # alerting's tables go, the registry's stay
    tables = set(inspect(engine).get_table_names())
    assert not set(AlertsBase.metadata.tables) & tables and "assets" in tables
    upgrade(engine)
    assert set(AlertsBase.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
