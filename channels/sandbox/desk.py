"""The newspaper desk on loopback: an SFTP drop and a mailbox, as the newsfeed channel meets them.

Started by the tests of the newsfeed adapter, and by `tongfa serve` / `tongfa demo` so
the feed has somewhere real to go: an SSH server with an SFTP subsystem chrooted to a
folder (asyncssh) and an SMTP server that keeps every message it accepts (aiosmtpd).

Both keep a wire log (wirelog.py) and take faults by count (faults.py): the SFTP drop
breaks the connection in the middle of the Nth upload (`disconnect`) or after doing
the Nth rename (`drop`: the file is in place, the answer lost); the mailbox answers
the Nth message with a 4xx (`status`, default 451).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import asyncssh
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError as missing:  # the servers are an extra: production never runs them
    raise ImportError(f"the newspaper desk sandbox needs {missing.name or missing}: "
                      "pip install 'tongfa[sandbox]'") from missing

from channels.sandbox.faults import Faults
from channels.sandbox.wirelog import WireLog

USER, PASSWORD = "desk", "desk-pass-1"


class LoopThread:
    """An asyncio loop in a daemon thread, for servers the blocking adapter talks to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class SftpServer:
    """SSH with an SFTP subsystem chrooted to `root`, on a free loopback port."""

    def __init__(self, root: Path, client_key: str = "", password: str = PASSWORD,
                 port: int = 0, faults: Faults | None = None, wire_dir: Path | None = None) -> None:
        self.root, self.client_key, self.password, self.wanted_port = root, client_key, password, port
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.logins: list[str] = []
        self.faults = faults or Faults()
        self.wire = WireLog("sftp", wire_dir)

    @property
    def host_key_line(self) -> str:
        return " ".join(self.host_key.export_public_key("openssh").decode().split()[:2])

    def __enter__(self) -> SftpServer:
        server = self

        class Auth(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                server.logins.append("password")
                return username == USER and password == server.password

            def public_key_auth_supported(self) -> bool:
                return bool(server.client_key)

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                server.logins.append("publickey")
                offered = key.export_public_key("openssh").decode().split()[1]
                return offered == server.client_key.split()[1]

        async def start() -> asyncssh.SSHAcceptor:
            return await asyncssh.create_server(
                Auth, "127.0.0.1", self.wanted_port, server_host_keys=[self.host_key],
                sftp_factory=lambda chan: DeskSftp(chan, server))

        self.threads = LoopThread()
        self.acceptor = self.threads.run(start())
        self.port = self.acceptor.get_port()
        return self

    def stop_accepting(self) -> None:
        async def stop() -> None:  # in the loop's own thread: asyncio is not thread-safe
            self.acceptor.close()
            await self.acceptor.wait_closed()

        self.threads.run(stop())

    def __exit__(self, *exc: object) -> None:
        self.stop_accepting()
        self.threads.close()


def final_name(path: bytes) -> str:
    """The file an upload is for: `.<name>.part` is uploaded, then renamed to `<name>`."""
    name = path.decode(errors="replace").rsplit("/", 1)[-1]
    return name[1:-len(".part")] if name.startswith(".") and name.endswith(".part") else name


class DeskSftp(asyncssh.SFTPServer):
    """The SFTP subsystem, with every upload and rename in the wire log and faults by count."""

    def __init__(self, chan: Any, server: SftpServer) -> None:
        super().__init__(chan, chroot=str(server.root).encode())
        self.server = server
        self.uploads: dict[int, tuple[str, float, bool]] = {}  # file → name, when, to break

    def _record(self, operation: str, path: bytes, answer: str, accepted: bool,
                received_at: float, content: bytes | None = None) -> None:
        self.server.wire.record(account=USER, operation=operation, create=True,
                                target=final_name(path), content=content, answer=answer,
                                accepted=accepted, received_at=received_at)

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        handle = super().open(path, pflags, attrs)
        if pflags & asyncssh.FXF_WRITE:
            self.server.faults.arrive("sftp/upload")
            broken = self.server.faults.planned("disconnect") is not None
            self.uploads[id(handle)] = (path, time.time(), broken)
        return handle

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        path, received_at, broken = self.uploads.get(id(file_obj), (b"", 0.0, False))
        if broken:  # the connection breaks in the middle of the upload
            self._record("upload", path, "disconnected", False, received_at, data)
            self.uploads.pop(id(file_obj), None)
            self.connection.abort()
            raise asyncssh.SFTPConnectionLost("the desk's server went away")
        return super().write(file_obj, offset, data)

    def close(self, file_obj: object) -> None:
        upload = self.uploads.pop(id(file_obj), None)
        super().close(file_obj)
        if upload is not None:
            path, received_at, _ = upload
            self._record("upload", path, "ok", False, received_at,
                         Path(self.map_path(path).decode()).read_bytes())

    def _renamed(self, oldpath: bytes, newpath: bytes, rename: Any) -> None:
        received_at = time.time()
        self.server.faults.arrive("sftp/rename")
        try:
            rename(oldpath, newpath)
        except OSError as exc:
            self._record("rename", newpath, f"error:{exc.errno}", False, received_at)
            raise
        dropped = self.server.faults.planned("drop") is not None
        self._record("rename", newpath, "dropped" if dropped else "ok", True, received_at)
        if dropped:  # in place, but the client never hears so
            self.connection.abort()

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._renamed(oldpath, newpath, super().rename)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._renamed(oldpath, newpath, super().posix_rename)


class SmtpServer:
    """aiosmtpd on a pre-bound loopback socket; keeps every accepted message's bytes."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, password: str = "",
                 answer_delay: float = 0.0, port: int = 0, keep_in: Path | None = None,
                 faults: Faults | None = None, wire_dir: Path | None = None) -> None:
        self.tls, self.password, self.answer_delay = tls, password, answer_delay
        self.wanted_port, self.keep_in = port, keep_in  # keep_in: also write each as a .eml
        self.messages: list[bytes] = []
        self.faults = faults or Faults()
        self.wire = WireLog("smtp", wire_dir)
        # called with the wire-log entry of a held message, before its 250 is sent
        self.on_hold: Callable[[dict[str, Any]], None] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        received_at, content = time.time(), envelope.original_content or b""
        self.faults.arrive("smtp/DATA")
        refused = self.faults.planned("status")
        hold = self.faults.planned("hold") if refused is None else None
        message_id = email.message_from_bytes(content, policy=email.policy.default).get(
            "Message-ID", "")

        def said(answer: str, accepted: bool) -> dict[str, Any]:
            return self.wire.record(account=",".join(envelope.rcpt_tos), operation="DATA",
                             create=True, target=str(message_id).strip(), content=content,
                             answer=answer, accepted=accepted, received_at=received_at)

        if refused is not None:
            status = int(refused.get("status", 451))
            said(str(status), False)
            return f"{status} 4.3.0 mailbox busy, try again later"
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        entry = said("250", True)
        self.messages.append(envelope.original_content)
        if self.keep_in is not None:
            self.keep_in.mkdir(parents=True, exist_ok=True)
            (self.keep_in / f"{len(self.messages):05d}.eml").write_bytes(envelope.original_content)
        if hold is not None:  # taken; the client hears so late, or never
            if self.on_hold is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.on_hold, entry)
            await asyncio.sleep(float(hold.get("ms", 0)) / 1000)
        return "250 OK: queued"

    def has(self, message_id: str) -> bool:
        """Whether a message with this Message-ID was accepted: what the desk's inbox shows
        a person who checks it (the adapter cannot ask a mail server this)."""
        return any(m["message-id"] == message_id for m in self.parsed())

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == USER.encode() \
            and data.password == self.password.encode()
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> SmtpServer:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", self.wanted_port))
        self.port = self.sock.getsockname()[1]
        self.threads = LoopThread()

        def factory() -> SMTP:
            return SMTP(self, hostname="desk.test", tls_context=self.tls,
                        require_starttls=bool(self.tls), auth_required=bool(self.password),
                        auth_require_tls=bool(self.tls),
                        authenticator=self.authenticate if self.password else None)

        async def start() -> asyncio.AbstractServer:
            return await asyncio.get_running_loop().create_server(factory, sock=self.sock)

        self.server = self.threads.run(start())
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.server.close()

        self.threads.run(stop())
        self.threads.close()

    def parsed(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(m, policy=email.policy.default) for m in self.messages]
