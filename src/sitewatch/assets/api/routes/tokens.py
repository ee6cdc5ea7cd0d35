"""API tokens (admin only); a new token's secret is returned once."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from ...models import ApiToken, Organisation
from ...tokens import ORG_ROLES, hash_token, new_secret
from ..crud import get_or_404, paginate
from ..deps import AdminDep, IdPath, Limit, Offset, SessionDep
from ..errors import RESPONSES, invalid
from ..schemas import Page, TokenCreated, TokenIn, TokenOut

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=RESPONSES)


@router.get("", response_model=Page[TokenOut])
def list_tokens(session: SessionDep, _: AdminDep, limit: Limit = 50, offset: Offset = 0) -> dict[str, object]:
    """Tokens (without their secrets)."""
    return paginate(session, select(ApiToken).order_by(ApiToken.id), limit, offset)


@router.post("", response_model=TokenCreated, status_code=201)
def create_token(body: TokenIn, session: SessionDep, _: AdminDep) -> TokenCreated:
    """Create a token; store the returned secret now, it is not shown again."""
    if body.org_id is not None and session.get(Organisation, body.org_id) is None:
        raise invalid("org_id", f"unknown organisation {body.org_id}", f"单位 {body.org_id} 不存在")
    if body.role in ORG_ROLES and body.org_id is None:
        raise invalid(
            "org_id", f"role {body.role.value} needs an organisation", f"角色 {body.role.value} 需要指定单位"
        )
    secret = new_secret()
    row = ApiToken(token_hash=hash_token(secret), role=body.role.value, org_id=body.org_id, label=body.label)
    session.add(row)
    session.commit()
    return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=secret)


@router.delete("/{token_id}", status_code=204, response_class=Response)
def revoke_token(token_id: IdPath, request: Request, session: SessionDep, _: AdminDep) -> Response:
    """Revoke a token (at once in this process; within 10 s in other API processes)."""
    row = get_or_404(session, ApiToken, token_id, ("token", "令牌"))
    if row.revoked_at is None:
        row.revoked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        session.commit()
    request.app.state.token_cache.clear()
    return Response(status_code=204)
