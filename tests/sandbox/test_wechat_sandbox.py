"""The WeChat official-account sandbox over real HTTP, and an independent client (wechatpy) on it."""

from __future__ import annotations

import io
import json
import time

import pytest
import requests
import xmltodict
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from wechatpy import WeChatClient
from wechatpy.exceptions import APILimitedException, WeChatClientException
from wechatpy.utils import check_signature

from channels.sandbox.server import SandboxServer
from channels.sandbox.wechat import create_app

APPID, SECRET = "wx5f0c3a8e2b1d4c67", "app-secret-1"
APPID2, SECRET2 = "wx00000000000000b2", "app-secret-2"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 64


@pytest.fixture(scope="module")
def server():
    app = create_app({APPID: SECRET, APPID2: SECRET2})
    with SandboxServer(app) as running:
        running.sandbox = app.state.sandbox
        yield running


@pytest.fixture
def url(server):
    requests.post(f"{server.url}/_sandbox/reset", timeout=5).raise_for_status()
    return server.url


@pytest.fixture
def configure(server, monkeypatch):
    """Shortens the sandbox's token timings for one test."""
    return lambda **settings: [monkeypatch.setattr(server.sandbox.config, k, v)
                               for k, v in settings.items()]


def token(url, appid=APPID, secret=SECRET):
    params = {"grant_type": "client_credential", "appid": appid, "secret": secret}
    return requests.get(f"{url}/cgi-bin/token", params=params, timeout=5).json()


def stable(url, force=False, appid=APPID, secret=SECRET):
    body = {"grant_type": "client_credential", "appid": appid, "secret": secret,
            "force_refresh": force}
    return requests.post(f"{url}/cgi-bin/stable_token", json=body, timeout=5).json()


def cgi(url, path, access_token, body=None, **kwargs):
    return requests.post(f"{url}/cgi-bin/{path}", params={"access_token": access_token},
                         json=body, timeout=5, **kwargs).json()


def works(url, access_token):
    """The errcode of a harmless API call with this token (0 when it is accepted)."""
    return cgi(url, "freepublish/batchget", access_token, {"offset": 0, "count": 1}).get(
        "errcode", 0)


def faults(url, **settings):
    requests.post(f"{url}/_sandbox/faults", json=settings, timeout=5).raise_for_status()


def material(url, access_token, data=PNG, media_type="image"):
    return requests.post(f"{url}/cgi-bin/material/add_material",
                         params={"access_token": access_token, "type": media_type},
                         files={"media": ("cover.png", data)}, timeout=5).json()


def upload(url, access_token, data=PNG):
    return requests.post(f"{url}/cgi-bin/media/uploadimg", params={"access_token": access_token},
                         files={"media": ("in-body.png", data)}, timeout=5).json()


def article(thumb, **fields):
    return {"title": "关于冬季安全生产的通知", "author": "省政府新闻办", "digest": "通知摘要",
            "content": "<p>正文</p>", "content_source_url": "http://127.0.0.1/articles/1.html",
            "thumb_media_id": thumb, "need_open_comment": 0, "only_fans_can_comment": 0,
            **fields}


@pytest.fixture
def account(url):
    """A token and a cover image of the first account."""
    access_token = token(url)["access_token"]
    return access_token, material(url, access_token)["media_id"]


def publish(url, account, **fields):
    access_token, thumb = account
    draft = cgi(url, "draft/add", access_token, {"articles": [article(thumb, **fields)]})
    return cgi(url, "freepublish/submit", access_token, {"media_id": draft["media_id"]})


def publish_status(url, access_token, publish_id):
    return cgi(url, "freepublish/get", access_token, {"publish_id": publish_id})


# ---------------------------------------------------------------------- tokens


