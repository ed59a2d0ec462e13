"""Who is calling the API: bearer tokens (stored hashed), and bounded ids."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.domain.errors import Forbidden
from orchestrator.domain.release import MAX_ID
from orchestrator.store.models import User
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from orchestrator.usecases.users import user_for_token

bearer = HTTPBearer(auto_error=False)
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


def current_user(
    request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> User:
    if cred is None:
        raise HTTPException(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
    with UnitOfWork(request.app.state.ctx) as u:
        try:
            return user_for_token(u.session, cred.credentials)
        except Forbidden:
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"}) from None


Actor = Annotated[User, Depends(current_user)]


def context_of(request: Request) -> Context:
    return request.app.state.ctx
