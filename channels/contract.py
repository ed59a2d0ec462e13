"""The channel adapter contract: what every channel kind implements.

An adapter gets a rendered payload and returns a receipt or raises a typed error.
It never touches the database: the orchestrator records what it says.

Life of one delivery, as the orchestrator drives it:
    payload = adapter.render(release)          # through templates/<kind>/
    adapter.validate(payload)                  # channel limits, before any call
    staged = adapter.stage(payload, key)       # slow part, before go-live
    receipt = adapter.publish(payload, staged, key)   # the one cheap call at go-live
    adapter.lookup(payload, key)               # did an earlier attempt already go out?
    adapter.withdraw(receipt)
"""

from __future__ import annotations

import datetime as dt
import email.errors
import hashlib
import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from channels.outbound import NOTHING, SANDBOX, Allowed

JSON = dict[str, Any]


# ---------------------------------------------------------------- what goes in


@dataclass(frozen=True)
class Attachment:
    """A stored file, addressed by the SHA-256 of its bytes."""

    sha256: str
    filename: str
    media_type: str
    path: Path  # where the bytes are on this machine (content-addressed store)

    def read(self) -> bytes:
        """The bytes, only if they are still the ones that were signed off."""
        return approved_bytes(self.sha256, self.filename, self.path)

    def ref(self) -> dict[str, str]:
        """How a payload names the file: what approved_files() needs to check it."""
        return {"sha256": self.sha256, "filename": self.filename,
                "media_type": self.media_type, "path": str(self.path)}


@dataclass(frozen=True)
class ReleaseView:
    """Everything an adapter may know about a release, and nothing more.

    Built by the orchestrator from the database; adapters only read it.
    """

    id: int
    title: str
    body_html: str  # sanitised
    summary: str
    metadata: dict[str, str]  # the 政府信息公开 fields, keys as in orchestrator.domain.release
    priority: str
    url: str  # stable URL of the release on the government website
    overrides: dict[str, Any] = field(default_factory=dict)  # this channel's overrides only
    images: tuple[Attachment, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    parent_id: int | None = None
    go_live_at: dt.datetime | None = None
    corrects_id: int | None = None  # this release corrects that item's first release (更正)
    corrects_url: str | None = None
    # of the item, numbered by the orchestrator (1, then each correction and withdrawal);
    # None: 1 for a first release, 2 for a correction
    version: int | None = None

    @property
    def link(self) -> str:
        """Where readers should go: a correction points at the corrected page."""
        if self.corrects_url:
            return f"{self.corrects_url}#correction-{self.id}"
        return self.url

    @property
    def marker(self) -> str:
        """A string that identifies this release in anything a channel shows.

        Used by lookup() to find an earlier attempt that did go out.
        """
        return self.link


# --------------------------------------------------------------- what comes out


# the remote id of a post a person marked published where the kind cannot name it from
# its URL (receipt_for_url): no platform id, so it is withdrawn and watched by hand
MANUAL = "manual:"


@dataclass(frozen=True)
class Receipt:
    """What a channel said when the release went live there."""

    remote_id: str
    url: str | None
    published_at: dt.datetime
    details: JSON = field(default_factory=dict)

    def to_json(self) -> JSON:
        return {
            "remote_id": self.remote_id,
            "url": self.url,
            "published_at": self.published_at.isoformat(),
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: JSON) -> Receipt:
        return cls(
            remote_id=data["remote_id"],
            url=data.get("url"),
            published_at=dt.datetime.fromisoformat(data["published_at"]),
            details=data.get("details", {}),
        )


@dataclass(frozen=True)
class Capabilities:
    can_update: bool = False
    can_withdraw: bool = True
    can_lookup: bool = True  # lookup() can tell whether an attempt went out
    async_publish: bool = False  # the platform confirms later (poll or event)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a payload, said so an author can fix it."""

    field: str
    message: str


# ---------------------------------------------------------------------- errors


class ChannelError(Exception):
    """Base of every error an adapter raises; `code` is the channel's own."""

    retryable: ClassVar[bool] = False
    kind: ClassVar[str] = "error"

    def __init__(self, message: str, *, code: str | int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = None if code is None else str(code)


class RetryableError(ChannelError):
    """A passing fault (busy, 5xx, timeout before sending): try again later."""

    retryable = True
    kind = "retryable"

    def __init__(
        self, message: str, *, code: str | int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RateLimited(RetryableError):
    """The channel's quota is used up; retry_after says when the window opens."""

    kind = "rate_limited"


class CredentialsExpired(ChannelError):
    """The channel rejected our credentials; an admin must re-authorise."""

    kind = "credentials_expired"


class PermanentError(ChannelError):
    """Retrying cannot help (content refused, payload invalid, API not allowed)."""

    kind = "permanent"


class ValidationFailed(PermanentError):
    """The payload breaks the channel's limits; nothing was sent."""

    kind = "invalid"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems), code="invalid")
        self.problems = problems


class InvalidConfig(PermanentError):
    """The channel's configuration breaks a rule of where it may connect or write."""

    kind = "config"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems), code="config")
        self.problems = problems


