"""Request bodies above max_request_bytes get 413, for the API and the console alike,
announced (Content-Length) or not (chunked): counted as they arrive, never read whole."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from orchestrator.bootstrap import make_app
from orchestrator.settings import Settings
from orchestrator.usecases.unit_of_work import Context
from tests.conftest import RecordingQueue

LIMIT = 64 * 1024


@pytest.fixture
def small(tmp_path, ctx, people) -> tuple[Context, dict[str, str]]:
    settings = Settings(var_dir=tmp_path, database_url=ctx.settings.database_url,
                        max_request_bytes=LIMIT, _env_file=None)
    return Context(ctx.engine, settings, RecordingQueue()), people


def test_the_default_limit_is_two_megabytes():
    assert Settings(_env_file=None).max_request_bytes == 2 * 1024 * 1024


@pytest.mark.parametrize("path", ["/api/v1/releases", "/console/login"])
def test_an_announced_body_over_the_limit_is_413(small, path):
    context, people = small
    http = TestClient(make_app(context), raise_server_exceptions=False)
    answer = http.post(path, content=b"x" * (LIMIT + 1),
                       headers={"Authorization": f"Bearer {people['press']}",
                                "Content-Type": "application/json"})
    assert answer.status_code == 413


@pytest.mark.parametrize("path", ["/api/v1/releases", "/console/login"])
def test_a_chunked_body_over_the_limit_is_413(small, path):
    context, people = small
    http = TestClient(make_app(context), raise_server_exceptions=False)

    def chunks():
        for _ in range(4):
            yield b"y" * (LIMIT // 2)

    answer = http.post(path, content=chunks(),
                       headers={"Authorization": f"Bearer {people['press']}",
                                "Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413


def test_a_body_within_the_limit_still_works(small):
    context, people = small
    http = TestClient(make_app(context), raise_server_exceptions=False)
    answer = http.post("/api/v1/releases", json={"title": "x" * (LIMIT // 2)},
                       headers={"Authorization": f"Bearer {people['press']}"})
    assert answer.status_code == 422  # read and validated, not refused for its size


@pytest.mark.parametrize("path", ["/api/v1/releases", "/console/login"])
def test_an_endless_stream_is_cut_off_after_the_limit(small, path):
    """The sender never stops: the app must answer 413 having read only about the limit."""
    context, people = small
    app = make_app(context)
    pulled, sent = 0, []
    chunk = b"z" * 8192

    async def receive():
        nonlocal pulled
        pulled += 1
        if pulled > 10_000:  # 80 MB: the body was being read to the end
            raise AssertionError("read far past the limit")
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        sent.append(message)

    kind = b"application/json" if path.startswith("/api") else b"application/x-www-form-urlencoded"
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", kind),
                         (b"authorization", f"Bearer {people['press']}".encode())]}
    # a thread of its own: another test may have left an event loop running in this one
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert pulled * len(chunk) <= LIMIT + len(chunk)
