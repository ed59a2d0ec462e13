"""Bad release files are refused with the field named, and nothing is written."""

import subprocess
import sys

import pytest
from sqlmodel import func, select

from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.release import parse_release, sanitised_body
from orchestrator.store.models import AuditEvent, Release
from orchestrator.usecases import releases
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests.conftest import release_input


def counts(ctx):
    with UnitOfWork(ctx) as uow:
        return (uow.session.exec(select(func.count()).select_from(Release)).one(),
                uow.session.exec(select(func.count()).select_from(AuditEvent)).one())


@pytest.mark.parametrize(("change", "field"), [
    ({"title": ""}, "title"),
    ({"metadata": {"index_number": "1", "issuing_body": "办公厅", "disclosure": "公开"}},
     "metadata.disclosure"),
    ({"metadata": {"index_number": "1", "issuing_body": "办公厅", "disclosure": "主动公开",
                   "document_number": "某政办发[2026]8号"}}, "metadata.document_number"),
    ({"metadata": {"index_number": "1", "issuing_body": "办公厅", "disclosure": "主动公开",
                   "date_written": "2026-13-40"}}, "metadata.date_written"),
    ({"channels": []}, "channels"),
    ({"priority": "high"}, "priority"),
    # without an offset a time is Beijing time (clock.instant); out of range is refused
    ({"go_live_at": "0001-01-01T00:00:00+14:00"}, "go_live_at"),
    ({"colour": "red"}, "colour"),
])
def test_bad_fields_are_named(change, field):
    with pytest.raises(InvalidInput) as err:
        release_input(**change)
    assert any(f == field for f, _ in err.value.problems), err.value.problems


def test_unknown_channel_and_missing_file_write_nothing(ctx, people, memory_channels, tmp_path):
    before = counts(ctx)
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput) as err:
        releases.create(uow, release_input(channels=["alpha", "nowhere"]), "press")
    assert "channels[1]" in str(err.value)
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput, match=r"images\[0\]"):
        releases.create(uow, release_input(images=["missing.png"]), "press", base=tmp_path)
    assert counts(ctx) == before


def test_the_cli_refuses_a_bad_file_in_one_line_and_writes_nothing(tmp_path, settings, people):
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: 标题\nbody: 正文\nmetadata: {index_number: x, issuing_body: y, "
                   "disclosure: 主动公开, document_number: 坏文号}\nchannels: [alpha]\n",
                   encoding="utf-8")
    env = {"TONGFA_VAR_DIR": str(tmp_path), "TONGFA_DATABASE_URL": settings.resolved_database_url,
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "release", "create",
                             str(bad), "--as", "press"], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "metadata.document_number" in lines[0]
    assert result.stdout == ""


def test_body_is_sanitised_before_it_is_stored():
    html = sanitised_body('<p onclick="x()">正文<script>alert(1)</script>'
                          '<a href="javascript:alert(1)">链接</a></p>', "html")
    assert "script" not in html and "onclick" not in html and "javascript" not in html
    assert "正文" in html


def test_examples_parse():
    import pathlib

    import yaml

    for path in pathlib.Path("examples").glob("*.yaml"):
        parse_release(yaml.safe_load(path.read_text(encoding="utf-8")))
