"""What every console page shares: the store, the clock, the templates, the nav and the rendering
of a page (language switch, security headers) or of an error as HTML."""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import math
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import i18n
from ..contract import now_ms
from ..i18n import _, ngettext, pgettext
from ..settings import Settings
from ..store import Store
from ..web.errors import ErrorBody
from ..web.middleware import LANGUAGE_COOKIE
from ..web.principal import CompoundScope, Principal, Role
from .display import template_globals
from .health import CitySummary

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_URL = "/static/console"
SESSION_COOKIE = "sitewatch_session"  # the token itself, HttpOnly and SameSite=Strict
LOGIN_COOKIE = "sitewatch_login"  # the login form's double-submit CSRF value
LANGUAGES = (("zh_CN", "中文"), ("en", "English"))
# Content Security Policy: no inline script, no eval, nothing from another origin
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
Clock = Callable[[], int]


@dataclass(frozen=True, slots=True)
class NavItem:
    """One entry of the navigation bar: a path, its label (an ``N_`` message), the roles that see it
    (empty: every role) and its place (lower first)."""

    path: str
    label: str
    order: int = 50
    roles: frozenset[Role] = frozenset()

    def shown_to(self, role: Role) -> bool:
        """Whether a caller of ``role`` sees this entry."""
        return not self.roles or role in self.roles


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in caller of a page: who, what it may see, and its form token (CSRF)."""

    principal: Principal
    scope: CompoundScope
    csrf: str

    @property
    def may_act(self) -> bool:
        """May acknowledge and silence (the bureau only reads)."""
        return self.principal.role is not Role.BUREAU


@dataclass
class Console:
    """The console's shared state: built once per application by ``console_component``."""

    settings: Settings
    clock: Clock = now_ms
    poll_s: int = 15  # live parts of pages refresh this often (bounded: htmx polling, one request each)
    store_factory: Callable[[], Store] | None = None
    nav: Sequence[NavItem] = ()
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _store: Store | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    env: Environment = field(init=False)
    summary: CitySummary = field(init=False)

    def __post_init__(self) -> None:
        self.summary = CitySummary(lambda: self.store, lambda: self.clock(), self.poll_s)
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
            trim_blocks=True, lstrip_blocks=True,
        )  # fmt: skip
        self.env.globals.update(_=_, ngettext=ngettext, pgettext=pgettext, static=STATIC_URL, languages=LANGUAGES)
        self.env.globals.update(template_globals())
        self.env.filters.update(when=self.when, ago=self.ago, number=number, local=self.local)

    @property
    def store(self) -> Store:
        """The time-series store, opened on first use (the settings' backend)."""
        with self._lock:
            if self._store is None:
                if self.store_factory is not None:
                    self._store = self.store_factory()
                else:
                    from ..store import open_store

                    self._store = open_store(self.settings)
            return self._store

    # -- text helpers for templates ----------------------------------------------------------------

    def when(self, ms: int | None) -> str:
        """A time as local date and time (the ``timezone`` setting)."""
        if not ms:
            return "—"
        moment = dt.datetime.fromtimestamp(ms / 1000, ZoneInfo(self.settings.timezone))
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def local(self, iso: str | None) -> str:
        """An ISO time (alerting's, UTC) as local date and time."""
        if not iso:
            return "—"
        moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
        return self.when(int(moment.timestamp() * 1000))

    def ago(self, ms: int | None) -> str:
        """How long ago ``ms`` was, by the console's clock."""
        if not ms:
            return _("never")
        seconds = max(0, (self.clock() - ms) // 1000)
        if seconds < 120:
            return ngettext("{n} second ago", "{n} seconds ago", seconds)
        if seconds < 7200:
            return ngettext("{n} minute ago", "{n} minutes ago", seconds // 60)
        if seconds < 172_800:
            return ngettext("{n} hour ago", "{n} hours ago", seconds // 3600)
        return ngettext("{n} day ago", "{n} days ago", seconds // 86_400)

    # -- forms ---------------------------------------------------------------------------------------

    def csrf_for(self, token: str) -> str:
        """The form token of a session: bound to it, unguessable without the server's secret."""
        return hmac.new(self.secret, token.encode(), "sha256").hexdigest()

    # -- rendering -----------------------------------------------------------------------------------

    def render(
        self, request: Request, template: str, *, viewer: Viewer | None = None, status: int = 200,
        page_path: str | None = None, **values: Any,
    ) -> HTMLResponse:  # fmt: skip
        """A page (or a fragment) in the request's language, with the security headers; links made
        with ``url(...)`` keep the query of ``page_path`` (default: the request's path)."""
        language = i18n.current_language()
        html = self.env.get_template(template).render(
            request=request, viewer=viewer, lang=language, poll_s=self.poll_s,
            nav=[n for n in sorted(self.nav, key=lambda n: n.order) if viewer and n.shown_to(viewer.principal.role)],
            path=request.url.path, lang_url=lambda code: _with_query(request, page_path, lang=code),
            now_ms=self.clock(), url=lambda **changes: _with_query(request, page_path, **changes), **values,
        )  # fmt: skip
        response = HTMLResponse(html, status_code=status)
        secure_headers(response, language)
        chosen = request.query_params.get("lang")
        if chosen:
            response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86_400, samesite="strict",
                                secure=request.url.scheme == "https")  # fmt: skip
        return response

    def error_page(self, request: Request, error: ErrorBody) -> Response:
        """An error of a page request as HTML; a missing or bad session goes to the login page."""
        if error.status == 401:
            target = "/login?" + urlencode({"next": request.url.path})
            if request.headers.get("hx-request"):
                response: Response = Response(status_code=204, headers={"HX-Redirect": target})
            else:
                response = RedirectResponse(target, status_code=303)
            return response
        return self.render(request, "error.html", status=error.status, error=error)


def secure_headers(response: Response, language: str) -> None:
    """The headers every console answer carries."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = language.replace("_", "-")


def _with_query(request: Request, page_path: str | None, **changes: Any) -> str:
    """The page's path with the request's query changed (``None`` removes a parameter)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return (page_path or quote(request.url.path)) + ("?" + urlencode(params) if params else "")


def number(value: float | int | None, digits: int = 0) -> str:
    """A number for people: thousands separated, ``—`` for nothing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:,.{digits}f}"


async def get_console(request: Request) -> Console:
    """The console of the application (bound to its routes by ``console_component``)."""
    console: Console = request.state.console
    return console


ConsoleDep = Annotated[Console, Depends(get_console)]


async def page_language(request: Request) -> None:
    """``?lang=`` switches the page's language (and the cookie remembers it)."""
    chosen = request.query_params.get("lang")
    if chosen:
        with contextlib.suppress(i18n.UnknownLanguage):
            i18n.set_language(chosen)
