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
