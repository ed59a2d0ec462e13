"""People, their roles, their API tokens (stored hashed) and their console sign-ins.

A token is named by its first characters (its prefix) in listings, audit rows and
revocation; the token itself is shown once, at creation, and never stored or logged.
Every token expires (settings.api_token_days unless given). A disabled person keeps
their record but cannot sign in, call the API or act in any use case.

Console sessions carry the person's session generation; signing out, a password change
and disabling bump it, which ends every session of that person at once.

Failed sign-ins are counted in the database (table login_failure), not in a process's
memory, so the limits hold across every API worker process and restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from orchestrator.domain.audit_actions import Action
from orchestrator.domain.clock import iso, utcnow
from orchestrator.domain.errors import Forbidden, InvalidInput, NotFound, Refused
from orchestrator.domain.release import storable
from orchestrator.domain.review import ROLES
from orchestrator.store.models import ApiToken, LoginFailure, User
from orchestrator.usecases import audit
from orchestrator.usecases.unit_of_work import UnitOfWork

PREFIX_CHARS = 11  # "tf_" and 8 random characters: enough to name a token, useless to use it
MAX_TOKEN_DAYS = 3650
LAST_USED_EVERY = dt.timedelta(minutes=1)  # last_used_at to the minute: no write per request


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_roles(roles: list[str]) -> None:
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise InvalidInput([("role", f"must be among {', '.join(ROLES)}; got {bad}")])


def add_user(uow: UnitOfWork, name: str, roles: list[str], actor: str = "system",
             expires_days: int | None = None, unit: str | None = None) -> str:
    """Create a user (or add roles to one) and return a new API token, shown once.

    `unit` (a code) is the unit they belong to (or move to); a new person without one
    belongs to the root unit."""
    from orchestrator.usecases.units import code_of, unit_for

    _check_roles(roles)
    if not roles:
        raise InvalidInput([("role", f"must be among {', '.join(ROLES)}; got none")])
    if not name or len(name) > 64 or not storable(name) or not name.isprintable():
        raise InvalidInput([("name", "1 to 64 printable characters on one line")])
    s = uow.session
    unit_id = None if unit is None else unit_for(s, unit)
    user = s.exec(select(User).where(User.name == name)).first()
    before = {"roles": list(user.roles), "unit": code_of(s, user.unit_id)} if user else None
    if user is None:
        user = User(name=name, roles=[])
    user.roles = sorted(set(user.roles) | set(roles))
    if unit_id is not None:
        user.unit_id = unit_id
    s.add(user)
    s.flush()
    audit.record(
        s, actor=actor, action=Action.USER_SAVED, subject_type="user", subject_id=name,
        before=before, after={"roles": user.roles, "unit": code_of(s, user.unit_id)},
    )
    token = _issue_token(uow, user, actor, "", expires_days)
    uow.commit()
    return token


def new_token(uow: UnitOfWork, name: str, actor: str, label: str = "",
              expires_days: int | None = None) -> str:
    """Another API token for a person (e.g. one per system that calls the API), shown once."""
    user = get_user(uow.session, name, disabled_ok=True)
    token = _issue_token(uow, user, actor, label, expires_days)
    uow.commit()
    return token


def _issue_token(uow: UnitOfWork, user: User, actor: str, label: str,
                 expires_days: int | None) -> str:
    days = uow.ctx.settings.api_token_days if expires_days is None else expires_days
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise InvalidInput([("expires_days", f"1 to {MAX_TOKEN_DAYS} days; got {days}")])
    if len(label) > 64 or any(not c.isprintable() for c in label):
        raise InvalidInput([("label", "up to 64 printable characters")])
    token = "tf_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=_token_hash(token), prefix=token[:PREFIX_CHARS],
                   label=label, expires_at=utcnow() + dt.timedelta(days=days))
    uow.session.add(row)
    audit.record(uow.session, actor=actor, action=Action.TOKEN_CREATED, subject_type="api_token",
                 subject_id=row.prefix, after={"user": user.name, "label": label,
                                               "expires_at": iso(row.expires_at)})
    return token


def list_tokens(session: Session, name: str) -> list[dict[str, Any]]:
    """A person's tokens, oldest first, named by prefix; the tokens themselves are not kept."""
    user = get_user(session, name, disabled_ok=True)
    rows = session.exec(select(ApiToken).where(ApiToken.user_id == user.id)
                        .order_by(col(ApiToken.id)))
    now = utcnow()
    return [{"id": t.prefix, "label": t.label, "state": _token_state(t, now),
             "created_at": iso(t.created_at), "expires_at": iso(t.expires_at),
             "last_used_at": iso(t.last_used_at), "revoked_at": iso(t.revoked_at)}
            for t in rows]


