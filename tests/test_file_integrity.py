"""Signed files stay signed: an image overwritten in the file store after sign-off (an
attacker with disk access) never reaches any channel. Every adapter checks the bytes it is
about to send against the signed SHA-256 (channels.contract.approved_bytes); a mismatch
fails the delivery with `file_hash_mismatch` and nothing partial goes out.

Each case is judged from the platform's side: the Weibo and WeChat sandboxes, the desk's
SFTP drop and mailbox, the CMS receiver, the website as served over HTTP."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from sqlmodel import select

from channels.registry import kinds
from channels.sandbox.desk import PASSWORD, USER, SftpServer, SmtpServer
from channels.sandbox.server import SandboxServer
from orchestrator.domain import clock
from orchestrator.store.models import Delivery
from orchestrator.usecases import channels, releases, scheduler
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests.conftest import approve_all, drain, release_input

APPROVED = b"\x89PNG\r\n\x1a\n" + b"approved chart of the measures " * 8
TAMPERED = b"\x89PNG\r\n\x1a\n" + b"gambling ad: bet now at example " * 8  # still a valid PNG
NAME = "示意图.png"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Platform:
    """A channel instance and what its counterpart holds, seen from the counterpart's side."""

    kind: str
    config: dict[str, Any]
    credentials: dict[str, Any] | None
    holds: Callable[[str], bool]  # the counterpart holds file bytes with this SHA-256
    anything: Callable[[], bool]  # anything at all of this release reached it


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=10, **kwargs)


@contextmanager
def weibo(ctx: Any, tmp_path: Path) -> Iterator[Platform]:
    from channels.sandbox.weibo import create_app

    with SandboxServer(create_app(accounts={"5000000001": "tok"})) as server:
        def posts() -> list[dict[str, Any]]:
            return get(f"{server.url}/_sandbox/posts").json()

        yield Platform("weibo", {"api_base": server.url, "safe_domain": "127.0.0.1",
                                 "uid": "5000000001", "sandbox": True}, {"access_token": "tok"},
                       holds=lambda digest: any(p["pic_sha256"] == digest for p in posts()),
                       anything=lambda: bool(posts()))


@contextmanager
def wechat(ctx: Any, tmp_path: Path) -> Iterator[Platform]:
    from channels.sandbox.wechat import create_app

    with SandboxServer(create_app(accounts={"wx0001": "secret-1"})) as server:
        def uploads() -> int:
            counts = get(f"{server.url}/_sandbox/requests").json()
            return sum(n for api, n in counts.items() if "material" in api or "uploadimg" in api)

        yield Platform("wechat", {"api_base": server.url, "appid": "wx0001",
                                  "token_store": str(tmp_path / "private" / "tokens"), "sandbox": True},
                       {"appsecret": "secret-1"},
                       # the sandbox serves every image it took at /mmbiz/<sha256[:32]>.png
                       holds=lambda d: get(f"{server.url}/mmbiz/{d[:32]}.png").status_code == 200,
                       anything=lambda: uploads() > 0
                       or bool(get(f"{server.url}/_sandbox/articles").json()))


@contextmanager
def newsfeed(ctx: Any, tmp_path: Path) -> Iterator[Platform]:
    drop = tmp_path / "desk" / "incoming"
    drop.mkdir(parents=True)
    with SftpServer(drop.parent) as sftp, SmtpServer() as smtp:
        def received() -> list[bytes]:
            attached = [part.get_content() for m in smtp.parsed() for part in m.iter_attachments()]
            return [p.read_bytes() for p in drop.rglob("*") if p.is_file()] + [
                a if isinstance(a, bytes) else a.encode() for a in attached]

        yield Platform("newsfeed", {
            "delivery": ["sftp", "email"], "formats": ["newsml"], "sandbox": True,
            "sftp": {"host": "127.0.0.1", "port": sftp.port, "username": USER,
                     "remote_dir": "incoming", "host_key": sftp.host_key_line},
            "email": {"host": "127.0.0.1", "port": smtp.port, "from_addr": "press@example.gov.cn",
                      "to_addrs": ["desk@paper.example.cn"]}}, {"sftp_password": PASSWORD},
            holds=lambda digest: any(sha(data) == digest for data in received()),
            anything=lambda: bool(received() or smtp.messages))


