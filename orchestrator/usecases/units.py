"""Organisational units (政府网站集约化): a tree with the province office (the root unit)
at the top, departments and cities below it, counties below the cities.

People, channels, review policies and releases belong to one unit; access reaches by
the unit's path from the root (domain/access.py). A single-unit installation has the
root alone, and everything in it (migration 0015).
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlmodel import Session, col, select

from orchestrator.domain.access import UnitPath
from orchestrator.domain.audit_actions import Action
from orchestrator.domain.errors import InvalidInput, NotFound
from orchestrator.domain.release import storable
from orchestrator.domain.review import parse_policy
from orchestrator.store.models import ROOT_UNIT_ID, Unit
from orchestrator.usecases import audit
from orchestrator.usecases.unit_of_work import UnitOfWork

CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MAX_NAME = 100
MAX_DEPTH = 8  # province → city → county is 3; a deeper path is a mistake (or a loop)


def get_unit(session: Session, code: str) -> Unit:
    found = session.exec(select(Unit).where(Unit.code == code)).first()
    if found is None:
        raise NotFound(f"no unit with code {code!r} (list them: tongfa units list)")
    return found


def unit_for(session: Session, code: str | None, field: str = "unit") -> int:
    """The id of the unit named by `code` (None: the root), or InvalidInput naming `field`."""
    if code is None:
        return ROOT_UNIT_ID
    found = session.exec(select(Unit).where(Unit.code == code)).first()
    if found is None or found.id is None:
        raise InvalidInput([(field, f"no unit with code {code!r} (tongfa units list)")])
    return found.id


def path_of(session: Session, unit_id: int | None) -> UnitPath:
    """The unit's codes from the root down to it (session.get: each unit read once)."""
    codes: list[str] = []
    seen: set[int] = set()
    at = ROOT_UNIT_ID if unit_id is None else unit_id
    while at is not None:
        if at in seen or len(seen) > MAX_DEPTH:
            raise RuntimeError(f"the units above unit {unit_id} form a loop")
        seen.add(at)
        unit = session.get(Unit, at)
        if unit is None:
            raise NotFound(f"no unit with id {at}")
        codes.append(unit.code)
        at = unit.parent_id
    return tuple(reversed(codes))


def code_of(session: Session, unit_id: int | None) -> str:
    unit = session.get(Unit, ROOT_UNIT_ID if unit_id is None else unit_id)
    return unit.code if unit is not None else "?"


def name_of(session: Session, unit_id: int | None) -> str:
    unit = session.get(Unit, ROOT_UNIT_ID if unit_id is None else unit_id)
    return unit.name if unit is not None else "?"


def _problems(code: str, name: str) -> list[tuple[str, str]]:
    found = []
    if not CODE.fullmatch(code):
        found.append(
            (
                "code",
                "1 to 32 of a-z, 0-9, '-' and '_', starting with a letter or "
                "digit (e.g. gz, gz-tianhe)",
            )
        )
    if not name.strip() or len(name) > MAX_NAME:
        found.append(("name", f"1 to {MAX_NAME} characters"))
    elif not storable(name) or any(c in name for c in "\r\n\u2028\u2029"):
        found.append(("name", "one line, without control characters"))
    return found


def add_unit(
    uow: UnitOfWork,
    code: str,
    name: str,
    parent: str | None,
    actor: str,
    review_policy: str | None = None,
) -> Unit:
    """A new unit below `parent` (None: directly below the root unit).

    `review_policy` (JSON steps, as TONGFA_REVIEW_POLICY) gives the unit its own review
    steps; without it the installation's apply."""
    problems = _problems(code, name) + _policy_problems(review_policy)
    s = uow.session
    if not problems and s.exec(select(Unit).where(Unit.code == code)).first() is not None:
        problems.append(
            ("code", f"a unit with code {code!r} exists (to change it: tongfa units edit {code})")
        )
    if problems:
        raise InvalidInput(problems)
    parent_id = unit_for(s, parent, "parent")
    _check_depth(s, parent_id)
    row = Unit(code=code, name=name, parent_id=parent_id, review_policy=review_policy or None)
    s.add(row)
    s.flush()
    audit.record(
        s,
        actor=actor,
        action=Action.UNIT_SAVED,
        subject_type="unit",
        subject_id=code,
        after=_view(s, row),
    )
    uow.commit()
    return row


def edit_unit(
    uow: UnitOfWork,
    code: str,
    actor: str,
    *,
    name: str | None = None,
    parent: str | None = None,
    review_policy: str | None = None,
) -> Unit:
    """Rename a unit, move it below another, or set its review steps ("": the
    installation's again); what is not given stays. The root unit has no parent, and no
    unit moves below itself or one of its own units."""
    s = uow.session
    row = get_unit(s, code)
    problems = (_problems(code, name) if name is not None else []) + _policy_problems(review_policy)
    if problems:
        raise InvalidInput(problems)
    parent_id = row.parent_id
    if parent is not None:
        if row.id == ROOT_UNIT_ID:
            raise InvalidInput([("parent", f"{code} is the root unit: it has no parent")])
        parent_id = unit_for(s, parent, "parent")
        if code in path_of(s, parent_id):
            raise InvalidInput(
                [
                    (
                        "parent",
                        f"{parent} is {code} or lies below it: a unit cannot move below itself",
                    )
                ]
            )
        _check_depth(s, parent_id)
    before = _view(s, row)
    row.parent_id = parent_id
    row.name = row.name if name is None else name
    if review_policy is not None:
        row.review_policy = review_policy or None
    s.add(row)
    s.flush()
    after = _view(s, row)
    if after != before:
        audit.record(
            s,
            actor=actor,
            action=Action.UNIT_SAVED,
            subject_type="unit",
            subject_id=code,
            before=before,
            after=after,
        )
    uow.commit()
    return row


def _check_depth(session: Session, parent_id: int) -> None:
    if len(path_of(session, parent_id)) >= MAX_DEPTH:
        raise InvalidInput([("parent", f"units go at most {MAX_DEPTH} levels deep")])


def _view(session: Session, unit: Unit) -> dict[str, Any]:
    return {
        "name": unit.name,
        "parent": _parent_code(session, unit),
        "review_policy": unit.review_policy,
    }


def _policy_problems(text: str | None) -> list[tuple[str, str]]:
    if not text:
        return []
    try:
        parse_policy(text)
    except InvalidInput as exc:
        return [("review_policy", message) for _, message in exc.problems]
    return []


def _parent_code(session: Session, unit: Unit) -> str | None:
    return None if unit.parent_id is None else code_of(session, unit.parent_id)


def list_units(session: Session) -> list[dict[str, Any]]:
    """Every unit, each after its parent (a tree read top to bottom)."""
    rows = list(session.exec(select(Unit).order_by(col(Unit.id))))
    views = [
        {
            "code": u.code,
            "name": u.name,
            "parent": _parent_code(session, u),
            "path": list(path_of(session, u.id)),
            "review_policy": None if u.review_policy is None else json.loads(u.review_policy),
        }
        for u in rows
    ]
    return sorted(views, key=lambda v: v["path"])
