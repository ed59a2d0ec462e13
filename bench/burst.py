"""The physical reference of a wide go-live: M share calls fired at one instant, bare.

One connection per account is opened (and answered once, so it is known to be up)
before the instant; at the instant one thread writes every request, already encoded,
to its socket in turn, then reads the answers. Nothing of ours is in the way: no
database, no adapter, no HTTP library. The spread of the platform-side receive times
(the sandbox's wire log) is what the same calls cost the platform when fired together.

    python -m bench.burst < plan.json     # {"url", "tokens", "texts"}; prints one JSON line

Run it as its own process: in the sandbox's process it would share that process's
interpreter lock and slow the sandbox it measures.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

SHARE = "/2/statuses/share.json"


@dataclass
class Answer:
    raw: bytearray = field(default_factory=bytearray)
    status: int = 0
    body: bytes = b""
    closed: bool = False

    def complete(self) -> bool:
        head, sep, rest = bytes(self.raw).partition(b"\r\n\r\n")
        if not sep:
            return False
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                       if line.lower().startswith("content-length:")), None)
        if length is None or len(rest) < length:
            return False
        self.body = rest[:length]
        del self.raw[:len(head) + 4 + length]
        return True


def _request(host: str, path: str, form: dict[str, str]) -> bytes:
    body = urlencode(form).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _get(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode()


def _exchange(socks: list[socket.socket], requests: list[bytes], timeout: float,
              at: float | None = None) -> list[Answer]:
    """Write requests[i] to socks[i] (all of them first, at `at` if given), then read one
    answer from each. An answer never completed (reset, closed, timed out) has status 0."""
    answers = [Answer() for _ in socks]
    if at is not None:
        while (left := at - time.time()) > 0:
            time.sleep(min(left, 0.05) if left > 0.002 else 0)
    for sock, data in zip(socks, requests, strict=True):
        try:
            sock.sendall(data)
        except OSError:
            pass  # counted below as an answer that never came
    with selectors.DefaultSelector() as sel:
        for i, sock in enumerate(socks):
            sel.register(sock, selectors.EVENT_READ, i)
        waiting, deadline = len(socks), time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                i, answer = key.data, answers[key.data]
                try:
                    chunk = socks[i].recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    answer.closed = True
                else:
                    answer.raw += chunk
                    if not answer.complete():
                        continue
                sel.unregister(socks[i])
                waiting -= 1
    return answers


def burst(url: str, tokens: list[str], texts: list[str], at: float | None = None,
          timeout: float = 60.0) -> dict[str, object]:
    """Share texts[i] on the account of tokens[i], all at one instant (`at`, epoch seconds,
    or as soon as every connection is up). Returns the answers' statuses and when the
    writes began and ended."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    socks = []
    try:
        for _ in tokens:
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(sock)
        # each connection answered once before the instant: open, accepted and kept alive
        warm = _exchange(socks, [_get(parts.netloc, "/_sandbox/requests")] * len(socks),
                         timeout)
        if any(a.status != 200 for a in warm):
            raise RuntimeError("a connection was not answered before the burst")
        fired = time.time() if at is None else at
        requests = [_request(parts.netloc, SHARE, {"access_token": t, "status": s})
                    for t, s in zip(tokens, texts, strict=True)]
        answers = _exchange(socks, requests, timeout, at)
        accepted = sum(1 for a in answers if a.status == 200 and b'"idstr"' in a.body)
        return {"fired_at": fired, "calls": len(tokens), "accepted": accepted,
                "statuses": sorted({a.status for a in answers}),
                "closed": sum(1 for a in answers if a.closed)}
    finally:
        for sock in socks:
            sock.close()


def main() -> None:
    plan = json.load(sys.stdin)
    print(json.dumps(burst(plan["url"], plan["tokens"], plan["texts"], plan.get("at"))))


if __name__ == "__main__":
    main()
