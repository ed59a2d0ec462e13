"""The whole system in one command: API + website + sandboxes, worker processes, scheduler.

`tongfa serve` runs it until stopped; `tongfa demo` runs it around one release.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import uvicorn

from orchestrator.bootstrap import installed_context, make_app
from orchestrator.settings import Settings
from orchestrator.store import secrets
from orchestrator.usecases import scheduler
from orchestrator.usecases.channels import list_channels
from orchestrator.usecases.unit_of_work import QUEUES, Context, Queue, UnitOfWork

log = logging.getLogger(__name__)


def api_server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How the API is served. uvicorn's own proxy-header handling is off: by default it
    believes X-Forwarded-For from 127.0.0.1, so any local client could choose the address
    the sign-in throttle sees. The console believes the header only from the proxies named
    in settings.trusted_proxies (orchestrator/web/console.py)."""
    options: dict[str, Any] = {"host": settings.host, "port": settings.port,
                               "log_level": "warning", "lifespan": "off",
                               "proxy_headers": False, **overrides}
    return uvicorn.Config(app, **options)


def sandbox_mounts(ctx: Context, api_url: str) -> dict[str, Any]:
    """Sandboxes of the channel APIs, with the accounts of the channels that point at them."""
    from channels.sandbox import wechat, weibo

    accounts: dict[str, str] = {}
    apps: dict[str, Any] = {}
    with UnitOfWork(ctx) as uow:
        rows = [r for r in list_channels(uow.session) if r.config.get("sandbox")]
        creds = {r.name: secrets.decrypt(ctx.settings, r.credentials_encrypted) for r in rows}
    for row in rows:
        if row.kind == "weibo":
            accounts[row.config.get("uid") or row.name] = creds[row.name].get("access_token", "")
        if row.kind == "wechat":  # one account per sandbox, with its event callback
            apps["/sandbox/wechat"] = wechat.create_app(
                accounts={row.config["appid"]: creds[row.name].get("appsecret", "")},
                callback_url=f"{api_url}/api/v1/channels/{row.name}/wechat-events",
                callback_token=creds[row.name].get("callback_token", ""))
    apps["/sandbox/weibo"] = weibo.create_app(accounts=accounts, safe_domain="127.0.0.1")
    return apps


class Stack:
    def __init__(self, settings: Settings, workers: int | None = None) -> None:
        self.settings = settings
        self.workers = settings.workers if workers is None else workers
        self.ctx = installed_context(settings)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.server: uvicorn.Server | None = None
        self._closers: list[Any] = []

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    def start(self) -> Stack:
        self._check_channels()
        self._start_desk()
        app = make_app(self.ctx, mounts=sandbox_mounts(self.ctx, self.url))
        self.server = uvicorn.Server(api_server_config(app, self.settings))
        self._spawn(self.server.run, "api")
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start on {self.url}")
            time.sleep(0.05)
        logs = self.settings.var_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # normal workers, plus one that serves only the urgent queue: a backlog never delays it
        plan = [(f"w{i}", Queue.NORMAL.value, 2) for i in range(self.workers)] + [
            ("urgent", Queue.URGENT.value, 1), ("integrity", Queue.INTEGRITY.value, 1)]
        for name, queues, concurrency in plan:
            with open(logs / f"worker-{name}.log", "ab") as log_file:  # the child keeps its fd
                self._procs.append(subprocess.Popen(
                    worker_command(name, queues, concurrency), env=os.environ.copy(),
                    stdout=log_file, stderr=subprocess.STDOUT))
        self._spawn(self._schedule, "scheduler")
        return self

    def _start_desk(self) -> None:
        """The newspaper desk's SFTP drop and mailbox, when a sandbox newsfeed channel uses them."""
        from channels.sandbox.desk import SftpServer, SmtpServer

        with UnitOfWork(self.ctx) as uow:
            rows = [r for r in list_channels(uow.session)
                    if r.kind == "newsfeed" and r.config.get("sandbox")]
            creds = [secrets.decrypt(self.settings, r.credentials_encrypted) for r in rows]
        if not rows:
            return
        root = (self.settings.var_dir / "desk").resolve()
        (root / "incoming").mkdir(parents=True, exist_ok=True)
        self.desk_sftp = SftpServer(root, password=creds[0].get("sftp_password", ""),
                                    port=self.settings.desk_sftp_port).__enter__()
        self.desk_mail = SmtpServer(port=self.settings.desk_smtp_port,
                                    keep_in=root / "mailbox").__enter__()
        self._closers.extend([self.desk_sftp.__exit__, self.desk_mail.__exit__])

    def _check_channels(self) -> None:
        """Test every website channel at start: it also lays out a new site's home page."""
        from orchestrator.usecases.channels import test_channel

        with UnitOfWork(self.ctx) as uow:
            names = [c.name for c in list_channels(uow.session) if c.kind == "website"]
        for name in names:
            with UnitOfWork(self.ctx) as uow:
                ok, message = test_channel(uow, name, "serve")
            if not ok:
                log.warning("channel %s: %s", name, message)

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _schedule(self) -> None:
        scheduler.run(self.ctx, self._stop.wait)

    def stop(self) -> None:
        self._stop.set()
        for proc in self._procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.server is not None:
            self.server.should_exit = True
        for close in self._closers:
            close(None, None, None)
        for thread in self._threads:
            thread.join(timeout=5)

    def wait(self) -> None:
        """Run until Ctrl-C or SIGTERM (what kill, `docker stop` and systemd send), then stop
        the workers and the scheduler: SIGTERM reaches this process only, not its children."""
        previous = signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        try:
            while not self._stop.is_set():
                if any(p.poll() is not None for p in self._procs):
                    raise RuntimeError("a worker process exited")
                self._stop.wait(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
            signal.signal(signal.SIGTERM, previous)


def worker_command(name: str, queues: str = ",".join(QUEUES),
                   concurrency: int = 2) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
            "-Q", queues, "-c", str(concurrency), "-n", f"{name}@%h", "-l", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]
