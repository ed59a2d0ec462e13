"""People, their roles, and their API tokens (stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
from functools import cache
from typing import Any

from sqlmodel import Session, select

from orchestrator.domain.errors import Forbidden, InvalidInput, NotFound
from orchestrator.domain.review import ROLES
from orchestrator.store.models import ApiToken, User
from orchestrator.usecases import audit
from orchestrator.usecases.unit_of_work import UnitOfWork


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(uow: UnitOfWork, name: str, roles: list[str], actor: str = "system") -> str:
    """Create a user (or add roles to one) and return a new API token, shown once."""
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise InvalidInput([("role", f"must be among {', '.join(ROLES)}; got {bad or roles}")])
    if not name or len(name) > 64:
        raise InvalidInput([("name", "1 to 64 characters")])
    s = uow.session
    user = s.exec(select(User).where(User.name == name)).first()
    before = {"roles": list(user.roles)} if user else None
    if user is None:
        user = User(name=name, roles=[])
    user.roles = sorted(set(user.roles) | set(roles))
    s.add(user)
    s.flush()
    token = "tf_" + secrets.token_urlsafe(32)
    s.add(ApiToken(user_id=user.id, token_hash=_token_hash(token)))
    audit.record(
        s, actor=actor, action="user.saved", subject_type="user", subject_id=name,
        before=before, after={"roles": user.roles},
    )
    uow.commit()
    return token


def get_user(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFound(f"no user named {name!r} (add one: tongfa users add NAME --role ROLE)")
    return user


def user_for_token(session: Session, token: str) -> User:
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == _token_hash(token))).first()
    if row is None:
        raise Forbidden("unknown or revoked token")
    user = session.get(User, row.user_id)
    assert user is not None
    return user


def require_role(user: User, *roles: str) -> None:
    if "admin" in user.roles or any(r in user.roles for r in roles):
        return
    raise Forbidden(f"{user.name} needs the role {' or '.join(roles)}")


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.name)))


_hasher = None


def _argon() -> Any:
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def set_password(uow: UnitOfWork, name: str, password: str, actor: str) -> None:
    if len(password) < 10:
        raise InvalidInput([("password", "at least 10 characters")])
    user = get_user(uow.session, name)
    user.password_hash = _argon().hash(password)
    uow.session.add(user)
    audit.record(uow.session, actor=actor, action="user.password_set", subject_type="user",
                 subject_id=name)
    uow.commit()


def check_password(session: Session, name: str, password: str) -> User | None:
    """The user if the password is right; None otherwise (never says which part was wrong)."""
    from argon2.exceptions import VerificationError

    user = session.exec(select(User).where(User.name == name)).first()
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    try:  # the same work for an unknown name: timing must not reveal which names exist
        _argon().verify(stored, password)
    except VerificationError:
        return None
    return user if user is not None and user.password_hash else None


@cache
def _dummy_hash() -> str:
    return _argon().hash("no such user: " + secrets.token_hex(8))
