"""Shared fixtures: real objects (SQLite or PostgreSQL, real adapters), no mocks of our code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request

from channels import newsfeed, registry
from channels.sandbox.server import SandboxServer
from orchestrator.bootstrap import make_context
from orchestrator.domain import clock
from orchestrator.domain.release import parse_release
from orchestrator.settings import Settings
from orchestrator.usecases import channels, users
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from orchestrator.usecases.work import TASKS
from tests import fakes

PEOPLE = {"press": ["author"], "press2": ["author"], "reviewer": ["reviewer"],
          "secrecy": ["secrecy"], "leader": ["approver"], "admin_ops": ["channel_admin"],
          "auditor": ["auditor"], "allrounder": ["reviewer", "secrecy", "approver"]}


class RecordingQueue:
    """Holds what the use cases enqueue, so a test can run it (or run it twice)."""

    def __init__(self, processes: int = 1) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.workers = processes  # the worker processes a go-live is split over

    def send(self, task: str, *, priority: str, countdown: float = 0.0, **kwargs: Any) -> None:
        self.sent.append((task, kwargs))

    def processes(self, priority: str) -> int:
        return self.workers


def drain(ctx: Context, limit: int = 500) -> list[str]:
    """Run queued tasks in order, as a worker would, until none are left."""
    queue: RecordingQueue = ctx.queue  # type: ignore[assignment]
    ran = []
    while queue.sent and len(ran) < limit:
        task, kwargs = queue.sent.pop(0)
        TASKS[task](ctx, **kwargs)
        ran.append(task)
    return ran


@pytest.fixture(autouse=True)
def _memory_kind(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[None]:
    monkeypatch.setitem(registry.loaded, "memory", fakes.MemoryAdapter)
    # each test notes its mails apart: the same Message-ID in two tests is two mails, and a
    # mark left in the system's temp folder by an earlier run would stop the next one sending
    monkeypatch.setattr(newsfeed, "DEFAULT_NOTE_STORE", tmp_path_factory.mktemp("mail-notes"))
    fakes.reset()
    yield
    fakes.reset()
    clock.reset()


@pytest.fixture
def database_url(request, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """SQLite; a fresh PostgreSQL database for a test parametrized with
    `@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)`."""
    if getattr(request, "param", "sqlite") == "postgresql":
        from tests.services import fresh_postgres_database

        with fresh_postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'tongfa.db'}"


@pytest.fixture
def alert_hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A receiver for the operator alert webhook: its URL, and every body it was sent."""
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/hook")
    async def take(request: Request) -> dict[str, bool]:
        received.append(await request.json())
        return {"ok": True}

    with SandboxServer(app) as server:
        yield server.url + "/hook", received


@pytest.fixture
def settings(tmp_path, database_url: str) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(var_dir=tmp_path, database_url=database_url,
                    site_base_url="http://127.0.0.1:8000/site", _env_file=None)


@pytest.fixture
def ctx(settings: Settings) -> Context:
    return make_context(settings, RecordingQueue())


@pytest.fixture
def people(ctx: Context) -> dict[str, str]:
    tokens = {}
    for name, roles in PEOPLE.items():
        with UnitOfWork(ctx) as uow:
            tokens[name] = users.add_user(uow, name, roles)
    return tokens


@pytest.fixture
def memory_channels(ctx: Context) -> list[str]:
    for name in ("alpha", "beta"):
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, name, "memory",
                                  {"account": name, "retry": {"base_seconds": 0.0}},
                                  {"token": f"secret-token-{name}"}, "admin_ops")
    return ["alpha", "beta"]


def release_input(**changes: Any) -> Any:
    data: dict[str, Any] = {
        "title": "关于做好冬季安全生产工作的通知",
        "summary": "部署冬季安全生产。",
        "body": "各市人民政府：\n\n请**认真贯彻落实**。",
        "metadata": {"index_number": "11440000/2026-00001", "issuing_body": "省人民政府办公厅",
                     "document_number": "某政办发〔2026〕8号", "date_written": "2026-11-20",
                     "date_published": "2026-11-29", "disclosure": "主动公开"},
        "channels": ["alpha", "beta"],
    }
    data.update(changes)
    return parse_release(data)


@pytest.fixture
def new_release(ctx: Context, people: dict[str, str], memory_channels: list[str]):  # type: ignore[no-untyped-def]
    def make(**changes: Any) -> int:
        from orchestrator.usecases import releases

        with UnitOfWork(ctx) as uow:
            return releases.create(uow, release_input(**changes), "press")

    return make


def approve_all(ctx: Context, release_id: int) -> str:
    from orchestrator.usecases import releases, review

    with UnitOfWork(ctx) as uow:
        releases.submit(uow, release_id, "press")
    state = ""
    for signer in ("reviewer", "secrecy", "leader"):
        with UnitOfWork(ctx) as uow:
            state = review.approve(uow, release_id, signer)
    return state
