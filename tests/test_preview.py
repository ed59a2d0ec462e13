"""A preview shows what reviewers sign: a release file or an unsaved compose form renders on
every channel as the stored release it would become — a correction as a correction."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli.seed import seed_channels
from orchestrator.store.models import Release
from orchestrator.usecases import channels, releases
from orchestrator.usecases.channels import adapter_for, get_channel
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.conftest import release_input
from tests.rig import CMS_SECRET
from tests.test_console import console, signed_in  # noqa: F401 (console is a fixture)

FIX = {"summary": "第三条时限更正为12月31日。", "body": "各市人民政府：\n\n时限为**12月31日**。"}


@pytest.fixture
def every_kind(console: Context) -> list[str]:  # noqa: F811
    """A channel of every built-in kind, the demo's configuration; nothing is sent."""
    names = seed_channels(console, "http://127.0.0.1:9")
    with UnitOfWork(console) as uow:
        channels.save_channel(
            uow,
            "cms",
            "cms_push",
            {"endpoint": "http://127.0.0.1:9/api", "sandbox": True},
            {"secret": CMS_SECRET},
            "admin_ops",
        )
    return [*names, "cms"]


def published(ctx: Context, names: list[str]) -> int:
    """A release taken as published (how it got there is not what this file tests)."""
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, release_input(channels=names), "press")
    with UnitOfWork(ctx) as uow:
        release = uow.session.get(Release, rid)
        release.state = "published"
        uow.session.add(release)
        uow.commit()
    return rid


def stored_documents(ctx: Context, correction: int) -> dict[str, str]:
    """channel → the document of what reviewers of the stored correction sign."""
    with UnitOfWork(ctx) as uow:
        rendered = releases.preview(uow, correction)["channels"]
        adapters = {
            name: adapter_for(ctx.settings, get_channel(uow.session, name)) for name in rendered
        }
    return {
        name: adapters[name].document(payload, adapters[name].formats[0])
        for name, payload in rendered.items()
    }


def as_unsaved(document: str, correction: int) -> str:
    """A release not saved yet has no id (rendering.PREVIEW_ID): the one thing it cannot know,
    shown in a link (Weibo, WeChat, the CMS, the page's publishing record) and as the CMS's
    release_id."""
    return (
        document.replace(f"#correction-{correction}", "#correction-0")
        .replace(f"/articles/{correction}.html", "/articles/0.html")
        .replace(f'"release_id": {correction},', '"release_id": 0,')
        .replace(f"/transparency/releases/{correction}.json", "/transparency/releases/0.json")
    )


def test_a_correction_previews_as_the_correction_on_every_channel(
    console: Context,  # noqa: F811 (the fixture imported above)
    every_kind: list[str],
    tmp_path: Path,
) -> None:
    original = published(console, every_kind)
    press, token = signed_in(console, "press")
    data = release_input(channels=every_kind, corrects=original, **FIX)
    form = {
        "csrf": token,
        "title": data.title,
        "summary": data.summary,
        "body": data.body,
        "corrects": str(original),
        "channels": every_kind,
        **{f"md_{k}": str(v) for k, v in data.metadata.model_dump(mode="json").items() if v},
    }
    composed = press.post("/console/press/preview", data=form).json()
    assert not composed["problems"], composed
    in_console = {c["name"]: c["document"] for c in composed["channels"]}
    file = tmp_path / "correction.yaml"
    file.write_text(
        yaml.safe_dump(data.model_dump(mode="json", exclude_none=True), allow_unicode=True),
        encoding="utf-8",
    )
    kinds = {
        "website": "website",
        "weibo-office": "weibo",
        "wechat": "wechat",
        "newsfeed": "newsfeed",
        "cms": "cms_push",
    }  # the CLI shows a kind's first channel
    from_cli = {name: cli_preview(console, file, kind) for name, kind in kinds.items()}

    with UnitOfWork(console) as uow:  # what reviewers then sign, once it is saved
        correction = releases.create(uow, data, "press")
    signed = {
        name: as_unsaved(doc, correction)
        for name, doc in stored_documents(console, correction).items()
    }

    assert set(in_console) == set(signed) == set(every_kind)
    for name in every_kind:
        assert in_console[name] == signed[name], name
    for name in kinds:
        assert from_cli[name].strip() == signed[name].strip(), name
    assert "【更正】" in signed["weibo-office"]  # the correction text, not a fresh post
    assert f"/articles/{original}.html#correction-0" in in_console["weibo-office"]
    edit = press.get(f"/console/press/{correction}/edit").text  # an edit keeps it a correction
    assert f'name="corrects" inputmode="numeric" value="{original}"' in edit


def test_a_preview_does_not_correct_what_is_not_published(
    console: Context,  # noqa: F811 (the fixture imported above)
    every_kind: list[str],
    tmp_path: Path,
) -> None:
    unpublished = releases_create(console, every_kind)
    press, token = signed_in(console, "press")
    data = release_input(channels=["weibo-office"], **FIX)
    form = {
        "csrf": token,
        "title": data.title,
        "summary": data.summary,
        "body": data.body,
        "corrects": str(unpublished),
        "channels": ["weibo-office"],
        **{f"md_{k}": str(v) for k, v in data.metadata.model_dump(mode="json").items() if v},
    }
    shown = press.post("/console/press/preview", data=form).json()
    assert not shown["ok"]
    assert shown["problems"] == [
        {"field": "更正稿件", "message": f"release {unpublished} is not published"}
    ]
    assert "【更正】" not in shown["channels"][0]["document"]
    file = tmp_path / "correction.yaml"
    file.write_text(
        yaml.safe_dump(
            {**data.model_dump(mode="json", exclude_none=True), "corrects": unpublished},
            allow_unicode=True,
        ),
        "utf-8",
    )
    refused = cli_preview(console, file, "weibo", ok=False)
    assert refused.stderr == f"refused: corrects: release {unpublished} is not published\n"


def releases_create(ctx: Context, names: list[str]) -> int:
    with UnitOfWork(ctx) as uow:
        return releases.create(uow, release_input(channels=names), "press")


def cli_preview(ctx: Context, file: Path, kind: str, ok: bool = True) -> Any:
    env = {
        **os.environ,
        "TONGFA_VAR_DIR": str(ctx.settings.var_dir),
        "TONGFA_DATABASE_URL": ctx.settings.resolved_database_url,
        "TONGFA_SITE_BASE_URL": ctx.settings.site_base_url,
    }
    env.pop("TONGFA_BROKER_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "preview", str(file), "--kind", kind],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (done.returncode == 0) == ok, done.stderr
    return done.stdout if ok else done
