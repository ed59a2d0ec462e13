"""Every console action is also an API call: going live, re-sending, pausing, auditing."""

import csv
import datetime as dt
import io

import pytest
from fastapi.testclient import TestClient

from orchestrator.bootstrap import make_app
from orchestrator.domain.clock import utcnow
from tests import fakes
from tests.conftest import approve_all, drain


@pytest.fixture
def client(ctx, people):
    api = TestClient(make_app(ctx))
    api.as_ = lambda who: {"Authorization": f"Bearer {people[who]}"}
    return api


def test_resend_pause_and_withdraw_over_the_api(ctx, client, new_release):
    rid = new_release()
    fakes.plan("beta", "publish", "permanent")
    approve_all(ctx, rid)
    drain(ctx)
    beta = next(d for d in client.get(f"/api/v1/releases/{rid}/deliveries",
                                      headers=client.as_("press")).json() if d["channel"] == "beta")
    assert beta["state"] == "failed"
    assert client.post(f"/api/v1/deliveries/{beta['id']}/resend",
                       headers=client.as_("auditor")).status_code == 403
    assert client.post(f"/api/v1/deliveries/{beta['id']}/resend",
                       headers=client.as_("admin_ops")).status_code == 200
    drain(ctx)
    shown = client.get(f"/api/v1/releases/{rid}", headers=client.as_("press")).json()
    assert shown["state"] == "published"
    assert client.post("/api/v1/channels/alpha/pause",
                       headers=client.as_("admin_ops")).json()["paused"] is True
    gone = client.post(f"/api/v1/releases/{rid}/withdraw", json={"reason": "误发"},
                       headers=client.as_("leader"))
    assert gone.status_code == 200 and gone.json()["channels"] == 2


def test_scheduling_over_the_api(ctx, client, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    at = {"at": (utcnow() + dt.timedelta(days=30)).replace(microsecond=0).isoformat()}  # within go_live_horizon_days
    assert client.post(f"/api/v1/releases/{rid}/schedule", json=at,  # not theirs to move
                       headers=client.as_("leader")).status_code == 403
    answer = client.post(f"/api/v1/releases/{rid}/schedule", json=at, headers=client.as_("press"))
    assert answer.status_code == 200 and answer.json()["reschedule"]["requested_by"] == "press"
    assert client.post(f"/api/v1/releases/{rid}/reschedule", json={"approve": True},
                       headers=client.as_("press")).status_code == 403  # four-eyes
    signed = client.post(f"/api/v1/releases/{rid}/reschedule", json={"approve": True},
                         headers=client.as_("leader"))
    assert signed.status_code == 200 and signed.json()["state"] == "scheduled"
    assert dt.datetime.fromisoformat(signed.json()["go_live_at"]) == dt.datetime.fromisoformat(
        at["at"])
    assert client.post(f"/api/v1/releases/{rid}/hold", headers=client.as_("leader")).json()[
        "held"] is True


def test_auditors_verify_export_and_query_attempts(ctx, client, new_release):
    rid = new_release()
    fakes.plan("alpha", "publish", "retryable")
    approve_all(ctx, rid)
    drain(ctx)
    assert client.get("/api/v1/audit/verify", headers=client.as_("press")).status_code == 403
    assert client.get("/api/v1/audit/verify", headers=client.as_("auditor")).json()["ok"] is True
    exported = client.get("/api/v1/audit/export", params={"format": "csv", "release": rid},
                          headers=client.as_("auditor"))
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows and {r["release_id"] for r in rows} == {str(rid)}
    retried = client.get("/api/v1/attempts", params={"outcome": "retryable"},
                         headers=client.as_("auditor")).json()
    assert [(a["channel"], a["phase"]) for a in retried] == [("alpha", "publish")]
    report = client.get("/api/v1/reports/assessment", params={"quarter": "2026Q4"},
                        headers=client.as_("auditor"))
    assert report.status_code == 200
