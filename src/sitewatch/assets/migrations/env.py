"""Alembic environment: the engine comes from the caller (config.attributes["engine"])."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from sitewatch.assets.models import Base

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError(
        "run migrations through `sitewatch assets migrate` (sitewatch.assets.db.upgrade), "
        "which passes the engine in; alembic.ini carries no database URL"
    )

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
