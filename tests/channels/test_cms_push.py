"""Pushing to a site's own CMS, against a real HTTP receiver on loopback that verifies the
Standard Webhooks signature with the off-the-shelf `standardwebhooks` library (and so its
replay window) and drops repeats by webhook-id, as a CMS should."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from standardwebhooks import Webhook, WebhookVerificationError

from channels.cms_push import CmsPushAdapter, body
from channels.contract import (
    CredentialsExpired,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    ReleaseView,
    RetryableError,
    ValidationFailed,
)
from channels.sandbox.server import SandboxServer

SECRET = "whsec_" + base64.b64encode(b"the CMS and tongfa share these 32B").decode()
TITLE = "关于印发《某省促进民营经济发展若干措施》的通知"


def release(release_id: int = 8, **changes: Any) -> ReleaseView:
    metadata = {"index_number": f"11440000/2026-{release_id:05d}", "issuing_body": "省人民政府办公厅",
                "document_number": "粤府办〔2026〕8号", "date_written": "2026-11-20",
                "date_published": "2026-11-29", "subject_category": "综合政务",
                "disclosure": "主动公开", "validity": "有效", "column": "政策文件"}
    metadata.update(changes.pop("metadata", {}))
    fields: dict[str, Any] = dict(
        id=release_id, title=TITLE,
        body_html="<p>各市人民政府：</p><p>请<strong>认真贯彻执行</strong>。</p>",
        summary="支持民营经济发展的二十条措施。", metadata=metadata, priority="normal",
        url=f"http://127.0.0.1:8000/site/articles/{release_id}.html")
    fields.update(changes)
    return ReleaseView(**fields)


def receiver(secret: str = SECRET) -> tuple[FastAPI, dict[str, Any]]:
    """A CMS endpoint as a site would run one: verification is the library's, not ours."""
    app = FastAPI()
    state: dict[str, Any] = {"pages": {}, "faults": [], "refused": 0, "seen": []}
    webhook = Webhook(secret)

    def genuine(request: Request, data: bytes) -> bool:
        # a body-less GET/DELETE signs "<METHOD> <path>" in the body's place (docs/adapters.md)
        signed = data or f"{request.method} {request.scope['raw_path'].decode()}".encode()
        try:
            webhook.verify(signed, dict(request.headers), json_parse=False)
        except WebhookVerificationError:
            state["refused"] += 1
            return False
        return True

    async def fault() -> Response | None:
        if not state["faults"]:
            return None
        planned = state["faults"].pop(0)
        if "sleep" in planned:
            await asyncio.sleep(planned["sleep"])
            return None
        return JSONResponse({"error": "planned"}, planned["status"], headers=planned.get("headers"))

    @app.post("/api/releases")
    async def push(request: Request) -> Response:
        data = await request.body()
        state["seen"].append(("POST", dict(request.headers)))
        if (planned := await fault()) is not None:
            return planned
        if not genuine(request, data):
            return JSONResponse({"error": "bad signature"}, 401)
        key = request.headers["webhook-id"]  # the same for every retry of one delivery
        if key not in state["pages"]:  # a repeat gets the first answer, not a second page
            doc = json.loads(data)
            state["pages"][key] = {"doc": doc, "deleted": False, "answer": {
                "id": f"cms-{doc['id']}", "url": f"https://www.example.gov.cn/art/{doc['id']}.html",
                "published_at": "2026-11-29T09:00:00+08:00"}}
        return JSONResponse(state["pages"][key]["answer"], 201)

    @app.get("/api/releases/{key}")
    async def read(key: str, request: Request) -> Response:
        if not genuine(request, b""):
            return JSONResponse({"error": "bad signature"}, 401)
        page = state["pages"].get(key)
        if page is None or page["deleted"]:
            return JSONResponse({"error": "not found"}, 404)
        return JSONResponse({**page["answer"], "document": page["doc"]})

    @app.delete("/api/releases/{key}")
    async def remove(key: str, request: Request) -> Response:
        if not genuine(request, b""):
            return JSONResponse({"error": "bad signature"}, 401)
        if key not in state["pages"]:
            return JSONResponse({"error": "not found"}, 404)
        state["pages"][key]["deleted"] = True
        return Response(status_code=204)

    return app, state


@pytest.fixture
def cms() -> Iterator[tuple[SandboxServer, dict[str, Any]]]:
    app, state = receiver()
    with SandboxServer(app) as server:
        yield server, state


def adapter_for(server: SandboxServer, secret: str = SECRET, **config: Any) -> CmsPushAdapter:
    return CmsPushAdapter({"endpoint": f"{server.url}/api/releases", "sandbox": True, **config},
                          {"secret": secret})


# ------------------------------------------------------------------ signatures


