"""The access policy (domain/access.py) applied to stored people and releases.

Every use case an entry point calls asks here; the API, the console and the CLI
never decide access themselves.
"""

from __future__ import annotations

from sqlmodel import Session

from orchestrator.domain import access
from orchestrator.domain.access import Duty, Op, Principal, Resource, decide, require
from orchestrator.domain.errors import Forbidden
from orchestrator.store.models import GoLiveGroup, Release, User
from orchestrator.usecases.units import path_of
from orchestrator.usecases.users import get_user


def principal(session: Session, name: str) -> Principal:
    return principal_of(session, get_user(session, name))


def principal_of(session: Session, user: User) -> Principal:
    """The person as access sees them: name, roles and the path of their unit."""
    return Principal.of(user.name, user.roles, path_of(session, user.unit_id))


def require_duty(user: User, duty: Duty) -> Principal:
    """The acting principal, if the person (already looked up, not disabled) holds `duty`
    in some unit; the use case then checks the unit of what it acts on (duty_in)."""
    if user.disabled:
        raise Forbidden(f"{user.name} is disabled")
    who = Principal.of(user.name, user.roles)
    access.require_duty(who, duty)
    return who


def duty_in(session: Session, actor: str, duty: Duty, unit_id: int | None) -> Principal:
    """The acting principal, if `actor` holds `duty` for things of the unit `unit_id`."""
    who = principal(session, actor)
    access.require_duty(who, duty, path_of(session, unit_id))
    return who


def group_owner(session: Session, group: str | None) -> str | None:
    """Who consents to a go-live group's joiners: fixed when the group was first named."""
    if not group:
        return None
    found = session.get(GoLiveGroup, group)
    return None if found is None else found.owner


def resource(session: Session, release: Release) -> Resource:
    return Resource(
        state=release.state, author=release.author, unit=path_of(session, release.unit_id),
        co_authors=frozenset(release.co_authors),
        contributors=frozenset(release.contributors),
        group_owner=group_owner(session, release.golive_group),
    )


def check(session: Session, actor: str, op: Op, release: Release | None = None) -> Principal:
    """The acting principal, if `op` is allowed; NotFound or Forbidden otherwise."""
    who = principal(session, actor)
    require(who, op, None if release is None else resource(session, release))
    return who


def allows(session: Session, who: Principal, op: Op, release: Release) -> bool:
    return bool(decide(who, op, resource(session, release)))
