"""What a part of sitewatch adds to the web application: its routers, pages and background work."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from .auth import Access


@dataclass(frozen=True, slots=True)
class Periodic:
    """A blocking function the application runs every ``interval_s`` off the event loop, and once
    more when it stops (e.g. writing down when tokens were last used)."""

    interval_s: float
    run: Callable[[], None]


@dataclass(frozen=True, slots=True)
class Component:
    """One component's share of the application: ``api`` routers are mounted under ``/api/v1``,
    ``pages`` at the root, ``static`` (a directory) under ``/static/<name>/``. The registry also
    supplies ``access`` (token store and compound scopes), which every other component uses. A
    component that shows pages may supply ``error_page``, a renderer ``(request, ErrorBody) ->
    Response`` for errors of requests outside ``/api/`` (the console's HTML error page)."""

    name: str
    api: Sequence[APIRouter] = ()
    pages: Sequence[APIRouter] = ()
    static: Path | None = None
    access: Access | None = None
    periodic: Sequence[Periodic] = field(default_factory=tuple)
    error_page: Callable[[Any, Any], Any] | None = None
