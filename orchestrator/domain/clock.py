"""Time, in one place, so tests can move it instead of sleeping."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator

from orchestrator.domain.errors import InvalidInput

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


class Clock(Protocol):
    """What waits for an instant: the wall clock, or a test's, which moves when slept on."""

    def now(self) -> dt.datetime: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    def now(self) -> dt.datetime:
        return utcnow()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def sleep_until(at: dt.datetime, clock: Clock) -> float:
    """Return at `at` (never before: a sleep may end early); the seconds it was late."""
    while (left := (at - clock.now()).total_seconds()) > 0:
        clock.sleep(left)
    return -left


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")



# ------------------------------------------------------------------ times people type

BEIJING = ZoneInfo("Asia/Shanghai")  # a time typed without an offset is the office's time
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)  # far from datetime's edges
FORMAT = "时间格式应为 2026-11-29T09:00（北京时间）或带时区，如 2026-11-29T09:00+08:00"


def instant(value: Any, field: str) -> dt.datetime | None:
    """A time someone typed (a go-live time, a search's since/until) as aware UTC; None
    for nothing. ISO 8601; without an offset it is Beijing time. Malformed, or outside
    1970–2999 (where converting a zone could overflow), is InvalidInput naming `field` —
    and the message never repeats the input."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput([(field, FORMAT)]) from None
    elif isinstance(value, dt.datetime):
        parsed = value
    else:
        raise InvalidInput([(field, FORMAT)])
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=BEIJING)
    try:
        moment = parsed.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        moment = None
    if moment is None or not EARLIEST <= moment <= LATEST:
        raise InvalidInput([(field, "时间须在 1970 年到 2999 年之间")])
    return moment


def _typed(value: Any) -> dt.datetime | None:
    try:
        return instant(value, "")
    except InvalidInput as exc:
        raise ValueError(exc.problems[0][1]) from None


# the same reading as a pydantic/FastAPI type: request bodies, query parameters, files
Instant = Annotated[dt.datetime, BeforeValidator(_typed)]
