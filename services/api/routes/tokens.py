"""The caller's API tokens: list them, create one (its secret shown once), revoke one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from fastapi import Path as PathParam
from pydantic import StringConstraints
from sqlalchemy import select

from services.api.auth import UserDep
from services.api.bodies import Body
from services.api.deps import SessionDep
from services.api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, listed
from services.api.problems import not_found
from services.api.views import token_view
from shared.db.schema import ApiToken
from shared.tokens import create_token

router = APIRouter(prefix="/api/tokens", tags=["tokens"])

TokenId = Annotated[str, PathParam(max_length=40)]


class CreateToken(Body):
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


@router.get("", operation_id="listTokens")
async def list_tokens(
    user: UserDep,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> dict[str, Any]:
    """The caller's tokens, newest first, revoked ones included (never their secrets)."""
    statement = select(ApiToken).where(ApiToken.user_id == user.id)
    return await listed(
        session, statement, model=ApiToken, view=token_view, limit=limit, cursor=cursor
    )


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="createToken")
async def create(body: CreateToken, user: UserDep, session: SessionDep) -> dict[str, Any]:
    """Issue a token for the caller; `token` is its secret, shown in this answer only."""
    record, secret = await create_token(session, user_id=user.id, name=body.name)
    await session.commit()
    return {"success": True, "data": {**token_view(record), "token": secret}}


@router.delete("/{token_id}", operation_id="revokeToken")
async def revoke(token_id: TokenId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    """Revoke one of the caller's tokens (and the console sessions it began), at once."""
    record = await session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
    )
    if record is None:
        raise not_found("token")
    if record.revoked_at is None:
        record.revoked_at = datetime.now(UTC)
        await session.commit()
    return {"success": True, "data": token_view(record)}
