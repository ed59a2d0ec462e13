"""The rig the chaos suite and the benchmarks drive: real services, real worker processes.

PostgreSQL (a fresh database), a Redis server of its own (so it can be restarted and
lose its queues), or the embedded default; the Weibo sandbox with several accounts and
the website; `celery worker` processes that can be SIGKILLed; `tongfa scheduler`.
Figures are counted from the channels' own records, not from ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from orchestrator.cli.stack import make_context, worker_command
from orchestrator.settings import Settings
from orchestrator.usecases import channels, releases, review, users
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests.services import PG_ADMIN_URL

PEOPLE = {"press": ["author"], "reviewer": ["reviewer"], "secrecy": ["secrecy"],
          "leader": ["approver"], "ops": ["channel_admin"]}
FINAL = {"published", "partially_published", "failed"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Rig:
    def __init__(self, var_dir: Path, backend: str = "postgres-redis", weibo_accounts: int = 4,
                 workers: int = 2, lease_seconds: float = 5, redrive_seconds: float = 2,
                 with_website: bool = True, queues: tuple[str, ...] = ("urgent,normal",)) -> None:
        self.with_website = with_website
        self.queues = queues
        self.var_dir, self.backend = var_dir, backend
        self.accounts = {f"5000000{i:03d}": f"tok-{i}" for i in range(weibo_accounts)}
        self.worker_count = workers
        self.env = {"TONGFA_VAR_DIR": str(var_dir),
                    "TONGFA_SITE_BASE_URL": "http://127.0.0.1:8000/site",
                    "TONGFA_LEASE_SECONDS": str(lease_seconds),
                    "TONGFA_REDRIVE_SECONDS": str(redrive_seconds)}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stack = contextlib.ExitStack()
        self.release_ids: list[int] = []
        self.started = time.monotonic()

    # ------------------------------------------------------------------ set-up

    def __enter__(self) -> Rig:
        if self.backend != "embedded":
            self.env["TONGFA_DATABASE_URL"] = self._postgres()
        if self.backend == "postgres-redis":
            self.redis_port = free_port()
            self._start_redis()
            self.env["TONGFA_BROKER_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
        elif self.backend == "postgres-rabbitmq":
            self.env["TONGFA_BROKER_URL"] = self._rabbit_vhost()
        self.settings = Settings(**{k.removeprefix("TONGFA_").lower(): v
                                    for k, v in self.env.items()})
        self.ctx = make_context(self.settings)
        from channels.sandbox.server import SandboxServer
        from channels.sandbox.weibo import create_app

        self.sandbox = self._stack.enter_context(SandboxServer(
            create_app(accounts=self.accounts, safe_domain="127.0.0.1", posts_per_hour=100_000,
                       posts_per_day=100_000, app_posts_per_hour=100_000)))
        self._configure()
        for i in range(self.worker_count):
            self.start_worker(i, self.queues[i % len(self.queues)])
        self.procs.append(self._spawn([sys.executable, "-m", "orchestrator.cli.main",
                                       "scheduler"], "scheduler"))
        return self

    def _postgres(self) -> str:
        import psycopg

        self.db_name = f"tongfa_rig_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.db_name}"

    def _rabbit_vhost(self) -> str:
        """A virtual host of our own on the machine's RabbitMQ: no queue shared with others."""
        self.vhost = f"tongfa-{uuid.uuid4().hex[:8]}"
        subprocess.run(["rabbitmqctl", "add_vhost", self.vhost], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "set_permissions", "-p", self.vhost, "guest", ".*", ".*",
                        ".*"], check=True, capture_output=True)
        return f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"

    def _start_redis(self) -> None:
        """A Redis of our own with no persistence: a restart loses every queued message."""
        self.redis = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.redis_port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", self.redis_port)) != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def restart_redis(self) -> None:
        self.redis.kill()
        self.redis.wait()
        self._start_redis()

    def _configure(self) -> None:
        for name, roles in PEOPLE.items():
            with UnitOfWork(self.ctx) as uow:
                users.add_user(uow, name, roles)
        if self.with_website:
            with UnitOfWork(self.ctx) as uow:
                channels.save_channel(uow, "website", "website",
                                      {"web_root": str(self.settings.resolved_site_root)}, None,
                                      "ops")
        retry = {"base_seconds": 0.2, "cap_seconds": 2.0, "max_attempts": 50}
        for uid, token in self.accounts.items():
            with UnitOfWork(self.ctx) as uow:
                channels.save_channel(uow, f"weibo-{uid[-3:]}", "weibo", {
                    "api_base": self.sandbox.url, "safe_domain": "127.0.0.1", "uid": uid, "sandbox": True,
                    "rate_limit_retry_seconds": 0.5, "timeout_seconds": 2.0, "retry": retry,
                    "rate": None},  # the rig's accounts have no platform quota to keep within
                    {"access_token": token}, "ops")
        self.channel_names = (["website"] if self.with_website else []) + [
            f"weibo-{uid[-3:]}" for uid in self.accounts]

    def _spawn(self, command: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.var_dir / f"{name}.log", "ab")  # noqa: SIM115 (the child owns it)
        return subprocess.Popen(command, env={**os.environ, **self.env}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def start_worker(self, i: int, queues: str = "urgent,normal") -> None:
        proc = self._spawn(worker_command(f"rig{i}-{uuid.uuid4().hex[:4]}", queues, 2),
                           f"worker-{i}")
        if i < len(self.workers):
            self.workers[i] = proc
        else:
            self.workers.append(proc)

    def kill_worker(self, i: int) -> None:
        """SIGKILL the worker and its pool children: no clean-up, no acks."""
        os.killpg(self.workers[i].pid, signal.SIGKILL)
        self.workers[i].wait()

    def faults(self, **settings: Any) -> None:
        requests.post(f"{self.sandbox.url}/_sandbox/faults", json=settings, timeout=5)

    # ------------------------------------------------------------------ work

    def approve_release(self, n: int, **changes: Any) -> int:
        from tests.conftest import release_input

        fields = {"title": f"第{n}号通知：冬季安全生产", "channels": self.channel_names,
                  "summary": f"第{n}号。", **changes}
        data = release_input(**fields)
        with UnitOfWork(self.ctx) as uow:
            rid = releases.create(uow, data, "press")
        with UnitOfWork(self.ctx) as uow:
            releases.submit(uow, rid, "press")
        signers = ("secrecy", "leader") if data.priority == "urgent" else (
            "reviewer", "secrecy", "leader")
        for signer in signers:
            with UnitOfWork(self.ctx) as uow:
                review.approve(uow, rid, signer)
        self.release_ids.append(rid)
        return rid

    def states(self) -> Counter[str]:
        with UnitOfWork(self.ctx) as uow:
            return Counter(releases.get_release(uow.session, rid).state
                           for rid in self.release_ids)

    def states_of(self, release_ids: list[int]) -> dict[int, str]:
        from sqlmodel import select

        from orchestrator.store.models import Release

        with UnitOfWork(self.ctx) as uow:
            rows = uow.session.exec(select(Release.id, Release.state)
                                    .where(Release.id.in_(release_ids))).all()
        return dict(rows)

    def wait_until_done(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(self.states()) <= FINAL:
                return time.monotonic() - self.started
            time.sleep(0.25)
        raise AssertionError(f"not done after {timeout}s: {dict(self.states())}")

    def figures(self) -> dict[str, Any]:
        """Counted from what the channels themselves hold."""
        posts = requests.get(f"{self.sandbox.url}/_sandbox/posts", timeout=10).json()
        per_target = Counter()
        for post in posts:
            for rid in self.release_ids:
                if f"/articles/{rid}.html" in post["sent_text"] and not post["deleted"]:
                    per_target[(rid, str(post["uid"]))] += 1
        manifest_path = self.settings.resolved_site_root / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        for rid in self.release_ids:
            if str(rid) in manifest:
                per_target[(rid, "website")] += 1
        expected = len(self.release_ids) * len(self.channel_names)
        delivered = len(per_target)
        return {"releases": len(self.release_ids), "channels": len(self.channel_names),
                "delivered": delivered,
                "duplicates": sum(count - 1 for count in per_target.values()),
                "lost": expected - delivered}

    # ------------------------------------------------------------------ tear-down

    def __exit__(self, *exc: object) -> None:
        for proc in [*self.workers, *self.procs]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, *self.procs]:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if self.backend == "postgres-redis":
            self.redis.kill()
            self.redis.wait()
        if self.backend == "postgres-rabbitmq":
            subprocess.run(["rabbitmqctl", "delete_vhost", self.vhost], capture_output=True)
        if self.backend != "embedded":
            self.ctx.engine.dispose()
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        self._stack.close()


def reauthorize(rig: Rig) -> None:
    """What a channel admin does after a token expired: save the account's credentials again."""
    for uid, token in rig.accounts.items():
        with UnitOfWork(rig.ctx) as uow:
            row = channels.get_channel(uow.session, f"weibo-{uid[-3:]}")
            channels.save_channel(uow, row.name, "weibo", row.config, {"access_token": token}, "ops")


def audit_matches_attempts(rig: Rig) -> tuple[int, int]:
    from sqlmodel import func, select

    from orchestrator.store.models import AuditEvent, DeliveryAttempt

    with UnitOfWork(rig.ctx) as uow:
        attempts = uow.session.exec(select(func.count()).select_from(DeliveryAttempt)).one()
        events = uow.session.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action.like("delivery.attempt.%"))).one()
    return attempts, events


