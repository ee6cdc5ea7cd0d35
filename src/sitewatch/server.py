"""The web application: one FastAPI app for the REST API and, as they come, the console and the
crews' and residents' pages, built from settings by :func:`create_app` (nothing at import time),
and served by ``sitewatch serve``.

It composes the components, so it sits above them (docs/architecture.md); the machinery it
installs once for every component (one error format, the body limit, strict JSON, the request's
language, tokens, roles and compound scope) lives in :mod:`sitewatch.web`, below them, and a
component hands over its routers as a :class:`~sitewatch.web.component.Component`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import click
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from .settings import Settings, load_settings
from .web import errors
from .web.component import Component, Periodic
from .web.middleware import RequestGuard

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


def components(settings: Settings, engine: Engine) -> list[Component]:
    """Every component the application serves (the registry first: it supplies the access)."""
    from .alerts.api import alerts_component
    from .assets.api.component import registry_component
    from .console.component import console_component

    return [registry_component(settings, engine), alerts_component(settings), console_component(settings)]


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None,
    parts: Sequence[Component] | None = None,
) -> FastAPI:  # fmt: skip
    """The application over the database of ``settings`` (or over ``engine``, e.g. in tests), with
    ``parts`` (default: :func:`components`)."""
    settings = settings if settings is not None else load_settings()
    if engine is None:
        from .assets.db import create_engine_for

        engine = create_engine_for(settings)
    parts = list(parts) if parts is not None else components(settings, engine)
    periodic = [p for part in parts for p in part.periodic]
    app = FastAPI(
        title="sitewatch",
        version="1",
        lifespan=_lifespan(periodic),
        description=(
            "The asset registry (compounds, buildings, assets, device bindings, organisations, crews, "
            "contracts) and the other components' APIs. Authenticate with `Authorization: Bearer <token>`; "
            "answers are in the language of `Accept-Language` (zh-CN or en). Every error is JSON "
            '`{"status", "code", "detail", "errors": [{"field", "code", "message", "input"}]}`; '
            f"bodies are limited to {settings.web.max_body_bytes} bytes and must be strict JSON."
        ),
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    access = next((p.access for p in parts if p.access is not None), None)
    if access is None:
        raise ValueError("no component supplies access (token store and scopes): include the registry")
    app.state.access = access
    app.state.error_page = next((p.error_page for p in parts if p.error_page is not None), None)
    errors.install(app)
    app.add_middleware(
        RequestGuard, max_body_bytes=settings.web.max_body_bytes, default_language=settings.language
    )
    for part in parts:
        for router in part.api:
            app.include_router(router, prefix=API_PREFIX, responses=errors.RESPONSES)
        for router in part.pages:
            app.include_router(router)
        if part.static is not None:
            app.mount(f"/static/{part.name}", StaticFiles(directory=part.static), name=f"static-{part.name}")
    return app


def _lifespan(periodic: Sequence[Periodic]):  # type: ignore[no-untyped-def]
    """Runs each component's periodic work while the application serves, and once at the end."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_every(p)) for p in periodic]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for p in periodic:
                await _run(p)

    return lifespan


async def _run(p: Periodic) -> None:
    try:
        await run_in_threadpool(p.run)
    except Exception:
        log.exception("periodic work %s failed", getattr(p.run, "__qualname__", p.run))


async def _every(p: Periodic) -> None:
    while True:
        await asyncio.sleep(p.interval_s)
        await _run(p)


@click.command()
@click.option("--host", help="Listen address (default: SITEWATCH_WEB__HOST).")
@click.option("--port", type=int, help="Port (default: SITEWATCH_WEB__PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the web application: the console at /, the REST API under /api/v1, OpenAPI docs at /docs.

    Migrates the registry's database first.
    """
    import uvicorn

    from .assets.db import create_engine_for, upgrade

    settings = load_settings()
    engine = create_engine_for(settings)
    upgrade(engine)
    uvicorn.run(
        create_app(settings, engine=engine), host=host or settings.web.host, port=port or settings.web.port
    )
