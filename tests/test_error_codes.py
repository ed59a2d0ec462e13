"""Every channel error code the issue names reaches the orchestrator as the right type.

The sandboxes answer a chosen code (`busy_code`) exactly as the real platform would
(Weibo: HTTP 4xx/5xx with {"error", "error_code", "request"}; WeChat: HTTP 200 with
{"errcode", "errmsg"}), and the real adapter maps it.
"""

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


@pytest.fixture(scope="module")
def weibo_url():
    with SandboxServer(weibo_app(accounts={"5000000001": "tok"})) as server:
        yield server.url


@pytest.fixture(scope="module")
def wechat_url():
    with SandboxServer(wechat_app(accounts={"wx1": "sec"})) as server:
        yield server.url


@pytest.mark.parametrize(("code", "error"), sorted(WEIBO.items()))
def test_weibo_codes(weibo_url, code, error):
    weibo = WeiboAdapter({"api_base": weibo_url, "safe_domain": "127.0.0.1", "sandbox": True},
                         {"access_token": "tok"})
    payload = weibo.render(view(release_id=code))
    requests.post(f"{weibo_url}/_sandbox/faults", json={"busy_next": 1, "busy_code": code},
                  timeout=5)
    with pytest.raises(error) as err:
        weibo.publish(payload, {}, "k")
    assert err.value.code == str(code)


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
