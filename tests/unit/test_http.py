"""Adapters' HTTP: failures typed by whether the request left; connect failures retried in-call."""

import socket
import threading

import pytest
import requests

from channels import http
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
