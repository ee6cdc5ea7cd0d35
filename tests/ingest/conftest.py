"""Fixtures for ingest tests: settings pointing at the test services, a real embedded store."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sitewatch.ingest import IngestService
from sitewatch.settings import Settings, load_settings
from sitewatch.store import Store, open_store

from .traffic import IngestProcess

_ids = itertools.count()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """A name no other test of this session uses (compound codes, client ids, groups)."""
    return lambda prefix: f"{prefix}{os.getpid() % 10000}x{next(_ids)}"


def make_settings(broker_url: str, data_dir: Path, **ingest: object) -> Settings:
    """Settings for an embedded store under ``data_dir`` and the given broker."""
    return load_settings(
        data_dir=data_dir,
        mqtt={"url": broker_url},
        store={"backend": "embedded"},
        ingest={"batch_interval_s": 0.2, **ingest},
    )


@pytest.fixture
def run_ingest() -> Iterator[Callable[..., IngestService]]:
    """Start in-process ingest services; all are stopped afterwards."""
    started: list[tuple[IngestService, Store]] = []

    def start(settings: Settings, client_id: str, **kwargs: object) -> IngestService:
        store = open_store(settings)
        service = IngestService(settings, store, client_id=client_id, **kwargs)  # type: ignore[arg-type]
        service.start()
        assert service.wait_connected(10), "ingest did not connect"
        started.append((service, store))
        return service

    yield start
    for service, store in started:
        service.stop()
        store.close()


@pytest.fixture
def ingest_processes() -> Iterator[None]:
    """Kill every ingest subprocess a test started, whatever happened."""
    yield
    while IngestProcess.running:
        process = IngestProcess.running.pop()
        if process.proc is not None and process.proc.poll() is None:
            process.kill()
