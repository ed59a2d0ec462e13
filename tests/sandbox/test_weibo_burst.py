"""The Weibo sandbox as the reference of a wide go-live: it takes a burst of 500 share calls
at one instant, on connections opened seconds before, and accepts every one."""

from __future__ import annotations

import time

import requests

from bench.burst import burst
from channels.sandbox.server import SandboxServer
from channels.sandbox.weibo import create_app

ACCOUNTS = {f"5000000{i:03d}": f"tok-{i}" for i in range(500)}


def test_a_burst_of_500_on_connections_opened_ahead_is_accepted_whole():
    app = create_app(ACCOUNTS, posts_per_hour=100, posts_per_day=100,
                     app_posts_per_hour=1000)
    with SandboxServer(app) as server:
        tokens = list(ACCOUNTS.values())
        texts = [f"第{i}号账号通知 http://127.0.0.1/articles/1.html" for i in range(500)]
        # the connections are up 6 s before the instant, as a go-live opens them ahead;
        # the waiting is the point (an idle connection must outlive it), not a guess
        out = burst(server.url, tokens, texts, at=time.time() + 6)
        assert (out["accepted"], out["closed"], out["statuses"]) == (500, 0, [200])
        wire = requests.get(f"{server.url}/_sandbox/wire", timeout=30).json()
        assert sum(e["accepted"] for e in wire) == 500
        assert {e["account"] for e in wire} == set(ACCOUNTS)


def test_the_quotas_count_the_same_with_the_posts_indexed():
    """The hourly quota of the app counts every account's posts; an account's own
    quota only its own, whatever else is kept."""
    app = create_app(ACCOUNTS, posts_per_hour=2, app_posts_per_hour=5)
    with SandboxServer(app) as server:
        def share(i: int, n: int) -> dict:
            return requests.post(f"{server.url}/2/statuses/share.json", timeout=5, data={
                "access_token": f"tok-{i}",
                "status": f"通知{n} http://127.0.0.1/articles/{n}.html"}).json()

        assert "idstr" in share(0, 1) and "idstr" in share(0, 2)
        assert share(0, 3)["error_code"] == 10023  # the account's own hour
        assert all("idstr" in share(i, 4) for i in (1, 2, 3))
        assert share(4, 5)["error_code"] == 20016  # five stored: the app's hour is full
