"""Newspaper and broadcaster feed (通稿): IPTC NewsML-G2 and NITF 3.6 delivered to the desks.

What is sent is rendered once through templates/newsfeed/ and signed off as those exact
bytes; how it is sent is one or more deliveries, each idempotent by file name or key:
  sftp   written as `.<name>.part`, then renamed into place: a desk's poller never picks
         up half a file, and one name always carries the same bytes
  email  a Chinese plain-text note with the XML attached; its Message-ID comes from the
         delivery key, so a re-send is recognisably the same message
  atom   item files plus `newsfeed.atom` in a local web root the desks poll
A correction keeps the guid with a higher version (overrides `version`, default the item's
version the orchestrator numbers: v1, then each correction and withdrawal the next, across
corrections of corrections); a withdrawal is its own version with stat:canceled. One file
name always holds the same bytes: a drop that already holds other bytes under a name is
never overwritten (version_taken).

stage() puts nothing on a desk's server: the drop belongs to a third party and an approved
release must not sit there, even under a hidden name, before it goes live. It only checks
that every delivery can be reached and logged into, so a bad password shows before go-live.

lookup() checks SFTP and Atom byte for byte. E-mail cannot be read back from the desks'
mailboxes (can_lookup is False: the platform itself cannot be asked), so each mail is
marked in a note store every worker shares (`note_store`), by its Message-ID:
  sending  noted in one step, only if no mark exists, before DATA: one call at a time
           sends a given mail, and a mark left by a call that died says "maybe sent"
  mailed   the server accepted it (250); a later publish sends nothing
  (none)   the server refused it (4xx/5xx) or it was never sent: it may go again
  asked    a `sending` mark outlived the longest its call can take without a word:
           lookup() raises OutcomeUnknowable and a person decides; their re-send may go
lookup() answers "not sent" only without a mark. A `sending` mark is "look again" while
its call may still be running (a worker past its lease, a slow 250), then "asked": a
worker killed between the server's 250 and its note never makes a second mail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.policy
import email.utils
import errno
import fcntl
import hashlib
import io
import json
import logging
import posixpath
import re
import smtplib
import socket
import ssl
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import paramiko
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, Field, model_validator

from channels import atom, iptc
from channels.atom import xml_text
from channels.contract import (
    JSON,
    Capabilities,
    ChannelAdapter,
    ChannelError,
    CredentialsExpired,
    Limit,
    OutcomeUnknowable,
    OutcomeUnknown,
    PermanentError,
    Problem,
    Receipt,
    ReleaseView,
    RemoteConfig,
    RetryableError,
    approved_files,
    building,
    is_loopback_host,
)
from channels.templating import render
from channels.website import take_down, write_atomically
from channels.wechat_token import TokenStore, store_for
from orchestrator.domain.release import METADATA_KEYS, disclosure_problem

META_KEYS = (*METADATA_KEYS, "column")
WITHDRAWN = "本稿件已撤回，请勿采用；已采用的请撤下。"
CORRECTED = "更正稿：替换此前发出的同一稿件，请以本版为准。"
BEIJING = dt.timezone(dt.timedelta(hours=8))
SUFFIX = {"newsml": ".xml", "nitf": ".nitf.xml"}
MEDIA_TYPE = {"newsml": "application/vnd.iptc.g2.newsitem+xml", "nitf": "application/nitf+xml"}
ORDER = ("atom", "sftp", "email")  # e-mail, the one that cannot be checked, goes last
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
LINE_BREAKS = re.compile("[\r\n\x85\u2028\u2029]+")
SMTP_POLICY = email.policy.default.clone(linesep="\r\n")
DEFAULT_NOTE_STORE = Path(tempfile.gettempdir()) / "tongfa-newsfeed-notes"
# after its `sending` mark, a call sends DATA, the message and the final dot and reads the
# reply, each within timeout_seconds; the slack is for a worker starved on a loaded machine
MAIL_CALL_STEPS, MAIL_SLACK_SECONDS = 4, 10.0
log = logging.getLogger(__name__)


def _clean(value: object) -> str:
    """Text for XML: characters XML cannot carry (controls, U+FFFE…) cannot appear in it."""
    return xml_text(value or "").strip()


class SftpTarget(BaseModel):
    host: str
    port: int = 22
    username: str
    remote_dir: str = "."
    host_key: str = Field("", description='the server key as in known_hosts: "ssh-ed25519 AAAA…"')
    accept_any_host_key: bool = Field(False, description="loopback test servers only")
    timeout_seconds: float = 15.0

    @model_validator(mode="after")
    def _pinned(self) -> SftpTarget:
        if not self.host_key and not (self.accept_any_host_key and is_loopback_host(self.host)):
            raise ValueError("sftp.host_key is required (accept_any_host_key: loopback only)")
        return self


class EmailTarget(BaseModel):
    host: str
    port: int = 25
    starttls: bool = False
    use_ssl: bool = Field(False, description="implicit TLS (port 465)")
    username: str = Field("", description="empty: no AUTH")
    from_addr: str
    to_addrs: list[str] = Field(min_length=1)
    ca_file: str = Field("", description="CA bundle of a private mail server's certificate")
    timeout_seconds: float = 15.0


class AtomTarget(BaseModel):
    directory: str = Field(description="a web root the orchestrator serves")
    base_url: str = Field("", description="public URL of that directory, for absolute links")
    title: str = "新闻发布通稿"
    entries: int = 100


class NewsfeedConfig(RemoteConfig):
    delivery: list[Literal["sftp", "email", "atom"]] = Field(min_length=1)
    formats: list[Literal["newsml", "nitf"]] = Field(default_factory=lambda: ["newsml"],
                                                     min_length=1)
    provider: str = "某省人民政府新闻办公室"
    provider_domain: str = Field("press.example.gov.cn", description="the guid's namespace")
    sftp: SftpTarget | None = None
    email: EmailTarget | None = None
    atom: AtomTarget | None = None
    note_store: str = Field("", description="directory or redis:// URL every worker shares, "
                            "where sent e-mails are noted; empty: the system's temp folder")

    @model_validator(mode="after")
    def _sections(self) -> NewsfeedConfig:
        missing = [d for d in self.delivery if getattr(self, d) is None]
        if missing:
            raise ValueError(f"delivery {', '.join(missing)} needs its own section")
        return self


class NewsfeedCredentials(BaseModel):
    sftp_password: str = ""
    sftp_private_key: str = Field("", description="PEM or OpenSSH private key")
    sftp_key_passphrase: str = ""
    smtp_password: str = ""


class NewsfeedAdapter(ChannelAdapter):
    kind = "newsfeed"
    capabilities = Capabilities(can_update=True, can_withdraw=True, can_lookup=True)
    config_model = NewsfeedConfig
    credentials_model = NewsfeedCredentials
    # where passwords go; the note store (a redis:// URL) is checked as an address too
    endpoints = ("sftp.host", "sftp.port", "email.host", "email.port", "note_store")
    transport = ("sandbox", "sftp.username", "sftp.host_key", "sftp.accept_any_host_key",
                 "email.username", "email.starttls", "email.use_ssl", "email.ca_file")
    private_files = ("email.ca_file", "note_store")  # note_store: a directory, unless redis://
    directories = ("atom.directory",)
    formats = ("newsml", "nitf", "email")
    # the desks read the documents' text; the item, text and e-mail are plain text
    field_kinds = {"documents": "xml", "*": "text"}
    limits = (Limit("item.title", 200, "通稿标题"),)

    def __init__(self, config: JSON, credentials: JSON | None = None) -> None:
        super().__init__(config, credentials)
        self.targets = [d for d in ORDER if d in self.config.delivery]
        if "email" in self.targets:  # what an instance can tell depends on how it delivers
            self.capabilities = dataclasses.replace(type(self).capabilities, can_lookup=False)

    def web_hosts(self) -> tuple[str, ...]:
        """The Atom feed's public host: where a person finds the item the desks were sent."""
        base = self.config.atom.base_url if self.config.atom else ""
        host = urlsplit(base).hostname if base.startswith("https://") else None
        return (host.lower(),) if host else ()

    # ------------------------------------------------------------ render/validate

    def render(self, release: ReleaseView) -> JSON:
        """Everything comes from the release (dates included): the same release, same bytes."""
        cfg, over = self.config, release.overrides
        meta = {k: _clean(release.metadata.get(k)) for k in META_KEYS}
        meta["column"] = _clean(over.get("column")) or meta["column"]
        item_id = release.corrects_id or release.id  # a correction replaces the same item
        raw = over.get("version", release.version or (2 if release.corrects_id else 1))
        version = raw if isinstance(raw, int) and raw > 0 else 0
        title, summary = _clean(over.get("title") or release.title), _clean(release.summary)
        day = meta["date_published"]
        embargo = release.go_live_at.astimezone(BEIJING) if release.go_live_at else None
        item: JSON = {
            "guid": f"urn:newsml:{cfg.provider_domain}:tongfa-{item_id}", "version": version,
            "item_id": item_id, "title": title, "summary": summary, "meta": meta,
            "slugline": _clean(over.get("slugline") or re.split(r"[。；;！!？?]", summary)[0][:30]
                               or title[:30]),
            "url": release.corrects_url or release.url, "provider": cfg.provider,
            "provider_domain": cfg.provider_domain, "corrects": bool(release.corrects_id),
            "urgency": 2 if release.priority == "urgent" else 5,
            "version_created": f"{day}T00:00:00+08:00" if ISO_DATE.fullmatch(day) else "",
            "issue_norm": f"{day.replace('-', '')}T000000+0800",
            "embargoed": embargo.isoformat() if embargo else "",
            "embargoed_local": embargo.strftime("%Y-%m-%d %H:%M") if embargo else "",
            "release_norm": embargo.strftime("%Y%m%dT%H%M%S%z") if embargo else "",
            "pub_status": "stat:usable", "status": "embargoed" if embargo else "usable",
            "ed_note": CORRECTED if release.corrects_id else "", "files": iptc.file_names(item_id, version),
        }
        body = iptc.fragment(xml_text(release.body_html))
        text = iptc.plain_text(body)
        payload = {"item": item, "text": text, "documents": iptc.documents(item, body),
                   "email": self._email(item, text)}
        files = [f.ref() for f in (*release.images, *release.attachments)]
        if files:  # not sent to the desks, but the release must still be the signed one
            payload["files"] = files
        return payload

    def _email(self, item: JSON, text: str) -> JSON:
        prefix = {"canceled": "【撤稿】"}.get(item["status"], "【更正】" if item["corrects"] else "")
        # a header is one line: a break would end it (the input refuses them; defence in depth)
        return {"subject": LINE_BREAKS.sub(" ", prefix + item["title"]),
                "body": render("newsfeed", "email.txt", text=text, **item,
                               attachments=[item["files"][f] for f in self.config.formats])}

    def problems(self, payload: JSON) -> list[Problem]:
        item, meta = payload["item"], payload["item"]["meta"]
        found = self.limit_problems(payload)
        if not item["title"].strip():
            found.append(Problem("title", "标题不能为空"))
        if not payload["text"].strip():
            found.append(Problem("body", "正文不能为空"))
        if not item["version"]:
            found.append(Problem("overrides.version", "版本号应为正整数"))
        found += [Problem(f"metadata.{k}", "通稿必填") for k in ("issuing_body", "date_published")
                  if not meta[k].strip()]
        for k in ("date_published", "date_written"):
            if meta[k] and not ISO_DATE.fullmatch(meta[k]):
                found.append(Problem(f"metadata.{k}", "日期格式应为 2026-11-29"))
        if refusal := disclosure_problem(meta["disclosure"]):
            found.append(Problem("metadata.disclosure", refusal))
        return found

    def document(self, payload: JSON, fmt: str) -> str:
        if fmt == "email":
            return f"Subject: {payload['email']['subject']}\n\n{payload['email']['body']}"
        return str(payload["documents"][fmt])

    # ---------------------------------------------------------------- calls

    def stage(self, payload: JSON, key: str) -> JSON:
        approved_files(payload.get("files", []))
        return {"checked": self._preflight()}

    def publish(self, payload: JSON, staged: JSON, key: str) -> Receipt:
        approved_files(payload.get("files", []))  # a file changed since sign-off: send nothing
        item, message_id = payload["item"], iptc.message_id(key, self.config.provider_domain)
        live_at = self._deliver(item, payload["documents"], payload["email"], message_id)
        return Receipt(f"{item['guid']}:v{item['version']}", item["url"], live_at,
                       {"item": item, "message_id": message_id, "targets": self.targets})

    def lookup(self, payload: JSON, key: str, staged: JSON | None = None) -> Receipt | None:
        """Every file delivery holds these exact bytes, and the e-mail was noted as accepted."""
        item = payload["item"]
        files = self._files(item, payload["documents"])
        message_id = iptc.message_id(key, self.config.provider_domain)
        seen: list[dt.datetime] = []
        for target in self.targets:
            at = (self._atom_has(item, files) if target == "atom" else self._sftp_has(files)
                  if target == "sftp" else self._mailed(message_id))
            if at is None:
                return None
            seen.append(at)
        return Receipt(f"{item['guid']}:v{item['version']}", item["url"], min(seen),
                       {"item": item, "message_id": iptc.message_id(key, self.config.provider_domain),
                        "targets": self.targets})

    def withdraw(self, receipt: Receipt) -> None:
        """The latest version + 1 with stat:canceled, through the same deliveries as the item.

        The latest, not the receipt's: the original of a corrected release holds version 1
        while the correction went out as version 2, and a notice numbered from the
        original would be written over the correction's files. The feed knows the latest;
        a second withdrawal finds the notice there and writes nothing."""
        old = receipt.details.get("item")
        if not old:
            raise PermanentError("回执中没有稿件信息，无法发出撤稿", code="no_item")
        now = dt.datetime.now(BEIJING).replace(microsecond=0)
        # the orchestrator numbers the item's events; a lone adapter takes the next one
        # after the latest it finds on its own drop (a re-sent withdrawal keeps its number)
        known = self._atom_entry(old["guid"]) if "atom" in self.targets else None
        version = receipt.details.get("withdraw_version")
        if not version:
            latest = max(int(old["version"]), int(known["version"]) if known else 0)
            version = latest if known and known.get("status") == "canceled" else latest + 1
        version = int(version)
        if known and known.get("status") == "canceled" and int(known["version"]) >= version:
            return  # the notice is out already; a file name never gets other bytes
        item = {**old, "version": version, "pub_status": "stat:canceled", "status": "canceled",
                "version_created": now.isoformat(), "embargoed": "", "embargoed_local": "",
                "release_norm": "", "ed_note": WITHDRAWN, "corrects": False,
                "files": iptc.file_names(old["item_id"], version), "summary": WITHDRAWN}
        docs = iptc.documents(item, iptc.fragment(f"<p>{WITHDRAWN}</p>"))
        self._deliver(item, docs, self._email(item, WITHDRAWN),
                      iptc.message_id(f"{item['guid']}:v{version}", self.config.provider_domain),
                      in_reply_to=receipt.details.get("message_id"))

    def read_back(self, payload: JSON, receipt: Receipt) -> str | None:
        """The SHA-256 of each file as the desk's drop holds it now (e-mail cannot be read
        back): one line per drop and file, compared with shown()."""
        drops = [t for t in self.targets if t != "email"]
        if not drops:
            return None
        files = self._files(payload["item"], payload["documents"])
        lines = []
        for target in drops:
            found = (self._atom_digests(files) if target == "atom"
                     else self._sftp_digests(files))
            lines += [f"{target} {name} {found.get(name) or '(missing)'}" for name in files]
        return "\n".join(lines)

    def shown(self, payload: JSON) -> str:
        files = self._files(payload["item"], payload["documents"])
        return "\n".join(f"{target} {name} {hashlib.sha256(data).hexdigest()}"
                         for target in self.targets if target != "email"
                         for name, data in files.items())

    def test_connection(self) -> str:
        return "；".join(self._preflight())

    # -------------------------------------------------------------- deliveries

    def _files(self, item: JSON, documents: JSON) -> dict[str, bytes]:
        return {item["files"][f]: documents[f].encode("utf-8") for f in self.config.formats}

    def _deliver(self, item: JSON, documents: JSON, mail: JSON, message_id: str,
                 in_reply_to: str | None = None) -> dt.datetime:
        files, done = self._files(item, documents), []
        live_at = None
        for target in self.targets:
            try:
                if target == "atom":
                    self._atom_put(item, files)
                elif target == "sftp":
                    self._sftp_put(files)
                else:
                    self._mail(mail, files, message_id, in_reply_to)
            except ChannelError as exc:  # say what already reached a desk
                if done:
                    exc.message = f"已送达：{'、'.join(done)}；{target} 失败：{exc.message}"
                    exc.args = (exc.message,)
                raise
            done.append(target)
            live_at = live_at or dt.datetime.now(dt.UTC)
        assert live_at is not None
        return live_at

    def _preflight(self) -> list[str]:
        said = []
        for target in self.targets:
            if target == "sftp":
                transport, sftp = self._sftp_open()
                try:
                    sftp.stat(self.config.sftp.remote_dir)
                except (OSError, paramiko.SSHException, EOFError) as exc:
                    raise _sftp_error(exc, "检查投稿目录") from None
                finally:
                    transport.close()
                said.append(f"sftp: {self.config.sftp.host} 登录成功，目录可访问")
            elif target == "email":
                _close(self._smtp_open())
                said.append(f"email: {self.config.email.host} 连接及登录成功")
            else:
                self._atom_locked(lambda root: None)
                said.append(f"atom: {self.config.atom.directory} 可写")
        return said

    # ---- sftp

    def _sftp_open(self) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
        cfg, creds = self.config.sftp, self.credentials
        where = f"SFTP 服务器 {cfg.host}:{cfg.port}"
        try:
            sock = socket.create_connection((cfg.host, cfg.port), timeout=cfg.timeout_seconds)
        except OSError as exc:
            raise RetryableError(f"无法连接{where}：{exc.strerror or exc}",
                                 code="unreachable") from None
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=cfg.timeout_seconds)
            _check_host_key(cfg, transport.get_remote_server_key())
            if creds.sftp_private_key:
                transport.auth_publickey(cfg.username, _private_key(creds))
            elif creds.sftp_password:
                transport.auth_password(cfg.username, creds.sftp_password)
            else:
                raise CredentialsExpired("未配置 SFTP 密码或私钥", code="no_credentials")
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None
            sftp.get_channel().settimeout(cfg.timeout_seconds)
            return transport, sftp
        except paramiko.AuthenticationException:
            transport.close()
            raise CredentialsExpired(f"{where}拒绝了用户 {cfg.username} 的登录",
                                     code="auth") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            transport.close()
            raise RetryableError(f"{where}握手失败：{exc}", code="ssh") from None
        except ChannelError:
            transport.close()
            raise

    def _sftp_put(self, files: dict[str, bytes]) -> None:
        remote = self.config.sftp.remote_dir
        transport, sftp = self._sftp_open()
        try:
            for name, data in files.items():
                final, part = posixpath.join(remote, name), posixpath.join(remote, f".{name}.part")
                held = _sftp_read(sftp, final, name)
                if held == data:
                    continue  # a re-send: the name already holds these bytes
                if held is not None and not data.startswith(held):  # a cut-off copy is ours
                    raise _version_taken(name)
                try:
                    with sftp.open(part, "wb") as handle:
                        handle.write(data)
                    if sftp.stat(part).st_size != len(data):
                        raise OSError(f"{name} 上传不完整")
                except (OSError, paramiko.SSHException, EOFError) as exc:
                    raise _sftp_error(exc, f"上传 {name}") from None  # only a .part exists
                try:
                    _rename(sftp, part, final)
                except (OSError, paramiko.SSHException, EOFError) as exc:
                    if getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM, errno.ENOENT):
                        raise _sftp_error(exc, f"改名 {name}") from None
                    raise OutcomeUnknown(f"改名 {name} 时连接中断，文件可能已就位：{exc}",
                                         code="sftp_rename") from None
        finally:
            transport.close()

    def _sftp_has(self, files: dict[str, bytes]) -> dt.datetime | None:
        transport, sftp = self._sftp_open()
        try:
            latest = 0.0
            for name, data in files.items():
                path = posixpath.join(self.config.sftp.remote_dir, name)
                try:
                    with sftp.open(path, "rb") as handle:
                        if handle.read() != data:
                            return None
                    latest = max(latest, sftp.stat(path).st_mtime or 0)
                except FileNotFoundError:
                    return None
                except (OSError, paramiko.SSHException, EOFError) as exc:
                    raise _sftp_error(exc, f"读取 {name}") from None
            return dt.datetime.fromtimestamp(latest, dt.UTC)
        finally:
            transport.close()

    def _sftp_digests(self, files: dict[str, bytes]) -> dict[str, str]:
        transport, sftp = self._sftp_open()
        found = {}
        try:
            for name in files:
                path = posixpath.join(self.config.sftp.remote_dir, name)
                try:
                    with sftp.open(path, "rb") as handle:
                        found[name] = hashlib.sha256(handle.read()).hexdigest()
                except FileNotFoundError:
                    continue
                except (OSError, paramiko.SSHException, EOFError) as exc:
                    raise _sftp_error(exc, f"读取 {name}") from None
        finally:
            transport.close()
        return found

    # ---- e-mail

    def _smtp_open(self) -> smtplib.SMTP:
        cfg = self.config.email
        where = f"邮件服务器 {cfg.host}:{cfg.port}"
        context = ssl.create_default_context(cafile=cfg.ca_file or None)
        conn: smtplib.SMTP | None = None
        wait = cfg.timeout_seconds
        try:
            conn = (smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=wait, context=context)
                    if cfg.use_ssl else smtplib.SMTP(cfg.host, cfg.port, timeout=wait))
            conn.ehlo()
            if cfg.starttls:
                conn.starttls(context=context)
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, self.credentials.smtp_password)
            return conn
        except smtplib.SMTPAuthenticationError as exc:
            _close(conn)
            if exc.smtp_code < 500:
                raise RetryableError(f"{where}暂时无法验证登录：{exc.smtp_code}",
                                     code=exc.smtp_code) from None
            raise CredentialsExpired(f"{where}拒绝了 {cfg.username} 的登录",
                                     code=exc.smtp_code) from None
        except (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError) as exc:
            _close(conn)
            raise PermanentError(f"{where}不支持所配置的加密或认证方式：{exc}",
                                 code="smtp_config") from None
        except (smtplib.SMTPException, OSError) as exc:
            _close(conn)
            raise RetryableError(f"无法连接{where}：{exc}", code="unreachable") from None

    def _mail(self, mail: JSON, files: dict[str, bytes], message_id: str,
              in_reply_to: str | None) -> None:
        cfg = self.config.email
        msg = EmailMessage()
        try:  # the email library refuses CR/LF in a header value: never retried, never sent
            msg["Subject"], msg["From"] = mail["subject"], cfg.from_addr
            msg["To"] = ", ".join(cfg.to_addrs)
            msg["Date"] = email.utils.format_datetime(dt.datetime.now(BEIJING))
            msg["Message-ID"] = message_id
            if in_reply_to:
                msg["In-Reply-To"] = msg["References"] = in_reply_to
        except ValueError as exc:
            raise PermanentError(f"邮件标头无效：{exc}", code="bad_header") from None
        with building("邮件", code="bad_message"):  # every byte, before connecting
            msg.set_content(mail["body"], cte="base64")
            for name, data in files.items():
                maintype, subtype = (MEDIA_TYPE["nitf" if name.endswith(".nitf.xml")
                                                else "newsml"].split("/"))
                msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
            message = msg.as_bytes(policy=SMTP_POLICY)
        try:
            if self._mail_mark(message_id).get("state") == "mailed":
                return  # accepted before (a re-send after a later leg failed): nothing to send
        except OutcomeUnknown as exc:  # the store cannot say: send nothing yet
            raise RetryableError(f"{exc.message}，邮件未发出", code="notes") from None
        conn = self._smtp_open()
        try:
            code, answer = conn.mail(cfg.from_addr)
            refused = [] if code == 250 else [(code, answer)]
            for to in cfg.to_addrs:
                code, answer = conn.rcpt(to)
                if code not in (250, 251):
                    refused.append((code, answer))
            if refused:  # nothing was sent yet
                code, answer = refused[0]
                cls = RetryableError if code < 500 else PermanentError
                raise cls(f"邮件服务器拒收：{code} {answer.decode(errors='replace')}", code=code)
            if not self._mark_sending(message_id):
                return  # an earlier call's mail was accepted: nothing to send
            try:
                # data() returns the server's verdict on the message rather than raising it
                code, _ = conn.data(message)
            except smtplib.SMTPDataError as exc:  # the server said no: it did not take it
                code = exc.smtp_code
            except (smtplib.SMTPException, OSError) as exc:
                conn.close()  # no QUIT: the server is not answering
                # the mark stays `sending`: lookup() must not take this for "not sent"
                raise OutcomeUnknown(f"邮件已发出但未收到服务器确认：{exc}", code="smtp_data") from None
            if code != 250:  # the server said no: it did not take it, and it may go again
                self._unmark(message_id)
                cls = RetryableError if code < 500 else PermanentError
                raise cls(f"邮件服务器拒收正文：{code}", code=code)
            self._note_mailed(message_id)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise RetryableError(f"邮件服务器断开连接：{exc}", code="smtp_dropped") from None
        finally:
            _close(conn)

    @property
    def notes(self) -> TokenStore:
        """The mail marks: the configured shared store, else this installation's own folder
        (a folder shared by two installations would take one's mail for the other's)."""
        if not hasattr(self, "_notes"):
            own = getattr(self, "state_dir", None)
            default = own / "newsfeed-notes" if own is not None else DEFAULT_NOTE_STORE
            self._notes = store_for(self.config.note_store or str(default))
        return self._notes

    def _mail_mark(self, message_id: str) -> JSON:
        """The mail's mark ({} when none); the store cannot say: nor can we."""
        try:
            raw = self.notes.recall(f"mailed:{message_id}")
        except Exception as exc:  # noqa: BLE001 (any store error)
            raise OutcomeUnknown(f"无法读取邮件发送记录：{type(exc).__name__}",
                                 code="notes") from None
        if raw is None:
            return {}
        try:
            mark = json.loads(raw)
        except ValueError:
            return {}
        # a bare time: a note from before marks, written when the server had said 250
        return mark if isinstance(mark, dict) else {"state": "mailed", "at": float(mark)}

    def _mark_sending(self, message_id: str) -> bool:
        """Mark the mail `sending` before DATA; False when it was accepted already.

        Raises OutcomeUnknown when another call's `sending` mark stands (it may be sending
        now, or have sent it and died), RetryableError when the mark cannot be written:
        a mail that cannot be marked is not sent."""
        name, mark = f"mailed:{message_id}", json.dumps({"state": "sending", "at": time.time()})
        try:
            if self.notes.remember_first(name, mark):
                return True
            held = self._mail_mark(message_id)
            if held.get("state") == "mailed":
                return False
            if held.get("state") == "asked":  # a person was asked and re-sent it
                self.notes.remember(name, mark)
                return True
        except OutcomeUnknown:
            raise
        except Exception as exc:  # noqa: BLE001 (any store error: nothing was sent)
            raise RetryableError(f"无法记录邮件发送，邮件未发出：{type(exc).__name__}",
                                 code="notes") from None
        raise OutcomeUnknown("同一封邮件已有一次发送未留下结果（可能正在发送或已发出），未再发送",
                             code="mail_sending")

    def _unmark(self, message_id: str) -> None:
        try:
            self.notes.forget(f"mailed:{message_id}")
        except Exception as exc:  # noqa: BLE001 (the mark stays `sending`: a person decides)
            log.warning("newsfeed: mail %s was refused but its mark could not be cleared: %s",
                        message_id, type(exc).__name__)

    def _note_mailed(self, message_id: str) -> None:
        try:  # the mail is out: failing to note it must not make it fail (and go again)
            self.notes.remember(f"mailed:{message_id}",
                                json.dumps({"state": "mailed", "at": time.time()}))
        except Exception as exc:  # noqa: BLE001 (the mark stays `sending`: never re-sent)
            log.warning("newsfeed: mail %s went out but could not be noted: %s", message_id,
                        type(exc).__name__)

    def _mail_settles(self) -> float:
        """How long a call that marked a mail `sending` can still be running."""
        return MAIL_CALL_STEPS * self.config.email.timeout_seconds + MAIL_SLACK_SECONDS

    def _mailed(self, message_id: str) -> dt.datetime | None:
        mark = self._mail_mark(message_id)
        state, at = mark.get("state"), float(mark.get("at") or 0)
        if not state:
            return None  # never sent, or refused
        if state == "mailed":
            return dt.datetime.fromtimestamp(at, dt.UTC)
        if state == "sending" and time.time() - at < self._mail_settles():
            raise OutcomeUnknown("邮件正在发送或刚发出，尚无结果：稍后再查", code="mail_sending")
        if state == "sending":  # its call ended without a word: a person decides
            try:
                self.notes.remember(f"mailed:{message_id}",
                                    json.dumps({"state": "asked", "at": at}))
            except Exception as exc:  # noqa: BLE001 (asked again at the next look)
                raise OutcomeUnknown(f"无法写入邮件发送记录：{type(exc).__name__}",
                                     code="notes") from None
        raise OutcomeUnknowable("邮件发送中断，无法确认对方邮件服务器是否已收下（邮件无法回查）："
                                "请到对方邮箱或邮件服务器日志核实后决定", code="mail_unconfirmed")

    # ---- atom

    def _atom_locked(self, work: Any) -> Any:
        root = Path(self.config.atom.directory)
        try:
            root.mkdir(parents=True, exist_ok=True)
            with open(root / ".lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                return work(root)
        except OSError as exc:
            cls = PermanentError if exc.errno in (errno.EACCES, errno.EROFS) else RetryableError
            raise cls(f"写入通稿订阅目录失败：{exc.strerror or exc}", code=f"io:{exc.errno}") from None

    def _atom_put(self, item: JSON, files: dict[str, bytes]) -> None:
        cfg = self.config.atom

        def work(root: Path) -> None:
            for name, data in files.items():
                held = (root / name).read_bytes() if (root / name).is_file() else None
                if held == data:
                    continue
                if held is not None and not data.startswith(held):  # a cut-off copy is ours
                    raise _version_taken(name)
                write_atomically(root / name, data)
            if item["status"] == "canceled":  # every earlier version answers 410 from now
                take_down(root, [name for v in range(1, item["version"])
                                 for name in iptc.file_names(item["item_id"], v).values()])
            manifest = _read_json(root / "newsfeed.json")
            known = manifest.get(item["guid"])
            if known and known["version"] >= item["version"]:
                return  # a re-send, or a late retry of an older version: the entry stands
            manifest[item["guid"]] = {
                "guid": item["guid"], "version": item["version"], "title": item["title"],
                "summary": item["summary"], "url": item["url"], "status": item["status"],
                "issuing_body": item["meta"]["issuing_body"],
                "subject": item["meta"]["subject_category"],
                "updated": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                "files": [{"name": n, "length": len(d),
                           "type": MEDIA_TYPE["nitf" if n.endswith(".nitf.xml") else "newsml"]}
                          for n, d in files.items()]}
            entries = sorted(manifest.values(), key=lambda e: e["updated"], reverse=True)
            write_atomically(root / "newsfeed.atom", self._feed(entries[:cfg.entries]))
            write_atomically(root / "newsfeed.json",  # the commit point lookup() reads
                             json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))

        self._atom_locked(work)

    def _feed(self, entries: list[JSON]) -> bytes:
        cfg, provider = self.config.atom, self.config.provider
        base = cfg.base_url.rstrip("/")
        prefix = f"{base}/" if base else ""
        return atom.feed(
            feed_id=f"urn:newsml:{self.config.provider_domain}:tongfa-feed", title=cfg.title,
            updated=entries[0]["updated"], author=provider, generator="tongfa",
            links=[{"rel": "self", "type": "application/atom+xml",
                    "href": f"{base}/newsfeed.atom"}] if base else [],
            entries=[{"id": e["guid"], "title": e["title"], "updated": e["updated"],
                      "author": e["issuing_body"] or provider, "categories": [e["subject"]],
                      "links": [{"rel": "alternate", "type": "text/html", "href": e["url"]},
                                *({"rel": "enclosure", "type": f["type"], "length": f["length"],
                                   "href": prefix + f["name"]} for f in e["files"])],
                      "summary": e["summary"]} for e in entries])

    def _atom_entry(self, guid: str) -> JSON | None:
        return _read_json(Path(self.config.atom.directory) / "newsfeed.json").get(guid)

    def _atom_digests(self, files: dict[str, bytes]) -> dict[str, str]:
        root = Path(self.config.atom.directory)
        return {name: hashlib.sha256((root / name).read_bytes()).hexdigest()
                for name in files if (root / name).is_file()}

    def _atom_has(self, item: JSON, files: dict[str, bytes]) -> dt.datetime | None:
        root = Path(self.config.atom.directory)
        entry = _read_json(root / "newsfeed.json").get(item["guid"])
        if not entry or entry["version"] < item["version"]:
            return None
        for name, data in files.items():
            path = root / name
            if not path.is_file() or path.read_bytes() != data:
                return None
        return dt.datetime.fromisoformat(entry["updated"])


