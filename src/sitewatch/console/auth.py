"""Signing in to the console with an API token, and who the caller of a page is.

The same tokens, roles and compound scope as the REST API (``sitewatch.web``): the login form takes
a token, checks it with the registry's authenticator and keeps it in an HttpOnly, SameSite=Strict
cookie. Forms that change something carry a CSRF token bound to the session (an HMAC of the token
under a secret of the server); the login form itself a double-submit value.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ..i18n import N_, _
from ..web.auth import Access
from ..web.errors import ApiError, ErrorCode, forbidden, unauthorized
from ..web.inputs import TextRefused, check_text
from ..web.principal import CompoundScope
from .context import LOGIN_COOKIE, SESSION_COOKIE, ConsoleDep, NavItem, Viewer, page_language

MAX_FORM_BYTES = 16_384  # a console form is small; the application's limit is for API bodies
router = APIRouter(dependencies=[Depends(page_language)])
NAV: NavItem | None = None


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form (one value per field), refused when too large or not UTF-8."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, ErrorCode.TOO_LARGE, _("the form is too large"))
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, ErrorCode.MALFORMED, _("the form could not be read")) from None
    return {key: values[0] for key, values in fields.items() if values}


async def get_viewer(request: Request, console: ConsoleDep) -> Viewer:
    """The signed-in caller (401, shown as the login page, without a valid session)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise unauthorized(_("sign in with your token"))
    access: Access = request.app.state.access
    principal = access.authenticator.authenticate(token)
    if principal is None:
        raise unauthorized(_("the token is unknown, expired or revoked; ask an administrator for a new one"))
    scope = (
        CompoundScope.all() if principal.reads_all
        else await run_in_threadpool(access.scopes.compound_scope, principal)
    )  # fmt: skip
    return Viewer(principal, scope, console.csrf_for(token))


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


async def check_csrf(request: Request, viewer: ViewerDep) -> dict[str, str]:
    """The form of a POST whose CSRF token matches the session's (403 otherwise)."""
    form = await read_form(request)
    sent = form.get("csrf") or request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(sent.encode(), viewer.csrf.encode()):
        raise forbidden(_("the form has expired or did not come from this console; reload the page and retry"))
    return form


FormDep = Annotated[dict[str, str], Depends(check_csrf)]


def _safe_next(target: str | None) -> str:
    """Only a path of this site (never ``//host`` or a scheme) is followed after signing in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, console: ConsoleDep, error: str | None, status: int) -> Response:
    value = secrets.token_urlsafe(24)
    response = console.render(request, "login.html", status=status, csrf=value, error=error,
                              next=_safe_next(request.query_params.get("next")))  # fmt: skip
    response.set_cookie(LOGIN_COOKIE, value, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/login")  # fmt: skip
    return response


@router.get("/login")
def login_form(request: Request, console: ConsoleDep) -> Response:
    """The sign-in page: paste a token."""
    return _login_page(request, console, None, 200)


LOGIN_FAILED = N_("that token is unknown, expired or revoked")


@router.post("/login")
async def login(request: Request, console: ConsoleDep) -> Response:
    """Check the token; on success keep it in the session cookie and go on."""
    form = await read_form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
        return _login_page(request, console, _("the sign-in form expired; try again"), 403)
    token = form.get("token", "").strip()
    try:
        check_text(token)
    except TextRefused:
        token = ""
    if not token or len(token) > 200:
        return _login_page(request, console, _(LOGIN_FAILED), 401)
    access: Access = request.app.state.access
    if access.authenticator.authenticate(token) is None:
        return _login_page(request, console, _(LOGIN_FAILED), 401)
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, form: FormDep) -> Response:
    """Forget the session."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
