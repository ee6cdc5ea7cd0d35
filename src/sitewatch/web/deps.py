"""Dependencies every route of the web application may ask for: a database session, the caller,
a role check, the caller's compound scope and the request's language.

::

    from sitewatch.web.deps import PrincipalDep, ScopeDep, SessionDep, require_roles

    @router.get("/alerts")
    def list_alerts(session: SessionDep, scope: ScopeDep) -> ...:
        ...  # filter on scope.codes unless scope.everything
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ..i18n import _, current_language
from .auth import Access
from .errors import forbidden, unauthorized
from .principal import CompoundScope, Principal, Role


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session of the application's database for one request; rolled back unless committed.

    Async so that FastAPI does not hop to a worker thread for it: making a session does no I/O.
    """
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

bearer = HTTPBearer(
    auto_error=False, description="`Authorization: Bearer <token>` from `sitewatch assets token create`"
)


async def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller of a valid token; 401 otherwise.

    On the event loop: the registry answers from its token cache, or with one indexed query that
    costs less than a worker-thread hop (see ``sitewatch bench assets``).
    """
    if credentials is None or not credentials.credentials:
        raise unauthorized(_("missing token: send Authorization: Bearer <token>"))
    access: Access = request.app.state.access
    principal = access.authenticator.authenticate(credentials.credentials)
    if principal is None:
        raise unauthorized(_("the token is unknown, expired or revoked; ask an administrator for a new one"))
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only callers of ``roles`` through (403 for the others)."""
    allowed = frozenset(roles)

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            raise forbidden(_("your token's role ({role}) does not allow this; it needs: {roles}",
                              role=principal.role.value, roles=", ".join(sorted(allowed))))  # fmt: skip
        return principal

    return check


async def get_scope(request: Request, principal: PrincipalDep) -> CompoundScope:
    """The compounds the caller may see (asks the registry, off the event loop, unless the role
    sees everything)."""
    if principal.reads_all:
        return CompoundScope.all()
    access: Access = request.app.state.access
    return await run_in_threadpool(access.scopes.compound_scope, principal)


ScopeDep = Annotated[CompoundScope, Depends(get_scope)]


async def get_language() -> str:
    """The request's language (``zh_CN`` or ``en``), for text made outside the catalog's ``_()``."""
    return current_language()


LanguageDep = Annotated[str, Depends(get_language)]
