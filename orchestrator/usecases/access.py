"""The access policy (domain/access.py) applied to stored people and releases.

Every use case an entry point calls asks here; the API, the console and the CLI
never decide access themselves.
"""

from __future__ import annotations

from sqlmodel import Session, select

from orchestrator.domain import access
from orchestrator.domain.access import Duty, Op, Principal, Resource, decide, require
from orchestrator.domain.errors import Forbidden
from orchestrator.domain.states import ReleaseState as R
from orchestrator.store.models import Release, User
from orchestrator.usecases.users import get_user


def principal(session: Session, name: str) -> Principal:
    user = get_user(session, name)
    return Principal.of(user.name, user.roles)


def require_duty(user: User, duty: Duty) -> Principal:
    """The acting principal, if the person (already looked up, not disabled) holds `duty`."""
    if user.disabled:
        raise Forbidden(f"{user.name} is disabled")
    who = Principal.of(user.name, user.roles)
    access.require_duty(who, duty)
    return who


def group_owner(session: Session, group: str | None, exclude_id: int | None = None) -> str | None:
    """The author of a go-live group's first member: the one who consents to joiners."""
    if not group:
        return None
    stmt = (select(Release.author).where(Release.golive_group == group,
                                         Release.group_status == "member",
                                         Release.state != R.WITHDRAWN)
            .order_by(Release.id).limit(1))
    if exclude_id is not None:
        stmt = stmt.where(Release.id != exclude_id)
    return session.exec(stmt).first()


def resource(session: Session, release: Release) -> Resource:
    return Resource(
        state=release.state, author=release.author, co_authors=frozenset(release.co_authors),
        contributors=frozenset(release.contributors),
        group_owner=group_owner(session, release.golive_group, exclude_id=release.id)
        if release.group_status != "member" else None,
    )


def check(session: Session, actor: str, op: Op, release: Release | None = None) -> Principal:
    """The acting principal, if `op` is allowed; NotFound or Forbidden otherwise."""
    who = principal(session, actor)
    require(who, op, None if release is None else resource(session, release))
    return who


def allows(session: Session, who: Principal, op: Op, release: Release) -> bool:
    return bool(decide(who, op, resource(session, release)))
