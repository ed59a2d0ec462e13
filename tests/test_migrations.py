"""Alembic migrations from the first table: up and down on SQLite and PostgreSQL, no drift."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from orchestrator.store.db import alembic_config, make_engine, upgrade
from tests.services import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


def test_upgrade_downgrade_round_trip_without_drift(empty_database):
    upgrade(empty_database)
    engine = make_engine(empty_database)
    assert {"release", "delivery", "delivery_attempt", "audit_event", "sign_off"} <= set(
        inspect(engine).get_table_names())
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                SQLModel.metadata)
    assert diff == [], f"models and migrations drifted: {diff}"
    command.downgrade(alembic_config(empty_database), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(empty_database)
    engine.dispose()


def test_groups_named_before_0011_keep_their_owner_and_a_doubled_signature_counts_once(
        empty_database):
    from sqlmodel import Session, select

    from orchestrator.store.models import GoLiveGroup, Release, SignOff

    upgrade(empty_database, "0010")
    engine = make_engine(empty_database)

    def named(author, group, status, state="draft"):
        return Release(title="t", body_source="b", body_html="<p>b</p>", author=author,
                       golive_group=group, group_status=status, state=state)

    with Session(engine) as session:
        session.add_all([named("press2", "g1", "member", "withdrawn"), named("press", "g1", "member"),
                         named("press3", "g1", "pending"), named("press4", "g2", "pending")])
        session.commit()
        for signer in ("reviewer", "reviewer2"):  # the race 0011 closes, already stored
            session.add(SignOff(release_id=2, revision=1, step=0, role="reviewer", signer=signer,
                                decision="approve", content_hash="h"))
        session.commit()
    upgrade(empty_database)
    with Session(engine) as session:
        owners = {g.name: g.owner for g in session.exec(select(GoLiveGroup))}
        counted = [s.signer for s in session.exec(select(SignOff).where(
            SignOff.voided == False))]  # noqa: E712
    engine.dispose()
    assert owners == {"g1": "press", "g2": "press4"}
    assert counted == ["reviewer"]
