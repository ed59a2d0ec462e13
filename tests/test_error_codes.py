"""Every channel error code the issue names reaches the orchestrator as the right type.

The Weibo sandbox answers each code from the platform rule that produces it (a quota
spent, the same or similar text, too long, blocked words, no safe-domain link, a bad
token), with the platform's HTTP status and message; only the busy codes come from the
fault injector. WeChat answers HTTP 200 with {"errcode", "errmsg"}: the account's
rules give 40164 and 48001, a chosen code (`busy_code`) the rest, each with the
platform's message; the real adapter maps them all.
"""

from collections.abc import Callable
from typing import Any

import pytest
import requests

from channels.contract import (
    CredentialsExpired,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RetryableError,
)
from channels.sandbox.server import SandboxServer
from channels.sandbox.wechat import MSG
from channels.sandbox.wechat import create_app as wechat_app
from channels.sandbox.weibo import create_app as weibo_app
from channels.wechat import WeChatAdapter
from channels.weibo import WeiboAdapter
from tests.contract.harnesses import view

WEIBO = {10023: RateLimited, 10024: RateLimited, 20016: RateLimited,
         20019: OutcomeUnknown, 20017: OutcomeUnknown,  # maybe posted: reconcile, never re-post
         20012: PermanentError, 20021: PermanentError, 10017: PermanentError,
         21327: CredentialsExpired, 21332: CredentialsExpired,
         10001: RetryableError, 10009: RetryableError}
WECHAT = {-1: RetryableError, 45009: RateLimited, 48001: PermanentError,
          45166: PermanentError, 45002: PermanentError, 53503: PermanentError,
          53504: PermanentError, 53505: PermanentError}
# code → (HTTP status, error) as the platform answers it
WEIBO_ANSWER = {10023: (403, "User requests out of rate limit!"),
                10024: (403, "User requests for (statuses/share) out of rate limit!"),
                20016: (400, "Update weibo too fast!"), 20019: (400, "repeat content!"),
                20017: (400, "Repeated weibo text!"),
                20012: (400, "Text too long, please input text less than 140 characters!"),
                20021: (400, "Content is illegal!"), 21327: (403, "expired_token"),
                21332: (403, "invalid_access_token"), 10001: (500, "system error!"),
                10009: (503, "Too many pending tasks, system is busy!")}
LINK = "http://127.0.0.1/articles/1.html"


def faults(url: str, **settings: Any) -> None:
    requests.post(f"{url}/_sandbox/faults", json=settings, timeout=5).raise_for_status()


def share(url: str, text: str) -> None:
    requests.post(f"{url}/2/statuses/share.json", timeout=5,
                  data={"access_token": "tok", "status": text}).raise_for_status()


# code → (sandbox settings, what happens first, the text to post, the token)
Setup = tuple[dict[str, Any], Callable[[str, str], None], Callable[[str], str], str]
SAME = "【关于做好冬季安全生产工作的通知】部署冬季安全生产。"
WEIBO_RULES: dict[int, Setup] = {
    10023: ({"posts_per_hour": 0}, lambda url, text: None, lambda t: t, "tok"),
    10024: ({"posts_per_day": 0}, lambda url, text: None, lambda t: t, "tok"),
    20016: ({"app_posts_per_hour": 0}, lambda url, text: None, lambda t: t, "tok"),
    20019: ({}, share, lambda t: t, "tok"),
    20017: ({}, lambda url, text: share(url, f"{SAME} {LINK}?v=1"), lambda t: t, "tok"),
    20012: ({}, lambda url, text: None, lambda t: "长" * 140 + t, "tok"),
    20021: ({"blocked_words": ("违禁词",)}, lambda url, text: None, lambda t: "违禁词" + t, "tok"),
    10017: ({}, lambda url, text: None, lambda t: "没有链接的微博", "tok"),
    21327: ({}, lambda url, text: faults(url, expire_tokens=True), lambda t: t, "tok"),
    21332: ({}, lambda url, text: None, lambda t: t, "not-a-token"),
    10001: ({}, lambda url, text: faults(url, busy_next=1), lambda t: t, "tok"),
    10009: ({}, lambda url, text: faults(url, busy_next=1, busy_code=10009), lambda t: t, "tok"),
}