def open_deliveries(rig: Rig) -> list[tuple[int, str, str]]:
    from sqlmodel import select

    from orchestrator.domain.states import TERMINAL_DELIVERY_STATES
    from orchestrator.store.models import Delivery

    with UnitOfWork(rig.ctx) as uow:
        rows = uow.session.exec(select(Delivery)).all()
    return [(d.release_id, d.channel, d.state) for d in rows
            if d.state not in TERMINAL_DELIVERY_STATES]


def outcomes(rig: Rig) -> dict[str, int]:
    """How the attempts went: proof that the faults really happened."""
    from sqlmodel import func, select

    from orchestrator.store.models import DeliveryAttempt

    with UnitOfWork(rig.ctx) as uow:
        rows = uow.session.exec(select(DeliveryAttempt.phase, DeliveryAttempt.outcome, func.count())
                                .group_by(DeliveryAttempt.phase, DeliveryAttempt.outcome)).all()
    return {f"{phase}:{outcome}": count for phase, outcome, count in rows}


def failures(rig: Rig) -> list[tuple[int, str, str | None, str | None]]:
    from sqlmodel import select

    from orchestrator.store.models import Delivery

    with UnitOfWork(rig.ctx) as uow:
        rows = uow.session.exec(select(Delivery).where(Delivery.state != "published")).all()
    return [(d.release_id, d.channel, d.state, d.last_error) for d in rows]
