"""Build the configured store from settings."""

from __future__ import annotations

from ..settings import Settings, StoreBackend
from .base import Store


def open_store(settings: Settings, *, create: bool = True) -> Store:
    """The store ``settings.store`` describes: the embedded file or an InfluxDB server.

    ``create=False`` opens an existing embedded file only (FileNotFoundError otherwise) and, for
    InfluxDB, does not create the database; readers such as ``sitewatch query`` use it.
    """
    if settings.store.backend is StoreBackend.INFLUXDB:
        from .influx_store import InfluxStore

        return InfluxStore.from_settings(settings.store, create_database=create)
    from .embedded_store import EmbeddedStore

    return EmbeddedStore(settings.store_path, create=create)
