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


LATER_COLUMNS = {"unit_id"}  # added after the revisions these tests start from (0015)


def insert_as_of_old_revision(conn, rows) -> None:
    """Insert model objects into a database at an older revision: without the columns
    later migrations add (today's models would name them)."""
    import sqlalchemy as sa

    table = rows[0].__table__
    old = sa.Table(table.name, sa.MetaData(),
                   *[sa.Column(c.name, c.type) for c in table.c if c.name not in LATER_COLUMNS])
    conn.execute(old.insert(), [{k: v for k, v in row.model_dump().items()
                                 if k in old.c and v is not None} for row in rows])


def test_groups_named_before_0011_keep_their_owner_and_a_doubled_signature_counts_once(
        empty_database):
    from sqlmodel import Session, select

    from orchestrator.store.models import GoLiveGroup, Release, SignOff

    upgrade(empty_database, "0010")
    engine = make_engine(empty_database)

    def named(author, group, status, state="draft"):
        return Release(title="t", body_source="b", body_html="<p>b</p>", author=author,
                       golive_group=group, group_status=status, state=state)

    with engine.begin() as conn:
        insert_as_of_old_revision(conn, [
            named("press2", "g1", "member", "withdrawn"), named("press", "g1", "member"),
            named("press3", "g1", "pending"), named("press4", "g2", "pending")])
        insert_as_of_old_revision(conn, [  # the race 0011 closes, already stored
            SignOff(release_id=2, revision=1, step=0, role="reviewer", signer=signer,
                    decision="approve", content_hash="h") for signer in ("reviewer", "reviewer2")])
    upgrade(empty_database)
    with Session(engine) as session:
        owners = {g.name: g.owner for g in session.exec(select(GoLiveGroup))}
        counted = [s.signer for s in session.exec(select(SignOff).where(
            SignOff.voided == False))]  # noqa: E712
    engine.dispose()
    assert owners == {"g1": "press", "g2": "press4"}
    assert counted == ["reviewer"]


def test_0015_moves_every_existing_person_channel_and_release_into_the_root_unit(
        empty_database):
    """A single-unit installation at 0013, with people holding tokens, channels and releases
    with sign-offs and deliveries referring to them, upgrades with all of it in the root."""
    from sqlalchemy import text

    upgrade(empty_database, "0013")
    engine = make_engine(empty_database)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO \"user\" (name, display_name, roles, password_hash, created_at, "
            "disabled, session_generation) VALUES ('press', '', '[\"author\"]', '', "
            "CURRENT_TIMESTAMP, false, 0)"))
        conn.execute(text(
            "INSERT INTO apitoken (user_id, token_hash, prefix, label, created_at, expires_at) "
            "VALUES (1, 'h', 'tf_x', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(text(
            "INSERT INTO channel_instance (name, kind, config, credentials_encrypted, enabled, "
            "credentials_rejected, paused, created_at, updated_at) VALUES ('site', 'website', "
            "'{}', '', true, false, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(text(
            "INSERT INTO release (title, body_source, body_format, body_html, summary, meta, "
            "site_column, channels, overrides, images, attachments, priority, state, "
            "state_reason, author, co_authors, contributors, revision, content_hash, held, "
            "created_at, updated_at) VALUES ('t', 'b', 'markdown', '<p>b</p>', '', '{}', 'c', "
            "'[\"site\"]', '{}', '[]', '[]', 'normal', 'in_review', '', 'press', '[]', "
            "'[\"press\"]', 1, 'h', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(text(
            "INSERT INTO sign_off (release_id, revision, step, role, signer, decision, purpose, "
            "comment, content_hash, voided, created_at) VALUES (1, 1, 0, 'reviewer', 'r', "
            "'approve', 'review', '', 'h', false, CURRENT_TIMESTAMP)"))
    upgrade(empty_database)
    with engine.connect() as conn:
        units = conn.execute(text("SELECT id, code, parent_id FROM unit")).all()
        owned = {table: conn.execute(text(f'SELECT unit_id FROM "{table}"')).scalars().all()
                 for table in ("user", "channel_instance", "release")}
        kept = (conn.execute(text("SELECT count(*) FROM apitoken")).scalar_one(),
                conn.execute(text("SELECT count(*) FROM sign_off")).scalar_one())
    engine.dispose()
    assert units == [(1, "root", None)]
    assert owned == {"user": [1], "channel_instance": [1], "release": [1]}
    assert kept == (1, 1)