@pytest.mark.parametrize(("code", "error"), sorted(WEIBO.items()))
def test_weibo_codes_come_from_the_platforms_rules(code, error):
    settings, before, text_of, token = WEIBO_RULES[code]
    with SandboxServer(weibo_app(accounts={"5000000001": "tok"}, **settings)) as server:
        weibo = WeiboAdapter({"api_base": server.url, "safe_domain": "127.0.0.1",
                              "sandbox": True}, {"access_token": token})
        payload = weibo.render(view(release_id=code))
        payload = {**payload, "text": text_of(payload["text"])}
        before(server.url, payload["text"])
        with pytest.raises(error) as err:
            weibo.publish(payload, {}, "k")
        assert err.value.code == str(code)
        # the platform's own answer, as the adapter received it
        answer = requests.post(f"{server.url}/2/statuses/share.json", timeout=5,
                               data={"access_token": token, "status": payload["text"]})
        if code in (10001, 10009):
            before(server.url, payload["text"])
            answer = requests.post(f"{server.url}/2/statuses/share.json", timeout=5,
                                   data={"access_token": token, "status": payload["text"]})
        status, message = WEIBO_ANSWER.get(code, (400, None))
        assert answer.status_code == status and answer.json()["error_code"] == code
        if message is not None:
            assert answer.json()["error"] == message


@pytest.fixture(scope="module")
def wechat_url():
    with SandboxServer(wechat_app(accounts={"wx1": "sec"})) as server:
        yield server.url


@pytest.mark.parametrize(("code", "error"), sorted(WECHAT.items()))
def test_wechat_codes(wechat_url, tmp_path, code, error):
    wx = WeChatAdapter({"api_base": wechat_url, "appid": "wx1", "sandbox": True,
                        "token_store": str(tmp_path)}, {"appsecret": "sec"})
    payload = wx.render(view())
    staged = wx.stage(payload, "k")
    requests.post(f"{wechat_url}/_sandbox/faults", json={"busy_next": 1, "busy_code": code},
                  timeout=5)
    with pytest.raises(error) as err:
        wx.publish(payload, staged, "k")
    assert err.value.code == str(code)
    if code == 48001:
        assert "admin" in err.value.message


@pytest.mark.parametrize("code", sorted({*WECHAT, 40164}))
def test_every_wechat_code_has_the_platforms_message(code):
    assert MSG.get(code), f"no errmsg for {code}"


@pytest.mark.parametrize(("config", "code"), [
    ({"ip_whitelist": ("10.0.0.1",)}, 40164),
    ({"unauthorized_apis": ("freepublish/submit",)}, 48001)])
def test_wechat_account_rules_answer_40164_and_48001(tmp_path, config, code):
    with SandboxServer(wechat_app(accounts={"wx1": "sec"}, **config)) as server:
        if code == 40164:  # refused at the first call: the token
            body = requests.get(f"{server.url}/cgi-bin/token", timeout=5, params={
                "grant_type": "client_credential", "appid": "wx1", "secret": "sec"}).json()
            assert body["errcode"] == 40164 and body["errmsg"].startswith(
                "invalid ip, not in whitelist hint: [ip 127.0.0.1")
            return
        wx = WeChatAdapter({"api_base": server.url, "appid": "wx1", "sandbox": True,
                            "token_store": str(tmp_path)}, {"appsecret": "sec"})
        payload = wx.render(view())
        staged = wx.stage(payload, "k")
        with pytest.raises(PermanentError) as err:
            wx.publish(payload, staged, "k")
        assert err.value.code == "48001" and "admin" in err.value.message
