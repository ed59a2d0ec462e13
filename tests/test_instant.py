"""Every time a person types — a go-live time, a search's since/until — is read by one
function, orchestrator/domain/clock.py:instant(): without an offset it is Beijing time,
and a date out of range is a refusal naming the field, never a 500 (issue 12)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.bootstrap import make_app
from orchestrator.domain.clock import instant, utcnow
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.release import parse_release
from orchestrator.usecases import releases
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests.conftest import release_input
from tests.test_console import console, signed_in  # noqa: F401  (fixture and helper)

HOSTILE = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01",
           "9999-12-31T23:59", "1900-01-01T00:00:00Z", "3000-01-01T00:00:00Z", "2026-13-40",
           "tomorrow", "2026-11-29T25:00", "\x00", "9" * 30]


def _day_ahead(days: int = 5) -> dt.date:
    beijing = dt.timezone(dt.timedelta(hours=8))
    return (dt.datetime.now(beijing) + dt.timedelta(days=days)).date()


def test_an_instant_without_an_offset_is_beijing_time():
    assert instant("2026-11-29T09:00", "at") == dt.datetime(2026, 11, 29, 1, 0, tzinfo=dt.UTC)
    assert instant("2026-11-29 09:00:30", "at") == dt.datetime(2026, 11, 29, 1, 0, 30,
                                                               tzinfo=dt.UTC)
    assert instant("2026-11-29", "at") == dt.datetime(2026, 11, 28, 16, 0, tzinfo=dt.UTC)
    assert instant("2026-11-29T09:00:00Z", "at") == dt.datetime(2026, 11, 29, 9, tzinfo=dt.UTC)
    assert instant("2026-11-29T09:00-05:00", "at") == dt.datetime(2026, 11, 29, 14,
                                                                  tzinfo=dt.UTC)
    assert instant(dt.datetime(2026, 11, 29, 9), "at") == dt.datetime(2026, 11, 29, 1,
                                                                      tzinfo=dt.UTC)
    assert instant("", "at") is None and instant(None, "at") is None
    assert instant("2026-11-29T09:00", "at").tzinfo == dt.UTC  # stored and compared in UTC


@pytest.mark.parametrize("text", HOSTILE)
def test_an_instant_out_of_range_or_malformed_is_refused_naming_the_field(text):
    with pytest.raises(InvalidInput) as refused:
        instant(text, "since")
    assert [f for f, _ in refused.value.problems] == ["since"]


@pytest.mark.parametrize("value", [12, 1.5, True, [], {}])
def test_an_instant_is_text_or_a_datetime(value):
    with pytest.raises(InvalidInput):
        instant(value, "at")


def test_a_release_file_reads_its_go_live_time_the_same_way():
    at = parse_release({**release_input().model_dump(mode="json"),
                        "go_live_at": "2026-11-29T09:00"}).go_live_at
    assert at == dt.datetime(2026, 11, 29, 1, tzinfo=dt.UTC)
    for text in HOSTILE:
        with pytest.raises(InvalidInput) as refused:
            parse_release({**release_input().model_dump(mode="json"), "go_live_at": text})
        assert [f for f, _ in refused.value.problems] == ["go_live_at"], text


# ------------------------------------------------------------------------------ the API


@pytest.fixture
def api(ctx, people) -> Any:
    client = TestClient(make_app(ctx), raise_server_exceptions=False)
    client.as_ = lambda who: {"Authorization": f"Bearer {people[who]}"}
    return client


def test_the_api_reads_a_go_live_time_without_offset_as_beijing_time(ctx, api, new_release):
    rid = new_release()
    day = _day_ahead()
    answer = api.post(f"/api/v1/releases/{rid}/schedule", headers=api.as_("press"),
                      json={"at": f"{day.isoformat()}T09:00:00"})
    assert answer.status_code == 200, answer.text
    with UnitOfWork(ctx) as uow:
        stored = releases.get_release(uow.session, rid).go_live_at
    assert stored == dt.datetime.combine(day, dt.time(1, 0), tzinfo=dt.UTC)


@pytest.mark.parametrize("text", HOSTILE)
def test_the_api_refuses_a_bad_time_with_a_422_naming_the_field(ctx, api, new_release, text):
    rid = new_release()
    calls = [("post", f"/api/v1/releases/{rid}/schedule", "press", {"json": {"at": text}}, "at"),
             ("get", "/api/v1/audit", "auditor", {"params": {"since": text}}, "since"),
             ("get", "/api/v1/audit", "auditor", {"params": {"until": text}}, "until"),
             ("get", "/api/v1/attempts", "auditor", {"params": {"since": text}}, "since")]
    for method, path, who, kwargs, field in calls:
        answer = getattr(api, method)(path, headers=api.as_(who), **kwargs)
        assert answer.status_code == 422, (path, text, answer.status_code, answer.text[:300])
        assert [p["field"] for p in answer.json()["problems"]] == [field], answer.text
        assert text not in answer.text or len(text) < 3, "the input is not echoed back"


def test_the_audit_query_reads_since_without_offset_as_beijing_time(ctx, api):
    now = utcnow()
    beijing = now.astimezone(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None)
    before = (beijing - dt.timedelta(hours=1)).isoformat(timespec="seconds")
    after = (beijing + dt.timedelta(hours=1)).isoformat(timespec="seconds")
    seen = api.get("/api/v1/audit", headers=api.as_("auditor"), params={"since": before})
    none = api.get("/api/v1/audit", headers=api.as_("auditor"), params={"since": after})
    assert seen.status_code == none.status_code == 200
    assert seen.json() and none.json() == []  # read as UTC, "an hour ahead" would hold all


def test_a_422_never_repeats_what_was_sent(ctx, api):
    secret = "whsec_TOP-SECRET-" + "A" * 30
    for body in ({"kind": 5, "config": [], "credentials": secret},
                 {"kind": "cms_push", "config": {"endpoint": secret}, "credentials": [secret]}):
        answer = api.put("/api/v1/channels/c", headers=api.as_("admin_ops"), json=body)
        assert answer.status_code == 422, answer.text
        assert "TOP-SECRET" not in answer.text
        assert all(p["field"] and p["message"] for p in answer.json()["problems"])
    broken = api.put("/api/v1/channels/c", headers={**api.as_("admin_ops"),
                                                     "content-type": "application/json"},
                     content='{"kind": "cms_push", "credentials": {"secret": "' + secret + '"')
    assert broken.status_code == 422 and "TOP-SECRET" not in broken.text


# --------------------------------------------------------------------- console and CLI


@pytest.mark.parametrize("text", ["0001-01-01T00:00+14:00", "9999-12-31T23:59-14:00"])
def test_the_console_refuses_a_bad_time_naming_the_field(console, new_release, text):  # noqa: F811
    client, csrf = signed_in(console, "auditor")
    answer = client.get("/console/audit", params={"since": text})
    assert answer.status_code == 422 and "起始时间" in answer.text, answer.status_code
    press, token = signed_in(console, "press")
    rid = new_release()
    answer = press.post(f"/console/press/{rid}/schedule", data={"csrf": token, "at": text},
                        follow_redirects=True)
    assert answer.status_code < 500 and "上线时间" in answer.text


def test_the_cli_reads_times_with_the_same_function(tmp_path):
    env = {**os.environ, "TONGFA_VAR_DIR": str(tmp_path / "var"),
           "TONGFA_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}

    def tongfa(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args],
                              capture_output=True, text=True, env=env, timeout=60)

    assert tongfa("users", "add", "someone", "--role", "auditor").returncode == 0
    bad = tongfa("audit", "query", "--since", "0001-01-01T00:00:00+14:00", "--json")
    assert bad.returncode == 1 and bad.stderr.startswith("refused:") and "since" in bad.stderr
    beijing = utcnow().astimezone(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None)
    ahead = (beijing + dt.timedelta(minutes=30)).isoformat(timespec="seconds")
    later = tongfa("audit", "query", "--since", ahead, "--json")
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout) == []  # 30 minutes ahead in Beijing, not 7.5 hours ago


@pytest.mark.parametrize("quarter", ["0000Q1", "9999Q4", "1969Q4", "2026Q4\n", "٢٠٢٦Q1"])
def test_a_report_quarter_out_of_range_is_a_422_naming_it(ctx, api, quarter):
    answer = api.get("/api/v1/reports/assessment", headers=api.as_("auditor"),
                     params={"quarter": quarter})
    assert answer.status_code == 422, answer.text
    assert [p["field"] for p in answer.json()["problems"]] == ["quarter"]
