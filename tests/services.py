"""Real services for integration tests: present, or (in CI) a failure, never a skip."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

IN_CI = os.environ.get("CI") == "true"
PG_ADMIN_URL = os.environ.get("TONGFA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TONGFA_TEST_REDIS", "redis://127.0.0.1:6379")
RABBIT_URL = os.environ.get("TONGFA_TEST_RABBIT", "amqp://guest:guest@127.0.0.1:5672//")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def missing(message: str) -> None:
    """Something a test needs is absent: in CI that is a failure, on a laptop a skip."""
    if IN_CI:
        pytest.fail(f"{message}; CI must provide it (.ci/run sets it up)")
    pytest.skip(message)


def require(name: str, port: int) -> None:
    if not _listening(port):
        missing(f"{name} is not listening on 127.0.0.1:{port}")


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new empty database for one test, dropped afterwards."""
    import psycopg

    require("PostgreSQL", 5432)
    name = f"tongfa_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_url(db: int = 0) -> str:
    require("Redis", 6379)
    return f"{REDIS_URL}/{db}"


def rabbit_url() -> str:
    require("RabbitMQ", 5672)
    return RABBIT_URL
