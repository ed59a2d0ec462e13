"""WeChat official account: tokens shared by workers, async publishing, errors, callbacks,
and the sandbox's wire format checked by an independent client (wechatpy)."""

from __future__ import annotations

import io
import multiprocessing
import threading

import pytest
import requests

from channels.contract import (
    CredentialsExpired,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RetryableError,
    ValidationFailed,
)
from channels.sandbox.server import SandboxServer
from channels.sandbox.wechat import create_app
from channels.wechat import WeChatAdapter, check_signature, wechat_html
from tests.contract.harnesses import view


@pytest.fixture
def sandbox():
    with SandboxServer(create_app(accounts={"wx0001": "secret-1"}, token_grace=1)) as server:
        yield server.url


def adapter(url, tmp_path, secret="secret-1"):
    return WeChatAdapter({"api_base": url, "appid": "wx0001", "sandbox": True,
                          "token_store": str(tmp_path / "tokens")}, {"appsecret": secret})


def faults(url, **settings):
    requests.post(f"{url}/_sandbox/faults", json=settings, timeout=5)


def issued(url):
    return requests.get(f"{url}/_sandbox/tokens", timeout=5).json()["issued"]


def staged(url, tmp_path):
    wx = adapter(url, tmp_path)
    payload = wx.render(view())
    return wx, payload, wx.stage(payload, "k1")


def _get_token(url, tmp, results):  # another worker process
    results.put(adapter(url, __import__("pathlib").Path(tmp)).tokens.get())


