"""Weibo lookup() finds an earlier post however many the account posted after it: the
timeline shows 100 at a time, newest first, so it pages back (the chaos bench, 200
releases on one account, re-posted releases its lookup could not see)."""

from channels.sandbox.server import SandboxServer
from channels.sandbox.weibo import create_app
from channels.weibo import WeiboAdapter
from tests.contract.harnesses import view

UID, TOKEN = "5000000001", "tok-1"


def test_lookup_pages_back_past_later_posts(tmp_path):
    with SandboxServer(create_app({UID: TOKEN}, posts_per_hour=1000, posts_per_day=1000,
                                  app_posts_per_hour=1000)) as server:
        weibo = WeiboAdapter({"api_base": server.url, "safe_domain": "127.0.0.1", "uid": UID,
                              "sandbox": True}, {"access_token": TOKEN})

        def go_live(n: int) -> dict:
            payload = weibo.render(view(id=n, title=f"关于第{n}号事项的通知",
                                        url=f"http://127.0.0.1/articles/{n}.html"))
            weibo.publish(payload, {}, f"k{n}")
            return payload

        first = go_live(1)
        receipt = weibo.lookup(first, "k1")
        for n in range(2, 152):  # 150 later posts: the first is on the second page
            go_live(n)
        found = weibo.lookup(first, "k1")
        assert found is not None and found.remote_id == receipt.remote_id
        assert weibo.lookup(weibo.render(view(id=999, url="http://127.0.0.1/articles/999.html")),
                            "k999") is None
