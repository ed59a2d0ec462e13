"""The newspaper feed against real servers on loopback: an SSH server with SFTP (asyncssh),
an SMTP server (aiosmtpd), a directory for the Atom feed; the IPTC's own schemas."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncssh
import feedparser
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from lxml import etree
from pydantic import ValidationError

from channels.contract import (
    CredentialsExpired,
    OutcomeUnknown,
    PermanentError,
    ReleaseView,
    RetryableError,
    ValidationFailed,
)
from channels.newsfeed import NewsfeedAdapter
from tests import services

SCHEMAS = Path(__file__).resolve().parents[3] / "shared/schemas/iptc"
G2 = "{http://iptc.org/std/nar/2006-10-01/}"
NITF = "{http://iptc.org/std/NITF/2006-10-18/}"
XHTML = "{http://www.w3.org/1999/xhtml}"
TITLE = "关于印发《某省促进民营经济发展若干措施》的通知"
from channels.sandbox.desk import PASSWORD, USER, LoopThread, SftpServer, SmtpServer  # noqa: E402,F401


def release(release_id: int = 8, **changes: Any) -> ReleaseView:
    metadata = {"index_number": f"11440000/2026-{release_id:05d}", "issuing_body": "省人民政府办公厅",
                "document_number": "粤府办〔2026〕8号", "date_written": "2026-11-20",
                "date_published": "2026-11-29", "subject_category": "综合政务",
                "disclosure": "主动公开", "validity": "有效", "column": "政策文件"}
    metadata.update(changes.pop("metadata", {}))
    fields: dict[str, Any] = dict(
        id=release_id, title=TITLE,
        body_html="<p>各市人民政府，省政府各部门：</p><h2>一、总体要求</h2>"
                  "<p>现将《若干措施》印发给你们，请<strong>认真贯彻执行</strong>。</p>"
                  "<ul><li>降低准入门槛；</li><li>加大金融支持。</li></ul>",
        summary="支持民营经济发展的二十条措施。", metadata=metadata, priority="normal",
        url=f"http://127.0.0.1:8000/site/articles/{release_id}.html")
    fields.update(changes)
    return ReleaseView(**fields)


# ------------------------------------------------------------------ the schemas


MISSING = f"IPTC schemas not found at {SCHEMAS} (shared/ must sit beside the repo)"


@pytest.fixture(scope="module")
def schemas_if_present() -> dict[str, etree.XMLSchema] | None:
    """The official schemas; None where shared/ is missing, which CI does not allow."""
    if not (SCHEMAS / "nitf-3-6.xsd").is_file():
        if services.IN_CI:
            services.missing(MISSING)
        return None

    def load(name: str) -> etree.XMLSchema:
        return etree.XMLSchema(etree.parse(str(SCHEMAS / name)))

    return {"newsml": load("NewsML-G2_2.35-spec-All-Power.xsd"), "nitf": load("nitf-3-6.xsd")}


@pytest.fixture(scope="module")
def schemas(schemas_if_present: dict[str, etree.XMLSchema] | None) -> dict[str, etree.XMLSchema]:
    """For the tests that are about the formats: skipped locally without the schemas."""
    if schemas_if_present is None:
        services.missing(MISSING)
    return schemas_if_present


def valid(schemas: dict[str, etree.XMLSchema] | None, fmt: str,
          text: str | bytes) -> etree._Element:
    """Parsed, and valid against the official schema wherever it is present."""
    doc = etree.fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    if schemas is not None:
        schemas[fmt].assertValid(doc)
    return doc


# ------------------------------------------------------------------ loopback servers


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "desk.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, str(cert_path)


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[SftpServer]:
    root = tmp_path / "desk"
    (root / "incoming").mkdir(parents=True)
    with SftpServer(root) as server:
        yield server


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A bound socket that never listens: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def sftp_config(server: SftpServer, **changes: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": server.port, "username": USER,
            "remote_dir": "incoming", "host_key": server.host_key_line, **changes}


def email_config(port: int, **changes: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "from_addr": "press@example.gov.cn",
            "to_addrs": ["desk@paper.example.cn", "news@tv.example.cn"], **changes}


def sftp_adapter(server: SftpServer, credentials: dict[str, str] | None = None,
                 **changes: Any) -> NewsfeedAdapter:
    return NewsfeedAdapter({"delivery": ["sftp"], "sftp": sftp_config(server, **changes)},
                           credentials or {"sftp_password": PASSWORD})


def offline() -> NewsfeedAdapter:
    """Rendering needs no server at all."""
    return NewsfeedAdapter({"delivery": ["atom"], "atom": {"directory": "/nonexistent"}})


def go_live(adapter: NewsfeedAdapter, view: ReleaseView, key: str = "tongfa-8-r1-paper"):
    payload = adapter.render(view)
    adapter.validate(payload)
    return payload, adapter.publish(payload, adapter.stage(payload, key), key)


# ------------------------------------------------------------------ formats


def test_newsml_g2_validates_and_carries_the_item_identity(schemas):
    when = dt.datetime(2026, 11, 29, 1, 30, tzinfo=dt.UTC)
    payload = offline().render(release(go_live_at=when))
    item = valid(schemas, "newsml", payload["documents"]["newsml"])
    assert item.tag == f"{G2}newsItem" and item.get("version") == "1"
    assert item.get("guid") == "urn:newsml:press.example.gov.cn:tongfa-8"
    assert item.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
    meta = item.find(f"{G2}itemMeta")
    assert meta.find(f"{G2}itemClass").get("qcode") == "ninat:text"
    assert meta.find(f"{G2}pubStatus").get("qcode") == "stat:usable"
    assert meta.find(f"{G2}versionCreated").text == "2026-11-29T00:00:00+08:00"
    assert meta.find(f"{G2}embargoed").text == "2026-11-29T09:30:00+08:00"
    content = item.find(f"{G2}contentMeta")
    assert content.find(f"{G2}headline").text == TITLE
    assert content.find(f"{G2}description").text == "支持民营经济发展的二十条措施。"
    assert content.find(f"{G2}creator/{G2}name").text == "省人民政府办公厅"
    assert content.find(f"{G2}subject/{G2}name").text == "综合政务"
    assert "粤府办〔2026〕8号" in [a.text for a in content.findall(f"{G2}altId")]
    body = item.find(f"{G2}contentSet/{G2}inlineXML/{XHTML}html/{XHTML}body")
    assert [e.tag for e in body] == [f"{XHTML}{t}" for t in ("p", "h2", "p", "ul")]
    assert body[2].find(f"{XHTML}strong").text == "认真贯彻执行"


def test_nitf_validates_with_headline_docdata_and_paragraphs(schemas):
    payload = offline().render(release())
    nitf = valid(schemas, "nitf", payload["documents"]["nitf"])
    assert nitf.find(f"{NITF}head/{NITF}title").text == TITLE
    docdata = nitf.find(f"{NITF}head/{NITF}docdata")
    assert docdata.get("management-status") == "usable"
    assert docdata.find(f"{NITF}doc-id").get("id-string") == payload["item"]["guid"]
    assert docdata.find(f"{NITF}date.issue").get("norm") == "20261129T000000+0800"
    assert nitf.find(f"{NITF}body/{NITF}body.head/{NITF}hedline/{NITF}hl1").text == TITLE
    blocks = nitf.find(f"{NITF}body/{NITF}body.content")
    assert [e.tag for e in blocks] == [f"{NITF}{t}" for t in ("p", "hl2", "p", "ul")]
    assert blocks[2].find(f"{NITF}em").text == "认真贯彻执行"


def test_any_sanitised_body_becomes_schema_valid_markup(schemas):
    body = ("导语没有段落<b>加粗</b><p>见<a href=\"https://www.gd.gov.cn/x?a=1&amp;b=2\">链接</a>"
            "<img src=\"https://www.gd.gov.cn/i.png\"><br>下一行</p><h3>小标题</h3><h4>更小</h4>"
            "<blockquote>引文<p>引文段落</p></blockquote><ol><li><em>一</em></li><li>二</li></ol>"
            "<table><thead><tr><th>项目</th></tr></thead><tbody><tr><td colspan=\"2\">数值</td></tr>"
            "</tbody></table><hr>结尾<span>文字</span><u>下划线</u><i>斜</i>")
    payload = offline().render(release(body_html=body))
    valid(schemas, "newsml", payload["documents"]["newsml"])
    nitf = valid(schemas, "nitf", payload["documents"]["nitf"])
    content = nitf.find(f"{NITF}body/{NITF}body.content")
    assert content[0].tag == f"{NITF}p" and content[0].text == "导语没有段落"
    assert content.find(f"{NITF}bq/{NITF}block/{NITF}p") is not None
    assert "结尾文字下划线斜" in "".join(content[-1].itertext())
    assert "导语没有段落加粗" in payload["text"] and "1. 一" in payload["text"]


def test_render_is_deterministic_and_the_date_comes_from_the_release():
    adapter = offline()
    one, two = adapter.render(release()), adapter.render(release())
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    later = adapter.render(release(metadata={"date_published": "2026-12-01"}))
    assert "2026-12-01T00:00:00+08:00" in later["documents"]["newsml"]


def test_a_correction_keeps_the_guid_with_a_higher_version(schemas):
    adapter = offline()
    first = adapter.render(release())
    fixed = adapter.render(release(release_id=9, corrects_id=8,
                                   corrects_url="http://127.0.0.1:8000/site/articles/8.html"))
    third = adapter.render(release(release_id=10, corrects_id=8, overrides={"version": 3}))
    for payload, version in ((fixed, "2"), (third, "3")):
        item = valid(schemas, "newsml", payload["documents"]["newsml"])
        assert item.get("guid") == first["item"]["guid"] and item.get("version") == version
        assert item.find(f"{G2}itemMeta/{G2}edNote") is not None
        nitf = valid(schemas, "nitf", payload["documents"]["nitf"])
        assert nitf.find(f".//{NITF}correction") is not None
        assert nitf.find(f".//{NITF}du-key").get("version") == version
    assert fixed["item"]["files"]["newsml"] == "tongfa-8-v2.xml"
    assert fixed["email"]["subject"] == f"【更正】{TITLE}"


@pytest.mark.parametrize(("changes", "field"), [
    ({"metadata": {"disclosure": "依申请公开"}}, "metadata.disclosure"),
    ({"metadata": {"date_published": "2026年11月29日"}}, "metadata.date_published"),
    ({"metadata": {"issuing_body": ""}}, "metadata.issuing_body"),
    ({"title": ""}, "title"), ({"body_html": "<p> </p>"}, "body"),
    ({"overrides": {"version": "two"}}, "overrides.version"),
])
def test_validate_names_what_the_desk_cannot_take(changes, field):
    adapter = offline()
    with pytest.raises(ValidationFailed) as err:
        adapter.validate(adapter.render(release(**changes)))
    assert field in [p.field for p in err.value.problems]


def test_control_characters_in_the_input_never_break_the_xml(schemas):
    payload = offline().render(release(title="标题\x0b含控制符", summary="摘要\x01",
                                       body_html="<p>正文\x08内容</p>"))
    item = valid(schemas, "newsml", payload["documents"]["newsml"])
    assert item.find(f"{G2}contentMeta/{G2}headline").text == "标题含控制符"
    valid(schemas, "nitf", payload["documents"]["nitf"])


def test_preview_shows_each_format_exactly():
    adapter = offline()
    payload = adapter.render(release())
    assert adapter.document(payload, "newsml") == payload["documents"]["newsml"]
    assert adapter.document(payload, "nitf") == payload["documents"]["nitf"]
    assert adapter.document(payload, "email").startswith(f"Subject: {TITLE}\n")


@pytest.mark.parametrize("config", [
    {"delivery": ["sftp"]},
    {"delivery": ["sftp"],
     "sftp": {"host": "10.1.2.3", "username": "u", "accept_any_host_key": True}},
    {"delivery": []},
])
def test_config_refuses_what_cannot_work(config):
    with pytest.raises(ValidationError):
        NewsfeedAdapter(config)


# ------------------------------------------------------------------ sftp


def test_sftp_drop_arrives_whole_with_chinese_bytes_and_no_part_file(schemas_if_present,
                                                                    sftp_server):
    adapter = NewsfeedAdapter({"delivery": ["sftp"], "formats": ["newsml", "nitf"],
                               "sftp": sftp_config(sftp_server)}, {"sftp_password": PASSWORD})
    payload = adapter.render(release())
    assert adapter.lookup(payload, "k1") is None
    staged = adapter.stage(payload, "k1")
    assert list((sftp_server.root / "incoming").iterdir()) == []  # nothing remote before go-live
    receipt = adapter.publish(payload, staged, "k1")
    drop = sftp_server.root / "incoming"
    assert sorted(p.name for p in drop.iterdir()) == ["tongfa-8-v1.nitf.xml", "tongfa-8-v1.xml"]
    data = (drop / "tongfa-8-v1.xml").read_bytes()
    assert data == payload["documents"]["newsml"].encode("utf-8") and TITLE.encode() in data
    valid(schemas_if_present, "newsml", data)
    valid(schemas_if_present, "nitf", (drop / "tongfa-8-v1.nitf.xml").read_bytes())
    assert receipt.remote_id == "urn:newsml:press.example.gov.cn:tongfa-8:v1"
    assert receipt.url == "http://127.0.0.1:8000/site/articles/8.html"
    assert receipt.published_at.tzinfo == dt.UTC
    found = adapter.lookup(payload, "k1")
    assert found is not None and found.remote_id == receipt.remote_id
    (drop / "tongfa-8-v1.xml").write_bytes(data[:-10])  # a truncated file is not "delivered"
    assert adapter.lookup(payload, "k1") is None
    adapter.publish(payload, staged, "k1")  # a re-send replaces it with the same bytes
    assert (drop / "tongfa-8-v1.xml").read_bytes() == data
    assert not [p for p in drop.iterdir() if p.name.endswith(".part")]


def test_sftp_logs_in_with_a_private_key(tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    (tmp_path / "desk").mkdir()
    with SftpServer(tmp_path / "desk", client_key=public) as server:
        adapter = sftp_adapter(server, {"sftp_private_key": pem}, remote_dir=".")
        go_live(adapter, release())
        assert set(server.logins) == {"publickey"}
    assert (tmp_path / "desk" / "tongfa-8-v1.xml").is_file()


def test_sftp_refuses_a_server_whose_host_key_is_not_the_pinned_one(sftp_server):
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()
    adapter = sftp_adapter(sftp_server, host_key=other)
    payload = adapter.render(release())
    with pytest.raises(PermanentError) as err:
        adapter.publish(payload, {}, "k1")
    assert err.value.code == "host_key" and sftp_server.logins == []  # no password was sent


def test_sftp_wrong_password_is_expired_credentials(sftp_server):
    adapter = sftp_adapter(sftp_server, {"sftp_password": "wrong"})
    with pytest.raises(CredentialsExpired):
        adapter.stage(adapter.render(release()), "k1")  # found before go-live


def test_sftp_missing_directory_needs_an_admin(sftp_server):
    adapter = sftp_adapter(sftp_server, remote_dir="nope")
    with pytest.raises(PermanentError):
        adapter.publish(adapter.render(release()), {}, "k1")


def test_connection_refused_is_retryable(refused_port):
    adapter = NewsfeedAdapter({"delivery": ["sftp", "email"],
                               "sftp": {"host": "127.0.0.1", "port": refused_port, "username": USER,
                                        "accept_any_host_key": True},
                               "email": email_config(refused_port)}, {"sftp_password": PASSWORD})
    payload = adapter.render(release())
    with pytest.raises(RetryableError):
        adapter.publish(payload, {}, "k1")
    mail_only = NewsfeedAdapter({"delivery": ["email"], "email": email_config(refused_port)})
    with pytest.raises(RetryableError):
        mail_only.publish(payload, {}, "k1")


# ------------------------------------------------------------------ e-mail


def test_email_subject_decodes_to_the_chinese_title_and_attachments_are_the_xml():
    with SmtpServer() as server:
        adapter = NewsfeedAdapter({"delivery": ["email"], "formats": ["newsml", "nitf"],
                                   "email": email_config(server.port)})
        payload, receipt = go_live(adapter, release(), key="tongfa-8-r1-paper")
    [raw] = server.messages
    assert TITLE.encode() not in raw.split(b"\r\n\r\n", 1)[0]  # headers are MIME-encoded
    [msg] = server.parsed()
    assert msg["subject"] == TITLE
    assert msg["message-id"] == "<tongfa-8-r1-paper@press.example.gov.cn>"
    assert msg["to"] == "desk@paper.example.cn, news@tv.example.cn"
    text = msg.get_body(("plain",)).get_content()
    assert TITLE in text and "粤府办〔2026〕8号" in text and "认真贯彻执行" in text
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert files == {"tongfa-8-v1.xml": payload["documents"]["newsml"].encode("utf-8"),
                     "tongfa-8-v1.nitf.xml": payload["documents"]["nitf"].encode("utf-8")}
    assert receipt.details["message_id"] == msg["message-id"]
    # e-mail cannot be read back: say so, and let the same Message-ID dedupe a re-send
    assert adapter.capabilities.can_lookup is False and adapter.lookup(payload, "k") is None
    assert NewsfeedAdapter.capabilities.can_lookup is True


def test_email_over_starttls_with_auth(tmp_path):
    context, ca_file = self_signed(tmp_path)
    with SmtpServer(tls=context, password="smtp-secret") as server:
        config = {"delivery": ["email"], "email": email_config(
            server.port, starttls=True, username=USER, ca_file=ca_file)}
        with pytest.raises(CredentialsExpired):
            NewsfeedAdapter(config, {"smtp_password": "wrong"}).stage({}, "k")
        go_live(NewsfeedAdapter(config, {"smtp_password": "smtp-secret"}), release())
        plain = NewsfeedAdapter({"delivery": ["email"], "email": email_config(server.port)})
        with pytest.raises(PermanentError):  # the server insists on TLS + AUTH
            plain.publish(plain.render(release()), {}, "k")
    assert [m["subject"] for m in server.parsed()] == [TITLE]


def test_no_answer_after_the_message_was_sent_is_outcome_unknown():
    with SmtpServer(answer_delay=1.5) as server:
        adapter = NewsfeedAdapter({"delivery": ["email"],
                                   "email": email_config(server.port, timeout_seconds=0.5)})
        with pytest.raises(OutcomeUnknown):
            adapter.publish(adapter.render(release()), {}, "k1")


# ------------------------------------------------------------------ atom, withdrawal


def test_atom_feed_lists_the_item_and_a_correction_replaces_its_entry(tmp_path):
    root = tmp_path / "feed"
    adapter = NewsfeedAdapter({"delivery": ["atom"], "formats": ["newsml", "nitf"], "atom": {
        "directory": str(root), "base_url": "http://127.0.0.1:8000/feed"}})
    payload, receipt = go_live(adapter, release())
    assert (root / "tongfa-8-v1.xml").read_bytes() == payload["documents"]["newsml"].encode()
    feed = feedparser.parse((root / "newsfeed.atom").read_bytes())
    assert not feed.bozo and [e.title for e in feed.entries] == [TITLE]
    entry = feed.entries[0]
    assert entry.id == payload["item"]["guid"] and entry.link == payload["item"]["url"]
    assert {e.href for e in entry.enclosures} == {"http://127.0.0.1:8000/feed/tongfa-8-v1.xml",
                                                  "http://127.0.0.1:8000/feed/tongfa-8-v1.nitf.xml"}
    assert adapter.lookup(payload, "k").remote_id == receipt.remote_id
    correction = release(release_id=9, corrects_id=8, title=TITLE + "（更正）")
    go_live(adapter, correction, key="tongfa-9-r1-paper")
    feed = feedparser.parse((root / "newsfeed.atom").read_bytes())
    assert [e.title for e in feed.entries] == [TITLE + "（更正）"]
    links = {e.href for e in feed.entries[0].enclosures}
    assert "http://127.0.0.1:8000/feed/tongfa-8-v2.xml" in links
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]


def test_atom_feed_stays_well_formed_whatever_the_title_holds(tmp_path):
    """Built with lxml: markup is text, XML-illegal characters are dropped, never emitted."""
    root = tmp_path / "feed"
    adapter = NewsfeedAdapter({"delivery": ["atom"], "atom": {
        "directory": str(root), "base_url": "http://127.0.0.1:8000/feed", "title": "通稿]]>&\x0b"}})
    hostile = "通知]]><script>alert(1)</script> & \u202e反转\u202c\x0b结尾\ufffe"
    go_live(adapter, release(title=hostile, summary=hostile,
                             metadata={"subject_category": "综合\ufffe<政务>"}))
    feed = feedparser.parse((root / "newsfeed.atom").read_bytes())
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.feed.title == "通稿]]>&"
    [entry] = feed.entries
    shown = "通知]]><script>alert(1)</script> & \u202e反转\u202c结尾"
    assert entry.title == shown and entry.summary == shown
    assert [t.term for t in entry.tags] == ["综合<政务>"]
    etree.fromstring((root / "newsfeed.atom").read_bytes())  # a strict parser agrees


def test_withdrawal_sends_a_canceled_version_everywhere(tmp_path, schemas_if_present, sftp_server):
    with SmtpServer() as smtp:
        adapter = NewsfeedAdapter({
            "delivery": ["sftp", "email", "atom"], "formats": ["newsml", "nitf"],
            "sftp": sftp_config(sftp_server), "email": email_config(smtp.port),
            "atom": {"directory": str(tmp_path / "feed")}}, {"sftp_password": PASSWORD})
        payload, receipt = go_live(adapter, release())
        adapter.withdraw(receipt)
    drop = sftp_server.root / "incoming"
    canceled = valid(schemas_if_present, "newsml", (drop / "tongfa-8-v2.xml").read_bytes())
    assert canceled.get("guid") == payload["item"]["guid"] and canceled.get("version") == "2"
    assert canceled.find(f"{G2}itemMeta/{G2}pubStatus").get("qcode") == "stat:canceled"
    nitf = valid(schemas_if_present, "nitf", (drop / "tongfa-8-v2.nitf.xml").read_bytes())
    assert nitf.find(f"{NITF}head/{NITF}docdata").get("management-status") == "canceled"
    first, notice = smtp.parsed()
    assert notice["subject"] == f"【撤稿】{TITLE}" and notice["in-reply-to"] == first["message-id"]
    assert "撤回" in notice.get_body(("plain",)).get_content()
    feed = feedparser.parse((tmp_path / "feed" / "newsfeed.atom").read_bytes())
    assert "tongfa-8-v2.xml" in {e.href for e in feed.entries[0].enclosures}



def test_withdrawing_a_corrected_release_takes_down_every_version(tmp_path):
    """The feed lies under the served site: after a withdrawal the original and the
    corrected versions answer 410 Gone, and the notice is a new version of its own —
    never written over the correction's file."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from orchestrator.api.app import PublicFiles

    site = tmp_path / "site"
    root = site / "feed"
    adapter = NewsfeedAdapter({"delivery": ["atom"], "formats": ["newsml", "nitf"], "atom": {
        "directory": str(root), "base_url": "http://127.0.0.1:8000/site/feed"}})
    _, original = go_live(adapter, release())
    corrected_payload, corrected = go_live(
        adapter, release(release_id=9, corrects_id=8, title=TITLE + "（更正）"),
        key="tongfa-9-r1-paper")
    v2 = (root / "tongfa-8-v2.xml").read_bytes()
    assert v2 == corrected_payload["documents"]["newsml"].encode()
    served = TestClient(Starlette(routes=[Mount("/site", PublicFiles(directory=str(site)))]))
    assert served.get("/site/feed/tongfa-8-v1.xml").status_code == 200  # a correction keeps it
    assert served.get("/site/feed/tongfa-8-v2.xml").content == v2
    for receipt in (original, corrected):  # withdrawn through either receipt, twice: the same
        adapter.withdraw(receipt)
        for name in ("tongfa-8-v1.xml", "tongfa-8-v1.nitf.xml", "tongfa-8-v2.xml",
                     "tongfa-8-v2.nitf.xml"):
            assert served.get(f"/site/feed/{name}").status_code == 410, name
            assert not (root / name).exists(), name
    notice = served.get("/site/feed/tongfa-8-v3.xml")
    assert notice.status_code == 200 and b"stat:canceled" in notice.content
    feed = feedparser.parse((root / "newsfeed.atom").read_bytes())
    [entry] = feed.entries
    assert {e.href.rsplit("/", 1)[-1] for e in entry.enclosures} >= {"tongfa-8-v3.xml"}


