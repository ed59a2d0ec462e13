"""Engine, sessions and migrations-on-first-use, for SQLite (WAL) and PostgreSQL alike."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlmodel import Session

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_migrated: set[str] = set()
_lock = threading.Lock()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        # Take the write lock up front: a read that later writes cannot deadlock.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _sqlite_pragmas(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@contextmanager
def _migration_lock(engine: Engine, url: str) -> Iterator[None]:
    """Two processes starting on a new database must not both migrate it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(7420001)"))
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(7420001)"))
                conn.commit()
        return
    with file_lock(Path(url.split(":///", 1)[-1] + ".migrate.lock")):
        yield


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """One holder at a time among the processes of this machine (an flock on `path`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def upgrade(url: str, revision: str = "head") -> None:
    engine = make_engine(url)
    with _migration_lock(engine, url):
        command.upgrade(alembic_config(url), revision)
    engine.dispose()


def ensure_migrated(engine: Engine, url: str) -> None:
    """Apply migrations on first use, once per process."""
    with _lock:
        if url in _migrated:
            return
        if not is_current(engine):
            upgrade(url)
        _migrated.add(url)


@cache
def engine_for(url: str) -> Engine:
    engine = make_engine(url)
    ensure_migrated(engine, url)
    return engine


def session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)
