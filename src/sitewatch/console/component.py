"""The console's share of the web application: its pages, static files and HTML error page."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Request

from ..settings import Settings
from ..store import Store
from ..web.component import Component, Periodic
from .context import STATIC, Clock, Console
from .pages import PAGES


def console_component(
    settings: Settings, *, store: Callable[[], Store] | None = None, clock: Clock | None = None,
    poll_s: int = 15,
) -> Component:  # fmt: skip
    """The console over the settings' store (or ``store()``, e.g. the demo's), by ``clock`` (the
    demo's simulated time; default the wall clock)."""
    console = Console(settings, poll_s=poll_s, store_factory=store,
                      nav=[page.NAV for page in PAGES if page.NAV is not None])  # fmt: skip
    if clock is not None:
        console.clock = clock

    async def bind(request: Request) -> None:
        request.state.console = console

    router = APIRouter(dependencies=[Depends(bind)], include_in_schema=False)
    for page in PAGES:
        router.include_router(page.router)
    return Component(name="console", pages=[router], static=STATIC, error_page=console.error_page,
                     periodic=[Periodic(poll_s, console.summary.run)])  # fmt: skip
