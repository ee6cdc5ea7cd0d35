"""Shared fixtures: a clean environment, and real services on free ports in temporary directories."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sitewatch import i18n
from sitewatch.devtools.services import InfluxDBService, LocalService, MosquittoService, PostgresService


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SITEWATCH_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("SITEWATCH_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Every test starts in the default language, whatever ``sitewatch --lang`` an earlier one ran."""
    with i18n.using(i18n.DEFAULT_LANGUAGE):
        yield


def _serve(service: LocalService) -> Iterator[LocalService]:
    service.start()
    try:
        yield service
    finally:
        service.kill() if service.running else None


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoService]:
    """One Mosquitto for the session; tests use their own topics or client ids."""
    yield from _serve(MosquittoService(tmp_path_factory.mktemp("mosquitto")))  # type: ignore[misc]


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDBService]:
    """One InfluxDB for the session; tests use their own databases (see influx_database)."""
    yield from _serve(InfluxDBService(tmp_path_factory.mktemp("influxdb")))  # type: ignore[misc]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresService]:
    """One PostgreSQL cluster for the session; tests use their own databases (see postgres_url)."""
    yield from _serve(PostgresService(tmp_path_factory.mktemp("postgres")))  # type: ignore[misc]


_counter = itertools.count()


@pytest.fixture
def influx_database() -> str:
    """A database name no other test uses."""
    return f"test_{os.getpid()}_{next(_counter)}"


@pytest.fixture
def postgres_url(postgres: PostgresService) -> str:
    """SQLAlchemy URL of a fresh, empty PostgreSQL database."""
    return postgres.create_database(f"test_{os.getpid()}_{next(_counter)}")


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., LocalService]]:
    """Start a private service (for tests that kill or restart it); all are killed afterwards."""
    started: list[LocalService] = []
    kinds: dict[str, type[LocalService]] = {
        "mosquitto": MosquittoService,
        "influxdb": InfluxDBService,
        "postgres": PostgresService,
    }

    def make(kind: str, **kwargs: object) -> LocalService:
        service = kinds[kind](tmp_path / f"{kind}{len(started)}", **kwargs)  # type: ignore[arg-type]
        service.start()
        started.append(service)
        return service

    yield make
    for service in started:
        if service.running:
            service.kill()
