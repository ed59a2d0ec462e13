"""All configuration, read once from the environment (prefix TONGFA_)."""

from __future__ import annotations

import ipaddress
from functools import cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from channels.outbound import webhook_secret


class Settings(BaseSettings):
    # a refused value is never echoed: it may be a key (each message names what is wrong)
    model_config = SettingsConfigDict(
        env_prefix="TONGFA_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    var_dir: Path = Field(Path("var"), description="Where the embedded default keeps its data")
    database_url: str | None = Field(None, description="Default: SQLite (WAL) under var_dir")
    broker_url: str | None = Field(None, description="Default: kombu filesystem transport")
    secret_key: SecretStr | None = Field(
        None, description="Fernet key for channel credentials; default: var_dir/secret.key"
    )
    audit_key: SecretStr | None = Field(
        None, description="unused since the audit log is a Merkle tree (0014): checkpoints are "
        "signed with audit_signing_key; still accepted so an older env file loads")
    audit_signing_key: SecretStr | None = Field(
        None, description="the audit log's Ed25519 key (PRIVATE+KEY+name+id+base64, signed-note "
        "form) its checkpoints are signed with; default: made once in var_dir/audit-log.key")
    audit_log_name: str | None = Field(
        None, description="the audit log's name (checkpoint origin) when its key is made; "
        "default: the site's host and path + /transparency")
    audit_witness_dir: Path | None = Field(
        None, description="a directory outside the database every checkpoint is appended to "
        "(with the leaf hashes); `audit verify` checks the database against it")
    audit_witness_state: Path | None = Field(
        None, description="the built-in witness's own key and state; default var_dir/witness")
    site_base_url: str = Field("http://127.0.0.1:8000/site", description="Public URL of /site")
    site_root: Path | None = Field(None, description="Website web root; default var_dir/site")
    files_dir: Path | None = Field(None, description="Content-addressed file store")
    review_policy: str | None = Field(
        None, description='JSON list of steps, e.g. [{"role":"reviewer","signatures":1}]'
    )
    urgent_review_policy: str | None = Field(
        None, description="fast-track policy for urgent releases; default: secrecy → approver"
    )
    integrity_interval_seconds: float = Field(
        300.0, description="How often what is live is compared with what was approved"
    )
    integrity_unreadable_alert_seconds: float = Field(
        3600.0, ge=0, description="a live item that cannot be read back (server errors, no "
        "connection) at every check for this long raises an integrity alert")
    alert_webhook_url: str | None = Field(
        None, description="POSTed a JSON alert on defacement, on a delivery that needs a "
                          "decision and on a release held by a channel")
    held_alert_seconds: float = Field(
        300.0, ge=0, description="a release held by a channel (paused, credentials rejected, "
        "failing to stage) alerts after this long; an urgent one at once")
    alert_webhook_secret: SecretStr | None = Field(
        None, description="whsec_… secret the alert webhook is signed with (Standard Webhooks)"
    )
    outbound_allow: tuple[str, ...] = Field(
        (), description='non-public hosts/networks outbound calls may reach, e.g. '
                        '["10.8.0.0/16", "cms.intranet"]; default: public addresses only'
    )
    web_roots: tuple[Path, ...] = Field(
        (), description="directories a channel may write under (website web_root, newsfeed "
                        "atom directory); default: the site root"
    )
    private_roots: tuple[Path, ...] = Field(
        (), description="directories a channel config may name files in that this machine "
                        "reads (a CA bundle, a WeChat token store); default: var_dir/private"
    )
    allowed_link_domains: tuple[str, ...] = Field(
        ("gov.cn", "mp.weixin.qq.com"),
        description="links in a release may go only here (and to the site itself)",
    )
    sensitive_words_file: Path | None = Field(
        None, description="word list of the pre-publish checks: `[category] severity=block|flag` "
        "headers, one word a line, # comments (docs/checks.md); re-read when it changes; "
        "default: the list shipped with tongfa",
    )
    desk_sftp_port: int = Field(2222, description="the built-in newspaper desk's SFTP drop")
    desk_smtp_port: int = Field(2525, description="the built-in newspaper desk's mailbox")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(2, description="Celery worker processes started by `tongfa serve`")
    lease_seconds: float = Field(60.0, description="How long a claimed delivery is held")
    redrive_seconds: float = Field(
        30.0, description="The reaper re-sends the task of a delivery idle this long"
    )
    go_live_lead_seconds: float = Field(
        3.0, ge=0, le=60, description="a scheduled go-live is made ready this long before its "
        "instant (checked, claimed, connections opened), so at the instant only the calls go"
    )
    go_live_gather_seconds: float = Field(
        1.0, ge=0, le=60, description="a go-live fired by several worker processes (a wide "
        "one) goes out this long after it is cleared, so that every process is ready"
    )
    go_live_share: int = Field(
        25, ge=1, description="a go-live is split over worker processes in shares of at "
        "least this many channels (fewer go out from one process)"
    )
    log_level: str = "INFO"
    api_token_days: int = Field(
        90, ge=1, le=3650, description="How long a new API token is valid, in days"
    )
    trusted_proxies: tuple[str, ...] = Field(
        (), description='Reverse proxies (IPs or CIDRs, JSON list, e.g. ["10.0.0.2"]) whose '
        "X-Forwarded-For names the console's client; nobody else's is believed",
    )
    go_live_horizon_days: int = Field(
        90, ge=1, le=3650, description="a go-live time may be set at most this far ahead"
    )
    max_request_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="larger request bodies are refused with 413"
    )

    @field_validator("secret_key", "audit_key", "audit_signing_key")
    @classmethod
    def _not_a_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and "CHANGE_ME" in value.get_secret_value():
            raise ValueError("still the example's placeholder: set a real key")
        return value

    @field_validator("audit_signing_key")
    @classmethod
    def _a_signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        """A key that cannot sign stops the service at start, not at its first checkpoint."""
        from orchestrator.domain.note import NoteError, Signer

        if value is not None:
            try:
                Signer.parse(value.get_secret_value())
            except NoteError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("audit_log_name")
    @classmethod
    def _a_key_name(cls, value: str | None) -> str | None:
        from orchestrator.domain.note import NoteError, check_key_name

        try:
            return None if value is None else check_key_name(value)
        except NoteError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or CIDR network: {entry!r}") from None
        return value

    @field_validator("sensitive_words_file")
    @classmethod
    def _readable_word_list(cls, value: Path | None) -> Path | None:
        """A broken list stops the service at start, naming the file and the line."""
        from orchestrator.domain.wordlist import parse_word_list

        if value is not None:
            try:
                parse_word_list(value.read_text(encoding="utf-8"), str(value))
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"{value}: cannot read the word list ({exc})") from None
        return value

    @field_validator("alert_webhook_secret")
    @classmethod
    def _standard_webhooks(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            webhook_secret(value.get_secret_value())
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'tongfa.db').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def broker_dir(self) -> Path:
        return (self.var_dir / "broker").resolve()

    @property
    def resolved_site_root(self) -> Path:
        return (self.site_root or self.var_dir / "site").resolve()

    @property
    def allowed_web_roots(self) -> tuple[Path, ...]:
        return tuple(p.resolve() for p in self.web_roots) or (self.resolved_site_root,)

    @property
    def allowed_private_roots(self) -> tuple[Path, ...]:
        return (tuple(p.resolve() for p in self.private_roots)
                or ((self.var_dir / "private").resolve(),))

    @property
    def resolved_files_dir(self) -> Path:
        return (self.files_dir or self.var_dir / "files").resolve()


@cache
def get_settings() -> Settings:
    return Settings()