def test_a_push_verifies_with_the_standard_webhooks_library(cms):
    server, state = cms
    adapter = adapter_for(server)
    payload = adapter.render(release())
    adapter.publish(payload, {}, "tongfa-8-r1-cms")
    method, headers = state["seen"][-1]
    data = body(payload)
    assert method == "POST" and headers["webhook-id"] == "tongfa-8-r1-cms"
    assert headers["idempotency-key"] == "tongfa-8-r1-cms"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(data, headers) == payload["document"]
    for tampered, secret in ((data + b" ", SECRET), (data, "whsec_" + "B" * 32)):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):  # the id is signed too
        Webhook(SECRET).verify(data, {**headers, "webhook-id": "tongfa-9-r1-cms"})


def test_the_webhook_id_is_the_same_for_every_retry_of_a_delivery(cms):
    server, state = cms
    adapter = adapter_for(server)
    payload = adapter.render(release())
    state["faults"].append({"status": 503})
    with pytest.raises(RetryableError):
        adapter.publish(payload, {}, "tongfa-8-r1-cms")
    adapter.publish(payload, {}, "tongfa-8-r1-cms")
    adapter.publish(payload, {}, "tongfa-8-r1-cms")
    ids = [h["webhook-id"] for m, h in state["seen"] if m == "POST"]
    assert ids == ["tongfa-8-r1-cms"] * 3 and len(state["pages"]) == 1


def test_a_push_signed_with_a_stale_clock_is_refused(cms):
    server, state = cms
    adapter = adapter_for(server)
    adapter.clock = lambda: dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    with pytest.raises(CredentialsExpired):
        adapter.publish(adapter.render(release()), {}, "k1")
    assert state["refused"] == 1 and state["pages"] == {}


