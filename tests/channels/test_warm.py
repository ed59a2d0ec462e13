"""A warm adapter's go-live call only sends: its connection was opened ahead of the instant."""

from __future__ import annotations

import pytest
import urllib3.connection

from channels.http import open_ahead
from channels.sandbox.server import SandboxServer
from channels.sandbox.weibo import create_app
from channels.weibo import WeiboAdapter
from tests.contract.harnesses import view

UID, TOKEN = "5000000001", "tok-1"


@pytest.fixture
def opened(monkeypatch):
    """How many TCP connections the adapters open (every one goes through _new_conn)."""
    count = [0]
    real = urllib3.connection.HTTPConnection._new_conn

    def counting(self):  # type: ignore[no-untyped-def]
        count[0] += 1
        return real(self)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "_new_conn", counting)
    return count


def test_the_go_live_call_of_a_warmed_adapter_opens_no_connection(opened):
    with SandboxServer(create_app({UID: TOKEN})) as server:
        weibo = WeiboAdapter({"api_base": server.url, "safe_domain": "127.0.0.1", "uid": UID,
                              "sandbox": True}, {"access_token": TOKEN})
        weibo.warm()
        assert opened[0] == 1  # ahead of the instant
        weibo.warm()
        assert opened[0] == 1  # still open: warming again opens nothing
        receipt = weibo.publish(weibo.render(view(release_id=7)), {}, "k")
        assert receipt.remote_id and opened[0] == 1  # the call took the open connection


def test_warming_where_nothing_answers_is_no_error(opened):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    weibo = WeiboAdapter({"api_base": f"http://127.0.0.1:{port}", "safe_domain": "127.0.0.1",
                          "uid": UID, "sandbox": True}, {"access_token": TOKEN})
    weibo.warm()  # the call will say it is unreachable, typed as ever
    assert not open_ahead(weibo.http, weibo.publish_url())