def test_a_token_is_issued_for_good_credentials_only(url):
    answer = token(url)
    assert answer["expires_in"] == 7200 and len(answer["access_token"]) > 100
    assert token(url, appid="wxunknown")["errcode"] == 40013
    assert token(url, secret="wrong")["errcode"] == 40125
    assert token(url, appid="")["errcode"] == 41002
    wrong_grant = requests.get(f"{url}/cgi-bin/token", params={
        "grant_type": "password", "appid": APPID, "secret": SECRET}, timeout=5).json()
    assert wrong_grant["errcode"] == 40002 and " rid: " in wrong_grant["errmsg"]
    tokens = requests.get(f"{url}/_sandbox/tokens", timeout=5).json()
    assert tokens["issued"] == 1 and tokens["by_app"] == {f"{APPID}/token": 1}


def test_a_new_token_leaves_the_old_one_valid_for_the_grace_period_only(url, configure):
    configure(token_grace=0.3)
    old, new = token(url)["access_token"], token(url)["access_token"]
    assert works(url, old) == 0 and works(url, new) == 0
    time.sleep(0.35)
    answer = cgi(url, "freepublish/batchget", old, {"offset": 0, "count": 1})
    assert answer["errcode"] == 40001
    assert answer["errmsg"].startswith("invalid credential, access_token is invalid or not latest")
    assert works(url, new) == 0


def test_tokens_expire_after_their_lifetime(url, configure):
    configure(token_ttl=0.2)
    answer = token(url)
    assert answer["expires_in"] == 1  # whole seconds, rounded up
    time.sleep(0.25)
    assert works(url, answer["access_token"]) == 42001


def test_the_expire_fault_expires_every_token_issued_so_far(url):
    old = token(url)["access_token"]
    faults(url, expire_tokens=True)
    assert works(url, old) == 42001
    fresh = token(url)["access_token"]
    assert works(url, fresh) == 0
    faults(url)
    assert works(url, old) == 42001 and works(url, fresh) == 0


def test_unknown_and_missing_tokens(url):
    assert works(url, "not-a-token") == 40001
    missing = requests.post(f"{url}/cgi-bin/draft/add", json={"articles": []}, timeout=5).json()
    assert missing["errcode"] == 41001


def test_the_stable_token_stays_the_same_until_force_refreshed(url, configure):
    first = stable(url)
    assert stable(url)["access_token"] == first["access_token"]
    assert 7190 <= first["expires_in"] <= 7200
    plain = token(url)["access_token"]  # the two families do not affect each other
    assert works(url, first["access_token"]) == 0 and works(url, plain) == 0
    forced = stable(url, force=True)
    assert forced["access_token"] != first["access_token"]
    assert works(url, first["access_token"]) == 40001 and works(url, forced["access_token"]) == 0
    assert stable(url, force=True)["errcode"] == 45009  # 30 s apart
    configure(force_refresh_spacing=0, force_refresh_daily=2)
    assert "access_token" in stable(url, force=True)
    assert stable(url, force=True)["errcode"] == 45009  # 2 a day here
    assert stable(url, secret="wrong")["errcode"] == 40125


def test_the_stable_token_is_renewed_shortly_before_expiry_with_the_old_one_still_valid(
        url, configure):
    configure(token_ttl=1.0, stable_margin=0.9)
    first = stable(url)["access_token"]
    time.sleep(0.15)
    second = stable(url)["access_token"]
    assert second != first
    assert works(url, first) == 0 and works(url, second) == 0


# ---------------------------------------------------------------------- images


def test_permanent_material_and_in_body_images_are_hosted_here(url, account):
    access_token, _ = account
    answer = material(url, access_token)
    assert len(answer["media_id"]) == 43 and answer["url"].startswith(f"{url}/mmbiz/")
    assert requests.get(answer["url"], timeout=5).content == PNG
    in_body = upload(url, access_token, JPG)["url"]
    served = requests.get(in_body, timeout=5)
    assert served.content == JPG and served.headers["content-type"] == "image/jpeg"
    assert material(url, access_token, b"plain text")["errcode"] == 40005
    assert material(url, access_token, media_type="sticker")["errcode"] == 40004
    assert material(url, access_token, PNG, "thumb")["errcode"] == 40005  # thumbs are JPG
    assert "media_id" in material(url, access_token, JPG, "thumb")
    no_media = requests.post(f"{url}/cgi-bin/material/add_material",
                             params={"access_token": access_token, "type": "image"}, timeout=5)
    assert no_media.json()["errcode"] == 41005
    assert upload(url, access_token, GIF)["errcode"] == 40005
    assert upload(url, access_token, JPG + b"\x00" * (1 << 20))["errcode"] == 40009