class OutcomeUnknown(ChannelError):
    """The request may have reached the channel (timeout after sending, dropped answer).

    Never retried blindly: the orchestrator reconciles through lookup() first.
    """

    kind = "outcome_unknown"


@contextmanager
def building(what: str, code: str = "bad_request") -> Iterator[None]:
    """Around building a request, before any byte of it leaves: a library that refuses what
    it is given (a header with a line break, a character its encoding cannot carry) is a
    PermanentError that says so, never a crash the orchestrator must take for an unknown
    outcome (it could not know that nothing went out). Build the whole request inside,
    then send it outside."""
    try:
        yield
    except ChannelError:
        raise
    except (ValueError, TypeError, LookupError, email.errors.MessageError) as exc:
        raise PermanentError(f"{what}无法生成，未发出任何内容：{type(exc).__name__}: {exc}",
                             code=code) from None


class FileHashMismatch(PermanentError):
    """A stored image or attachment is no longer the file that was signed off."""

    def __init__(self, filename: str) -> None:
        super().__init__(f"文件 {filename} 的内容与审核时不一致（SHA-256 不符），未发送",
                         code="file_hash_mismatch")


def approved_bytes(sha256: str, filename: str, path: str | Path) -> bytes:
    """A file's bytes, read once and checked against the signed SHA-256: every adapter
    sends these bytes and no others, so a file overwritten on disk after sign-off (or
    between the check and the send) never leaves. Read every file of a payload before
    sending any of them, so a mismatch leaves nothing half-sent.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise PermanentError(f"找不到文件 {filename}", code="file_missing") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise FileHashMismatch(filename)
    return data


def approved_files(refs: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """approved_bytes() of every `{"sha256", "filename", "path"}` in a payload, all read
    before the first is sent."""
    return [approved_bytes(r["sha256"], r["filename"], r["path"]) for r in refs]
# ------------------------------------------------------------- where a channel connects


class RemoteConfig(BaseModel):
    """Base of the config of a channel that connects somewhere (see ChannelAdapter.endpoints)."""

    sandbox: bool = Field(False, description="a local test double: http allowed, loopback only")


def is_loopback_host(host: str) -> bool:
    """Loopback by its very name, without asking a resolver."""
    name = host.strip("[]").lower().rstrip(".")
    try:
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def config_value(config: Any, key: str) -> Any:
    """A dotted key (`sftp.host`) of a config dict; None where a section is absent."""
    value = config
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def endpoint_host(value: Any) -> str | None:
    """The host an endpoint value names: a URL's host or a bare host name; None for a
    local directory (a token store) or a port number."""
    if not isinstance(value, str) or not value.strip():
        return None
    if "://" in value:
        try:
            return urlsplit(value).hostname or ""
        except ValueError:  # e.g. an unclosed [IPv6 literal: not an address at all
            return ""
    return None if "/" in value or "\\" in value else value.strip()


URL_SCHEMES = {"https", "http", "redis", "rediss"}


def endpoint_problems(config: JSON, endpoints: tuple[str, ...]) -> list[Problem]:
    """Https unless a sandbox; a sandbox only on loopback. Checked without the network."""
    sandbox, found = bool(config.get("sandbox")), []
    for key in endpoints:
        value = config_value(config, key)
        host = endpoint_host(value)
        if host is None:
            continue
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if (scheme and scheme not in URL_SCHEMES) or ("://" in value and not host):
            found.append(Problem(key, "不是有效的地址"))
        elif scheme == "http" and not sandbox:
            found.append(Problem(key, "须使用 https（只有本机沙箱渠道可用 http）"))
        elif sandbox and not is_loopback_host(host):
            found.append(Problem(key, "沙箱（sandbox）渠道只能指向本机地址（127.0.0.1、::1、localhost）"))
    return found


# --------------------------------------------------------------------- adapter


class ChannelAdapter(ABC):
    """One channel kind. A channel *instance* is an adapter with its config and credentials."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    config_model: ClassVar[type[BaseModel]]
    credentials_model: ClassVar[type[BaseModel] | None] = None
    # payload formats `tongfa preview --format` can print; the first is the default
    formats: ClassVar[tuple[str, ...]] = ("json",)
    # config keys (dotted) that say where the credentials go: each host is checked (outbound)
    endpoints: ClassVar[tuple[str, ...]] = ()
    # config keys that, beside the endpoints, decide whom the credentials are entrusted to
    # (user name, pinned host key, TLS, account id, sandbox): together the credential route,
    # and changing any key of it needs the credentials typed in again
    transport: ClassVar[tuple[str, ...]] = ()
    # config keys naming files this machine reads (a CA bundle, a token store): they must
    # lie under an allowed private root, or a channel admin could probe any file
    private_files: ClassVar[tuple[str, ...]] = ()
    # config keys naming directories this machine writes: they must lie under an allowed root
    directories: ClassVar[tuple[str, ...]] = ()
    # the posting quota ({capacity, per_seconds}) kept when the instance's config sets no
    # `rate`: what keeps one account within the platform's limits without configuration
    default_rate: ClassVar[dict[str, float] | None] = None
    # how readers are shown each payload field (and the override of the same key), for the
    # pre-publish checks: "text" as typed, "html" rendered, "xml" a document read for its
    # text. Keys: a dotted path without list indices (or a parent of it), its last key, or "*". A
    # field not named is read both as typed and as HTML (orchestrator.domain.checks).
    field_kinds: ClassVar[dict[str, str]] = {}

    def __init__(self, config: JSON, credentials: JSON | None = None) -> None:
        self.config = self.config_model.model_validate(config)
        model = self.credentials_model
        self.credentials = model.model_validate(credentials or {}) if model else None
        problems = endpoint_problems(self.config.model_dump(), self.endpoints)
        if problems:
            raise InvalidConfig(problems)
        self.sandbox = bool(getattr(self.config, "sandbox", False))
        self.outbound = SANDBOX if self.sandbox else NOTHING

    def web_hosts(self) -> tuple[str, ...]:
        """The public web hosts readers see this channel's posts on: a URL a person says a
        post went live at must be on one of them (lower-case, ASCII)."""
        return ()

    def receipt_for_url(self, url: str, published_at: dt.datetime) -> Receipt | None:
        """The receipt of this channel's own post at `url` (a person found it live), so it
        is withdrawn and watched like any other; None when the kind cannot tell its post
        from a URL. Raise ValueError, saying why, for a URL that is not one of its posts."""
        return None

    def allow_outbound(self, allowed: Allowed) -> None:
        """Non-public hosts this deployment lets the adapter reach (its allow-list setting)."""
        self.outbound = allowed + (SANDBOX if self.sandbox else NOTHING)

    @abstractmethod
    def render(self, release: ReleaseView) -> JSON:
        """Turn a release into exactly what this channel will show (JSON-able)."""

    def validate(self, payload: JSON) -> None:
        """Raise ValidationFailed when the payload breaks the channel's limits."""
        problems = self.problems(payload)
        if problems:
            raise ValidationFailed(problems)

    def problems(self, payload: JSON) -> list[Problem]:
        return []

    def stage(self, payload: JSON, key: str) -> JSON:
        """Do everything that can be done before go-live; return what publish needs."""
        return {}

    def connect(self) -> None:
        """Open what the next call will use (e.g. an HTTP connection), so the go-live call
        does not pay for it after the instant. Best effort: never raises; by default nothing."""
        return None

    @abstractmethod
    def publish(self, payload: JSON, staged: JSON, key: str) -> Receipt:
        """Make the release live. `key` is the delivery's idempotency key."""

    def confirm(self, receipt: Receipt) -> Receipt | None:
        """For async channels: the final receipt once the platform confirms, else None."""
        return receipt

    @abstractmethod
    def lookup(self, payload: JSON, key: str, staged: JSON | None = None) -> Receipt | None:
        """Find an earlier attempt that went out; None only when sure nothing did.

        `staged` is what stage() returned, when there was a stage. Raise OutcomeUnknown
        when the channel cannot tell yet (e.g. an asynchronous publish in progress).
        """

    def withdraw(self, receipt: Receipt) -> None:
        raise PermanentError(f"{self.kind} cannot withdraw", code="unsupported")

    def read_back(self, payload: JSON, receipt: Receipt) -> str | None:
        """What the channel shows now for this receipt (None: cannot be read back)."""
        return None

    def shown(self, payload: JSON) -> str:
        """What the channel should show for this payload, comparable with read_back()."""
        raise NotImplementedError

    def test_connection(self) -> str:
        """Check the endpoint and credentials; return a short human message."""
        return "ok"

    def document(self, payload: JSON, fmt: str) -> str:
        """The exact document(s) that would be sent, for `tongfa preview`."""
        import json

        return json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True)
