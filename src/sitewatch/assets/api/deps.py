"""Dependencies: a database session per request, and the caller's identity from its bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import ApiToken, Role
from ..tokens import hash_token
from .errors import bilingual, forbidden

MAX_ID = 2_147_483_647  # ids fit a 32-bit integer column everywhere

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Rows to skip")]
Search = Annotated[
    str | None, Query(max_length=100, pattern=r"^[^\x00]*$", description="Substring of name or code")
]
OptId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def get_session(request: Request) -> Iterator[Session]:
    """A session for one request; rolled back unless the route committed."""
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

bearer = HTTPBearer(
    auto_error=False, description="`Authorization: Bearer <token>` from `sitewatch assets token create`"
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's role and organisation."""

    token_id: int
    role: Role
    org_id: int | None

    @property
    def reads_all(self) -> bool:
        """Admin and bureau see every compound."""
        return self.role in (Role.ADMIN, Role.BUREAU)


def get_principal(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller, from a valid, unrevoked token; 401 otherwise."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            401, bilingual("missing bearer token", "缺少访问令牌"), headers={"WWW-Authenticate": "Bearer"}
        )
    row = session.execute(
        select(ApiToken.id, ApiToken.role, ApiToken.org_id).where(
            ApiToken.token_hash == hash_token(credentials.credentials), ApiToken.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        raise HTTPException(
            401,
            bilingual("invalid or revoked token", "令牌无效或已吊销"),
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Principal(row[0], Role(row[1]), row[2])


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_writer(principal: PrincipalDep) -> Principal:
    """Callers that may write at all (admin, property manager)."""
    if principal.role not in (Role.ADMIN, Role.PROPERTY_MANAGER):
        raise forbidden(f"role {principal.role.value} is read-only", f"角色 {principal.role.value} 只能读取")
    return principal


def get_admin(principal: PrincipalDep) -> Principal:
    """Admin callers only."""
    if principal.role is not Role.ADMIN:
        raise forbidden("admin role required", "需要管理员角色")
    return principal


WriterDep = Annotated[Principal, Depends(get_writer)]
AdminDep = Annotated[Principal, Depends(get_admin)]