# ---------------------------------------------------------------------- drafts


@pytest.mark.parametrize(("fields", "errcode"), [
    ({"title": "标" * 32}, 0),
    ({"title": "标" * 33}, 45003),
    ({"author": "作" * 16}, 0),
    ({"author": "作" * 17}, 45110),
    ({"digest": "摘" * 128}, 0),
    ({"digest": "摘" * 129}, 45004),
    ({"content": "<p>" + "字" * 19990 + "</p>"}, 0),
    ({"content": "<p>" + "字" * 19993 + "</p>"}, 45002),  # 20 000 characters
    ({"thumb_media_id": "no-such-material"}, 40007),
    ({"title": ""}, 44003),
    ({"content": "<p>正文</p><script>alert(1)</script>"}, 45166),
    ({"content": '<p><img src="http://example.com/a.png"></p>'}, 45166),
    ({"content": '<p><a href="http://example.com/">外链</a></p>'}, 45166),
    ({"content": '<p><a href="https://mp.weixin.qq.com/s/AbCdEf">往期</a></p>'}, 0),
    ({"need_open_comment": 2}, 47001),
])
def test_a_draft_is_checked_like_the_platform_checks_it(url, account, fields, errcode):
    access_token, thumb = account
    answer = cgi(url, "draft/add", access_token, {"articles": [article(thumb, **fields)]})
    assert answer.get("errcode", 0) == errcode, answer
    assert ("media_id" in answer) == (errcode == 0)
    if errcode == 45166:
        assert answer["errmsg"].startswith("invalid content hint")


def test_a_draft_may_show_images_uploaded_here_only(url, account):
    access_token, thumb = account
    src = upload(url, access_token)["url"]
    content = f'<p><img src="{src}?wx_fmt=png" data-src="{src}"></p>'
    assert "media_id" in cgi(url, "draft/add", access_token,
                             {"articles": [article(thumb, content=content)]})
    forged = src.rsplit("/", 1)[0] + "/0000.png"
    forged_answer = cgi(url, "draft/add", access_token,
                        {"articles": [article(thumb, content=f'<img src="{forged}">')]})
    assert forged_answer["errcode"] == 45166


def test_draft_bodies_are_counted_checked_and_read_back(url, account):
    access_token, thumb = account
    add = f"{url}/cgi-bin/draft/add"
    params = {"access_token": access_token}
    nine = {"articles": [article(thumb)] * 9}
    assert cgi(url, "draft/add", access_token, nine)["errcode"] == 45008
    assert cgi(url, "draft/add", access_token, {"articles": []})["errcode"] == 44003
    assert requests.post(add, params=params, data=b"", timeout=5).json()["errcode"] == 44002
    assert requests.post(add, params=params, data=b"{no", timeout=5).json()["errcode"] == 47001
    other = token(url, APPID2, SECRET2)["access_token"]  # a cover of another account
    assert cgi(url, "draft/add", other, {"articles": [article(thumb)]})["errcode"] == 40007
    ids = []
    for ensure_ascii in (False, True):  # the platform's UTF-8, or \u escapes
        body = json.dumps({"articles": [article(thumb)]}, ensure_ascii=ensure_ascii)
        ids.append(requests.post(add, params=params, data=body.encode(), timeout=5)
                   .json()["media_id"])
    for media_id in ids:
        got = cgi(url, "draft/get", access_token, {"media_id": media_id})
        assert got["news_item"][0]["title"] == "关于冬季安全生产的通知"
    assert cgi(url, "draft/delete", access_token, {"media_id": ids[0]})["errcode"] == 0
    assert cgi(url, "draft/get", access_token, {"media_id": ids[0]})["errcode"] == 40007
    assert cgi(url, "draft/delete", access_token, {"media_id": ids[0]})["errcode"] == 40007


