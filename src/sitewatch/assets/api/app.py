"""The FastAPI application of the asset registry, built from settings (nothing at import time)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from ...settings import Settings
from ..db import create_engine_for, session_factory
from .deps import TokenCache
from .errors import bilingual
from .routes import (
    assets,
    buildings,
    compounds,
    contracts,
    crews,
    devices,
    hierarchy,
    lookup,
    organisations,
    tokens,
)

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The registry API over the database of ``settings`` (or over ``engine``, e.g. in tests)."""
    if engine is None:
        if settings is None:
            raise ValueError("create_app needs settings or an engine")
        engine = create_engine_for(settings)
    app = FastAPI(
        title="sitewatch asset registry",
        version="1",
        description=(
            "Compounds, buildings, assets and device bindings of renovated residential compounds, with owners, "
            "maintainers, crews and contracts. Authenticate with `Authorization: Bearer <token>`. "
            'Errors are JSON `{"detail": ...}` in English and Chinese.'
        ),
    )
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.token_cache = TokenCache()
    for module in (
        hierarchy,
        compounds,
        buildings,
        assets,
        devices,
        organisations,
        crews,
        contracts,
        tokens,
        lookup,
    ):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.exception_handler(IntegrityError)
    async def _conflict(_: Request, exc: IntegrityError) -> JSONResponse:
        reason = str(exc.orig).splitlines()[0][:300] if exc.orig else "unique or reference constraint"
        return JSONResponse(
            status_code=409,
            content={
                "detail": bilingual(f"conflicts with existing data: {reason}", f"与现有数据冲突：{reason}")
            },
        )

    @app.exception_handler(DBAPIError)
    async def _refused(_: Request, exc: DBAPIError) -> JSONResponse:
        log.warning("database refused a request: %s", exc.orig)
        reason = str(exc.orig).splitlines()[0][:300] if exc.orig else "invalid value"
        detail = [{"loc": ["body"], "msg": bilingual(f"value refused by the database: {reason}",
                                                      f"数据库拒绝该值：{reason}"), "type": "value_error"}]  # fmt: skip
        return JSONResponse(status_code=422, content={"detail": detail})

    return app
