"""The rig the chaos suite and the benchmarks drive: real services, real worker processes.

PostgreSQL (a fresh database), a Redis server of its own (so it can be restarted and
lose its queues), or the embedded default; the website and the Weibo sandbox with several
accounts, and with `kinds` the WeChat sandbox (asynchronous freepublish), the newspaper
desk (SFTP, e-mail and an Atom feed) and a CMS receiver; `celery worker` processes that
can be SIGKILLed; `tongfa scheduler`. Figures are counted by tests/instrument.py from
the platforms' wire logs (and the website's and feed's own files), not from ours.

`broken_build` runs the workers as a deliberately broken build (tests/broken_builds.py),
so a test can show that the instrument sees what a broken build does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from orchestrator.bootstrap import installed_context
from orchestrator.cli.stack import worker_command
from orchestrator.settings import Settings
from orchestrator.usecases import channels, releases, review, users
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests import instrument
from tests.services import PG_ADMIN_URL

PEOPLE = {"press": ["author"], "reviewer": ["reviewer"], "secrecy": ["secrecy"],
          "leader": ["approver"], "ops": ["channel_admin"]}
FINAL = {"published", "partially_published", "failed"}
ALL_KINDS = ("website", "weibo", "wechat", "newsfeed", "cms_push")
LEGS = {"website": ("page",), "weibo": ("post",), "wechat": ("article",),
        "newsfeed": ("atom", "sftp", "email"), "cms_push": ("push",)}
WECHAT_APPID, WECHAT_SECRET = "wx5a1b2c3d4e5f6a7b", "sandbox-wechat-secret-0123456789ab"
CMS_SECRET = "whsec_dG9uZ2ZhIGFuZCB0aGUgQ01TIHNoYXJlIHRoZXNlIDMyQg=="
ARTICLE = re.compile(r"/articles/(\d+)\.html")
DELIVERY_KEY = re.compile(r"tongfa-(\d+)-r\d+-([A-Za-z0-9_-]+?)(?:@|>|$)")
FEED_FILE = re.compile(r"tongfa-(\d+)-v\d+\.")
FEED_URL = "https://feed.example.gov.cn/feed"  # where the desks read the Atom feed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Rig:
    def __init__(self, var_dir: Path, backend: str = "postgres-redis", weibo_accounts: int = 4,
                 workers: int = 2, lease_seconds: float = 5, redrive_seconds: float = 2,
                 with_website: bool = True, queues: tuple[str, ...] = ("urgent,normal",),
                 kinds: tuple[str, ...] = ("website", "weibo"), broken_build: str = "",
                 smtp_timeout: float = 3.0) -> None:
        self.with_website = with_website and "website" in kinds
        self.kinds = kinds
        self.broken_build = broken_build
        self.smtp_timeout = smtp_timeout
        self.decisions: list[tuple[str, int, str]] = []  # (channel, release, what a person did)
        self.queues = queues
        self.var_dir, self.backend = var_dir, backend
        self.accounts = {f"5000000{i:03d}": f"tok-{i}" for i in range(weibo_accounts)}
        self.worker_count = workers
        self.env = {"TONGFA_VAR_DIR": str(var_dir),
                    "TONGFA_SITE_BASE_URL": "http://127.0.0.1:8000/site",
                    "TONGFA_LEASE_SECONDS": str(lease_seconds),
                    "TONGFA_REDRIVE_SECONDS": str(redrive_seconds)}
        if broken_build:  # read by tests/broken_builds.py only, in the workers
            self.env["TONGFA_TEST_BROKEN_BUILD"] = broken_build
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
        self.ctx = installed_context(self.settings)
        from channels.sandbox.server import SandboxServer
        from channels.sandbox.weibo import create_app

        self.sandbox = self._stack.enter_context(SandboxServer(
            create_app(accounts=self.accounts, safe_domain="127.0.0.1", posts_per_hour=100_000,
                       posts_per_day=100_000, app_posts_per_hour=100_000)))
        self.sandboxes = {"weibo": self.sandbox.url}  # the ones reached over HTTP
        if "wechat" in self.kinds:
            from channels.sandbox import wechat

            self.wechat = self._stack.enter_context(SandboxServer(
                wechat.create_app({WECHAT_APPID: WECHAT_SECRET}, publish_daily_limit=100_000)))
            self.sandboxes["wechat"] = self.wechat.url
        if "cms_push" in self.kinds:
            from channels.sandbox import cms

            self.cms = self._stack.enter_context(SandboxServer(cms.create_app(CMS_SECRET)))
            self.sandboxes["cms"] = self.cms.url
        if "newsfeed" in self.kinds:
            from channels.sandbox.desk import SftpServer, SmtpServer

            drop = self.var_dir / "desk"
            drop.mkdir(exist_ok=True)
            self.sftp = self._stack.enter_context(SftpServer(drop))
            self.smtp = self._stack.enter_context(SmtpServer())
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
        self.channel_kinds = {name: name.split("-")[0] for name in self.channel_names}
        extra = {
            "wechat": ({"api_base": getattr(self, "wechat", None) and self.wechat.url,
                        "appid": WECHAT_APPID, "sandbox": True, "timeout_seconds": 2.0,
                        "token_store": str(self.var_dir / "private" / "wechat-tokens"),
                        "rate_limit_retry_seconds": 1.0, "retry": retry, "rate": None},
                       {"appsecret": WECHAT_SECRET}),
            "newsfeed": (lambda: {
                "delivery": ["atom", "sftp", "email"], "sandbox": True, "retry": retry,
                "sftp": {"host": "127.0.0.1", "port": self.sftp.port, "username": "desk",
                         "accept_any_host_key": True, "timeout_seconds": 3.0},
                "email": {"host": "127.0.0.1", "port": self.smtp.port,
                          "timeout_seconds": self.smtp_timeout,
                          "from_addr": "press@127.0.0.1", "to_addrs": ["desk@127.0.0.1"]},
                "atom": {"directory": str(self.feed_dir), "base_url": FEED_URL},
                "note_store": str(self.var_dir / "private" / "newsfeed-notes")},
                {"sftp_password": "desk-pass-1"}),
            "cms_push": (lambda: {"endpoint": f"{self.cms.url}/api/releases", "sandbox": True,
                                  "timeout_seconds": 2.0, "rate_limit_retry_seconds": 0.5,
                                  "retry": retry}, {"secret": CMS_SECRET}),
        }
        for kind in ("wechat", "newsfeed", "cms_push"):
            if kind not in self.kinds:
                continue
            config, credentials = extra[kind]
            with UnitOfWork(self.ctx) as uow:
                channels.save_channel(uow, kind, kind, config() if callable(config) else config,
                                      credentials, "ops")
            self.channel_names.append(kind)
            self.channel_kinds[kind] = kind

    def _spawn(self, command: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.var_dir / f"{name}.log", "ab")  # noqa: SIM115 (the child owns it)
        return subprocess.Popen(command, env={**os.environ, **self.env}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def feed_dir(self) -> Path:
        return self.settings.resolved_site_root / "feed"

    def start_worker(self, i: int, queues: str = "urgent,normal") -> None:
        command = worker_command(f"rig{i}-{uuid.uuid4().hex[:4]}", queues, 2)
        if self.broken_build:  # the plugin patches the worker as it starts
            command += ["--include", "tests.broken_builds"]
        proc = self._spawn(command, f"worker-{i}")
        if i < len(self.workers):
            self.workers[i] = proc
        else:
            self.workers.append(proc)

    def kill_worker(self, i: int) -> None:
        """SIGKILL the worker and its pool children: no clean-up, no acks."""
        os.killpg(self.workers[i].pid, signal.SIGKILL)
        self.workers[i].wait()

    def kill_worker_when_mail_taken(self, at: int, worker: int = 0) -> threading.Event:
        """At the desk's `at`-th DATA: the message is accepted (wire log), then the worker on
        the other end is SIGKILLed before the 250 is sent, so it can note nothing. An event
        is set once it is dead; a scheduled point, not a wall-clock moment."""
        killed = threading.Event()

        def kill(entry: dict[str, Any]) -> None:
            self.kill_worker(worker)
            killed.set()

        self.smtp.on_hold = kill
        self.plan("smtp", schedule=[{"path": "smtp/DATA", "fault": "hold", "at": [at]}])
        return killed

    def faults(self, **settings: Any) -> None:
        requests.post(f"{self.sandbox.url}/_sandbox/faults", json=settings, timeout=5)

    def plan(self, sandbox: str, merge: bool = False, **settings: Any) -> None:
        """Faults of one sandbox: weibo, wechat, cms over HTTP; sftp, smtp in this process."""
        if sandbox in ("sftp", "smtp"):
            faults = getattr(self, sandbox).faults
            faults.update(**settings) if merge else faults.set(**settings)
            return
        answer = requests.post(f"{self.sandboxes[sandbox]}/_sandbox/faults",
                               params={"merge": int(merge)}, json=settings, timeout=5)
        answer.raise_for_status()

    def fault_logs(self) -> dict[str, list[dict[str, Any]]]:
        """Every sandbox's own log of the faults it really injected."""
        logs = {name: requests.get(f"{url}/_sandbox/faults/log", timeout=10).json()
                for name, url in self.sandboxes.items()}
        if "newsfeed" in self.kinds:
            logs["sftp"], logs["smtp"] = self.sftp.faults.logged(), self.smtp.faults.logged()
        return logs

    def wait_for_fault(self, sandbox: str, fault: str, timeout: float = 120) -> None:
        """Poll (generous deadline) until a scheduled fault has really happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e["fault"] == fault for e in self.fault_logs().get(sandbox, [])):
                return
            time.sleep(0.2)
        raise AssertionError(f"{sandbox}: fault {fault} did not happen in {timeout}s")

    def redeliver_publish(self, timeout: float = 60) -> int:
        """At-least-once delivery: send the publish task again for every channel already live
        while its release is still going live. Claims must make these do nothing."""
        from sqlmodel import select

        from orchestrator.store.models import Delivery, Release

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with UnitOfWork(self.ctx) as uow:
                rows = uow.session.exec(
                    select(Delivery.id, Release.priority).join(
                        Release, Release.id == Delivery.release_id).where(
                        Release.state == "publishing",
                        Delivery.state.in_(("published", "confirming")))).all()
                for delivery_id, priority in rows:
                    uow.enqueue("publish", priority=priority, delivery_id=delivery_id)
                uow.commit()
            if rows:
                return len(rows)
            time.sleep(0.1)
        raise AssertionError("no delivery was live while its release was still going live")

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

    def wait_until_done(self, timeout: float, admin: bool = False) -> float:
        """Poll until every release is final; with `admin`, a channel admin re-authorises
        any account the moment it is flagged (an answer may land after the first renewal)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(self.states()) <= FINAL:
                return time.monotonic() - self.started
            if admin:
                reauthorize(self, only_flagged=True)
                self.decide()
            time.sleep(0.25)
        raise AssertionError(f"not done after {timeout}s: {dict(self.states())}")

    def decide(self) -> None:
        """What a channel admin does with a delivery that needs a decision: looks on the
        platform. A newsfeed mail the desk's inbox holds is marked published (its item in
        the feed); one it does not hold is re-sent. Recorded in `decisions`."""
        from sqlmodel import select

        from channels import iptc
        from orchestrator.store.models import Delivery
        from orchestrator.usecases import recovery

        with UnitOfWork(self.ctx) as uow:
            waiting = uow.session.exec(select(Delivery).where(
                Delivery.state == "needs_decision", Delivery.kind == "newsfeed")).all()
            waiting = [(d.id, d.release_id, d.channel, d.idempotency_key) for d in waiting]
        for delivery_id, release_id, channel, key in waiting:
            with UnitOfWork(self.ctx) as uow:
                if self.smtp.has(iptc.message_id(key, "press.example.gov.cn")):
                    recovery.mark_published(uow, delivery_id, "ops",
                                            f"{FEED_URL}/tongfa-{release_id}-v1.xml",
                                            "the desk's inbox holds the mail")
                    self.decisions.append((channel, release_id, "mark_published"))
                else:
                    recovery.resend(uow, delivery_id, "ops")
                    self.decisions.append((channel, release_id, "resend"))

    def plan_chaos(self) -> None:
        """Each kind's own faults, by request count (so the same on a busy machine as on an
        idle one) and spread so they keep coming however many releases there are."""
        share, submit = "statuses/share.json", "freepublish/submit"
        self.plan("weibo", rate_limit=2, rate_window_s=1, schedule=[
            {"path": share, "fault": "busy", "every": 6, "offset": 2},
            {"path": share, "fault": "drop", "every": 7, "offset": 4},
            {"path": share, "fault": "drop", "every": 23, "offset": 11, "mode": "close"},
            {"path": share, "fault": "slow", "every": 13, "offset": 6, "ms": 2500},
            {"path": share, "fault": "expire", "at": [9]}])
        if "wechat" in self.kinds:
            self.plan("wechat", publish_seconds=1.5, schedule=[
                {"path": submit, "fault": "busy", "every": 5, "offset": 2},
                {"path": submit, "fault": "quota", "every": 7, "offset": 3},
                {"path": submit, "fault": "drop", "every": 6, "offset": 5},
                {"path": "draft/add", "fault": "expire", "every": 50, "offset": 4}])
        if "cms_push" in self.kinds:
            self.plan("cms", schedule=[
                {"path": "/api/releases", "fault": "status", "status": 503, "every": 5,
                 "offset": 2},
                {"path": "/api/releases", "fault": "slow", "ms": 3000, "every": 7, "offset": 4}])
        if "newsfeed" in self.kinds:
            self.plan("sftp", schedule=[
                {"path": "sftp/upload", "fault": "disconnect", "every": 6, "offset": 3},
                {"path": "sftp/rename", "fault": "drop", "every": 7, "offset": 5}])
            self.plan("smtp", schedule=[
                {"path": "smtp/DATA", "fault": "status", "status": 451, "every": 5, "offset": 2}])

    def renew_weibo_tokens(self) -> None:
        """The Weibo grant expired (a person renews it): wait until it really did, renew."""
        self.wait_for_fault("weibo", "expire")
        self.plan("weibo", merge=True, expire_tokens=False)
        reauthorize(self)

    def wire(self) -> list[dict[str, Any]]:
        """Every call that reached a platform, from the sandboxes' wire logs, plus the
        website's and the Atom feed's own files (written here: no platform to reach)."""
        calls = [e for url in self.sandboxes.values()
                 for e in requests.get(f"{url}/_sandbox/wire", timeout=30).json()]
        if "newsfeed" in self.kinds:
            calls += self.sftp.wire.entries() + self.smtp.wire.entries()
            feed = self.feed_dir / "newsfeed.json"  # the feed's commit point
            items = json.loads(feed.read_text()).values() if feed.exists() else []
            calls += [self._file_entry("atom", item["files"][0]["name"]) for item in items]
        manifest_path = self.settings.resolved_site_root / "manifest.json"
        if self.with_website and manifest_path.exists():
            calls += [self._file_entry("website", rid)
                      for rid in json.loads(manifest_path.read_text())]
        return calls

    @staticmethod
    def _file_entry(sandbox: str, target: str) -> dict[str, Any]:
        return {"n": 0, "sandbox": sandbox, "received_at": 0.0, "answered_at": 0.0,
                "account": "", "operation": "file", "create": True, "target": target,
                "answer": "present", "accepted": True}

    def target_of(self, call: dict[str, Any]) -> instrument.Target | None:
        """Which release on which channel (and leg) a platform call was about."""
        sandbox, target = call["sandbox"], str(call["target"])
        if sandbox == "website":
            return ("website", int(target), "page") if target.isdigit() else None
        if sandbox in ("weibo", "wechat"):
            found = ARTICLE.search(target)
            channel = f"weibo-{call['account'][-3:]}" if sandbox == "weibo" else "wechat"
            if found is None or channel not in self.channel_kinds:
                return None
            return channel, int(found.group(1)), "post" if sandbox == "weibo" else "article"
        if sandbox in ("cms", "smtp"):
            found = DELIVERY_KEY.search(target)
            if found is None or found.group(2) not in self.channel_kinds:
                return None
            return found.group(2), int(found.group(1)), "push" if sandbox == "cms" else "email"
        found = FEED_FILE.search(target)  # sftp, atom: the item's file name
        return None if found is None else ("newsfeed", int(found.group(1)), sandbox)

    def expected(self) -> list[instrument.Target]:
        return [(name, rid, leg) for rid in self.release_ids
                for name, kind in self.channel_kinds.items() for leg in LEGS[kind]]

    def count(self) -> instrument.Figures:
        return instrument.count(self.wire(), self.expected(), self.target_of)

    def wait_for_duplicates(self, timeout: float) -> instrument.Figures:
        """Poll the instrument (generous deadline) until it counts a duplicate."""
        deadline = time.monotonic() + timeout
        found = self.count()
        while found.duplicates == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            found = self.count()
        return found

    def figures(self) -> dict[str, Any]:
        """Counted from what the platforms saw (the wire logs), never from our database."""
        found = self.count()
        return {"releases": len(self.release_ids), "channels": len(self.channel_names),
                "kinds": sorted(set(self.channel_kinds.values())), **found.summary(),
                "decisions": len(self.decisions),
                "faults_injected": sum(instrument.faults_injected(self.fault_logs()).values())}

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


def reauthorize(rig: Rig, only_flagged: bool = False) -> None:
    """What a channel admin does after a token expired: save the account's credentials again."""
    from sqlalchemy.exc import OperationalError

    for uid, token in rig.accounts.items():
        for _ in range(5):  # PostgreSQL may pick the admin's save as a deadlock's victim
            try:
                with UnitOfWork(rig.ctx) as uow:
                    row = channels.get_channel(uow.session, f"weibo-{uid[-3:]}")
                    if only_flagged and not row.credentials_rejected:
                        break
                    channels.save_channel(uow, row.name, "weibo", row.config,
                                          {"access_token": token}, "ops")
                break
            except OperationalError as exc:
                if "deadlock" not in str(exc):
                    raise


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
