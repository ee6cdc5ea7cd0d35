"""API tokens (admin only); a new token's secret is returned once."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlalchemy import select, true

from ....i18n import _
from ....web.errors import invalid
from ...models import ApiToken, Organisation
from ...tokens import ORG_ROLES, hash_token, new_secret
from ..access import TokenStore, utcnow
from ..crud import get_or_404, paginate, visible_ref
from ..deps import AdminDep, IdPath, Limit, Offset, SessionDep, token_store
from ..schemas import Page, TokenCreated, TokenIn, TokenOut

router = APIRouter(prefix="/tokens", tags=["tokens"])
StoreDep = Annotated[TokenStore, Depends(token_store)]


@router.get("", response_model=Page[TokenOut])
def list_tokens(
    session: SessionDep, _admin: AdminDep, limit: Limit = 50, offset: Offset = 0
) -> dict[str, object]:
    """Tokens (without their secrets), with their expiry and last use (to the minute)."""
    return paginate(session, select(ApiToken).order_by(ApiToken.id), limit, offset)


@router.post("", response_model=TokenCreated, status_code=201)
def create_token(body: TokenIn, session: SessionDep, _admin: AdminDep) -> TokenCreated:
    """Create a token; store the returned secret now, it is not shown again."""
    if body.org_id is not None:
        visible_ref(session, Organisation, body.org_id, true(), "org_id", _("organisation"))
    if body.role in ORG_ROLES and body.org_id is None:
        raise invalid("org_id", _("role {role} needs an organisation; give org_id", role=body.role.value),
                      None, "required")  # fmt: skip
    expires_at = None
    if body.expires_at is not None:
        expires_at = body.expires_at.astimezone(dt.UTC).replace(tzinfo=None)
        if expires_at <= utcnow():
            raise invalid("expires_at", _("is in the past; give a time to come"), body.expires_at.isoformat())
    secret = new_secret()
    row = ApiToken(token_hash=hash_token(secret), role=body.role.value, org_id=body.org_id, label=body.label,
                   expires_at=expires_at)  # fmt: skip
    session.add(row)
    session.commit()
    return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=secret)


@router.delete("/{token_id}", status_code=204, response_class=Response)
def revoke_token(token_id: IdPath, session: SessionDep, store: StoreDep, _admin: AdminDep) -> Response:
    """Revoke a token (at once in this process; within 10 s in other API processes)."""
    row = get_or_404(session, ApiToken, token_id, _("token"))
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    store.forget()
    return Response(status_code=204)