def test_the_secret_must_be_a_standard_webhooks_secret():
    for bad in ("s3cret-共享", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            CmsPushAdapter({"endpoint": "https://cms.example.gov.cn/x"}, {"secret": bad})


def test_the_signed_body_is_canonical_utf8_json():
    adapter = CmsPushAdapter({"endpoint": "http://127.0.0.1:1/x", "sandbox": True}, {"secret": SECRET})
    one, two = adapter.render(release()), adapter.render(release())
    assert body(one) == body(two) and TITLE.encode("utf-8") in body(one)
    doc = json.loads(body(one))
    assert doc["id"] == 8 and doc["version"] == 1 and doc["url"].endswith("/articles/8.html")
    assert doc["metadata"]["document_number"] == "粤府办〔2026〕8号"
    assert doc["body_html"].startswith("<p>各市人民政府")
    fixed = adapter.render(release(release_id=9, corrects_id=8))["document"]
    assert fixed["id"] == 8 and fixed["version"] == 2  # a correction replaces the same page


@pytest.mark.parametrize(("changes", "field"), [
    ({"metadata": {"disclosure": "不予公开"}}, "metadata.disclosure"),
    ({"metadata": {"date_published": ""}}, "metadata.date_published"),
    ({"title": " "}, "title"), ({"body_html": ""}, "body"),
])
def test_validate_names_the_field(changes, field):
    adapter = CmsPushAdapter({"endpoint": "http://127.0.0.1:1/x", "sandbox": True}, {"secret": SECRET})
    with pytest.raises(ValidationFailed) as err:
        adapter.validate(adapter.render(release(**changes)))
    assert field in [p.field for p in err.value.problems]


# ------------------------------------------------------------------ against the receiver


def test_publish_is_signed_and_the_cms_answer_is_the_receipt(cms):
    server, state = cms
    adapter = adapter_for(server)
    payload = adapter.render(release())
    adapter.validate(payload)
    assert adapter.lookup(payload, "tongfa-8-r1-cms") is None
    receipt = adapter.publish(payload, adapter.stage(payload, "tongfa-8-r1-cms"), "tongfa-8-r1-cms")
    assert receipt.remote_id == "cms-8" and receipt.url == "https://www.example.gov.cn/art/8.html"
    assert receipt.published_at == dt.datetime(2026, 11, 29, 1, 0, tzinfo=dt.UTC)
    assert state["pages"]["tongfa-8-r1-cms"]["doc"] == payload["document"] and state["refused"] == 0
    found = adapter.lookup(payload, "tongfa-8-r1-cms")
    assert found is not None and found.remote_id == receipt.remote_id
    assert "签名已被接受" in adapter.test_connection()


def test_a_retry_with_the_same_key_makes_no_second_page(cms):
    server, state = cms
    adapter = adapter_for(server)
    payload = adapter.render(release())
    first = adapter.publish(payload, {}, "tongfa-8-r1-cms")
    again = adapter.publish(payload, {}, "tongfa-8-r1-cms")
    assert first.remote_id == again.remote_id and len(state["pages"]) == 1


def test_withdraw_deletes_by_key_and_a_second_withdraw_is_harmless(cms):
    server, state = cms
    adapter = adapter_for(server)
    payload = adapter.render(release())
    receipt = adapter.publish(payload, {}, "tongfa-8-r1-cms")
    adapter.withdraw(receipt)
    assert state["pages"]["tongfa-8-r1-cms"]["deleted"]
    assert adapter.lookup(payload, "tongfa-8-r1-cms") is None
    adapter.withdraw(receipt)
    assert state["refused"] == 0


def test_a_wrong_secret_is_refused_with_401_and_means_expired_credentials(cms):
    server, state = cms
    adapter = adapter_for(server, secret="whsec_" + base64.b64encode(b"x" * 32).decode())
    with pytest.raises(CredentialsExpired):
        adapter.publish(adapter.render(release()), {}, "k1")
    assert state["refused"] == 1 and state["pages"] == {}


def test_the_receiver_refuses_an_old_request_replayed(cms):
    server, state = cms
    data = body(adapter_for(server).render(release()))
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    response = requests.post(f"{server.url}/api/releases", data=data, timeout=5, headers={
        "webhook-id": "k-old", "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("k-old", old, data.decode()),
        "Content-Type": "application/json"})
    assert response.status_code == 401 and state["pages"] == {}


def test_a_delete_signature_cannot_be_used_for_another_item(cms):
    server, state = cms
    adapter = adapter_for(server)
    adapter.publish(adapter.render(release()), {}, "k-a")
    now = dt.datetime.now(dt.UTC)
    stolen = Webhook(SECRET).sign("k-b.delete", now, "DELETE /api/releases/k-b")
    response = requests.delete(f"{server.url}/api/releases/k-a", timeout=5, headers={
        "webhook-id": "k-b.delete", "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": stolen})
    assert response.status_code == 401 and not state["pages"]["k-a"]["deleted"]


@pytest.mark.parametrize(("fault", "error", "retry_after"), [
    ({"status": 503, "headers": {"Retry-After": "7"}}, RetryableError, 7.0),
    ({"status": 500}, RetryableError, None),
    ({"status": 429, "headers": {"Retry-After": "30"}}, RateLimited, 30.0),
    ({"status": 429}, RateLimited, 5.0),
    ({"status": 403}, CredentialsExpired, None),
    ({"status": 422}, PermanentError, None),
])
def test_http_statuses_become_typed_errors(cms, fault, error, retry_after):
    server, state = cms
    adapter = adapter_for(server, rate_limit_retry_seconds=5)
    state["faults"].append(fault)
    with pytest.raises(error) as err:
        adapter.publish(adapter.render(release()), {}, "k1")
    assert type(err.value) is error
    assert getattr(err.value, "retry_after", None) == retry_after


def test_no_answer_in_time_is_outcome_unknown_and_lookup_then_finds_it(cms):
    server, state = cms
    adapter = adapter_for(server, timeout_seconds=0.3)
    payload = adapter.render(release())
    state["faults"].append({"sleep": 0.8})
    with pytest.raises(OutcomeUnknown):
        adapter.publish(payload, {}, "k1")
    time.sleep(0.7)  # the CMS finished the slow request after we stopped waiting
    found = adapter.lookup(payload, "k1")
    assert found is not None and found.remote_id == "cms-8"


def test_connection_refused_is_retryable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening
        adapter = CmsPushAdapter({"endpoint": f"http://127.0.0.1:{sock.getsockname()[1]}/api",
                                  "sandbox": True}, {"secret": SECRET})
        with pytest.raises(RetryableError):
            adapter.publish(adapter.render(release()), {}, "k1")


# ------------------------------------------------------------------ for the contract kit


@contextmanager
def cms_push_harness(tmp_path: Any) -> Iterator[Any]:
    """For tests/contract/harnesses.py: `"cms_push": cms_push_harness`, FAULTS CMS_PUSH_FAULTS."""
    from tests.contract.harnesses import Harness, view

    app, state = receiver()
    with SandboxServer(app) as server:
        def is_live(receipt: Any) -> bool:
            page = state["pages"].get(receipt.details["key"])
            return page is not None and not page["deleted"]

        def plan(fault: dict[str, Any]) -> Any:
            return lambda: state["faults"].append(fault)

        yield Harness("cms_push", lambda: adapter_for(server, timeout_seconds=0.3), is_live,
                      bad_view=view(title=""), faults={
                          "retryable": plan({"status": 503}),
                          "rate_limited": plan({"status": 429, "headers": {"Retry-After": "1"}}),
                          "credentials_expired": plan({"status": 401}),
                          "permanent": plan({"status": 422}),
                          "outcome_unknown": plan({"sleep": 0.6}),
                      })


CMS_PUSH_FAULTS = ("retryable", "rate_limited", "credentials_expired", "permanent",
                   "outcome_unknown")