# ---------------------------------------------------------------------- publishing


def test_publishing_is_asynchronous_then_succeeds_with_the_article_url(url, account):
    access_token, thumb = account
    faults(url, publish_seconds=0.3)
    draft = cgi(url, "draft/add", access_token, {"articles": [article(thumb)]})["media_id"]
    submitted = cgi(url, "freepublish/submit", access_token, {"media_id": draft})
    assert submitted["errcode"] == 0 and submitted["errmsg"] == "ok"
    publish_id = submitted["publish_id"]
    assert isinstance(publish_id, int)
    assert publish_status(url, access_token, publish_id) == {
        "publish_id": publish_id, "publish_status": 1, "fail_idx": []}
    again = cgi(url, "freepublish/submit", access_token, {"media_id": draft})
    assert again["errcode"] == 53503  # already being published
    time.sleep(0.35)
    done = publish_status(url, access_token, str(publish_id))  # the id may come as a string
    assert done["publish_status"] == 0 and done["fail_idx"] == []
    [item] = done["article_detail"]["item"]
    assert done["article_detail"]["count"] == 1 and item["idx"] == 1
    assert item["article_url"] == f"{url}/s/{done['article_id']}"
    page = requests.get(item["article_url"], timeout=5)
    assert "关于冬季安全生产的通知" in page.text and "<p>正文</p>" in page.text
    assert cgi(url, "draft/get", access_token, {"media_id": draft})["errcode"] == 40007
    [record] = requests.get(f"{url}/_sandbox/articles", timeout=5).json()
    assert record["status"] == 0 and record["article_id"] == done["article_id"]
    assert 0.29 <= record["finished_at"] - record["published_at"] <= 0.4
    assert record["urls"] == [item["article_url"]]


def test_with_no_publish_duration_the_job_succeeds_at_once(url, account):
    submitted = publish(url, account)
    assert publish_status(url, account[0], submitted["publish_id"])["publish_status"] == 0


@pytest.mark.parametrize(("settings", "status", "fail_idx"), [
    ({"audit_reject": True}, 4, [1]),
    ({"publish_fail_status": 2}, 2, [1]),
    ({"publish_fail_status": 3}, 3, []),
])
def test_a_failed_job_reports_its_status_and_the_draft_can_go_again(
        url, account, settings, status, fail_idx):
    access_token, thumb = account
    faults(url, **settings)
    draft = cgi(url, "draft/add", access_token, {"articles": [article(thumb)]})["media_id"]
    submitted = cgi(url, "freepublish/submit", access_token, {"media_id": draft})
    answer = publish_status(url, access_token, submitted["publish_id"])
    assert answer == {"publish_id": submitted["publish_id"], "publish_status": status,
                      "fail_idx": fail_idx}
    faults(url)
    retry = cgi(url, "freepublish/submit", access_token, {"media_id": draft})
    assert publish_status(url, access_token, retry["publish_id"])["publish_status"] == 0


def test_unknown_drafts_and_jobs(url, account):
    access_token, _ = account
    assert cgi(url, "freepublish/submit", access_token, {"media_id": "nope"})["errcode"] == 40007
    assert publish_status(url, access_token, 12345)["errcode"] == 53600
    other = token(url, APPID2, SECRET2)["access_token"]
    submitted = publish(url, account)
    assert publish_status(url, other, submitted["publish_id"])["errcode"] == 53600


