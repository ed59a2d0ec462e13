"""Channel credentials and API tokens never reach the API, the logs or the audit rows."""

import logging

from fastapi.testclient import TestClient
from sqlmodel import select

from orchestrator.bootstrap import make_app
from orchestrator.store.models import ApiToken, AuditEvent, ChannelInstance, DeliveryAttempt
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests.conftest import approve_all, drain

SECRETS = ("secret-token-alpha", "secret-token-beta")


def test_secrets_are_absent_everywhere(ctx, people, new_release, caplog):
    caplog.set_level(logging.DEBUG)
    client = TestClient(make_app(ctx))
    admin = {"Authorization": f"Bearer {people['admin_ops']}"}
    r = client.put("/api/v1/channels/gamma", headers=admin, json={
        "kind": "memory", "config": {"account": "gamma"},
        "credentials": {"token": "secret-token-gamma"}})
    assert r.status_code == 200, r.text
    rid = new_release()
    approve_all(ctx, rid)
    drain(ctx)
    outputs = [client.get("/api/v1/channels", headers=admin).text,
               client.get(f"/api/v1/releases/{rid}", headers=admin).text,
               client.get(f"/api/v1/releases/{rid}/deliveries", headers=admin).text,
               client.get("/api/v1/audit", headers={"Authorization": f"Bearer {people['auditor']}"}).text]
    with UnitOfWork(ctx) as uow:
        rows = [*uow.session.exec(select(AuditEvent)), *uow.session.exec(select(DeliveryAttempt))]
        stored = uow.session.exec(select(ChannelInstance)).all()
        token_rows = uow.session.exec(select(ApiToken)).all()
    dumped = "\n".join([*outputs, *(repr(r) for r in rows), caplog.text])
    for secret in (*SECRETS, "secret-token-gamma", *people.values()):
        assert secret not in dumped
    assert all(c.credentials_encrypted and "secret" not in c.credentials_encrypted for c in stored)
    assert all(t.token_hash not in people.values() for t in token_rows)
    assert '"has_credentials":true' in outputs[0].replace(" ", "")


def test_api_needs_a_valid_bearer_token(ctx, people):
    client = TestClient(make_app(ctx))
    assert client.get("/api/v1/releases").status_code == 401
    assert client.get("/api/v1/releases", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.get("/api/v1/releases", headers={"Authorization": f"Bearer {people['press']}"})
    assert ok.status_code == 200


def test_redaction_of_error_messages():
    from orchestrator.domain.redaction import redact, redact_text

    assert "abc123" not in redact_text("GET /2/x?access_token=abc123&count=1 failed")
    assert redact({"config": {"appsecret": "s3"}, "ok": 1}) == {"config": {"appsecret": "***"}, "ok": 1}


def test_staged_pages_and_the_manifest_are_not_served(ctx, tmp_path):
    site = ctx.settings.resolved_site_root
    (site / ".staging").mkdir(parents=True)
    (site / ".staging" / "tongfa-1-r1-website.html").write_text("embargoed")
    (site / "manifest.json").write_text("{}")
    (site / "index.html").write_text("<p>home</p>")
    client = TestClient(make_app(ctx))
    assert client.get("/site/.staging/tongfa-1-r1-website.html").status_code == 404
    assert client.get("/site/manifest.json").status_code == 404
    assert client.get("/site/%2Estaging/tongfa-1-r1-website.html").status_code == 404
    assert client.get("/site/").status_code == 200
