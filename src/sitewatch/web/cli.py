"""``sitewatch serve``: the web application (REST API, and the pages as they come)."""

from __future__ import annotations

import click

from ..settings import load_settings


@click.command()
@click.option("--host", help="Listen address (default: SITEWATCH_WEB__HOST).")
@click.option("--port", type=int, help="Port (default: SITEWATCH_WEB__PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the web application: the registry's REST API under /api/v1, OpenAPI docs at /docs.

    Migrates the registry's database first.
    """
    import uvicorn

    from ..assets.db import create_engine_for, upgrade
    from .app import create_app

    settings = load_settings()
    engine = create_engine_for(settings)
    upgrade(engine)
    uvicorn.run(
        create_app(settings, engine=engine), host=host or settings.web.host, port=port or settings.web.port
    )