def test_published_articles_are_listed_read_and_deleted(url, account):
    access_token, _ = account
    first = publish(url, account, title="第一篇")
    second = publish(url, account, title="第二篇")
    article_id = publish_status(url, access_token, first["publish_id"])["article_id"]
    listed = cgi(url, "freepublish/batchget", access_token, {"offset": 0, "count": 10})
    assert listed["total_count"] == 2 and listed["item_count"] == 2
    titles = [i["content"]["news_item"][0]["title"] for i in listed["item"]]
    assert titles == ["第二篇", "第一篇"]  # newest first
    bare = cgi(url, "freepublish/batchget", access_token,
               {"offset": 0, "count": 1, "no_content": 1})
    assert "content" not in bare["item"][0]["content"]["news_item"][0]
    got = cgi(url, "freepublish/getarticle", access_token, {"article_id": article_id})
    assert got["news_item"][0]["title"] == "第一篇" and not got["news_item"][0]["is_deleted"]
    assert cgi(url, "freepublish/delete", access_token,
               {"article_id": article_id, "index": 0})["errcode"] == 0
    assert publish_status(url, access_token, first["publish_id"])["publish_status"] == 5
    page = requests.get(f"{url}/s/{article_id}", timeout=5).text
    assert "该内容已被发布者删除" in page
    assert cgi(url, "freepublish/delete", access_token, {"article_id": "nope"})["errcode"] == 53600
    assert publish_status(url, access_token, second["publish_id"])["publish_status"] == 0


# ---------------------------------------------------------------------- faults


def test_busy_quota_and_a_lost_answer(url, account):
    access_token, thumb = account
    faults(url, busy_next=1)
    busy = token(url)
    assert busy["errcode"] == -1 and busy["errmsg"].startswith("system error")
    faults(url, quota_exhausted=True)
    assert works(url, access_token) == 45009
    faults(url, drop_responses=1)
    draft = cgi(url, "draft/add", access_token, {"articles": [article(thumb)]})["media_id"]
    lost = requests.post(f"{url}/cgi-bin/freepublish/submit",
                         params={"access_token": access_token}, json={"media_id": draft},
                         timeout=5)
    assert lost.status_code == 504
    [job] = requests.get(f"{url}/_sandbox/articles", timeout=5).json()
    assert job["answer_dropped"] and job["status"] == 0  # it went out all the same
    assert cgi(url, "freepublish/submit", access_token, {"media_id": draft})["errcode"] == 40007


def test_a_rate_limit_on_publishing_answers_the_quota_error(url, account):
    faults(url, rate_limit=1, rate_window_s=60)
    assert publish(url, account)["errcode"] == 0
    assert publish(url, account, title="第二篇")["errcode"] == 45009


def test_requests_are_counted_per_api(url, account):
    works(url, account[0])
    counts = requests.get(f"{url}/_sandbox/requests", timeout=5).json()
    assert counts == {"/cgi-bin/token": 1, "/cgi-bin/material/add_material": 1,
                      "/cgi-bin/freepublish/batchget": 1}


# ---------------------------------------------------------------------- the event callback


@pytest.fixture
def receiver():
    events: list[tuple[dict, str]] = []
    app = FastAPI()

    @app.post("/wechat/events")
    async def receive(request: Request) -> PlainTextResponse:
        events.append((dict(request.query_params), (await request.body()).decode()))
        return PlainTextResponse("success")

    with SandboxServer(app) as running:
        yield f"{running.url}/wechat/events", events


