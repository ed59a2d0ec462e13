"""Run an ASGI app (a sandbox) on loopback in a background thread, for tests and the demo.

The listening socket is bound before the server starts (port 0 = a free port the
OS picks), so there is no window in which another process could take the port.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

BACKLOG = 2048  # connections waiting to be accepted (the kernel caps it at somaxconn)
KEEP_ALIVE_SECONDS = 75  # an idle connection stays open this long (nginx's default)


class SandboxServer:
    """`with SandboxServer(app) as server: requests.get(server.url + ...)`."""

    def __init__(self, app: Any, port: int = 0, host: str = "127.0.0.1",
                 start_timeout: float = 10.0) -> None:
        self.app, self.host, self.start_timeout = app, host, start_timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.port: int = self.sock.getsockname()[1]
        # a platform takes a burst of hundreds of calls at one instant: the listen queue
        # holds them all, and a connection opened ahead of a go-live is still open at it
        self.server = uvicorn.Server(uvicorn.Config(
            app, host=host, port=self.port, log_level="warning", lifespan="off",
            timeout_graceful_shutdown=1, timeout_keep_alive=KEEP_ALIVE_SECONDS,
            backlog=BACKLOG))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name=f"sandbox-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not (self.server.started and self._answers()):
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.stop()
                raise RuntimeError(f"sandbox did not start on {self.url}")
            time.sleep(0.01)
        return self

    def _answers(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            return probe.connect_ex((self.host, self.port)) == 0

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
