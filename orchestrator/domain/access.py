"""Who may read and change which release: one pure function, `decide`, for every entry point.

The API, the console and the CLI reach it through the use cases (usecases/access.py),
so no entry point restates a rule. docs/security.md is generated from `matrix()`.

Units (政府网站集约化): a Principal carries the organisational unit it belongs to and a
Resource the unit that owns the release, each as its path from the root unit (codes,
root first). Every rule below holds within a role's reach (`reach`): the principal's
own unit for authors, signers and channel admins (谁发布谁审查: a unit signs only its
own releases); the own unit and every unit below it for auditors and admins, so the
province office (the root unit) reads everything. Out of reach is as if the release
did not exist (NotFound, no existence oracle).

Decisions, in the domain's words:
- drafts are their authors' (the owner and the co-authors the owner names) alone;
- reviewers, secrecy reviewers and approvers see a release from its submission on;
- channel admins see a release's header (id, title, state, channels, go-live time)
  from approval on, with its deliveries and attempts, never a body or a preview;
- auditors read everything and change nothing;
- authors see their own releases in every state, and others' once they went public;
- `admin` runs the platform (people, channels): for releases it is a channel admin,
  never an author or signer it does not also hold as a role, so it cannot get past
  four-eyes. Which step a signer may sign, and that no contributor signs, is the
  review policy's (domain/review.py); this function says who may come to the table.

Beside releases, the platform's own duties (`Duty`, `DUTIES`, `require_duty`): running
channels, managing people, reading the audit trail... `admin` holds the two
administrative duties (channels and people) and nothing else; the auditor reads and
holds no duty that writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from orchestrator.domain.errors import Forbidden, NotFound, Refused
from orchestrator.domain.states import EDITABLE_RELEASE_STATES
from orchestrator.domain.states import ReleaseState as R

SIGNING_ROLES = frozenset({"reviewer", "secrecy", "approver"})
ROLE_ORDER = ("author", "reviewer", "secrecy", "approver", "channel_admin", "auditor", "admin")

SUBMITTED = frozenset(R) - {R.DRAFT}
APPROVED_ON = frozenset({R.APPROVED, R.SCHEDULED, R.PUBLISHING, R.PUBLISHED,
                         R.PARTIALLY_PUBLISHED, R.FAILED, R.WITHDRAWN})
PUBLIC = frozenset({R.PUBLISHING, R.PUBLISHED, R.PARTIALLY_PUBLISHED, R.WITHDRAWN})
NOT_YET_LIVE = frozenset({R.DRAFT, R.IN_REVIEW, R.REJECTED, R.APPROVED, R.SCHEDULED})
WAITING_TO_GO_LIVE = frozenset({R.APPROVED, R.SCHEDULED})
RESENDABLE = frozenset({R.APPROVED, R.SCHEDULED, R.PUBLISHING, R.PARTIALLY_PUBLISHED, R.FAILED})


class Duty(StrEnum):
    """What someone does to the platform rather than to one release."""

    CHANNELS = "channels"  # configure, test, pause and resume channel instances
    PEOPLE = "people"  # add people, change roles, issue and revoke tokens, set passwords
    AUDIT = "audit"  # read the audit trail and delivery attempts, verify, export
    ALERTS = "alerts"  # read open integrity alerts (what no longer shows what was signed)
    REPORTS = "reports"  # read the quarterly assessment (考核)


# the roles that hold each duty; no other rule grants one (admin is not a wildcard)
DUTIES: dict[Duty, frozenset[str]] = {
    Duty.CHANNELS: frozenset({"channel_admin", "admin"}),
    Duty.PEOPLE: frozenset({"admin"}),
    Duty.AUDIT: frozenset({"auditor"}),
    Duty.ALERTS: frozenset({"channel_admin", "admin", "auditor"}),
    Duty.REPORTS: frozenset({"auditor", "approver"}),
}
WRITE_DUTIES = frozenset({Duty.CHANNELS, Duty.PEOPLE})

# the roles whose reach is their unit and every unit below it; any other role acts in
# its own unit only
WIDE_ROLES = frozenset({"auditor", "admin"})

UnitPath = tuple[str, ...]  # unit codes from the root down to the unit itself


def reach(role: str, own: UnitPath, unit: UnitPath) -> bool:
    """Does `role`, held by someone of unit `own`, reach a thing of unit `unit`?"""
    if role in WIDE_ROLES:
        return unit[:len(own)] == own
    return unit == own


class Op(StrEnum):
    READ = "read"  # the release in full: body, metadata, sign-offs (list, show, timeline)
    HEADER = "header"  # id, title, state, channels, go-live time, state reason
    PREVIEW = "preview"  # every channel's rendered document
    CHECKS = "checks"  # pre-publish findings
    DELIVERIES = "deliveries"  # deliveries and their attempts
    CREATE = "create"
    EDIT = "edit"
    SUBMIT = "submit"
    SCHEDULE = "schedule"  # set the go-live time; after approval, ask to move it
    HOLD = "hold"  # stop a go-live that waits (the safe direction: no signature)
    CONSENT = "consent"  # accept, refuse or remove a joiner of one's go-live group
    SIGN = "sign"  # approve or reject a review step
    SIGN_RESCHEDULE = "sign_reschedule"  # approve or refuse a go-live move
    FORCE = "force_go_live"
    WITHDRAW = "withdraw"
    RESEND = "resend"  # re-send or cancel a delivery, or mark one that needs a decision published


# one answer for a release that does not exist and one out of reach: no existence oracle
NO_SUCH_RELEASE = "no such release (or not yours to see)"

READS = frozenset({Op.READ, Op.HEADER, Op.PREVIEW, Op.CHECKS, Op.DELIVERIES})


@dataclass(frozen=True)
class Principal:
    """Someone acting: a name, the roles they hold now and the unit they belong to."""

    name: str
    roles: frozenset[str]
    unit: UnitPath = ()

    @classmethod
    def of(cls, name: str, roles: Iterable[str], unit: UnitPath = ()) -> Principal:
        return cls(name, frozenset(roles), tuple(unit))

    def holds(self, *roles: str) -> bool:
        """Holds one of `roles` somewhere (the role check before anything is looked up)."""
        return self.acts_as(None, *roles)

    def acts_as(self, unit: UnitPath | None, *roles: str) -> bool:
        """Holds one of `roles` and reaches `unit` with it (None: in some unit)."""
        # admin stands for channel_admin only: it is never an implicit author or signer
        held = [(r, r) for r in self.roles] + (
            [("channel_admin", "admin")] if "admin" in self.roles else [])
        return any(as_role in roles and (unit is None or reach(by_role, self.unit, unit))
                   for as_role, by_role in held)


@dataclass(frozen=True)
class Resource:
    """A release as access sees it, with the unit that owns it."""

    state: str
    author: str
    unit: UnitPath = ()
    co_authors: frozenset[str] = frozenset()
    contributors: frozenset[str] = frozenset()
    group_owner: str | None = None  # the fixed owner of the go-live group it names

    def owned_by(self, name: str) -> bool:
        return name == self.author or name in self.co_authors


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    not_now: bool = False  # the person may, but not in this state (409, not 403)

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)


def _no(reason: str) -> Decision:
    return Decision(False, reason)


def _reads(p: Principal, state: R, r: Resource) -> bool:
    u = r.unit
    return (p.acts_as(u, "auditor")
            or (p.acts_as(u, "author") and (r.owned_by(p.name) or state in PUBLIC))
            or (p.acts_as(u, *SIGNING_ROLES) and state in SUBMITTED))


def decide(p: Principal, op: Op, r: Resource | None = None) -> Decision:
    """May `p` do `op` to the release `r` (None: a release not yet written)?"""
    if op == Op.CREATE:
        return ALLOW if p.holds("author") else _no(f"{p.name} needs the role author")
    if r is None:
        raise ValueError(f"{op} needs a release")
    state, u = R(r.state), r.unit
    reads = _reads(p, state, r)
    operates = p.acts_as(u, "channel_admin") and state in APPROVED_ON
    group_owner = p.acts_as(u, "author") and p.name == r.group_owner  # sees who asks to join
    if op in (Op.READ, Op.PREVIEW, Op.CHECKS):
        return ALLOW if reads else _no(f"{p.name} may not read this release")
    if op == Op.HEADER:
        return ALLOW if reads or operates or group_owner else _no(
            f"{p.name} may not read this release")
    if op == Op.DELIVERIES:
        return ALLOW if reads or operates else _no(f"{p.name} may not read this release")
    if not (reads or (op == Op.RESEND and operates) or (op == Op.CONSENT and group_owner)):
        return _no(f"{p.name} may not read this release")
    own = p.acts_as(u, "author") and r.owned_by(p.name)
    if op == Op.EDIT:
        return _when(own, "only its author or a named co-author edits a release",
                     state in EDITABLE_RELEASE_STATES, f"a {state} release cannot be edited")
    if op == Op.SUBMIT:
        return _when(own, "only its author or a named co-author submits a release",
                     state in (R.DRAFT, R.IN_REVIEW), f"a {state} release cannot be submitted")
    if op == Op.SCHEDULE:
        return _when(own, "only its author or a named co-author schedules a release",
                     state in NOT_YET_LIVE, f"a {state} release is past scheduling")
    if op == Op.HOLD:
        return _when(own or p.acts_as(u, "approver"), "its authors or an approver hold a go-live",
                     state in WAITING_TO_GO_LIVE, f"a {state} release is not waiting to go live")
    if op == Op.CONSENT:
        return _when(p.acts_as(u, "author") and p.name == r.group_owner,
                     "only the go-live group's owner consents to joiners or removes them",
                     state in NOT_YET_LIVE, f"a {state} release cannot join a group")
    if op == Op.SIGN:
        return _when(p.acts_as(u, *SIGNING_ROLES), f"{p.name} holds no reviewing role",
                     state == R.IN_REVIEW, f"a {state} release is not in review")
    if op == Op.SIGN_RESCHEDULE:
        return _when(p.acts_as(u, "approver"), "a go-live move is signed by an approver",
                     state in WAITING_TO_GO_LIVE, f"a {state} release has no go-live to move")
    if op == Op.FORCE:
        return _when(p.acts_as(u, "approver"), "forcing a go-live needs the role approver",
                     state in WAITING_TO_GO_LIVE, f"a {state} release is not waiting to go live")
    if op == Op.WITHDRAW:
        return _when(p.acts_as(u, "approver"), "a withdrawal needs the role approver",
                     state in (R.PUBLISHED, R.PARTIALLY_PUBLISHED),
                     f"a {state} release is not live")
    if op == Op.RESEND:
        return _when(p.acts_as(u, "channel_admin"), "re-sending needs the role channel_admin",
                     state in RESENDABLE, f"a {state} release has nothing to re-send")
    raise ValueError(f"unknown operation {op}")


def _when(who: bool, who_not: str, state_ok: bool, state_not: str) -> Decision:
    if not who:
        return _no(who_not)
    return ALLOW if state_ok else Decision(False, state_not, not_now=True)


def has_duty(p: Principal, duty: Duty, unit: UnitPath | None = None) -> bool:
    """Does `p` hold `duty` (for a thing of `unit`: within the reach of the role giving it)?"""
    return any(reach(role, p.unit, unit) if unit is not None else True
               for role in p.roles & DUTIES[duty])


def require_duty(p: Principal, duty: Duty, unit: UnitPath | None = None) -> None:
    """Forbidden unless `p` holds a role that `DUTIES` gives this duty (reaching `unit`)."""
    if not has_duty(p, duty):
        holders = " or ".join(r for r in ROLE_ORDER if r in DUTIES[duty])
        raise Forbidden(f"{p.name} lacks the duty {duty.value} (held by {holders})")
    if unit is not None and not has_duty(p, duty, unit):
        raise Forbidden(f"{p.name} holds the duty {duty.value} for the unit "
                        f"{'/'.join(p.unit) or '(root)'}, which does not reach "
                        f"{'/'.join(unit) or '(root)'}")


def may_ever(p: Principal, op: Op) -> bool:
    """Could `p` do `op` to some release at all? (The role check before a lookup.)"""
    if op == Op.CREATE:
        return bool(decide(p, op))
    return any(decide(p, op, Resource(state, author=author, group_owner=owner, unit=p.unit))
               for state in R for author, owner in ((p.name, None), ("", p.name), ("", None)))


def require(p: Principal, op: Op, r: Resource | None = None) -> None:
    """Raise unless allowed: NotFound for a release `p` may not even see, Refused when
    `p` may but not in this state, else Forbidden."""
    decision = decide(p, op, r)
    if decision:
        return
    if r is not None and not decide(p, Op.HEADER, r):
        raise NotFound(NO_SUCH_RELEASE)
    if decision.not_now:
        raise Refused(decision.reason)
    raise Forbidden(decision.reason)


# ------------------------------------------------------------------ the documented matrix

OWN, OTHERS = "own", "others'"


@dataclass(frozen=True)
class Cell:
    """For one role and operation: the states allowed on one's own releases and others'."""

    own: tuple[str, ...] = ()
    others: tuple[str, ...] = ()


def matrix() -> dict[Op, dict[str, Cell]]:
    """Every operation × role, from `decide` itself (a single-role principal per column)."""
    table: dict[Op, dict[str, Cell]] = {}
    for op in Op:
        row = {}
        for role in ROLE_ORDER:
            p = Principal.of("someone", [role])
            if op == Op.CREATE:
                row[role] = Cell(own=("(new)",) if decide(p, op) else ())
                continue
            own, others = [], []
            for state in R:
                # "own" is one's release, or for consent a joiner of one's group
                mine = (Resource(state, author="other", group_owner="someone")
                        if op == Op.CONSENT else Resource(state, author="someone"))
                theirs = Resource(state, author="other", group_owner="other")
                if decide(p, op, mine):
                    own.append(state.value)
                if decide(p, op, theirs):
                    others.append(state.value)
            row[role] = Cell(tuple(own), tuple(others))
        table[op] = row
    return table


STATE_SHORT = {R.DRAFT: "D", R.IN_REVIEW: "IR", R.REJECTED: "RJ", R.APPROVED: "A",
               R.SCHEDULED: "S", R.PUBLISHING: "P", R.PUBLISHED: "PD",
               R.PARTIALLY_PUBLISHED: "PP", R.FAILED: "F", R.WITHDRAWN: "W"}


def _states(states: tuple[str, ...]) -> str:
    if set(states) == {s.value for s in R}:
        return "all"
    return " ".join(STATE_SHORT[R(s)] for s in states)


def _cell(cell: Cell) -> str:
    if cell.own == ("(new)",):
        return "yes"
    if not cell.own and not cell.others:
        return "—"
    if cell.own == cell.others:
        return _states(cell.own)
    parts = []
    if cell.own:
        parts.append(f"own: {_states(cell.own)}")
    if cell.others:
        parts.append(f"others': {_states(cell.others)}")
    return "; ".join(parts)


def markdown_duties() -> str:
    """Duty × role, from `has_duty` itself (a single-role principal per column)."""
    lines = ["| duty | " + " | ".join(ROLE_ORDER) + " |",
             "|---|" + "---|" * len(ROLE_ORDER)]
    for duty in Duty:
        kind = "write" if duty in WRITE_DUTIES else "read"
        cells = ["yes" if has_duty(Principal.of("someone", [r]), duty) else "—"
                 for r in ROLE_ORDER]
        lines.append(f"| {duty.value} ({kind}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


UNIT_PLACES = {"own unit": ("p", "c"), "below it": ("p", "c", "county"),
               "above it": ("p",), "a sibling": ("p", "sibling")}


def reach_table() -> dict[str, dict[str, bool]]:
    """Role × where a release lives, relative to the principal's unit: may the role do
    anything at all to it (any operation, any state), from `decide` itself."""
    table: dict[str, dict[str, bool]] = {}
    for role in ROLE_ORDER:
        p = Principal.of("someone", [role], ("p", "c"))
        table[role] = {
            place: any(decide(p, op, Resource(state, author=author, unit=unit,
                                              group_owner="someone"))
                       for op in Op if op != Op.CREATE for state in R
                       for author in ("someone", "other"))
            for place, unit in UNIT_PLACES.items()}
    return table


def markdown_reach() -> str:
    lines = ["| release's unit | " + " | ".join(ROLE_ORDER) + " |",
             "|---|" + "---|" * len(ROLE_ORDER)]
    table = reach_table()
    for place in UNIT_PLACES:
        lines.append(f"| {place} | " + " | ".join(
            "yes" if table[role][place] else "—" for role in ROLE_ORDER) + " |")
    return "\n".join(lines) + "\n"


def markdown_matrix() -> str:
    """The access matrix and the duties as Markdown (docs/security.md embeds exactly this)."""
    table = matrix()
    lines = ["| operation | " + " | ".join(ROLE_ORDER) + " |",
             "|---|" + "---|" * len(ROLE_ORDER)]
    for op, row in table.items():
        lines.append(f"| {op.value} | " + " | ".join(_cell(row[r]) for r in ROLE_ORDER) + " |")
    legend = ", ".join(f"{short} = {state.value}" for state, short in STATE_SHORT.items())
    return ("\n".join(lines) + f"\n\nStates: {legend}.\n\nDuties (not about one release):\n\n"
            + markdown_duties()
            + "\nUnits: the table above holds within each role's reach; out of reach, a "
              "release is as if it did not exist. Whose releases each role reaches:\n\n"
            + markdown_reach())


if __name__ == "__main__":  # python -m orchestrator.domain.access: print the tables
    print(markdown_matrix(), end="")