def wait_for(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_end_of_a_job_is_pushed_as_a_signed_event(url, account, receiver):
    callback_url, events = receiver
    requests.post(f"{url}/_sandbox/callback", json={"url": callback_url, "token": "cb-token"},
                  timeout=5)
    faults(url, publish_seconds=0.1)
    submitted = publish(url, account)
    wait_for(lambda: events)
    query, body = events[0]
    check_signature("cb-token", query["signature"], query["timestamp"], query["nonce"])
    event = xmltodict.parse(body)["xml"]
    assert event["MsgType"] == "event" and event["Event"] == "PUBLISHJOBFINISH"
    info = event["PublishEventInfo"]
    answer = publish_status(url, account[0], submitted["publish_id"])
    assert int(info["publish_id"]) == submitted["publish_id"]
    assert info["publish_status"] == "0" and info["article_id"] == answer["article_id"]
    assert info["article_detail"]["item"]["article_url"] == \
        answer["article_detail"]["item"][0]["article_url"]
    faults(url, audit_reject=True)
    publish(url, account, title="第二篇")
    wait_for(lambda: len(events) == 2)
    rejected = xmltodict.parse(events[1][1])["xml"]["PublishEventInfo"]
    assert rejected["publish_status"] == "4" and rejected["fail_idx"] == "1"
    sent = requests.get(f"{url}/_sandbox/callbacks", timeout=5).json()
    assert [s["status_code"] for s in sent] == [200, 200]
    requests.post(f"{url}/_sandbox/callback", json={}, timeout=5)


# ---------------------------------------------------------------------- wechatpy on the sandbox


class SandboxClient(WeChatClient):
    """wechatpy's own client; only the host differs (its token URL is fixed in the library)."""

    def __init__(self, base: str, appid: str, secret: str) -> None:
        super().__init__(appid, secret, timeout=5)
        self.base = base
        self.API_BASE_URL = f"{base}/cgi-bin/"

    def fetch_access_token(self):
        return self._fetch_access_token(url=f"{self.base}/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})


def test_wechatpy_publishes_an_article_on_the_sandbox(url):
    client = SandboxClient(url, APPID, SECRET)
    cover = client.material.add("image", io.BytesIO(PNG))
    src = client.media.upload_image(io.BytesIO(JPG))
    content = f'<p>正文</p><p><img src="{src}"></p>'
    draft = client.post("draft/add", data={"articles": [article(cover["media_id"],
                                                                content=content)]})
    submitted = client.post("freepublish/submit", data={"media_id": draft["media_id"]})
    done = client.post("freepublish/get", data={"publish_id": submitted["publish_id"]})
    assert done["publish_status"] == 0
    page = requests.get(done["article_detail"]["item"][0]["article_url"], timeout=5)
    assert src in page.text


def test_wechatpy_sees_error_answers_as_its_exceptions(url):
    client = SandboxClient(url, APPID, SECRET)
    cover = client.material.add("image", io.BytesIO(PNG))
    with pytest.raises(WeChatClientException) as raised:
        client.post("draft/add", data={"articles": [article(cover["media_id"],
                                                            title="长" * 33)]})
    assert raised.value.errcode == 45003
    faults(url, quota_exhausted=True)
    with pytest.raises(APILimitedException) as limited:
        client.post("freepublish/batchget", data={"offset": 0, "count": 1})
    assert limited.value.errcode == 45009
    with pytest.raises(WeChatClientException) as bad_secret:
        SandboxClient(url, APPID, "wrong").fetch_access_token()
    assert bad_secret.value.errcode == 40125


def test_wechatpy_fetches_a_new_token_on_40001_and_42001(url, configure):
    configure(token_grace=0.2)
    client = SandboxClient(url, APPID, SECRET)
    other = SandboxClient(url, APPID, SECRET)
    listing = {"offset": 0, "count": 1}
    assert client.post("freepublish/batchget", data=listing)["total_count"] == 0
    faults(url, expire_tokens=True)  # 42001 → wechatpy fetches a token and retries
    assert client.post("freepublish/batchget", data=listing)["total_count"] == 0
    faults(url)
    other.post("freepublish/batchget", data=listing)  # the other worker's token replaces it
    time.sleep(0.25)  # past the grace period: 40001 → fetch and retry
    assert client.post("freepublish/batchget", data=listing)["total_count"] == 0
    assert requests.get(f"{url}/_sandbox/tokens", timeout=5).json()["issued"] == 4


def test_a_sandbox_mounted_under_a_prefix_hosts_its_images_there():
    outer = FastAPI()
    outer.mount("/sandbox/wechat", create_app({APPID: SECRET}))
    with SandboxServer(outer) as running:
        base = f"{running.url}/sandbox/wechat"
        access_token = token(base)["access_token"]
        src = upload(base, access_token)["url"]
        assert src.startswith(f"{base}/mmbiz/") and requests.get(src, timeout=5).content == PNG
        thumb = material(base, access_token)["media_id"]
        content = f'<img src="{src}">'
        answer = cgi(base, "draft/add", access_token, {"articles": [article(thumb,
                                                                             content=content)]})
        assert "media_id" in answer
