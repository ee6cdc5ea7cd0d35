"""The registry's side of the web application's access: its tokens authenticate callers, and its
compounds and contracts say what each caller may see (:mod:`sitewatch.web.auth`)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from sqlalchemy import Engine, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ...web.principal import CompoundScope, Principal, Role
from ..models import ApiToken, Compound, Contract, ContractKind
from ..tokens import hash_token

log = logging.getLogger(__name__)
TOKEN_CACHE_S = 10.0  # a token revoked or expired elsewhere stops working here within this time
USAGE_FLUSH_S = 60.0  # how often the last use of tokens is written down

_TOKEN_QUERY = select(ApiToken.id, ApiToken.role, ApiToken.org_id, ApiToken.expires_at).where(
    ApiToken.token_hash == bindparam("token_hash"),
    ApiToken.revoked_at.is_(None),
    or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > bindparam("now")),
)


def utcnow() -> dt.datetime:
    """Now, as the registry stores times (naive UTC)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class TokenStore:
    """Authenticates bearer tokens against ``api_tokens``: valid, unrevoked, unexpired.

    Verified tokens are cached for ``ttl_s`` (a busy client costs one query per 10 s); a token's
    last use is noted in memory and written by :meth:`flush_usage` (every minute, and when the
    application stops), so that no request waits for a write.
    """

    def __init__(
        self, sessions: sessionmaker[Session], ttl_s: float = TOKEN_CACHE_S, size: int = 10_000
    ) -> None:
        self.sessions = sessions
        self.ttl_s = ttl_s
        self.size = size
        self._cache: dict[str, tuple[float, Principal, dt.datetime | None]] = {}
        self._used: dict[int, dt.datetime] = {}
        self._lock = threading.Lock()

    def authenticate(self, secret: str) -> Principal | None:
        """The caller of a valid token, or None."""
        token_hash = hash_token(secret)
        now = utcnow()
        entry = self._cache.get(token_hash)
        if entry is not None and time.monotonic() - entry[0] <= self.ttl_s:
            principal, expires_at = entry[1], entry[2]
            if expires_at is not None and expires_at <= now:
                return None
        else:
            with self.sessions() as session:
                row = session.execute(_TOKEN_QUERY, {"token_hash": token_hash, "now": now}).first()
            if row is None:
                self._cache.pop(token_hash, None)
                return None
            principal = Principal(row[0], Role(row[1]), row[2])
            if len(self._cache) >= self.size:
                self._cache.clear()
            self._cache[token_hash] = (time.monotonic(), principal, row[3])
        with self._lock:
            self._used[principal.token_id] = now
        return principal

    def forget(self) -> None:
        """Drop every cached token (after a revocation in this process)."""
        self._cache.clear()

    def flush_usage(self) -> None:
        """Write down when each token used since the last flush was last used."""
        with self._lock:
            used, self._used = self._used, {}
        if not used:
            return
        stmt = (
            update(ApiToken.__table__)  # type: ignore[arg-type]
            .where(ApiToken.__table__.c.id == bindparam("token_id"))
            .values(last_used_at=bindparam("used"))
        )
        with self.sessions.begin() as session:
            session.execute(stmt, [{"token_id": i, "used": t} for i, t in sorted(used.items())])


class RegistryScopes:
    """The compounds each caller may see: a property manager's organisation manages them; a crew's
    organisation holds a contract there (and sees the asset kinds its contracts cover)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def compound_scope(self, principal: Principal) -> CompoundScope:
        """The compounds ``principal`` may see."""
        if principal.reads_all:
            return CompoundScope.all()
        with self.sessions() as session:
            if principal.role is Role.PROPERTY_MANAGER:
                codes = session.scalars(
                    select(Compound.code).where(Compound.manager_org_id == principal.org_id)
                )
                return CompoundScope(compounds={code: None for code in codes})
            kinds: dict[str, set[str]] = {}
            rows = session.execute(
                select(Compound.code, ContractKind.kind)
                .join(Contract, Contract.compound_id == Compound.id)
                .outerjoin(ContractKind, ContractKind.contract_id == Contract.id)
                .where(Contract.org_id == principal.org_id)
            )
            for code, kind in rows:
                kinds.setdefault(code, set()).update([kind] if kind else [])
        return CompoundScope(compounds={code: frozenset(k) for code, k in kinds.items()})


def registry_access(engine: Engine) -> tuple[TokenStore, RegistryScopes]:
    """The token store and the scopes over the registry in ``engine``."""
    sessions = sessionmaker(engine, expire_on_commit=False)
    return TokenStore(sessions), RegistryScopes(sessions)
