"""WeChat lookup() after a worker died: it finds a published article however many came
after it (batchget shows 20 at a time, newest first), follows an answered submit by its
publish_id, and knows at once that a refused submit started nothing."""

import time

import pytest
import requests

from channels.contract import OutcomeUnknown, RateLimited
from channels.sandbox.server import SandboxServer
from channels.sandbox.wechat import create_app
from channels.wechat import WeChatAdapter
from tests.contract.harnesses import view


def test_lookup_pages_back_past_later_articles_to_the_submit(tmp_path):
    with SandboxServer(create_app(accounts={"wx0001": "secret-1"})) as server:
        wx = WeChatAdapter({"api_base": server.url, "appid": "wx0001", "sandbox": True,
                            "token_store": str(tmp_path / "tokens")}, {"appsecret": "secret-1"})

        def go_live(n: int) -> dict:
            payload = wx.render(view(id=n, url=f"http://127.0.0.1:8000/site/articles/{n}.html"))
            wx.publish(payload, wx.stage(payload, f"k{n}"), f"k{n}")
            return payload

        first = go_live(1)
        for n in range(2, 27):  # 25 later articles: the first is on the second page
            go_live(n)
        listed = requests.get(f"{server.url}/_sandbox/articles", timeout=5).json()
        assert sum(1 for job in listed if job["article_id"]) == 26
        found = wx.lookup(first, "k1")
        assert found is not None and found.details["confirmed"]


def sandbox_adapter(url, tmp_path):
    return WeChatAdapter({"api_base": url, "appid": "wx0001", "sandbox": True,
                          "token_store": str(tmp_path / "tokens")}, {"appsecret": "secret-1"})


def test_a_refused_submit_is_known_as_not_sent_at_once_by_any_worker(tmp_path):
    with SandboxServer(create_app(accounts={"wx0001": "secret-1"})) as server:
        requests.post(f"{server.url}/_sandbox/faults", timeout=5, json={"schedule": [
            {"path": "freepublish/submit", "fault": "quota", "at": [1]}]})
        wx = sandbox_adapter(server.url, tmp_path)
        payload = wx.render(view())
        staged = wx.stage(payload, "k1")
        with pytest.raises(RateLimited):  # the worker dies before recording this answer
            wx.publish(payload, staged, "k1")
        # the next worker's lookup: no job was started, so "not sent", not "look again"
        assert sandbox_adapter(server.url, tmp_path).lookup(payload, "k1", staged) is None


def test_an_answered_submit_is_followed_by_its_publish_id(tmp_path):
    with SandboxServer(create_app(accounts={"wx0001": "secret-1"})) as server:
        requests.post(f"{server.url}/_sandbox/faults", timeout=5, json={"publish_seconds": 1.0})
        wx = sandbox_adapter(server.url, tmp_path)
        payload = wx.render(view())
        staged = wx.stage(payload, "k1")
        receipt = wx.publish(payload, staged, "k1")  # the worker dies before recording this
        other = sandbox_adapter(server.url, tmp_path)
        with pytest.raises(OutcomeUnknown):  # still publishing
            other.lookup(payload, "k1", staged)
        deadline = time.monotonic() + 30
        while (found := wx.confirm(receipt)) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert found is not None
        assert other.lookup(payload, "k1", staged).remote_id == found.remote_id
