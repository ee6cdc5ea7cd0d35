"""Dependencies: a database session per request, and the caller's identity from its bearer token."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select
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


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for one request; rolled back unless the route committed.

    Async so that FastAPI does not hop to a worker thread for it: making a session does no I/O.
    """
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


_TOKEN_QUERY = select(ApiToken.id, ApiToken.role, ApiToken.org_id).where(
    ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None)
)
TOKEN_CACHE_S = 10.0  # a token revoked elsewhere stops working here within this time


class TokenCache:
    """Recently verified tokens (by hash), so a busy client costs one query per TOKEN_CACHE_S."""

    def __init__(self, ttl_s: float = TOKEN_CACHE_S, size: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, token_hash: str) -> Principal | None:
        """The cached caller of this token, if verified recently."""
        entry = self._entries.get(token_hash)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return None
        return entry[1]

    def put(self, token_hash: str, principal: Principal) -> None:
        """Remember a verified token."""
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[token_hash] = (time.monotonic(), principal)

    def clear(self) -> None:
        """Forget every token (after a revocation)."""
        self._entries.clear()


async def get_principal(
    request: Request, session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:  # fmt: skip
    """The caller, from a valid, unrevoked token; 401 otherwise.

    Runs on the event loop (one indexed query, usually answered from the token cache): a
    worker-thread hop would cost more than the work (see ``sitewatch bench assets``).
    """
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            401, bilingual("missing bearer token", "缺少访问令牌"), headers={"WWW-Authenticate": "Bearer"}
        )
    token_hash = hash_token(credentials.credentials)
    cache: TokenCache = request.app.state.token_cache
    principal = cache.get(token_hash)
    if principal is not None:
        return principal
    row = session.execute(_TOKEN_QUERY, {"token_hash": token_hash}).first()
    if row is None:
        raise HTTPException(
            401,
            bilingual("invalid or revoked token", "令牌无效或已吊销"),
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = Principal(row[0], Role(row[1]), row[2])
    cache.put(token_hash, principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_writer(principal: PrincipalDep) -> Principal:
    """Callers that may write at all (admin, property manager)."""
    if principal.role not in (Role.ADMIN, Role.PROPERTY_MANAGER):
        raise forbidden(f"role {principal.role.value} is read-only", f"角色 {principal.role.value} 只能读取")
    return principal


async def get_admin(principal: PrincipalDep) -> Principal:
    """Admin callers only."""
    if principal.role is not Role.ADMIN:
        raise forbidden("admin role required", "需要管理员角色")
    return principal


WriterDep = Annotated[Principal, Depends(get_writer)]
AdminDep = Annotated[Principal, Depends(get_admin)]
