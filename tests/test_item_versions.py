"""Corrections and withdrawals number an item's versions: v1, v2, v3 … across corrections
of corrections, and one file name on a desk's drop always holds the same bytes."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlmodel import select

from channels.contract import PermanentError
from channels.newsfeed import NewsfeedAdapter
from channels.sandbox.desk import PASSWORD, USER, SftpServer
from orchestrator.store.models import Delivery
from orchestrator.usecases import channels, corrections, releases
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests.conftest import approve_all, drain, release_input
from tests.contract.harnesses import view


@pytest.fixture
def drop(ctx, people, tmp_path):
    folder = tmp_path / "desk" / "incoming"
    folder.mkdir(parents=True)
    with SftpServer(folder.parent) as sftp:
        config = {"delivery": ["sftp", "atom"], "formats": ["newsml"], "sandbox": True,
                  "sftp": {"host": "127.0.0.1", "port": sftp.port, "username": USER,
                           "remote_dir": "incoming", "host_key": sftp.host_key_line},
                  "atom": {"directory": str(ctx.settings.resolved_site_root / "feed")}}
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "desk", "newsfeed", config, {"sftp_password": PASSWORD},
                                  "admin_ops")
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "website", "website",
                                  {"web_root": str(ctx.settings.resolved_site_root)}, None,
                                  "admin_ops")
        yield folder


def publish(ctx, **changes) -> int:
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(channels=["desk", "website"], **changes), "press")
    approve_all(ctx, rid)
    drain(ctx)
    return rid


def withdraw(ctx, rid: int) -> None:
    with UnitOfWork(ctx) as uow:
        corrections.withdraw(uow, rid, "leader", "撤回")
    drain(ctx)


def snapshot(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()
            if not p.name.startswith(".")}


def test_versions_increase_across_corrections_of_corrections_and_withdrawals(ctx, drop):
    seen: dict[str, str] = {}

    def step() -> None:  # every name keeps the bytes it first had
        now = snapshot(drop)
        assert {name: now[name] for name in seen} == seen
        seen.update(now)

    original = publish(ctx)
    step()
    fix = publish(ctx, corrects=original, summary="第一次更正。")
    step()
    fix2 = publish(ctx, corrects=fix, summary="对更正的更正。")  # a correction of the correction
    step()
    withdraw(ctx, fix)  # the first correction is withdrawn (its successor stays)
    step()
    withdraw(ctx, fix2)
    step()
    names = sorted(seen)
    assert names == [f"tongfa-{original}-v{n}.xml" for n in range(1, 6)]
    with UnitOfWork(ctx) as uow:
        states = {d.release_id: d.state for d in uow.session.exec(
            select(Delivery).where(Delivery.channel == "desk"))}
    assert states == {original: "published", fix: "withdrawn", fix2: "withdrawn"}
    texts = {n: (drop / f"tongfa-{original}-v{n}.xml").read_text(encoding="utf-8")
             for n in range(1, 6)}
    assert all(re.search(rf'<newsItem [^>]*\bversion="{n}"', texts[n]) for n in texts)
    assert "stat:canceled" in texts[4] and "stat:canceled" in texts[5]
    assert "stat:canceled" not in texts[3] and "对更正的更正" in texts[3]
    # all of them are one item, one guid; the website keeps one page for it
    guids = {re.search(r'guid="([^"]+)"', t).group(1) for t in texts.values()}
    assert len(guids) == 1
    assert not (ctx.settings.resolved_site_root / "articles" / f"{fix2}.html").exists()


def test_a_name_that_holds_other_bytes_is_never_overwritten(ctx, people, tmp_path):
    folder = tmp_path / "desk" / "incoming"
    folder.mkdir(parents=True)
    with SftpServer(folder.parent) as sftp:
        desk = NewsfeedAdapter({"delivery": ["sftp"], "formats": ["newsml"], "sandbox": True,
                                "sftp": {"host": "127.0.0.1", "port": sftp.port,
                                         "username": USER, "remote_dir": "incoming",
                                         "host_key": sftp.host_key_line}},
                               {"sftp_password": PASSWORD})
        first = desk.render(view(release_id=5))
        desk.publish(first, {}, "k1")
        before = snapshot(folder)
        desk.publish(first, {}, "k1")  # a re-send of the same bytes is fine
        other = desk.render(view(release_id=5, title="另一个标题"))  # same item, same version
        with pytest.raises(PermanentError) as err:
            desk.publish(other, {}, "k2")
        assert err.value.code == "version_taken"
        assert snapshot(folder) == before


@pytest.mark.parametrize("taken", [1, 3])
def test_a_version_override_the_orchestrator_does_not_give_is_refused_when_written(
        ctx, drop, taken):
    """The correction of v1 is v2: `overrides.desk.version` 1 names v1 again (and 3 the next
    event's number), refused at create and at edit naming the field — not signed by three
    people and then failing on the desk at go-live with version_taken."""
    from orchestrator.domain.errors import InvalidInput
    from orchestrator.store.models import Release

    rid = publish(ctx)
    fix = dict(channels=["desk", "website"], corrects=rid, title="关于…的通知（更正）")
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput) as refused:
        releases.create(uow, release_input(**fix, overrides={"desk": {"version": taken}}),
                        "press")
    assert [f for f, _ in refused.value.problems] == ["overrides.desk.version"]
    with UnitOfWork(ctx) as uow:  # its own number, or none at all, is accepted
        second = releases.create(uow, release_input(**fix, overrides={"desk": {"version": 2}}),
                                 "press")
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput) as refused:
        releases.edit(uow, second, release_input(**fix, overrides={"desk": {"version": taken}}),
                      "press")
    assert [f for f, _ in refused.value.problems] == ["overrides.desk.version"]
    with UnitOfWork(ctx) as uow:  # written past the check (before the rule): refused at submit
        row = uow.session.get(Release, second)
        row.overrides = {"desk": {"version": taken}}
        uow.session.add(row)
        uow.commit()
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput) as refused:
        releases.submit(uow, second, "press")
    assert [f for f, _ in refused.value.problems] == ["overrides.desk.version"]
