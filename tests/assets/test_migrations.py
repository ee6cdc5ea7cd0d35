"""Migrations go up from empty and down to base, and match the models exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from sitewatch.assets.db import MIGRATIONS, create_engine_for, current_revision, downgrade, upgrade
from sitewatch.assets.models import Base


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _registry_tables(name: str | None, type_: str, _parents: object) -> bool:
    # the alerting branch's tables share the database; tests/alerts checks those
    return type_ != "table" or name in Base.metadata.tables


def test_upgrade_from_empty_and_downgrade_to_base(url: str) -> None:
    engine = create_engine_for(url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == "0003,a0002"  # the registry and alerting branches
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)  # and up again
    assert current_revision(engine) == "0003,a0002"
    engine.dispose()


def test_models_match_migrations(url: str) -> None:
    engine = create_engine_for(url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _registry_tables}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
    engine.dispose()


def test_migration_scripts_ship_with_the_package() -> None:
    # env.py, the template and the revisions are package files found next to the module, not via alembic.ini
    assert (MIGRATIONS / "env.py").is_file()
    assert (MIGRATIONS / "script.py.mako").is_file()
    assert list((MIGRATIONS / "versions").glob("0001_*.py"))


def test_downgrade_one_step_keeps_the_initial_schema(url: str) -> None:
    engine = create_engine_for(url)
    upgrade(engine)
    downgrade(engine, "0001")
    assert current_revision(engine) == "a0002"  # alerting (its head a0002) depends on 0001, which it implies
    tables = set(inspect(engine).get_table_names())
    assert "registry_revision" not in tables and "assets" in tables
    upgrade(engine)
    assert "registry_revision" in set(inspect(engine).get_table_names())
    engine.dispose()


def test_upgrade_refuses_a_registry_holding_look_alikes(url: str) -> None:
    """Migration 0003 adds the unique keys; a registry that already holds look-alike organisation
    names or clashing compound codes is refused with their list, and stays at 0002."""
    from sqlalchemy import text

    engine = create_engine_for(url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO cities (id, name) VALUES (1, 'c')"))
        conn.execute(text("INSERT INTO districts (id, city_id, name) VALUES (1, 1, 'd')"))
        conn.execute(text("INSERT INTO streets (id, district_id, name) VALUES (1, 1, 's')"))
        conn.execute(text("INSERT INTO communities (id, street_id, name) VALUES (1, 1, 'm')"))
        conn.execute(
            text(
                "INSERT INTO organisations (name, type) VALUES ('物业（甲）', 'utility'), ('物业(甲)', 'utility')"
            )
        )
        for code in ("220106", "220106-0001", "A1", "a1", "B"):
            conn.execute(
                text("INSERT INTO compounds (code, name_zh, community_id, year_built, buildings_count, households, "
                     "management_mode) VALUES (:code, 'x', 1, 2000, 1, 1, 'self_governance')"),
                {"code": code},
            )  # fmt: skip
    with pytest.raises(RuntimeError) as refused:
        upgrade(engine)
    message = str(refused.value)
    assert "'物业（甲）' and '物业(甲)'" in message
    assert "'220106' and '220106-0001'" in message and "'A1' and 'a1'" in message and "'B'" not in message
    assert "0002" in (current_revision(engine) or "").split(",")  # alerting's branch may be up already
    with engine.begin() as conn:
        conn.execute(text("UPDATE organisations SET name = '物业（乙）' WHERE name = '物业(甲)'"))
        conn.execute(text("UPDATE compounds SET code = '220107' WHERE code = '220106'"))
        conn.execute(text("UPDATE compounds SET code = 'A2' WHERE code = 'a1'"))
    upgrade(engine)
    assert current_revision(engine) == "0003,a0002"
    engine.dispose()
