"""The audit trail is a transparency log: an edited, deleted, reordered or cut-off event is
found, and so is an attacker with the database who rewrites the tree and deletes the
checkpoints — against the checkpoints published outside the database."""

import threading

import pytest
from sqlalchemy import text

from orchestrator.domain.note import Checkpoint
from orchestrator.settings import Settings
from orchestrator.store.db import engine_for
from orchestrator.store.models import AuditCheckpoint
from orchestrator.usecases import audit, transparency
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.conftest import RecordingQueue, approve_all, drain
from tests.services import fresh_postgres_database


@pytest.fixture
def settings(tmp_path, database_url):
    return Settings(
        var_dir=tmp_path,
        database_url=database_url,
        site_base_url="http://127.0.0.1:8000/site",
        audit_witness_dir=tmp_path / "witness-dir",
        _env_file=None,
    )


@pytest.fixture
def trail(ctx, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    drain(ctx)
    assert transparency.checkpoint(ctx) is not None
    return ctx


def verdict(ctx):
    with UnitOfWork(ctx) as uow:
        return audit.verify(uow.session, ctx.settings)


def sql(ctx, statement):
    with ctx.engine.begin() as conn:
        return conn.execute(text(statement))


def position_of(ctx, event_id):
    return sql(ctx, f"SELECT seq FROM audit_event WHERE id = {event_id}").scalar()


def size(ctx):
    return sql(ctx, "SELECT size FROM audit_tree_state").scalar()


def rewrite_the_tree(ctx):
    """What an attacker with the database does after editing: recompute every hash."""
    sql(ctx, "DELETE FROM audit_tree_node")
    sql(ctx, "UPDATE audit_tree_state SET size = 0, root_hash = ''")
    sql(ctx, "UPDATE audit_event SET seq = NULL")
    while transparency.sequence(ctx):
        pass


def test_an_untouched_trail_verifies(trail):
    result = verdict(trail)
    assert result["ok"] and result["checked"] > 20 and result["pending"] == 0, result
    assert result["published_size"] == result["checked"]


def test_an_edited_event_is_found(trail):
    sql(trail, "UPDATE audit_event SET actor = 'someone_else' WHERE id = 7")
    result = verdict(trail)
    assert not result["ok"] and result["first_bad_id"] == 7, result
    assert result["first_bad_position"] == position_of(trail, 7) and "altered" in result["reason"]


def test_an_edited_json_field_is_found(trail):
    sql(trail, 'UPDATE audit_event SET after = \'{"state": "approved"}\' WHERE id = 3')
    assert verdict(trail)["first_bad_id"] == 3


def test_a_deleted_event_is_found(trail):
    gone = position_of(trail, 5)
    sql(trail, "DELETE FROM audit_event WHERE id = 5")
    result = verdict(trail)
    assert not result["ok"] and result["first_bad_position"] == gone, result
    assert result["first_bad_id"] == 6 and "removed" in result["reason"]


def test_reordered_events_are_found(trail):
    first = position_of(trail, 4)
    sql(trail, "UPDATE audit_event SET id = -4 WHERE id = 4")
    sql(trail, "UPDATE audit_event SET id = 4 WHERE id = 5")
    sql(trail, "UPDATE audit_event SET id = 5 WHERE id = -4")
    result = verdict(trail)
    assert not result["ok"] and result["first_bad_position"] == first


def test_a_cut_off_tail_is_found_by_the_checkpoint(trail):
    sql(trail, "DELETE FROM audit_event WHERE id = (SELECT max(id) FROM audit_event)")
    result = verdict(trail)
    assert not result["ok"] and "cut off" in result["reason"]
    assert result["first_bad_position"] == size(trail) - 1


def test_a_forged_checkpoint_is_found(trail):
    sql(trail, "UPDATE audit_checkpoint SET note = replace(note, '\n', '\n\n')")
    assert "not genuine" in verdict(trail)["reason"]


# ------------------------------------------------------------------ the four attacks


def test_a_cut_off_tail_with_its_checkpoints_and_tree_deleted_is_found(trail):
    """(a) the last events go, with every checkpoint and tree row that covered them."""
    keep = size(trail) - 4
    sql(trail, f"DELETE FROM audit_event WHERE seq >= {keep}")
    rewrite_the_tree(trail)
    sql(trail, "DELETE FROM audit_checkpoint")
    result = verdict(trail)
    assert not result["ok"] and result["first_bad_position"] == keep, result
    assert "cut off" in result["reason"]


@pytest.mark.parametrize("leaves_published", [True, False])
def test_an_edit_with_every_later_hash_recomputed_and_checkpoints_deleted_is_found(
    trail, leaves_published
):
    """(b) edit one event, recompute the whole tree, delete the checkpoints: only what was
    published outside the database still knows. With the leaf hashes in the witness
    directory the exact position is named; from checkpoints alone, where the range starts."""
    edited = position_of(trail, 9)
    sql(trail, "UPDATE audit_event SET actor = 'someone_else' WHERE id = 9")
    rewrite_the_tree(trail)
    sql(trail, "DELETE FROM audit_checkpoint")
    if not leaves_published:
        (trail.settings.audit_witness_dir / "leaves").unlink()
    result = verdict(trail)
    assert not result["ok"]
    assert result["first_bad_position"] == (edited if leaves_published else 0), result
    assert "differ" in result["reason"]


def test_all_checkpoints_deleted_is_found(trail):
    """(c) the events are untouched, the checkpoints gone from the database."""
    sql(trail, "DELETE FROM audit_checkpoint")
    result = verdict(trail)
    assert not result["ok"] and "missing from the database" in result["reason"], result
    assert result["first_bad_position"] == 0


def test_a_forked_view_is_found(trail):
    """(d) a second, different tree of the same size (after a rewrite): the log refuses to
    sign it against what it published; signed anyway with its key, publication refuses
    to overwrite the first, and verify sees both."""
    edited = position_of(trail, 9)
    sql(trail, "UPDATE audit_event SET actor = 'someone_else' WHERE id = 9")
    rewrite_the_tree(trail)
    sql(trail, "DELETE FROM audit_checkpoint")
    with pytest.raises(transparency.LogForked, match="does not extend"):
        transparency.checkpoint(trail)
    with UnitOfWork(trail) as uow:  # whoever holds the key signs it all the same
        state = transparency.lock_tree(uow.session)
        signer = transparency.log_signer(trail.settings)
        root = bytes.fromhex(state.root_hash)
        note = signer.sign(Checkpoint(signer.name, state.size, root).body())
        uow.session.add(AuditCheckpoint(tree_size=state.size, root_hash=state.root_hash, note=note))
        uow.commit()
    with pytest.raises(transparency.LogForked, match="another checkpoint of this size"):
        transparency.publish(trail, note)
    result = verdict(trail)
    assert not result["ok"] and result["first_bad_position"] == edited, result
    assert any("forked view" in p for p in result["problems"]), result["problems"]


def test_events_after_the_last_checkpoint_are_pending_not_protected(trail):
    with UnitOfWork(trail) as uow:
        audit.record(
            uow.session, actor="a", action="release.edited", subject_type="test", subject_id=1
        )
        uow.commit()
    result = verdict(trail)
    assert result["ok"] and result["pending"] == 1


# ------------------------------------------------------------------ appenders and the sequencer


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_appenders_and_sequencers_keep_one_log(backend, settings, tmp_path):
    def run(url):
        ctx = Context(engine_for(url), settings, RecordingQueue())
        failures = []

        def append(n):
            for i in range(25):
                with UnitOfWork(ctx) as uow:
                    audit.record(
                        uow.session,
                        actor=f"w{n}",
                        action="release.edited",
                        subject_type="test",
                        subject_id=i,
                    )
                    uow.commit()

        def sequence():
            try:
                for _ in range(10):
                    transparency.checkpoint(ctx)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=append, args=(n,)) for n in range(6)]
        threads += [threading.Thread(target=sequence) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        transparency.checkpoint(ctx)
        assert failures == []
        result = verdict(ctx)
        assert result["ok"], result
        assert result["checked"] == 150 and result["published_size"] == 150

    if backend == "sqlite":
        run(f"sqlite:///{tmp_path / 'chain.db'}")
    else:
        with fresh_postgres_database() as url:
            run(url)
            engine_for(url).dispose()


def test_appends_take_no_lock_that_closes_a_deadlock_with_row_locks(settings):
    """One transaction locks a row then audits; another audits then wants that row (the
    order a channel save and a worker's credential flag took). An append takes no lock
    of its own, so both go through."""
    from sqlmodel import select

    from orchestrator.store.models import User

    with fresh_postgres_database() as url:
        ctx = Context(engine_for(url), settings, RecordingQueue())
        with UnitOfWork(ctx) as uow:
            uow.session.add(User(name="shared", roles=["author"]))
            uow.commit()
        row_locked, audited = threading.Event(), threading.Event()
        failures: list[BaseException] = []

        def lock_then_audit():
            try:
                with UnitOfWork(ctx) as uow:
                    uow.session.exec(
                        select(User).where(User.name == "shared").with_for_update()
                    ).one()
                    row_locked.set()
                    assert audited.wait(30)
                    audit.record(
                        uow.session,
                        actor="a",
                        action="release.edited",
                        subject_type="test",
                        subject_id=1,
                    )
                    uow.commit()
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        def audit_then_lock():
            try:
                assert row_locked.wait(30)
                with UnitOfWork(ctx) as uow:
                    audit.record(
                        uow.session,
                        actor="b",
                        action="release.edited",
                        subject_type="test",
                        subject_id=2,
                    )
                    audited.set()
                    uow.session.exec(
                        select(User).where(User.name == "shared").with_for_update()
                    ).one()
                    uow.commit()
            except BaseException as exc:  # noqa: BLE001 - reported below
                audited.set()
                failures.append(exc)

        threads = [threading.Thread(target=f) for f in (lock_then_audit, audit_then_lock)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert failures == []
        transparency.checkpoint(ctx)
        result = verdict(ctx)
        assert result["ok"] and result["checked"] == 2, result
        ctx.engine.dispose()


def test_events_from_before_the_tree_become_its_first_leaves_and_keep_their_chain(tmp_path):
    """Migration 0014: a trail written as a hash chain is sequenced into the tree in id
    order, nothing lost; an edit to an old event is still found by its chain as well."""
    import datetime as dt
    from types import SimpleNamespace

    from alembic import command

    from orchestrator.store.db import alembic_config, upgrade
    from orchestrator.store.models import AuditEvent

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0013")
    rows, prev = [], ""
    for i in range(1, 8):
        row = SimpleNamespace(
            id=i,
            at=dt.datetime(2026, 11, 1, 9, i, tzinfo=dt.UTC),
            actor="press",
            action="release.created",
            subject_type="release",
            subject_id=str(i),
            release_id=i,
            channel=None,
            before=None,
            after={"state": "draft"},
            detail=None,
            prev_hash=prev,
            hash="",
        )
        row.hash = prev = audit.event_hash(row)
        rows.append(dict(vars(row)))
    engine = engine_for(url)
    with engine.begin() as conn:
        conn.execute(AuditEvent.__table__.insert(), rows)
    upgrade(url)
    settings = Settings(var_dir=tmp_path, database_url=url, _env_file=None)
    ctx = Context(engine, settings, RecordingQueue())
    with UnitOfWork(ctx) as uow:
        audit.record(
            uow.session,
            actor="press",
            action="release.created",
            subject_type="release",
            subject_id=8,
        )
        uow.commit()
    transparency.checkpoint(ctx)
    result = verdict(ctx)
    assert result["ok"] and result["checked"] == 8, result
    assert [r[0] for r in sql(ctx, "SELECT id FROM audit_event ORDER BY seq")] == list(range(1, 9))
    sql(ctx, "UPDATE audit_event SET actor = 'mallory' WHERE id = 3")
    rewrite_the_tree(ctx)
    sql(ctx, "DELETE FROM audit_checkpoint")
    result = verdict(ctx)
    assert not result["ok"] and result["first_bad_position"] == 2
    assert any("hash chain" in p for p in result["problems"]), result["problems"]
    engine.dispose()


def test_a_steady_stream_of_appends_does_not_keep_the_checkpoint_from_being_signed(
    ctx, monkeypatch
):
    """The sequencer takes what was pending when it came: under appends that never pause
    (here: one arrives during every round) it still signs, rather than chase the stream."""
    real, rounds = transparency.sequence, []

    def an_append_arrives_each_round(ctx_, batch=transparency.SEQUENCE_BATCH):
        rounds.append(1)
        assert len(rounds) < 50, "the sequencer chases the appends and never signs"
        with UnitOfWork(ctx_) as uow:
            audit.record(
                uow.session,
                actor="w",
                action="release.edited",
                subject_type="test",
                subject_id=len(rounds),
            )
            uow.commit()
        return real(ctx_, batch)

    monkeypatch.setattr(transparency, "sequence", an_append_arrives_each_round)
    assert transparency.checkpoint(ctx) is not None
