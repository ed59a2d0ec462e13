"""The website adapter against a real web root on disk (pytest's tmp_path), no mocks."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from pathlib import Path
from typing import Any

import feedparser
import html5lib
import pytest
from lxml import etree

from channels.contract import Attachment, PermanentError, ReleaseView, ValidationFailed
from channels.website import WebsiteAdapter, column_slug

BASE = "http://127.0.0.1:8000/site"
TITLE = "关于印发《某省促进民营经济发展若干措施》的通知"
DOC_NUMBER = "粤府办〔2026〕8号"
SITEMAP_NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}


def release(release_id: int = 8, **changes: Any) -> ReleaseView:
    metadata = {"index_number": f"11440000/2026-{release_id:05d}", "issuing_body": "省人民政府办公厅",
                "document_number": DOC_NUMBER, "date_written": "2026-11-20",
                "date_published": "2026-11-29", "subject_category": "综合政务",
                "disclosure": "主动公开", "validity": "有效", "column": "政策文件"}
    metadata.update(changes.pop("metadata", {}))
    fields: dict[str, Any] = dict(
        id=release_id, title=TITLE,
        body_html="<p>各市人民政府，省政府各部门：</p><p>现将《若干措施》印发给你们，请<strong>认真贯彻执行</strong>。</p>",
        summary="支持民营经济发展的二十条措施。", metadata=metadata, priority="normal",
        url=f"{BASE}/articles/{release_id}.html")
    fields.update(changes)
    return ReleaseView(**fields)


def stored_file(tmp_path: Path, name: str, data: bytes) -> Attachment:
    path = tmp_path / "store" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Attachment(hashlib.sha256(data).hexdigest(), name, "application/octet-stream", path)


@pytest.fixture
def site(tmp_path: Path) -> WebsiteAdapter:
    return WebsiteAdapter({"web_root": str(tmp_path / "www")})


def go_live(site: WebsiteAdapter, view: ReleaseView, key: str | None = None):
    payload = site.render(view)
    site.validate(payload)
    key = key or f"tongfa-{view.id}-r1-website"
    return payload, site.publish(payload, site.stage(payload, key), key)


def strict_html(text: str) -> None:
    html5lib.HTMLParser(strict=True).parse(text)  # raises ParseError on the first error


def page(site: WebsiteAdapter, relative: str) -> str:
    return (site.root / relative).read_text(encoding="utf-8")


# ------------------------------------------------------------------------ render


def test_render_is_deterministic_to_the_byte(site):
    one, two = site.render(release()), site.render(release())
    assert json.dumps(one, ensure_ascii=False, sort_keys=True).encode() == \
        json.dumps(two, ensure_ascii=False, sort_keys=True).encode()
    assert {"path", "url", "title", "column", "html", "summary", "date_published"} <= set(one)
    assert one["path"] == "articles/8.html" and one["url"] == f"{BASE}/articles/8.html"


def test_article_page_carries_the_full_metadata_table_and_its_release_id(site):
    html = site.render(release())["html"]
    strict_html(html)
    assert html.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in html
    for label in ("索引号", "发布机构", "文号", "成文日期", "发布日期", "主题分类", "公开属性", "有效性"):
        assert f"<th>{label}</th>" in html
    assert DOC_NUMBER in html and "11440000/2026-00008" in html
    assert '<meta name="tongfa-release" content="8">' in html
    assert "tongfa-payload-sha256" not in html  # a payload cannot hold its own hash


def test_overrides_set_the_column_and_title(site):
    payload = site.render(release(overrides={"column": "政策解读", "title": "图解：民营经济二十条"}))
    assert payload["column"] == "政策解读" and payload["title"] == "图解：民营经济二十条"
    assert f"columns/{column_slug('政策解读')}.html" in payload["html"]


def test_a_missing_document_number_leaves_the_cell_empty_not_an_error(site):
    view = release(metadata={"document_number": "", "date_written": ""})
    payload = site.render(view)
    site.validate(payload)
    strict_html(payload["html"])


# ---------------------------------------------------------------------- validate


@pytest.mark.parametrize("field", ["index_number", "issuing_body", "date_published", "disclosure"])
def test_validate_names_the_missing_metadata_field(site, field):
    with pytest.raises(ValidationFailed) as err:
        site.validate(site.render(release(metadata={field: ""})))
    assert [p.field for p in err.value.problems] == [f"metadata.{field}"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"title": ""}, "title"), ({"title": "长" * 201}, "title"), ({"body_html": "<p> </p>"}, "body"),
    ({"metadata": {"disclosure": "依申请公开"}}, "metadata.disclosure"),
    ({"metadata": {"date_published": "2026年11月29日"}}, "metadata.date_published"),
    ({"metadata": {"column": ""}}, "column"),
])
def test_validate_refuses_what_the_site_cannot_show(site, changes, field):
    with pytest.raises(ValidationFailed) as err:
        site.validate(site.render(release(**changes)))
    assert field in [p.field for p in err.value.problems]
    assert all(p.message for p in err.value.problems)


def test_a_title_of_exactly_200_characters_is_accepted(site):
    site.validate(site.render(release(title="长" * 200)))


# ----------------------------------------------------------- stage and publish


def test_stage_keeps_the_page_out_of_sight_and_publish_puts_it_in_place(site, tmp_path):
    image = stored_file(tmp_path, "示意图.png", b"\x89PNG fake image bytes")
    annex = stored_file(tmp_path, "附件1：措施清单.pdf", b"%PDF-1.7 fake")
    payload = site.render(release(images=(image,), attachments=(annex,)))
    staged = site.stage(payload, "tongfa-8-r1-website")
    assert Path(staged["staged_path"]).is_file()
    assert Path(staged["staged_path"]).is_relative_to(site.root / ".staging")
    assert not (site.root / payload["path"]).exists()
    assert site.lookup(payload, "tongfa-8-r1-website") is None
    public = [site.root / "files" / image.sha256 / "示意图.png",
              site.root / "files" / annex.sha256 / "附件1：措施清单.pdf"]
    assert not any(p.exists() for p in public)  # embargoed files are not public either
    assert sorted(p.read_bytes() for p in (site.root / ".staging" / "files").rglob("*.*")) == \
        sorted([image.read(), annex.read()])

    receipt = site.publish(payload, staged, "tongfa-8-r1-website")
    assert [p.read_bytes() for p in public] == [image.read(), annex.read()]
    assert not list((site.root / ".staging" / "files").rglob("*.*"))  # moved, not copied
    live = (site.root / payload["path"]).read_bytes()
    assert live == payload["html"].encode("utf-8")
    assert not Path(staged["staged_path"]).exists()  # renamed, not copied
    assert receipt.remote_id == "8" and receipt.url == payload["url"]
    assert receipt.published_at.utcoffset().total_seconds() == 0
    assert receipt.details == {"page_sha256": hashlib.sha256(live).hexdigest(),
                               "path": "articles/8.html"}
    assert f"{BASE}/files/{image.sha256}/" in payload["html"]


def test_chinese_survives_byte_for_byte(site):
    payload, _ = go_live(site, release())
    raw = (site.root / "articles" / "8.html").read_bytes()
    for text in (TITLE, DOC_NUMBER, "认真贯彻执行", "省人民政府办公厅"):
        assert text.encode("utf-8") in raw
    assert TITLE.encode("utf-8") in (site.root / "feed.atom").read_bytes()
    manifest = json.loads((site.root / "manifest.json").read_bytes().decode("utf-8"))
    assert manifest["8"]["title"] == TITLE


def test_a_file_whose_bytes_changed_since_approval_is_refused(site, tmp_path):
    annex = stored_file(tmp_path, "附件.pdf", b"approved bytes")
    annex.path.write_bytes(b"tampered bytes")
    with pytest.raises(PermanentError, match="不一致") as err:
        site.stage(site.render(release(attachments=(annex,))), "k1")
    assert err.value.code == "file_hash_mismatch"
    assert not list(site.root.rglob("*.pdf"))  # neither public nor staged


def test_a_staged_copy_altered_before_go_live_is_refused_and_nothing_goes_public(site, tmp_path):
    image = stored_file(tmp_path, "示意图.png", b"\x89PNG approved")
    payload = site.render(release(images=(image,)))
    staged = site.stage(payload, "k1")
    [copy] = (site.root / ".staging" / "files").rglob("*.png")
    copy.write_bytes(b"\x89PNG gambling ad")
    with pytest.raises(PermanentError) as err:
        site.publish(payload, staged, "k1")
    assert err.value.code == "file_hash_mismatch"
    assert not (site.root / payload["path"]).exists() and not (site.root / "files").exists()
    assert site.lookup(payload, "k1") is None


def test_publish_without_a_staged_file_writes_the_page_directly(site):
    payload = site.render(release())
    receipt = site.publish(payload, {}, "k-direct")
    assert (site.root / payload["path"]).read_bytes() == payload["html"].encode("utf-8")
    assert site.lookup(payload, "k-direct").remote_id == receipt.remote_id


def test_derived_pages_are_valid_and_list_the_release(site):
    go_live(site, release(8))
    go_live(site, release(9, title="某省2026年第三季度政务公开工作情况",
                          metadata={"column": "政务公开", "date_published": "2026-11-30"}))
    home = page(site, "index.html")
    column = page(site, f"columns/{column_slug('政策文件')}.html")
    for html in (home, column):
        strict_html(html)
    assert TITLE in home and "某省2026年第三季度政务公开工作情况" in home
    assert home.index("第三季度") < home.index(TITLE)  # newest first
    assert f"columns/{column_slug('政务公开')}.html" in home
    assert TITLE in column and "第三季度" not in column

    feed = feedparser.parse((site.root / "feed.atom").read_bytes())
    assert feed.bozo == 0, feed.get("bozo_exception")
    entry = next(e for e in feed.entries if e.id == f"{BASE}/articles/8.html")
    assert entry.title == TITLE and entry.link == f"{BASE}/articles/8.html"
    assert entry.author == "省人民政府办公厅" and entry.summary and entry.updated

    sitemap = etree.fromstring((site.root / "sitemap.xml").read_bytes())
    locs = sitemap.xpath("//sm:url/sm:loc/text()", namespaces=SITEMAP_NS)
    assert sorted(locs) == [f"{BASE}/articles/8.html", f"{BASE}/articles/9.html",
                            f"{BASE}/index.html"]


def test_republishing_a_release_replaces_its_page_and_entry(site):
    go_live(site, release())
    payload, _ = go_live(site, release(body_html="<p>第三条时限更正为12月31日。</p>"), key="k-2")
    assert "12月31日" in page(site, "articles/8.html")
    assert page(site, "feed.atom").count(f"<id>{BASE}/articles/8.html</id>") == 1
    column = page(site, f"columns/{column_slug('政策文件')}.html")
    assert column.count(f'href="{BASE}/articles/8.html"') == 1
    assert page(site, "sitemap.xml").count(f"{BASE}/articles/8.html") == 1
    assert len(json.loads(page(site, "manifest.json"))) == 1


def test_a_correction_replaces_the_corrected_page_at_its_url(site):
    go_live(site, release(8))
    fix = release(12, body_html="<p>时限为12月31日。</p>", corrects_id=8,
                  corrects_url=f"{BASE}/articles/8.html")
    payload, receipt = go_live(site, fix)
    assert payload["path"] == "articles/8.html" and receipt.remote_id == "8"
    assert "本文已更正" in page(site, "articles/8.html")
    assert not (site.root / "articles" / "12.html").exists()


def _publish_in_a_child(root: str, ids: list[int], start: Any) -> None:
    adapter = WebsiteAdapter({"web_root": root})
    payloads = [adapter.render(release(i, title=f"第{i}号公告")) for i in ids]
    staged = [adapter.stage(p, f"k-{p['id']}") for p in payloads]
    start.wait()
    for payload, stage in zip(payloads, staged, strict=True):
        adapter.publish(payload, stage, f"k-{payload['id']}")


def test_publishes_from_two_processes_at_once_lose_no_entry(site):
    fork = multiprocessing.get_context("fork")
    start = fork.Barrier(2)
    batches = [[1, 3, 5, 7, 9], [2, 4, 6, 8, 10]]
    children = [fork.Process(target=_publish_in_a_child, args=(str(site.root), ids, start))
                for ids in batches]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    ids = {str(i) for batch in batches for i in batch}
    assert set(json.loads(page(site, "manifest.json"))) == ids
    feed = feedparser.parse((site.root / "feed.atom").read_bytes())
    assert {e.id for e in feed.entries} == {f"{BASE}/articles/{i}.html" for i in ids}
    column = page(site, f"columns/{column_slug('政策文件')}.html")
    home = page(site, "index.html")
    assert all(f"第{i}号公告" in column and f"第{i}号公告" in home for i in ids)
    assert not list(site.root.rglob(".tmp-*"))


# ------------------------------------------------------------ lookup, withdraw


def test_lookup_finds_what_went_out_and_nothing_else(site):
    payload, receipt = go_live(site, release(8))
    found = site.lookup(payload, "any-key")
    assert found is not None and found.remote_id == "8" and found.url == payload["url"]
    assert found.published_at == receipt.published_at
    assert found.details["page_sha256"] == receipt.details["page_sha256"]
    assert site.lookup(site.render(release(9)), "k") is None  # never published
    changed = site.render(release(8, body_html="<p>另一版本。</p>"))
    assert site.lookup(changed, "k") is None  # not this content


def test_lookup_does_not_vouch_for_a_page_altered_on_disk(site):
    payload, _ = go_live(site, release())
    path = site.root / payload["path"]
    path.write_bytes(path.read_bytes().replace(b"</main>", "<p>博彩</p></main>".encode()))
    assert site.lookup(payload, "k") is None


def test_withdraw_leaves_a_notice_at_the_same_url_and_takes_it_off_every_list(site):
    go_live(site, release(9, title="保留的公告"))
    payload, receipt = go_live(site, release(8))
    site.withdraw(receipt)
    notice = page(site, "articles/8.html")
    strict_html(notice)
    assert "本信息已撤回" in notice and TITLE in notice and "认真贯彻执行" not in notice
    feed = feedparser.parse((site.root / "feed.atom").read_bytes())
    assert feed.bozo == 0 and [e.id for e in feed.entries] == [f"{BASE}/articles/9.html"]
    assert f"{BASE}/articles/8.html" not in page(site, "sitemap.xml")
    assert TITLE not in page(site, "index.html")
    assert TITLE not in page(site, f"columns/{column_slug('政策文件')}.html")
    assert "8" not in json.loads(page(site, "manifest.json"))
    assert site.lookup(payload, "k") is None
    site.withdraw(receipt)  # a second run changes nothing
    assert page(site, "articles/8.html") == notice


def test_withdrawing_the_last_item_of_a_column_removes_its_list_page(site):
    _, receipt = go_live(site, release(8, metadata={"column": "临时栏目"}))
    column = site.root / "columns" / f"{column_slug('临时栏目')}.html"
    assert column.exists()
    site.withdraw(receipt)
    assert not column.exists() and "临时栏目" not in page(site, "index.html")


def test_connection_check_lays_out_an_empty_site(site):
    assert "writable" in site.test_connection()
    home = page(site, "index.html")
    strict_html(home)
    assert "暂无信息" in home
    assert feedparser.parse((site.root / "feed.atom").read_bytes()).bozo == 0


# ------------------------------------------------- feed and sitemap: built, never templated

SITEMAP_XSD = Path(__file__).resolve().parents[1] / "schemas" / "sitemap.xsd"
# everything a title may carry that a text template would turn into broken XML
HOSTILE = "通知]]><script>alert(1)</script> & \u202e反转\u202c\x0b结尾\ufffe"
HOSTILE_SHOWN = "通知]]><script>alert(1)</script> & \u202e反转\u202c结尾"  # XML-illegal chars gone


@pytest.fixture(scope="module")
def sitemap_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SITEMAP_XSD)))


def derived(site: WebsiteAdapter, schema: etree.XMLSchema) -> tuple[Any, list[str]]:
    """The feed as a feed reader sees it, and the sitemap's URLs once it is schema-valid."""
    feed = feedparser.parse((site.root / "feed.atom").read_bytes())
    assert feed.bozo == 0, feed.get("bozo_exception")
    sitemap = etree.parse(str(site.root / "sitemap.xml"))
    schema.assertValid(sitemap)
    return feed, sitemap.xpath("//sm:url/sm:loc/text()", namespaces=SITEMAP_NS)


