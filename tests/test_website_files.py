"""Images and attachments on the government website, seen the way readers see them: over
HTTP from the served site (the API's /site mount on a real loopback port), never from our
tables. A file is public from its release's go-live, not from staging; a withdrawal takes
it down (410 Gone) with the page, unless another live release still shows the same file."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from channels.sandbox.server import SandboxServer
from orchestrator.bootstrap import make_app
from orchestrator.domain import clock
from orchestrator.usecases import channels, corrections, releases, scheduler
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests.conftest import approve_all, drain, release_input

IMAGE = b"\x89PNG\r\n\x1a\n approved image bytes"
ANNEX = b"%PDF-1.7 approved attachment"


@pytest.fixture
def site(ctx, people):
    """The website channel writing the web root the API serves, and that site's base URL."""
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "website", "website",
                              {"web_root": str(ctx.settings.resolved_site_root)}, None,
                              "admin_ops")
    with SandboxServer(make_app(ctx)) as server:
        yield f"{server.url}/site"


def upload(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / "upload" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def file_url(site: str, name: str, data: bytes) -> str:
    return f"{site}/files/{hashlib.sha256(data).hexdigest()}/{quote(name)}"


def linked(url: str, page: requests.Response) -> bool:
    """The page links this file (pages carry the site's configured base URL)."""
    return url.split("/site", 1)[1] in page.text


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=10)


def approved(ctx, tmp_path, title: str, minutes: float | None = None, **changes) -> int:
    """An approved release for the website with an image and an attachment."""
    fields = dict(channels=["website"], title=title,
                  images=[upload(tmp_path, "示意图.png", IMAGE)],
                  attachments=[upload(tmp_path, "附件1 清单.pdf", ANNEX)], **changes)
    if minutes is not None:
        fields["go_live_at"] = (clock.utcnow() + dt.timedelta(minutes=minutes)).isoformat()
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(**fields), "press")
    approve_all(ctx, rid)
    drain(ctx)
    return rid


def go_live_due(ctx) -> None:
    clock.travel(11 * 60)
    assert scheduler.tick(ctx)["fired"] >= 1
    drain(ctx)


def withdraw(ctx, rid: int) -> None:
    with UnitOfWork(ctx) as uow:
        corrections.withdraw(uow, rid, "leader", "信息有误，撤回")
    drain(ctx)


def test_files_go_public_at_go_live_and_are_gone_after_withdrawal(ctx, site, tmp_path):
    image, annex = file_url(site, "示意图.png", IMAGE), file_url(site, "附件1 清单.pdf", ANNEX)
    rid = approved(ctx, tmp_path, "关于做好冬季安全生产工作的通知", minutes=10)
    page = f"{site}/articles/{rid}.html"
    with UnitOfWork(ctx) as uow:
        assert releases.get_release(uow.session, rid).state == "scheduled"  # staged, waiting
    assert [get(u).status_code for u in (page, image, annex)] == [404, 404, 404]

    go_live_due(ctx)
    shown = get(page)
    assert shown.status_code == 200 and linked(image, shown) and linked(annex, shown)
    assert (get(image).status_code, get(image).content) == (200, IMAGE)
    assert (get(annex).status_code, get(annex).content) == (200, ANNEX)

    withdraw(ctx, rid)
    gone = get(page)
    assert gone.status_code == 410 and "本信息已撤回" in gone.text  # the notice, said as 410
    assert [get(u).status_code for u in (image, annex)] == [410, 410]
    assert IMAGE not in get(image).content


def test_a_file_shared_by_two_releases_stays_while_one_of_them_is_live(ctx, site, tmp_path):
    """Content-addressed: both pages link the same URL. Withdrawing one must not break the
    other; the file goes when the last live page that shows it goes."""
    image = file_url(site, "示意图.png", IMAGE)
    first = approved(ctx, tmp_path, "第一号通知")
    second = approved(ctx, tmp_path, "第二号通知")
    assert linked(image, get(f"{site}/articles/{first}.html"))
    assert linked(image, get(f"{site}/articles/{second}.html"))

    withdraw(ctx, first)
    assert get(f"{site}/articles/{first}.html").status_code == 410
    assert get(f"{site}/articles/{second}.html").status_code == 200
    assert (get(image).status_code, get(image).content) == (200, IMAGE)

    withdraw(ctx, second)
    assert get(image).status_code == 410


def test_a_correction_that_drops_an_image_takes_it_down(ctx, site, tmp_path):
    image, annex = file_url(site, "示意图.png", IMAGE), file_url(site, "附件1 清单.pdf", ANNEX)
    original = approved(ctx, tmp_path, "关于做好冬季安全生产工作的通知")
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(
            channels=["website"], corrects=original, title="关于做好冬季安全生产工作的通知",
            attachments=[upload(tmp_path, "附件1 清单.pdf", ANNEX)]), "press")
    approve_all(ctx, rid)
    drain(ctx)
    page = get(f"{site}/articles/{original}.html")
    assert page.status_code == 200 and "本文已更正" in page.text and not linked(image, page)
    assert get(image).status_code == 410 and get(annex).content == ANNEX
