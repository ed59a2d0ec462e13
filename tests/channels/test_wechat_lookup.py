"""WeChat lookup() finds a published article however many were published after it:
freepublish/batchget shows 20 at a time, newest first, so it pages back to the submit."""

import requests

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