def test_an_empty_site_has_a_valid_feed_and_sitemap(site, sitemap_schema):
    site.test_connection()
    feed, locs = derived(site, sitemap_schema)
    assert feed.entries == [] and feed.feed.title == "某省人民政府"
    assert locs == [f"{BASE}/index.html"]  # the schema wants at least one <url>


def test_a_hostile_title_never_breaks_the_feed_or_the_sitemap(site, sitemap_schema):
    go_live(site, release(8, title=HOSTILE, summary=HOSTILE,
                          metadata={"issuing_body": "省政府办公厅\x0c&<b>"}))
    feed, locs = derived(site, sitemap_schema)
    [entry] = feed.entries
    assert entry.title == HOSTILE_SHOWN and entry.summary == HOSTILE_SHOWN
    assert entry.author == "省政府办公厅&<b>" and entry.id == f"{BASE}/articles/8.html"
    assert f"{BASE}/articles/8.html" in locs
    raw = (site.root / "feed.atom").read_bytes()
    assert b"<script>" not in raw and b"\x0b" not in raw  # text, not markup


def test_a_withdrawn_release_leaves_the_feed_and_the_sitemap(site, sitemap_schema):
    go_live(site, release(9, title="保留的公告"))
    _, receipt = go_live(site, release(8))
    site.withdraw(receipt)
    feed, locs = derived(site, sitemap_schema)
    assert [e.id for e in feed.entries] == [f"{BASE}/articles/9.html"]
    assert sorted(locs) == [f"{BASE}/articles/9.html", f"{BASE}/index.html"]
    _, last = go_live(site, release(9, title="保留的公告"), key="k-9")
    site.withdraw(last)  # the site is empty again: still valid
    feed, locs = derived(site, sitemap_schema)
    assert feed.entries == [] and locs == [f"{BASE}/index.html"]
