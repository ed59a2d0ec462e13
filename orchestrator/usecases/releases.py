"""Writing, editing and submitting a release."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from channels.contract import ChannelError, ValidationFailed
from orchestrator.domain.access import NO_SUCH_RELEASE, Op, Principal
from orchestrator.domain.audit_actions import Action
from orchestrator.domain.clock import iso, utcnow
from orchestrator.domain.errors import Forbidden, InvalidInput, NotFound, Refused
from orchestrator.domain.release import (
    MAX_ID,
    ReleaseInput,
    disclosure_problem,
    go_live_problems,
)
from orchestrator.domain.states import (
    DeliveryState,
    ReleaseState,
    release_transition,
)
from orchestrator.store import files
from orchestrator.store.models import Delivery, GoLiveGroup, Release, SignOff, User
from orchestrator.usecases import access, alerts, audit, content_checks, units, versions
from orchestrator.usecases.channels import list_channels
from orchestrator.usecases.rendering import adapters, located, render_all, set_content
from orchestrator.usecases.unit_of_work import UnitOfWork
from orchestrator.usecases.users import get_user


def get_release(session: Session, release_id: int) -> Release:
    # an id no row can have is simply not found (a database would overflow on it)
    release = session.get(Release, release_id) if 1 <= release_id <= MAX_ID else None
    if release is None:
        raise NotFound(NO_SUCH_RELEASE)
    return release


def _store_files(uow: UnitOfWork, paths: list[str], base: Path, field: str) -> list[dict]:
    return [files.put(uow.ctx.settings.resolved_files_dir, path.read_bytes(), path.name)
            for path in located(paths, base, field)]


def _check_references(session: Session, data: ReleaseInput, actor: str, unit_id: int) -> None:
    # a release goes out on its own unit's channels only (谁发布谁审查); another unit's
    # channel is answered like one that does not exist
    known = {c.name for c in list_channels(session) if c.unit_id == unit_id}
    unit = units.code_of(session, unit_id)
    problems = [
        (f"channels[{i}]", f"no channel named {name!r} in the unit {unit} "
                           f"(its channels: {', '.join(sorted(known)) or 'none'})")
        for i, name in enumerate(data.channels) if name not in known
    ]
    problems += [
        (f"overrides.{name}", "overrides a channel that is not a target")
        for name in data.overrides if name not in data.channels
    ]
    for i, name in enumerate(data.co_authors):
        person = session.exec(select(User).where(User.name == name)).first()
        if person is None or "author" not in person.roles or person.unit_id != unit_id:
            problems.append((f"co_authors[{i}]", f"no author named {name!r} in the unit {unit}"))
    # one answer for a release that does not exist and one the actor may not read: the
    # difference would tell them it exists (and, for corrects, whether it went out)
    if data.parent is not None and _readable_or_none(session, data.parent, actor) is None:
        problems.append(("parent", f"no release with id {data.parent}"))
    problems += correction_problems(session, data.corrects, actor)
    if problems:
        raise InvalidInput(problems)


def correction_problems(session: Session, corrects: int | None,
                        actor: str | None) -> list[tuple[str, str]]:
    """A correction corrects a published release `actor` may read (None: the system)."""
    if corrects is None:
        return []
    corrected = _readable_or_none(session, corrects, actor)
    if corrected is None or corrected.state not in ("published", "partially_published"):
        return [("corrects", f"release {corrects} is not published")]
    return []


def _readable_or_none(session: Session, release_id: int, actor: str | None) -> Release | None:
    found = session.get(Release, release_id) if 1 <= release_id <= MAX_ID else None
    if found is None or actor is not None and not access.allows(
            session, access.principal(session, actor), Op.READ, found):
        return None
    return found


def _apply(uow: UnitOfWork, release: Release, data: ReleaseInput, base: Path, actor: str) -> None:
    problems = go_live_problems(data.go_live_at, now=utcnow(),
                                horizon_days=uow.ctx.settings.go_live_horizon_days)
    if problems:
        raise InvalidInput(problems)
    _check_references(uow.session, data, actor, release.unit_id)
    problems = versions.version_problems(uow.session, release, data.corrects, data.overrides)
    if problems:
        raise InvalidInput(problems)
    images = _store_files(uow, data.images, base, "images")
    attachments = _store_files(uow, data.attachments, base, "attachments")
    set_content(release, data, images, attachments)
    release.group_status = _group_status(uow.session, release, data.group)
    release.golive_group = data.group
    release.co_authors = [name for name in data.co_authors if name != release.author]
    release.updated_at = utcnow()


def _group_status(session: Session, release: Release, group: str | None) -> str | None:
    """Joining a go-live group needs its owner's consent (golive.consent_to_group), given to
    this content at this time: any edit of a joiner asks for it again. The first to name a
    group owns it (GoLiveGroup) — until `_claim_group` lets a squatted name lapse."""
    if not group:
        return None
    owner = access.group_owner(session, group)
    if owner is None:
        _found_group(session, group, release.author)
        owner = access.group_owner(session, group)
    if owner == release.author:
        return "member"
    if group == release.golive_group and release.group_status in ("refused", "removed"):
        return release.group_status  # not asked again by the same group name
    return "pending"


def _claim_group(session: Session, release: Release, actor: str) -> None:
    """At submit: a joiner still waiting for the consent of an owner who has never
    submitted a member of the group takes the group over (the owner's draft alone does not
    hold a name: a squatted group never stalls another author's signed release)."""
    group = release.golive_group
    if not group or release.group_status != "pending":
        return
    row = session.get(GoLiveGroup, group)
    if row is None or row.owner == release.author or session.exec(select(Release.id).where(
            Release.golive_group == group, Release.author == row.owner,
            Release.state != ReleaseState.DRAFT)).first() is not None:
        return
    before = row.owner
    row.owner = release.author
    session.add(row)
    release.group_status = "member"
    for draft in session.exec(select(Release).where(  # the old owner's drafts join as anyone
            Release.golive_group == group, Release.author == before,
            Release.group_status == "member")).all():
        draft.group_status = "pending"
        session.add(draft)
    audit.record(session, actor=actor, action=Action.GROUP_LAPSED, subject_type="release",
                 subject_id=release.id, release_id=release.id,
                 before={"group": group, "owner": before},
                 after={"group": group, "owner": row.owner})


def _found_group(session: Session, group: str, owner: str) -> None:
    """Name a new go-live group; whoever names it first at the same moment owns it."""
    try:
        with session.begin_nested():
            session.add(GoLiveGroup(name=group, owner=owner))
    except IntegrityError:
        pass  # named by someone else a moment ago: theirs


def ask_group_consent_again(session: Session, release: Release) -> bool:
    """A joiner's consent covered its content and time; after a change it is asked again.

    True when the release went back to waiting for the group owner."""
    if release.group_status != "member" or release.author == access.group_owner(
            session, release.golive_group):
        return False
    release.group_status = "pending"
    return True


def contributed(release: Release, actor: str) -> None:
    """Note who wrote a revision: four-eyes keeps them from signing it (domain/review.py)."""
    if actor not in release.contributors:
        release.contributors = [*release.contributors, actor]


def void_other_signoffs(session: Session, release: Release) -> int:
    """Sign-offs bound another content hash than the current one no longer count."""
    rows = session.exec(select(SignOff).where(
        SignOff.release_id == release.id, SignOff.voided == False,  # noqa: E712
        SignOff.content_hash != release.content_hash)).all()
    for row in rows:
        row.voided = True
        session.add(row)
    return len(rows)


def create(uow: UnitOfWork, data: ReleaseInput, actor: str, base: Path = Path(".")) -> int:
    access.check(uow.session, actor, Op.CREATE)
    # written in its author's unit: reviewed, signed and sent out by that unit's people
    author = get_user(uow.session, actor)
    release = Release(title="", body_source="", body_html="", author=actor,
                      unit_id=author.unit_id)
    _apply(uow, release, data, base, actor)
    contributed(release, actor)
    uow.session.add(release)
    uow.session.flush()
    audit.record(
        uow.session, actor=actor, action=Action.RELEASE_CREATED, subject_type="release",
        subject_id=release.id, release_id=release.id,
        after={"state": release.state, "co_authors": release.co_authors,
               "group": release.golive_group, "group_status": release.group_status},
    )
    uow.commit()
    assert release.id is not None
    return release.id


def _void_signoffs(session: Session, release: Release) -> int:
    rows = session.exec(
        select(SignOff).where(SignOff.release_id == release.id, SignOff.voided == False)  # noqa: E712
    ).all()
    for row in rows:
        row.voided = True
        session.add(row)
    return len(rows)


def _cancel_open_deliveries(session: Session, release: Release) -> int:
    rows = session.exec(
        select(Delivery).where(
            Delivery.release_id == release.id,
            Delivery.state.in_([DeliveryState.PENDING, DeliveryState.STAGED]),
        )
    ).all()
    for row in rows:
        row.state = DeliveryState.CANCELLED
        session.add(row)
    return len(rows)


def edit(uow: UnitOfWork, release_id: int, data: ReleaseInput, actor: str, base: Path = Path(".")) -> None:
    """Any edit voids every sign-off so far and sends a reviewed release back to review."""
    s = uow.session
    release = get_release(s, release_id)
    access.check(s, actor, Op.EDIT, release)  # who first, then whether now (editable states)
    if actor != release.author and set(data.co_authors) != set(release.co_authors):
        raise Forbidden("only the release's owner sets its co_authors")
    before = {"state": release.state, "revision": release.revision, "content_hash": release.content_hash}
    target = {
        ReleaseState.DRAFT: None,
        ReleaseState.REJECTED: ReleaseState.DRAFT,
    }.get(ReleaseState(release.state), ReleaseState.IN_REVIEW)
    if target is not None:
        release.state = release_transition(release.state, target)
    _apply(uow, release, data, base, actor)
    contributed(release, actor)
    release.revision += 1
    release.approved_hash = None
    voided = _void_signoffs(s, release)
    cancelled = _cancel_open_deliveries(s, release)
    if release.state == ReleaseState.IN_REVIEW:
        release.content_hash = validated_hash(uow, release)
    s.add(release)
    audit.record(
        s, actor=actor, action=Action.RELEASE_EDITED, subject_type="release", subject_id=release.id,
        release_id=release.id, before=before,
        after={"state": release.state, "revision": release.revision,
               "content_hash": release.content_hash, "group_status": release.group_status},
        detail={"signoffs_voided": voided, "deliveries_cancelled": cancelled},
    )
    uow.commit()


def validated_hash(uow: UnitOfWork, release: Release) -> str:
    """Render every channel, check its limits, and return the content hash."""
    settings = uow.ctx.settings
    payloads, digest = render_all(settings, uow.session, release)
    problems = []
    for name, adapter in adapters(settings, uow.session, release).items():
        try:
            adapter.validate(payloads[name])
        except ValidationFailed as exc:
            problems += [(f"{name}.{p.field}", p.message) for p in exc.problems]
        except ChannelError as exc:
            problems.append((name, exc.message))
    found = content_checks.findings(settings, uow.session, release, payloads)
    problems += [(f.where, f"{f.message}（{f.rule}）") for f in content_checks.blocking(found)]
    if problems:
        raise InvalidInput(problems)
    return digest


def check(uow: UnitOfWork, release_id: int, actor: str | None = None) -> list[dict[str, str]]:
    """The pre-publish findings for what every channel would show now (blocks and flags).

    Entry points pass the actor; None is the system itself (workers, internal callers)."""
    release = get_release(uow.session, release_id)
    if actor is not None:
        access.check(uow.session, actor, Op.CHECKS, release)
    payloads, _ = render_all(uow.ctx.settings, uow.session, release)
    return content_checks.as_dicts(content_checks.findings(uow.ctx.settings, uow.session, release, payloads))


def submit(uow: UnitOfWork, release_id: int, actor: str) -> str:
    s = uow.session
    release = get_release(s, release_id)
    access.check(s, actor, Op.SUBMIT, release)
    refusal = disclosure_problem(release.meta.get("disclosure"))
    if refusal is not None:
        raise Refused(refusal)
    problems = versions.version_problems(s, release, release.corrects_id, release.overrides)
    if problems:  # e.g. written before the rule: refused before three people sign it
        raise InvalidInput(problems)
    before = {"state": release.state}
    release.state = release_transition(release.state, ReleaseState.IN_REVIEW)
    _claim_group(s, release, actor)
    release.content_hash = validated_hash(uow, release)
    contributed(release, actor)
    voided = void_other_signoffs(s, release)  # a re-submission with a new hash starts over
    release.updated_at = utcnow()
    s.add(release)
    audit.record(
        s, actor=actor, action=Action.RELEASE_SUBMITTED, subject_type="release", subject_id=release.id,
        release_id=release.id, before=before,
        after={"state": release.state, "content_hash": release.content_hash},
        detail={"signoffs_voided": voided} if voided else None,
    )
    uow.commit()
    return release.content_hash


def preview(uow: UnitOfWork, release_id: int, actor: str | None = None) -> dict[str, Any]:
    """Every channel's payload as it would be sent now (actor None: the system itself)."""
    release = get_release(uow.session, release_id)
    if actor is not None:
        access.check(uow.session, actor, Op.PREVIEW, release)
    payloads, digest = render_all(uow.ctx.settings, uow.session, release)
    return {"content_hash": digest, "channels": payloads}


def signoffs_view(session: Session, release: Release) -> list[dict[str, Any]]:
    rows = session.exec(
        select(SignOff).where(SignOff.release_id == release.id).order_by(SignOff.id)
    ).all()
    return [
        {"signer": r.signer, "role": r.role, "step": r.step + 1, "decision": r.decision,
         "comment": r.comment, "content_hash": r.content_hash, "voided": r.voided,
         "revision": r.revision, "at": iso(r.created_at)}
        for r in rows
    ]


HEADER_FIELDS = ("id", "title", "state", "state_reason", "held_by", "author", "unit", "unit_name",
                 "revision",
                 "priority",
                 "group", "group_status", "channels", "go_live_at", "held", "reschedule",
                 "first_live_at", "last_live_at", "spread_ms", "created_at")


def as_dict(session: Session, release: Release, viewer: Principal | None = None) -> dict[str, Any]:
    """The release as `viewer` may see it: in full, or its header only (channel admins).

    viewer None is the system itself (the demo, tests)."""
    view = {
        "id": release.id,
        "title": release.title,
        "state": release.state,
        "state_reason": release.state_reason,
        # the channels that hold it from going live, and why (usecases/holds.py)
        "held_by": [{"channel": a.channel, "message": a.message}
                    for a in alerts.open_for(session, alerts.HELD, release.id)],
        "author": release.author,
        "unit": units.code_of(session, release.unit_id),
        "unit_name": units.name_of(session, release.unit_id),
        # matrix publishing (联动发布) fills these: the release it was taken from, and the
        # releases other units took from it
        "origin": None,
        "derived": [],
        "co_authors": release.co_authors,
        "contributors": release.contributors,
        "revision": release.revision,
        "priority": release.priority,
        "parent": release.parent_id,
        "group": release.golive_group,
        "group_status": release.group_status,
        "corrects": release.corrects_id,
        "channels": release.channels,
        "column": release.site_column,
        "metadata": release.meta,
        "summary": release.summary,
        "content_hash": release.content_hash,
        "approved_hash": release.approved_hash,
        "go_live_at": iso(release.go_live_at),
        "held": release.held,
        "reschedule": None if release.reschedule_by is None else {
            "requested_by": release.reschedule_by, "to": iso(release.reschedule_to)},
        "first_live_at": iso(release.first_live_at),
        "last_live_at": iso(release.last_live_at),
        "spread_ms": release.spread_ms,
        "signoffs": signoffs_view(session, release),
        "created_at": iso(release.created_at),
    }
    if viewer is None or access.allows(session, viewer, Op.READ, release):
        return view
    return {k: view[k] for k in HEADER_FIELDS}


def list_releases(session: Session, state: str | None = None, limit: int = 100) -> list[Release]:
    """Every release (the system's view); entry points use visible_releases."""
    stmt = select(Release).order_by(Release.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(Release.state == state)
    return list(session.exec(stmt))


def visible_releases(session: Session, actor: str, state: str | None = None,
                     limit: int = 100, op: Op = Op.HEADER) -> tuple[Principal, list[Release]]:
    """The newest releases `actor` may see (at all, or with op=READ in full), newest first."""
    who = access.principal(session, actor)
    found: list[Release] = []
    before: int | None = None
    while len(found) < limit:
        stmt = select(Release).order_by(Release.id.desc()).limit(500)
        if state:
            stmt = stmt.where(Release.state == state)
        if before is not None:
            stmt = stmt.where(Release.id < before)
        page = list(session.exec(stmt))
        if not page:
            break
        found += [r for r in page if access.allows(session, who, op, r)]
        before = page[-1].id
    return who, found[:limit]


def show(session: Session, release_id: int, actor: str) -> dict[str, Any]:
    """One release for an entry point: NotFound unless `actor` may see it."""
    release = get_release(session, release_id)
    who = access.check(session, actor, Op.HEADER, release)
    return as_dict(session, release, who)


def permissions(session: Session, release: Release, who: Principal) -> dict[str, bool]:
    """Which actions `who` may take on this release now: the buttons an entry point shows."""
    return {op.value: access.allows(session, who, op, release) for op in Op
            if op not in (Op.CREATE, Op.HEADER)}


def readable(session: Session, release_id: int, actor: str, op: Op = Op.READ) -> Release:
    """The release, if `actor` may do `op` to it (read it in full by default)."""
    release = get_release(session, release_id)
    access.check(session, actor, op, release)
    return release
