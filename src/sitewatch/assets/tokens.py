"""API tokens: random 32-byte secrets, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ApiToken, Organisation, Role

ORG_ROLES = (Role.PROPERTY_MANAGER, Role.CREW)  # roles whose scope is an organisation


class TokenError(ValueError):
    """A token cannot be created as asked."""


def hash_token(token: str) -> str:
    """The stored form of a token (SHA-256 is enough for 256-bit random secrets)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def new_secret() -> str:
    """A fresh token: ``sw_`` and 32 random bytes, URL-safe."""
    return "sw_" + secrets.token_urlsafe(32)


def create_token(
    session: Session, role: Role, org: str | None = None, label: str | None = None
) -> tuple[str, ApiToken]:
    """A new token (shown once) and its stored row; property managers and crews need an organisation."""
    org_row = None
    if org is not None:
        org_row = session.scalars(select(Organisation).where(Organisation.name == org)).one_or_none()
        if org_row is None:
            raise TokenError(f"unknown organisation {org!r} / 单位“{org}”不存在")
    if role in ORG_ROLES and org_row is None:
        raise TokenError(f"role {role.value} needs --org / 角色 {role.value} 需要指定单位 --org")
    token = new_secret()
    row = ApiToken(
        token_hash=hash_token(token), role=role.value, org_id=org_row.id if org_row else None, label=label
    )
    session.add(row)
    session.flush()
    return token, row