# ------------------------------------------------------------------ plumbing


def _version_taken(name: str) -> PermanentError:
    return PermanentError(f"{name} 已有另一内容：同一文件名只能对应同一内容，请换用新版本号",
                          code="version_taken")


def _sftp_read(sftp: paramiko.SFTPClient, path: str, name: str) -> bytes | None:
    try:
        with sftp.open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise _sftp_error(exc, f"读取 {name}") from None


def _check_host_key(cfg: SftpTarget, key: paramiko.PKey) -> None:
    if not cfg.host_key and cfg.accept_any_host_key and is_loopback_host(cfg.host):
        return
    words = cfg.host_key.split()
    at = next((i for i, w in enumerate(words) if w == key.get_name()), None)
    if at is None or at + 1 >= len(words) or words[at + 1] != key.get_base64():
        raise PermanentError(f"SFTP 服务器 {cfg.host} 的主机密钥与配置不符，已停止发送"
                             "（请管理员核对）", code="host_key")


def _private_key(creds: NewsfeedCredentials) -> paramiko.PKey:
    """Any PEM or OpenSSH key, re-encoded as the OpenSSH form paramiko reads."""
    data, secret = creds.sftp_private_key.encode(), creds.sftp_key_passphrase.encode() or None
    try:
        load = (serialization.load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data
                else serialization.load_pem_private_key)
        key = load(data, secret)
        text = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                 serialization.NoEncryption()).decode()
    except (ValueError, TypeError, AttributeError):
        raise CredentialsExpired("SFTP 私钥无法读取（格式或口令不对）", code="bad_key") from None
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except paramiko.SSHException:
            continue
    raise CredentialsExpired("SFTP 私钥类型不受支持（请用 Ed25519、ECDSA 或 RSA）", code="bad_key")


def _rename(sftp: paramiko.SFTPClient, part: str, final: str) -> None:
    """posix-rename replaces an existing file in one step; plain SFTP rename cannot."""
    try:
        sftp.posix_rename(part, final)
    except OSError as exc:
        if exc.errno is not None or "unsupported" not in str(exc).lower():
            raise
        try:
            sftp.remove(final)
        except FileNotFoundError:
            pass
        sftp.rename(part, final)


def _sftp_error(exc: BaseException, doing: str) -> ChannelError:
    """A missing directory or permission needs an admin; a dropped connection passes."""
    if getattr(exc, "errno", None) in (errno.ENOENT, errno.EACCES, errno.EPERM):
        return PermanentError(f"{doing}失败：{exc}（请检查投稿目录和权限）",
                              code=f"sftp:{getattr(exc, 'errno', None)}")
    return RetryableError(f"{doing}失败：{exc}", code="sftp")


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
