"""Adapters' HTTP: failures typed by whether the request left; connect failures retried in-call."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from channels import http, outbound
from channels.contract import OutcomeUnknown, RetryableError


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


def test_a_refused_connection_is_tried_three_times_then_retryable(monkeypatch):
    session, calls = requests.Session(), []
    original = session.request

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(session, "request", counting)
    with pytest.raises(RetryableError) as err:
        http.call(session, "GET", f"http://127.0.0.1:{refused_port()}/x?access_token=s3cret")
    assert len(calls) == 3 and err.value.code == "unreachable"
    assert "s3cret" not in err.value.message


def test_no_answer_after_sending_is_outcome_unknown_and_not_retried_in_call():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []

    def accept():
        while len(accepted) < 3:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)  # read nothing, answer nothing

    threading.Thread(target=accept, daemon=True).start()
    port = server.getsockname()[1]
    with pytest.raises(OutcomeUnknown):
        http.call(requests.Session(), "POST", f"http://127.0.0.1:{port}/share", data={"a": 1},
                  read_timeout=0.3)
    assert len(accepted) == 1
    server.close()


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the connection stays open between requests
    connections: list[tuple[str, int]] = []
    requests: list[tuple[str, int]] = []

    def setup(self) -> None:
        super().setup()
        self.connections.append(self.client_address)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.requests.append(self.client_address)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def keep_alive():
    _KeepAlive.connections, _KeepAlive.requests = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_connection_opened_ahead_carries_the_next_call(keep_alive):
    session = outbound.session(outbound.SANDBOX)  # as adapters make theirs
    http.preconnect(session, f"{keep_alive}/api")
    assert _KeepAlive.requests == []  # nothing was sent
    for _ in range(500):  # the server takes the connection in its own thread
        if _KeepAlive.connections:
            break
        threading.Event().wait(0.01)
    assert len(_KeepAlive.connections) == 1
    assert http.call(session, "GET", f"{keep_alive}/statuses/share.json").text == "ok"
    assert _KeepAlive.requests == _KeepAlive.connections  # the call took the open one


def test_opening_ahead_never_fails_the_call_that_follows():
    session = requests.Session()
    http.preconnect(session, f"http://127.0.0.1:{refused_port()}/api")  # nothing raised
    refused = outbound.session(outbound.NOTHING)
    http.preconnect(refused, "http://10.255.255.1/api")  # not allowed: not even tried