@contextmanager
def cms_push(ctx: Any, tmp_path: Path) -> Iterator[Platform]:
    from tests.channels.test_cms_push import SECRET, receiver

    app, state = receiver()
    with SandboxServer(app) as server:
        # the CMS gets the document (files by SHA-256 and URL), never bytes from our store
        yield Platform("cms_push", {"endpoint": f"{server.url}/api/releases", "sandbox": True}, {"secret": SECRET},
                       holds=lambda digest: False, anything=lambda: bool(state["pages"]))


@contextmanager
def website(ctx: Any, tmp_path: Path) -> Iterator[Platform]:
    from orchestrator.bootstrap import make_app

    with SandboxServer(make_app(ctx)) as server:
        site = f"{server.url}/site"

        def holds(digest: str) -> bool:
            return get(f"{site}/files/{digest}/{quote(NAME)}").status_code == 200

        yield Platform("website", {"web_root": str(ctx.settings.resolved_site_root)}, None,
                       holds=holds,
                       anything=lambda: get(f"{site}/articles/1.html").status_code != 404
                       or holds(sha(APPROVED)) or holds(sha(TAMPERED)))


PLATFORMS = {"weibo": weibo, "wechat": wechat, "newsfeed": newsfeed, "cms_push": cms_push,
             "website": website}


def test_every_installed_kind_is_checked_here():
    assert set(kinds()) - {"memory"} <= set(PLATFORMS), "add the new kind's platform here"


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request, ctx, people, tmp_path) -> Iterator[Platform]:
    with ExitStack() as stack:
        found = stack.enter_context(PLATFORMS[request.param](ctx, tmp_path))
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "target", found.kind, found.config, found.credentials,
                                  "admin_ops")
        yield found


def approve_with_image(ctx, tmp_path: Path, minutes: float | None = None) -> int:
    upload = tmp_path / "upload" / NAME
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_bytes(APPROVED)
    fields: dict[str, Any] = {"channels": ["target"], "images": [str(upload)]}
    if minutes is not None:
        fields["go_live_at"] = (clock.utcnow() + dt.timedelta(minutes=minutes)).isoformat()
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(**fields), "press")
    approve_all(ctx, rid)
    return rid


def overwrite_stored_image(ctx) -> None:
    """What an attacker with disk access does: new bytes under the approved file's name."""
    stored = ctx.settings.resolved_files_dir / sha(APPROVED)[:2] / sha(APPROVED)
    assert stored.read_bytes() == APPROVED
    stored.write_bytes(TAMPERED)


def the_delivery(ctx) -> Delivery:
    with UnitOfWork(ctx) as uow:
        return uow.session.exec(select(Delivery).where(Delivery.channel == "target")).one()


def test_an_image_overwritten_after_sign_off_never_leaves(ctx, platform, tmp_path):
    approve_with_image(ctx, tmp_path)
    overwrite_stored_image(ctx)
    drain(ctx)
    assert not platform.holds(sha(TAMPERED)), "the tampered image reached the platform"
    assert not platform.anything(), "something of the release went out"
    delivery = the_delivery(ctx)
    assert (delivery.state, delivery.last_error_code) == ("failed", "file_hash_mismatch")


def test_an_image_overwritten_between_staging_and_go_live_never_leaves(ctx, platform, tmp_path):
    """Checked again right before the send: channels that upload at go-live (Weibo) or
    carry only the document (newsfeed, CMS push) fail; channels that took the approved
    bytes at staging (WeChat's material, the website's hidden staging copy) go out with them."""
    approve_with_image(ctx, tmp_path, minutes=10)
    drain(ctx)
    assert the_delivery(ctx).state == "staged"
    overwrite_stored_image(ctx)
    clock.travel(11 * 60)
    assert scheduler.tick(ctx)["fired"] == 1
    drain(ctx)
    assert not platform.holds(sha(TAMPERED)), "the tampered image reached the platform"
    delivery = the_delivery(ctx)
    if platform.kind in ("wechat", "website"):
        assert delivery.state in ("confirming", "published") and delivery.last_error_code is None
        assert platform.holds(sha(APPROVED))
    else:
        assert (delivery.state, delivery.last_error_code) == ("failed", "file_hash_mismatch")
        assert not platform.anything()