def _token_state(token: ApiToken, now: dt.datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    return "expired" if token.expires_at <= now else "active"


def revoke_token(uow: UnitOfWork, token_id: str, actor: str) -> str:
    """Revoke a token by its id (prefix); returns whose it was. Revoking twice changes nothing."""
    s = uow.session
    row = s.exec(select(ApiToken).where(ApiToken.prefix == token_id)).first()
    if row is None:
        raise NotFound(f"no API token {token_id!r} (list them: tongfa users tokens NAME)")
    owner = s.get(User, row.user_id)
    assert owner is not None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        s.add(row)
        audit.record(s, actor=actor, action=Action.TOKEN_REVOKED, subject_type="api_token",
                     subject_id=row.prefix, after={"user": owner.name})
        uow.commit()
    return owner.name


def get_user(session: Session, name: str, *, disabled_ok: bool = False) -> User:
    """The person named; a disabled person is refused unless the caller only manages them."""
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFound(f"no user named {name!r} (add one: tongfa users add NAME --role ROLE)")
    if user.disabled and not disabled_ok:
        raise Forbidden(f"{name} is disabled (tongfa users enable {name})")
    return user


def user_for_token(session: Session, token: str) -> User:
    """The person a bearer token belongs to; unknown, expired, revoked and disabled are one
    refusal (the caller answers 401 without saying which)."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == _token_hash(token))).first()
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Forbidden("unknown, expired or revoked token")
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        raise Forbidden("unknown, expired or revoked token")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        row.last_used_at = now
        session.add(row)
        session.commit()
    return user


def change_roles(uow: UnitOfWork, name: str, actor: str, *, add: list[str] | None = None,
                 remove: list[str] | None = None, exact: list[str] | None = None) -> list[str]:
    """Add and remove roles, or set exactly these; returns the roles now held."""
    add, remove = list(add or []), list(remove or [])
    if exact is not None and (add or remove):
        raise InvalidInput([("role", "either set the roles or add/remove some, not both")])
    _check_roles([*add, *remove, *(exact or [])])
    user = get_user(uow.session, name, disabled_ok=True)
    before = sorted(user.roles)
    after = sorted(set(exact) if exact is not None else (set(before) | set(add)) - set(remove))
    if not after:
        raise InvalidInput([("role", "a person keeps at least one role; to stop someone "
                                     f"acting, disable them (tongfa users disable {name})")])
    if after != before:
        user.roles = after
        uow.session.add(user)
        audit.record(uow.session, actor=actor, action=Action.USER_ROLES_CHANGED, subject_type="user",
                     subject_id=name, before={"roles": before}, after={"roles": after})
        uow.commit()
    return after


def set_disabled(uow: UnitOfWork, name: str, disabled: bool, actor: str) -> None:
    """Disable a person (tokens refused, console sessions ended, no action taken) or enable."""
    user = get_user(uow.session, name, disabled_ok=True)
    if user.disabled == disabled:
        return
    user.disabled = disabled
    if disabled:
        user.session_generation += 1
    uow.session.add(user)
    audit.record(uow.session, actor=actor, action=Action.USER_DISABLED if disabled else "user.enabled",
                 subject_type="user", subject_id=name, before={"disabled": not disabled},
                 after={"disabled": disabled})
    uow.commit()


def list_users(session: Session) -> list[User]:
    """Everyone, disabled people included (they stay on record)."""
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
    user = get_user(uow.session, name, disabled_ok=True)
    user.password_hash = _argon().hash(password)
    user.session_generation += 1  # whoever held the old password is signed out
    uow.session.add(user)
    audit.record(uow.session, actor=actor, action=Action.USER_PASSWORD_SET, subject_type="user",
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
    if user is None or not user.password_hash or user.disabled:
        return None
    return user


@cache
def _dummy_hash() -> str:
    return _argon().hash("no such user: " + secrets.token_hex(8))


# ------------------------------------------------------------------ console sign-in


@dataclass(frozen=True)
class LoginLimits:
    """Failed sign-ins allowed within the window, counted three ways."""

    per_account_and_address: int = 5  # one person mistyping at one desk
    per_account: int = 20  # guessing at one account from many addresses
    per_address: int = 20  # one address trying many accounts (password spraying)
    window_seconds: float = 300.0


LOGIN_LIMITS = LoginLimits()


class TooManyAttempts(Refused):
    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed sign-ins; try again in {int(retry_after)} s")


@dataclass(frozen=True)
class SignedIn:
    """Who signed in and the session generation their console cookie must carry."""

    name: str
    generation: int


def sign_in(uow: UnitOfWork, name: str, password: str, address: str,
            limits: LoginLimits = LOGIN_LIMITS) -> SignedIn:
    """Check the throttle, then the password. Raises TooManyAttempts, or Forbidden for a
    wrong name, a wrong password or a disabled person alike (and counts the failure)."""
    s = uow.session
    account, address, now = name.strip().lower()[:64], address[:64], utcnow()
    # a name no person can have (a NUL: no text column takes it) is a wrong name, counted
    account = "".join(c for c in account if storable(c))
    wait = _login_wait(s, account, address, now, limits)
    if wait:
        raise TooManyAttempts(wait)
    user = check_password(s, name, password) if name and password and storable(name) else None
    if user is None:
        window_start = now - dt.timedelta(seconds=limits.window_seconds)
        s.execute(delete(LoginFailure).where(col(LoginFailure.at) < window_start))
        s.add(LoginFailure(account=account, address=address, at=now))
        uow.commit()
        raise Forbidden("wrong name or password")
    s.execute(delete(LoginFailure).where(LoginFailure.account == account,
                                         LoginFailure.address == address))
    uow.commit()
    return SignedIn(user.name, user.session_generation)


def _login_wait(session: Session, account: str, address: str, now: dt.datetime,
                limits: LoginLimits) -> float:
    """0 when a try is allowed; else seconds until enough failures have left the window."""
    window = dt.timedelta(seconds=limits.window_seconds)
    wait = 0.0
    for limit, where in (
        (limits.per_account_and_address,
         (LoginFailure.account == account, LoginFailure.address == address)),
        (limits.per_account, (LoginFailure.account == account,)),
        (limits.per_address, (LoginFailure.address == address,)),
    ):
        # the limit-th most recent failure in the window: when it leaves, a try is allowed
        at = session.exec(select(LoginFailure.at).where(*where, col(LoginFailure.at) > now - window)
                          .order_by(col(LoginFailure.at).desc()).offset(limit - 1).limit(1)).first()
        if at is not None:
            wait = max(wait, 1.0, (at + window - now).total_seconds())
    return wait


def session_user(session: Session, name: str, generation: object) -> User | None:
    """The person a console session names, while that session is still valid: not
    disabled, and signed in since their last sign-out or password change."""
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None or user.disabled or generation != user.session_generation:
        return None
    return user


def sign_out(uow: UnitOfWork, name: str, generation: object) -> None:
    """End every console session of this person — if the cookie signing out is current
    (a stale copied cookie cannot sign the person out of their new session)."""
    user = session_user(uow.session, name, generation)
    if user is not None:
        user.session_generation += 1
        uow.session.add(user)
        uow.commit()
