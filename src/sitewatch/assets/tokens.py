"""API tokens: random 32-byte secrets, stored only as their SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..i18n import _
from ..text import name_key
from ..web.principal import ORG_ROLES as ORG_ROLES
from .models import ApiToken, Organisation, Role


class TokenError(ValueError):
    """A token cannot be created as asked."""


def hash_token(token: str) -> str:
    """The stored form of a token (SHA-256 is enough for 256-bit random secrets)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def new_secret() -> str:
    """A fresh token: ``sw_`` and 32 random bytes, URL-safe."""
    return "sw_" + secrets.token_urlsafe(32)


def create_token(
    session: Session, role: Role, org: str | None = None, label: str | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[str, ApiToken]:
    """A new token (shown once) and its stored row; property managers and crews need an organisation;
    ``expires_at`` (naive UTC) ends it, else it is valid until revoked."""
    org_row = None
    if org is not None:
        org_row = session.scalars(select(Organisation).where(Organisation.name_key == name_key(org))).one_or_none()
        if org_row is None:
            raise TokenError(_("unknown organisation {org}; check the name with the organisations list", org=org))
    if role in ORG_ROLES and org_row is None:
        raise TokenError(_("role {role} needs an organisation: add --org NAME", role=role.value))
    token = new_secret()
    row = ApiToken(
        token_hash=hash_token(token), role=role.value, org_id=org_row.id if org_row else None, label=label,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return token, row


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def revoke_tokens(session: Session, token_ids: list[int]) -> list[int]:
    """Revoke these tokens (those already revoked stay as they are); returns the ids not found."""
    rows = {t.id: t for t in session.scalars(select(ApiToken).where(ApiToken.id.in_(token_ids)))}
    now = _now()
    for row in rows.values():
        if row.revoked_at is None:
            row.revoked_at = now
    return [i for i in token_ids if i not in rows]


def rotate_token(
    session: Session, token_id: int, grace: dt.timedelta, expires_at: dt.datetime | None = None
) -> tuple[str, ApiToken, ApiToken]:
    """A new token (valid until ``expires_at``, or until revoked) with the role, organisation and
    label of ``token_id``, whose own validity ends ``grace`` from now, the time to put the new
    secret in place: (secret, new row, old row)."""
    old = session.get(ApiToken, token_id)
    if old is None or old.revoked_at is not None:
        raise TokenError(_("no active token {id}; see sitewatch assets token list", id=token_id))
    secret = new_secret()
    new = ApiToken(token_hash=hash_token(secret), role=old.role, org_id=old.org_id, label=old.label,
                   expires_at=expires_at)  # fmt: skip
    session.add(new)
    end = _now() + grace
    if old.expires_at is None or old.expires_at > end:
        old.expires_at = end
    session.flush()
    return secret, new, old
