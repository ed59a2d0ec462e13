"""Alembic environment: the same migrations run on SQLite and PostgreSQL."""

from alembic import context
from sqlmodel import SQLModel

import orchestrator.store.models  # noqa: F401  (registers the tables)
from orchestrator.store.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite's way to change a table others refer to: copy it with foreign keys off
            # (only outside a transaction), then check every key before committing
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,  # ALTER on SQLite
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows without their parent: {broken[:5]}")
    engine.dispose()


run_migrations_online()
