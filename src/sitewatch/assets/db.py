"""Engine and session builders, and schema migrations; nothing here runs at import time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ..settings import Settings
from . import revision as _revision  # noqa: F401  (registers the change counter's session events)

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# Alembic branches sharing the database, each in its own version directory and upgraded together
# ("heads"): the registry's chain, and alerting's (branch label ``alerts``, depends on 0001).
VERSION_LOCATIONS = (MIGRATIONS / "versions", Path(__file__).parents[1] / "alerts" / "migrations")


def create_engine_for(settings: Settings | str) -> Engine:
    """An engine for the registry database of ``settings`` (or for a URL given directly)."""
    url = make_url(settings if isinstance(settings, str) else settings.database_url)
    echo = False if isinstance(settings, str) else settings.database.echo
    kwargs: dict[str, Any] = {"echo": echo}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    """SQLite enforces foreign keys only when asked, per connection."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine`` that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any exception."""
    with session_factory(engine).begin() as session:
        yield session


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration that migrates ``engine`` (no alembic.ini, no global URL)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines drown the CLI's output
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_locations", " ".join(str(p) for p in VERSION_LOCATIONS))
    config.set_main_option("path_separator", "space")
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Migrate the schema up to ``revision`` (default: every branch to its head)."""
    config = alembic_config(engine)
    from alembic import command

    command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the registry schema down to ``revision`` (``base`` removes every table)."""
    config = alembic_config(engine)
    from alembic import command

    command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revisions the database is at (one per branch, comma-separated), or None when it
    was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None