# ------------------------------------------------------------------ for the contract kit


@contextmanager
def newsfeed_harness(tmp_path: Path) -> Iterator[Any]:
    """For tests/contract/harnesses.py: `"newsfeed": newsfeed_harness`, FAULTS NEWSFEED_FAULTS."""
    from tests.contract.harnesses import Harness, view

    root = tmp_path / "desk"
    (root / "incoming").mkdir(parents=True)
    with SftpServer(root) as server:
        def make() -> NewsfeedAdapter:
            return NewsfeedAdapter({"delivery": ["sftp", "atom"], "formats": ["newsml", "nitf"],
                                    "sftp": sftp_config(server),
                                    "atom": {"directory": str(tmp_path / "feed")}},
                                   {"sftp_password": PASSWORD})

        def is_live(receipt: Any) -> bool:
            item, drop = receipt.details["item"], root / "incoming"
            later = drop / f"tongfa-{item['item_id']}-v{item['version'] + 1}.xml"
            canceled = later.is_file() and b"stat:canceled" in later.read_bytes()
            return (drop / item["files"]["newsml"]).is_file() and not canceled

        def rotate_password() -> None:
            server.password = "rotated"

        yield Harness("newsfeed", make, is_live, bad_view=view(title=""), faults={
            "retryable": server.stop_accepting,
            "permanent": lambda: (root / "incoming").rename(root / "moved"),
            "credentials_expired": rotate_password,
        })


NEWSFEED_FAULTS = ("retryable", "permanent", "credentials_expired")
