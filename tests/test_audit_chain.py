"""The audit trail is tamper-evident: edits, deletions, reordering and truncation are found."""

import threading

import pytest
from sqlalchemy import text

from orchestrator.store.db import engine_for
from orchestrator.usecases import audit
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.conftest import RecordingQueue, approve_all, drain
from tests.services import fresh_postgres_database


@pytest.fixture
def trail(ctx, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    drain(ctx)
    with UnitOfWork(ctx) as uow:
        audit.checkpoint(uow.session, ctx.settings)
        uow.commit()
    return ctx


def verdict(ctx):
    with UnitOfWork(ctx) as uow:
        return audit.verify(uow.session, ctx.settings)


def sql(ctx, statement):
    with ctx.engine.begin() as conn:
        conn.execute(text(statement))


def test_an_untouched_trail_verifies(trail):
    result = verdict(trail)
    assert result["ok"] and result["checked"] > 20


def test_an_edited_event_is_found(trail):
    sql(trail, "UPDATE audit_event SET actor = 'someone_else' WHERE id = 7")
    assert verdict(trail) == {**verdict(trail), "ok": False, "first_bad_id": 7}
    assert "altered" in verdict(trail)["reason"]


def test_an_edited_json_field_is_found(trail):
    sql(trail, "UPDATE audit_event SET after = '{\"state\": \"approved\"}' WHERE id = 3")
    assert verdict(trail)["first_bad_id"] == 3


def test_a_deleted_event_is_found(trail):
    sql(trail, "DELETE FROM audit_event WHERE id = 5")
    result = verdict(trail)
    assert not result["ok"] and result["first_bad_id"] == 6 and "removed" in result["reason"]


def test_reordered_events_are_found(trail):
    sql(trail, "UPDATE audit_event SET id = -4 WHERE id = 4")
    sql(trail, "UPDATE audit_event SET id = 4 WHERE id = 5")
    sql(trail, "UPDATE audit_event SET id = 5 WHERE id = -4")
    assert not verdict(trail)["ok"]


def test_a_cut_off_tail_is_found_by_the_checkpoint(trail):
    sql(trail, "DELETE FROM audit_event WHERE id = (SELECT max(id) FROM audit_event)")
    result = verdict(trail)
    assert not result["ok"] and "cut off" in result["reason"]


def test_a_forged_checkpoint_is_found(trail):
    sql(trail, "UPDATE audit_checkpoint SET signature = 'f00d'")
    assert "not genuine" in verdict(trail)["reason"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_appenders_keep_one_chain(backend, settings, tmp_path):
    def run(url):
        ctx = Context(engine_for(url), settings, RecordingQueue())

        def append(n):
            for i in range(25):
                with UnitOfWork(ctx) as uow:
                    audit.record(uow.session, actor=f"w{n}", action="release.edited",
                                 subject_type="test", subject_id=i)
                    uow.commit()

        threads = [threading.Thread(target=append, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result = verdict(ctx)
        assert result["ok"], result
        assert result["checked"] == 150

    if backend == "sqlite":
        run(f"sqlite:///{tmp_path / 'chain.db'}")
    else:
        with fresh_postgres_database() as url:
            run(url)
            engine_for(url).dispose()


def test_the_chain_lock_never_closes_a_deadlock_with_row_locks(settings):
    """One transaction locks a row then audits; another audits then wants that row (the
    order a channel save and a worker's credential flag took). Were the chain lock taken
    at the first audit row, each would wait for the other and PostgreSQL would kill one;
    taken as the transaction commits, it is always the last lock, and both go through."""
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
                    uow.session.exec(select(User).where(User.name == "shared").with_for_update()).one()
                    row_locked.set()
                    assert audited.wait(30)
                    audit.record(uow.session, actor="a", action="release.edited",
                                 subject_type="test", subject_id=1)
                    uow.commit()
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        def audit_then_lock():
            try:
                assert row_locked.wait(30)
                with UnitOfWork(ctx) as uow:
                    audit.record(uow.session, actor="b", action="release.edited",
                                 subject_type="test", subject_id=2)
                    audited.set()
                    uow.session.exec(select(User).where(User.name == "shared").with_for_update()).one()
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
        result = verdict(ctx)
        assert result["ok"] and result["checked"] == 2, result
        ctx.engine.dispose()
