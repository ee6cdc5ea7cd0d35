"""Parameters and role checks the registry's routes share (the rest comes from sitewatch.web.deps)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from ...web.deps import PrincipalDep as PrincipalDep
from ...web.deps import SessionDep as SessionDep
from ...web.deps import require_roles
from ...web.principal import Principal as Principal
from ...web.principal import Role
from .access import TokenStore

MAX_ID = 2_147_483_647  # ids fit a 32-bit integer column everywhere

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Rows to skip")]
Search = Annotated[
    str | None, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$", description="Substring of name or code")
]
OptId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
DevicePath = Annotated[str, Path(max_length=200, pattern=r"^[^\x00-\x1f\x7f/]+$")]

WriterDep = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.PROPERTY_MANAGER))]
AdminDep = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


def token_store(request: Request) -> TokenStore:
    """The application's token store (the registry supplied it)."""
    store = request.app.state.access.authenticator
    assert isinstance(store, TokenStore)
    return store
