"""A real browser (Debian's Chromium driven by Playwright) against the console on loopback.

The console is served by uvicorn in a thread, on the API app as production mounts
it, with real adapters: the website writing into a temporary web root that the same
server publishes at /site, and Weibo through the local Weibo API sandbox. Deliveries
run Celery-free: the test calls `drain(ctx)` (and the scheduler's tick) between steps,
while the page keeps polling its board like a person would watch it.

Without Chromium (or the playwright package) these tests skip locally and fail in CI.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from channels.sandbox.server import SandboxServer
from orchestrator.bootstrap import make_app
from orchestrator.settings import Settings
from orchestrator.usecases import channels, users
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests import services

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "browser-pass-123"
EXTRA = {"chief": ["author", "reviewer"]}  # an author who also reviews: self-approval case
WEIBO_UID, WEIBO_TOKEN = "5000000001", "tok-browser"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason:
        services.missing(f"browser tests cannot run: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path, database_url: str, port: int) -> Settings:
    """As the suite's settings, but the website's base URL is this test's server."""
    return Settings(var_dir=tmp_path, database_url=database_url,
                    site_base_url=f"http://127.0.0.1:{port}/site", _env_file=None)


@dataclass
class Served:
    ctx: Context
    url: str  # the console, e.g. http://127.0.0.1:PORT/console
    weibo_url: str


@pytest.fixture
def served(ctx: Context, people: dict[str, str], memory_channels: list[str], port: int,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    from argon2 import PasswordHasher

    from channels.sandbox import weibo

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                         parallelism=1))
    for name, roles in EXTRA.items():
        with UnitOfWork(ctx) as uow:
            users.add_user(uow, name, roles)
    for name in [*people, *EXTRA]:
        with UnitOfWork(ctx) as uow:
            users.set_password(uow, name, PASSWORD, "admin")
    sandbox = weibo.create_app(accounts={WEIBO_UID: WEIBO_TOKEN}, safe_domain="127.0.0.1")
    with SandboxServer(sandbox) as weibo_server:
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "gov-site", "website", {
                "web_root": str(ctx.settings.resolved_site_root),
                "base_url": ctx.settings.site_base_url}, None, "admin_ops")
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "weibo-office", "weibo", {
                "api_base": weibo_server.url, "safe_domain": "127.0.0.1", "uid": WEIBO_UID,
                "sandbox": True},
                {"access_token": WEIBO_TOKEN}, "admin_ops")
        app = make_app(ctx)
        with SandboxServer(app, port=port) as server:
            yield Served(ctx, f"{server.url}/console", weibo_server.url)


@pytest.fixture
def person(browser: Any, served: Served) -> Iterator[Any]:
    """person(name) → a signed-in page in its own browser context (its own cookies)."""
    contexts = []

    def open_as(name: str, width: int = 1280, height: int = 860) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height},
                                      locale="zh-CN", timezone_id="Asia/Shanghai")
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        sign_in(page, served.url, name)
        return page

    yield open_as
    for context in contexts:
        context.close()


def sign_in(page: Any, url: str, name: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r".*/console/$"))


def screenshot(page: Any, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
