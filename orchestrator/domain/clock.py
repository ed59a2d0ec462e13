"""Time, in one place, so tests can move it instead of sleeping."""

from __future__ import annotations

import datetime as dt

_offset = dt.timedelta(0)  # only tests move it (travel); production never does


def utcnow() -> dt.datetime:
    """Aware UTC; the columns store and return aware UTC on SQLite and PostgreSQL."""
    return dt.datetime.now(dt.UTC) + _offset


def travel(seconds: float) -> None:
    """Move this process's clock forward (tests of schedules, leases and retries)."""
    global _offset
    _offset += dt.timedelta(seconds=seconds)


def reset() -> None:
    global _offset
    _offset = dt.timedelta(0)


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")
