"""The chaos instrument: duplicates and losses counted from the platforms' own wire logs.

Never from the orchestrator's database: what the platforms saw is the only evidence.

A *target* is one release on one channel (release × channel × revision) and, for a
channel that delivers several ways (the newsfeed: Atom, SFTP, e-mail), one leg of it.
A **duplicate** is any create/publish call for a target that reached the platform
after the platform had already accepted one for it, whether or not the platform then
refused it (Weibo's 20019 repeat, the CMS's webhook-id), and any second accepted call.
A **loss** is a target with no accepted call. A create call the rig cannot attribute to
a target is counted as `unattributed`: it could hide a duplicate, so tests demand none.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Target = tuple[str, int, str]  # (channel, release id, leg)
Entry = dict[str, Any]


def duplicates_among(calls: Iterable[Entry]) -> int:
    """Duplicates among the create calls for one target (see the module's doc)."""
    creates = [c for c in calls if c.get("create")]
    accepted = [c for c in creates if c["accepted"]]
    if not accepted:
        return 0
    first = min(accepted, key=lambda c: (c["answered_at"], c["n"]))
    return sum(1 for c in creates if c is not first and (
        c["accepted"] or c["received_at"] > first["answered_at"]))


@dataclass
class Figures:
    delivered: int  # release × channel with every leg accepted
    lost: int
    duplicates: int
    unattributed: int
    duplicated: dict[Target, int] = field(default_factory=dict)
    missing: list[Target] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {"delivered": self.delivered, "duplicates": self.duplicates, "lost": self.lost,
                "unattributed": self.unattributed}


def count(calls: Iterable[Entry], expected: Iterable[Target],
          target_of: Callable[[Entry], Target | None]) -> Figures:
    """Figures for the expected targets from every wire-log entry of every platform."""
    by_target: dict[Target, list[Entry]] = defaultdict(list)
    unattributed = 0
    for call in calls:
        if not call.get("create"):
            continue
        target = target_of(call)
        if target is None:
            unattributed += 1
        else:
            by_target[target].append(call)
    wanted = set(expected)
    duplicated = {t: n for t, calls_ in by_target.items() if (n := duplicates_among(calls_))}
    missing = sorted(t for t in wanted if not any(c["accepted"] for c in by_target.get(t, [])))
    pairs = {(channel, release) for channel, release, _ in wanted}
    short = {(channel, release) for channel, release, _ in missing}
    return Figures(delivered=len(pairs - short), lost=len(short & pairs),
                   duplicates=sum(duplicated.values()), unattributed=unattributed,
                   duplicated=duplicated, missing=missing)


def faults_injected(logs: dict[str, list[Entry]]) -> dict[str, int]:
    """How many of each fault every sandbox really injected ("weibo:drop": 3, ...)."""
    seen: Counter[str] = Counter()
    for sandbox, log in logs.items():
        seen.update(f"{sandbox}:{entry['fault']}" for entry in log)
    return dict(sorted(seen.items()))
