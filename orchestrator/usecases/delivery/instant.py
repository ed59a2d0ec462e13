"""Going live at one wall-clock instant, however many channels: the release split in shares.

A release cleared to go live is *armed* for an instant: its staged deliveries are marked
due at that instant (nothing may claim them before it: not a re-drive, not a re-send) and
split into shares, one per worker process that serves its queue, each sent as a task.
A share, in its worker, does before the instant everything that can be done: it claims
its deliveries (one compare-and-set for all, fence + 1, the lease running from the
instant), checks that each still sends exactly what was signed, and opens each channel's
connection, one thread per channel waiting at a barrier. Then it sleeps until the instant (the context's clock)
and only sends; the outcomes are recorded in one transaction that locks its rows at once.

A scheduled release is armed `go_live_lead_seconds` before its time (the scheduler);
one cleared now goes out `go_live_gather_seconds` later when it is split over several
processes, at once from this process when one share holds it all.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import update
from sqlmodel import select

from channels.contract import InvalidConfig
from channels.registry import UnknownKind
from orchestrator.domain.clock import sleep_until, utcnow
from orchestrator.domain.states import DeliveryState as D
from orchestrator.domain.states import ReleaseState as R
from orchestrator.store.models import Delivery, Release
from orchestrator.usecases import quota
from orchestrator.usecases.channels import get_channel, posting_quota
from orchestrator.usecases.delivery import claims
from orchestrator.usecases.delivery.claims import KIND_NOT_LOADED, Claim, Outcome
from orchestrator.usecases.delivery.firing import connect_ahead, record_publish
from orchestrator.usecases.delivery.follow_up import finish
from orchestrator.usecases.delivery.signed import intact, refuse_tampered, signed_intact
from orchestrator.usecases.unit_of_work import Context, UnitOfWork

log = logging.getLogger(__name__)
# while a share's calls go out, the interpreter passes between its threads this often (s):
# a thread busy with an answer keeps the others from sending for less time
SWITCH_AT_INSTANT = 0.0005


def deal(ids: list[int], processes: int, least: int) -> list[list[int]]:
    """At most one share per process, none smaller than `least` (unless it is all there is);
    dealt in turn, so every share gets channels of every kind alike."""
    count = max(1, min(processes, math.ceil(len(ids) / max(1, least))))
    return [share for share in (ids[i::count] for i in range(count)) if share]


def plan(uow: UnitOfWork, releases: list[Release], spare: int = 0) -> list[list[int]]:
    """The staged deliveries of releases going live together, in shares: one per worker
    process serving their queue but `spare` (`go_live_share` channels at least)."""
    ids = [d.id for release in releases for d in claims.current_deliveries(uow.session, release)
           if d.state == D.STAGED and d.id is not None]
    least = uow.ctx.settings.go_live_share
    if len(ids) <= least:  # one share whatever runs: no need to ask how many processes do
        return [ids] if ids else []
    priority = "urgent" if any(r.priority == "urgent" for r in releases) else "normal"
    return deal(ids, uow.ctx.queue.processes(priority) - spare, least)


def arm(uow: UnitOfWork, shares: list[list[int]], at: dt.datetime) -> dt.datetime:
    """In the caller's transaction: these deliveries are due at `at` (to the millisecond,
    as a share carries it), and nothing (a re-drive, a re-send) may claim them before it.
    Returns that instant."""
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    ids = [i for share in shares for i in share]
    uow.session.execute(update(Delivery).where(Delivery.id.in_(ids), Delivery.state == D.STAGED)
                        .values(next_attempt_at=at, updated_at=utcnow()))
    return at


def send_shares(uow: UnitOfWork, priority: str, shares: list[list[int]],
                at: dt.datetime) -> None:
    """Each share to a worker once the caller commits (the instant in epoch milliseconds)."""
    at_ms = round(at.timestamp() * 1000)
    for share in shares:
        uow.enqueue("fire_share", priority=priority, at_ms=at_ms, deliveries=share)


def gathered(ctx: Context, shares: int) -> dt.datetime:
    """When a release cleared now goes out: at once from one process; from several, after
    a moment in which every one of them gets ready."""
    gather = ctx.settings.go_live_gather_seconds if shares > 1 else 0.0
    return utcnow() + dt.timedelta(seconds=gather)


# ------------------------------------------------------------------ one share, in a worker


def fire_share(ctx: Context, deliveries: list[int], at_ms: int) -> list[int]:
    """The task of one share: its deliveries, the instant in epoch milliseconds."""
    return go_out(ctx, deliveries, dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC))


def go_out(ctx: Context, delivery_ids: list[int], at: dt.datetime) -> list[int]:
    """Claim and check this share's deliveries now, connect; send them all at `at`. Returns
    the releases concerned (each settled if its every channel is done)."""
    with UnitOfWork(ctx) as uow:
        taken, release_ids = _claim(uow, delivery_ids, at)
        uow.commit()
    if taken:
        outcomes = at_instant(ctx, taken, at)
        _record(ctx, taken, outcomes)
    for release_id in release_ids:
        finish(ctx, release_id)
    return release_ids


def _claim(uow: UnitOfWork, delivery_ids: list[int],
           at: dt.datetime) -> tuple[list[Claim], list[int]]:
    """Every delivery of the share still staged for this go-live (its release going live),
    in one compare-and-set (a copy of this task finds nothing left), within its channel's
    posting quota, and sending exactly what was signed. Also: the releases concerned."""
    s = uow.session
    rows = list(s.exec(select(Delivery).where(Delivery.id.in_(delivery_ids),
                                              Delivery.state == D.STAGED)
                       .order_by(Delivery.id)))
    releases = {r.id: r for r in s.exec(select(Release).where(
        Release.id.in_({d.release_id for d in rows}), Release.state == R.PUBLISHING))}
    signed = {rid: signed_intact(uow, release) for rid, release in releases.items()}
    allowed: dict[int, str] = {}
    for delivery in rows:
        release = releases.get(delivery.release_id)
        if release is None or delivery.revision != release.revision:
            continue
        try:
            whole = intact(uow, release, delivery, signed[release.id])
            if whole and _within_quota(uow, delivery):
                allowed[delivery.id] = delivery.channel  # type: ignore[index]
        except UnknownKind as missing:  # its plugin stopped loading: it fails alone
            claims.set_state(uow, delivery, D.FAILED, error=(KIND_NOT_LOADED, str(missing)))
            continue
        if not whole:
            refuse_tampered(uow, release, delivery)
    if not allowed:
        return [], list(releases)
    taken = claims.claim_many(uow, list(allowed), (D.STAGED,), D.PUBLISHING, due_by=at)
    for delivery_id in set(allowed) - {d.id for d in taken}:  # taken meanwhile elsewhere
        quota.give_back(uow.session, allowed[delivery_id])
    return [claims.as_claim(uow, d) for d in taken], list(releases)


def _within_quota(uow: UnitOfWork, delivery: Delivery) -> bool:
    """Take one post of the channel's quota; a post over it waits for its window (a
    publish task then), a quota that does not parse fails this channel."""
    channel = get_channel(uow.session, delivery.channel)
    try:
        limit = posting_quota(channel, uow.ctx.adapters.kind(channel))
    except InvalidConfig as bad:
        claims.set_state(uow, delivery, D.FAILED, error=(bad.code, f"{bad.kind}: {bad.message}"))
        return False
    wait = quota.take(uow.session, channel.name, limit)
    if wait > 0:
        delivery.next_attempt_at = utcnow() + dt.timedelta(seconds=wait)
        uow.session.add(delivery)
        claims.send(uow, "publish", delivery, countdown=wait)
        return False
    return True


def at_instant(ctx: Context, taken: list[Claim], at: dt.datetime) -> list[Outcome]:
    """One thread per channel, each with its connection open (connected now, all at once)
    waiting at a barrier; this thread sleeps until the instant and lets them all go."""
    start = threading.Barrier(len(taken) + 1)

    def one(claim: Claim) -> Outcome:
        connect_ahead(claim)
        start.wait()
        return claims.call_adapter(lambda: claim.adapter.publish(claim.payload, claim.staged,
                                                                 claim.key))

    with ThreadPoolExecutor(max_workers=len(taken)) as pool:
        futures = [pool.submit(one, claim) for claim in taken]
        late = sleep_until(at, ctx.clock)
        switching = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_AT_INSTANT)  # each thread gets to its send sooner
        try:
            start.wait()
            outcomes = [future.result() for future in futures]
        finally:
            sys.setswitchinterval(switching)
    if late > 0.05:
        log.warning("go-live share of %d channels left %.0f ms after its instant",
                    len(taken), late * 1000)
    return outcomes


def _record(ctx: Context, taken: list[Claim], outcomes: list[Outcome]) -> None:
    """Every outcome in one transaction, the share's rows locked in one statement."""
    with UnitOfWork(ctx) as uow:
        held = claims.fenced_many(uow, taken)
        for claim, out in zip(taken, outcomes, strict=True):
            if claim.delivery_id in held:
                record_publish(uow, held[claim.delivery_id], claim, out)
        uow.commit()