def test_many_workers_share_one_token_refreshed_once(sandbox, tmp_path):
    mp = multiprocessing.get_context("spawn")
    results = mp.Queue()
    procs = [mp.Process(target=_get_token, args=(sandbox, str(tmp_path), results))
             for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert len({results.get(timeout=5) for _ in procs}) == 1
    assert issued(sandbox) == 1


def test_a_rejected_token_is_refreshed_once_and_the_call_repeated(sandbox, tmp_path):
    wx, payload, stage = staged(sandbox, tmp_path)
    faults(sandbox, expire_tokens=True)
    receipt = wx.publish(payload, stage, "k1")  # no error reaches the orchestrator
    assert receipt.details["publish_id"] and issued(sandbox) == 2


def test_a_wrong_secret_is_credentials_expired(sandbox, tmp_path):
    with pytest.raises(CredentialsExpired):
        adapter(sandbox, tmp_path, secret="wrong").test_connection()


def test_published_only_when_the_platform_says_so(sandbox, tmp_path):
    wx, payload, stage = staged(sandbox, tmp_path)
    faults(sandbox, publish_seconds=0.5)
    receipt = wx.publish(payload, stage, "k1")
    assert receipt.url is None and wx.confirm(receipt) is None  # publish_status 1
    import time

    time.sleep(0.6)
    final = wx.confirm(receipt)
    assert final.url and final.url.endswith(final.remote_id) and final.details["confirmed"]


def test_platform_audit_rejection_is_permanent(sandbox, tmp_path):
    wx, payload, stage = staged(sandbox, tmp_path)
    faults(sandbox, audit_reject=True)
    with pytest.raises(PermanentError) as err:
        wx.confirm(wx.publish(payload, stage, "k1"))
    assert err.value.code == "publish_status_4"


@pytest.mark.parametrize(("settings", "error"), [
    ({"busy_next": 1}, RetryableError), ({"quota_exhausted": True}, RateLimited),
    ({"drop_responses": 1}, OutcomeUnknown),  # a 5xx without errcode: the gateway; it may have acted
])
def test_errors_are_typed(sandbox, tmp_path, settings, error):
    wx, payload, stage = staged(sandbox, tmp_path)
    faults(sandbox, **settings)
    with pytest.raises(error):
        wx.publish(payload, stage, "k1")


def test_limits_are_checked_before_any_call(sandbox, tmp_path):
    wx = adapter(sandbox, tmp_path)
    with pytest.raises(ValidationFailed) as err:
        wx.validate(wx.render(view(title="标" * 33, summary="摘" * 129)))
    assert {p.field for p in err.value.problems} == {"title", "digest"}
    assert issued(sandbox) == 0


def test_external_links_are_unwrapped_for_wechat():
    html = wechat_html('<p>见<a href="https://example.org/x">外部链接</a>和'
                       '<a href="https://mp.weixin.qq.com/s/abc">公众号文章</a></p>')
    assert "example.org" not in html and "外部链接" in html and "mp.weixin.qq.com" in html


def test_callback_signature():
    import hashlib

    sig = hashlib.sha1("".join(sorted(["tok", "123", "abc"])).encode()).hexdigest()
    assert check_signature("tok", sig, "123", "abc", now=123)
    assert check_signature("tok", sig, "123", "abc", now=423)
    assert not check_signature("tok", sig, "123", "abc", now=424)  # older than five minutes
    assert not check_signature("tok", sig, "124", "abc", now=124)
    assert not check_signature("tok", "", "1", "2", now=1)
    assert not check_signature("tok", sig, "soon", "abc", now=123)


def test_an_unknown_submit_outcome_is_found_by_lookup(sandbox, tmp_path):
    wx, payload, stage = staged(sandbox, tmp_path)
    assert wx.lookup(payload, "k1", staged=stage) is None  # the draft still waits: not sent
    faults(sandbox, publish_seconds=0.5, drop_responses=1)
    with pytest.raises(OutcomeUnknown):
        wx.publish(payload, stage, "k1")  # submitted, but the answer was lost
    with pytest.raises(OutcomeUnknown):  # publishing: never "not sent", never a second submit
        wx.lookup(payload, "k1", staged=stage)
    import time

    time.sleep(0.7)
    found = wx.lookup(payload, "k1", staged=stage)
    assert found is not None and found.url
    fresh = adapter(sandbox, tmp_path)  # another worker process sees the same note
    assert fresh.lookup(payload, "k1", staged=stage).remote_id == found.remote_id


# ---------------------------------------------------------------- fidelity: wechatpy


def wechatpy_client(url):
    from wechatpy import WeChatClient

    class SandboxClient(WeChatClient):
        API_BASE_URL = f"{url}/cgi-bin/"

        def fetch_access_token(self):  # the library hard-codes the real host here
            return self._fetch_access_token(url=f"{url}/cgi-bin/token", params={
                "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})

    return SandboxClient("wx0001", "secret-1")


def test_the_sandbox_speaks_what_wechatpy_expects(sandbox):
    from wechatpy.exceptions import WeChatClientException

    client = wechatpy_client(sandbox)
    assert client.access_token.startswith("sbx")
    media = client.material.add("image", ("cover.png", io.BytesIO(b"\x89PNG fake")))
    article = {"title": "公众号文章", "author": "新闻办", "digest": "摘要", "content": "<p>正文</p>",
               "content_source_url": "http://127.0.0.1:8000/site/articles/1.html",
               "thumb_media_id": media["media_id"]}
    draft = client.post("draft/add", data={"articles": [article]})
    job = client.post("freepublish/submit", data={"media_id": draft["media_id"]})
    assert isinstance(job["publish_id"], int)
    status = client.post("freepublish/get", data={"publish_id": job["publish_id"]})
    assert status["publish_status"] == 0 and status["article_detail"]["item"][0]["article_url"]
    with pytest.raises(WeChatClientException) as err:
        client.post("draft/add", data={"articles": [{**article, "title": "长" * 40}]})
    assert err.value.errcode == 45003
    requests.post(f"{sandbox}/_sandbox/faults", json={"expire_tokens": True}, timeout=5)
    assert client.post("freepublish/get", data={"publish_id": job["publish_id"]})[
        "publish_status"] == 0  # wechatpy refreshed on 42001 by itself, as with the real API
    assert threading  # (kept: the sandbox is thread safe for concurrent clients)


def test_the_publish_event_callback_checks_its_signature(ctx, people, new_release):
    import hashlib

    from fastapi.testclient import TestClient

    from orchestrator.bootstrap import make_app
    from orchestrator.domain import clock
    from orchestrator.store.models import Delivery
    from orchestrator.usecases import channels
    from orchestrator.usecases.unit_of_work import UnitOfWork

    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "wechat", "wechat", {"api_base": "http://127.0.0.1:9",
                              "appid": "wx1", "sandbox": True},
                              {"appsecret": "s", "callback_token": "cbtok"},
                              "admin_ops")
    rid = new_release()
    with UnitOfWork(ctx) as uow:  # a delivery waiting for the platform's word on job 42
        uow.session.add(Delivery(release_id=rid, revision=1, channel="wechat", kind="wechat",
                                 state="confirming", idempotency_key="k", remote_id="42"))
        uow.commit()
    client = TestClient(make_app(ctx))
    xml = (b"<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event>"
           b"<PublishEventInfo><publish_id>42</publish_id><publish_status>0</publish_status>"
           b"</PublishEventInfo></xml>")
    url = "/api/v1/channels/wechat/wechat-events"
    now = str(int(clock.utcnow().timestamp()))
    bad = client.post(url, params={"signature": "0" * 40, "timestamp": now, "nonce": "n"},
                      content=xml)
    assert bad.status_code == 403 and not any(t == "confirm" for t, _ in ctx.queue.sent)
    sig = hashlib.sha1("".join(sorted(["cbtok", now, "n"])).encode()).hexdigest()
    good = client.post(url, params={"signature": sig, "timestamp": now, "nonce": "n"}, content=xml)
    assert good.status_code == 200 and good.text == "success"
    assert ctx.queue.sent[-1][0] == "confirm"
