"""The government website (政府网站是第一平台): static pages written into a web root.

Staging writes the page where readers cannot see it; publishing is one rename plus
regenerating the derived pages (home, column lists, threads, Atom feed, sitemap) from
the site's own manifest, under a file lock, each file replaced atomically, so a reader
never sees half a page and two workers never lose each other's entries.

Layout of the web root:
    articles/<id>.html          the article (a correction replaces it at the same URL)
    files/<sha256>/<filename>   images and attachments, content-addressed
    index.html, columns/<slug>.html, threads/<id>.html, feed.atom, sitemap.xml
    manifest.json               the site's own record: id -> entry (written last)
    .staging/<key>.html, .staging/files/…, .lock   never served
    .gone/<path>                what a withdrawal took down: served as 410 Gone

The integrity watch reads a page back over HTTP at `base_url`, as the public gets it
(what the web server serves, not the file this process wrote): the deployment names that
host in TONGFA_OUTBOUND_ALLOW when it is private or this machine.

Images and attachments follow their page: staged out of sight, public at go-live (moved
into files/ before the page), taken down by a withdrawal. A file is content-addressed,
so two live pages can show the same one: it stays while any page in the manifest lists
it and goes (410) with the last. A correction that drops a file takes it down the same way.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

from lxml import etree
from pydantic import BaseModel

from channels import atom, http, outbound
from channels.contract import (
    JSON,
    Capabilities,
    ChannelAdapter,
    ChannelError,
    Limit,
    OutcomeUnknown,
    PermanentError,
    Problem,
    Receipt,
    ReleaseView,
    RetryableError,
    approved_bytes,
)
from channels.templating import render
from orchestrator.domain.release import METADATA_KEYS, REQUIRED_TO_PUBLISH, disclosure_problem

REQUIRED_METADATA = (*REQUIRED_TO_PUBLISH, "disclosure")
HOME_ENTRIES = 30
HOME_PER_COLUMN = 5
FEED_ENTRIES = 50
BEIJING = dt.timezone(dt.timedelta(hours=8))
READ_BACK_TIMEOUT = 15.0  # seconds: a read-back runs as its own task, never in the tick
TRANSIENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EIO, errno.EBUSY}
SAFE_KEY = re.compile(r"[A-Za-z0-9._-]{1,120}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
GONE = ".gone"


class WebsiteConfig(BaseModel):
    """Where the site lives on this machine and how readers reach it; no credentials."""

    web_root: str
    base_url: str = "http://127.0.0.1:8000/site"
    site_name: str = "某省人民政府"


def article_hash(html: str) -> str:
    """SHA-256 of a page's <article> element, byte for byte as served: what the footer
    shows and the audit log records, so a reader can recompute it from the page."""
    start, end = html.find("<article>"), html.find("</article>")
    if start < 0 or end < 0:
        return ""
    return hashlib.sha256(html[start:end + len("</article>")].encode("utf-8")).hexdigest()


def column_slug(name: str) -> str:
    """Stable ASCII file name for a 栏目 (the same name always gives the same page)."""
    return "c" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]


def safe_filename(name: str) -> str:
    """Last path component only, no leading dots: an upload's name must not climb out."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    return base or "file"


def withdrawn(root: Path, relative: str) -> bool:
    """Whether a withdrawal took this path of the web root down (readers get 410 Gone).
    A channel may write a directory below the served root (the newsfeed's feed under the
    site): the marks of that directory count for the paths under it too."""
    parts = [p for p in relative.split("/") if p]
    return any((root.joinpath(*parts[:i]) / GONE / "/".join(parts[i:])).is_file()
               for i in range(len(parts)))


def take_down(root: Path, relatives: Iterable[str]) -> None:
    """Remove these files of a web root; from now on they answer 410 Gone (`withdrawn`)."""
    for relative in relatives:
        (root / relative).unlink(missing_ok=True)
        write_atomically(root / GONE / relative, b"")


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A temp file beside `path`, renamed over it only once fully written and synced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes) -> None:
    with atomic_file(path) as handle:
        handle.write(data)


def io_error(exc: OSError, doing: str) -> ChannelError:
    """A full disk passes; a missing permission or a read-only root needs an admin."""
    cls = RetryableError if exc.errno in TRANSIENT_ERRNOS else PermanentError
    return cls(f"{doing}时写入网站目录失败：{exc.strerror or exc}", code=f"io:{exc.errno}")


class WebsiteAdapter(ChannelAdapter):
    kind = "website"
    capabilities = Capabilities(can_update=True, can_withdraw=True, can_lookup=True)
    config_model = WebsiteConfig
    directories = ("web_root",)  # written to: must lie under an allowed root (settings.web_roots)
    formats = ("html",)
    # the page and the body are HTML; every other field goes into it escaped (autoescape)
    field_kinds = {"html": "html", "body": "html", "*": "text"}
    limits = (Limit("title", 200, "网站标题"),)

    @property
    def root(self) -> Path:
        return Path(self.config.web_root)

    @property
    def base(self) -> str:
        return self.config.base_url.rstrip("/")

    def _page(self, template: str, **context: Any) -> str:
        return render("website", template, site_name=self.config.site_name,
                      base_url=self.base, **context)

    # ------------------------------------------------------------ render/validate

    def web_hosts(self) -> tuple[str, ...]:
        host = urlsplit(self.base).hostname
        return (host,) if host else ()

    def render(self, release: ReleaseView) -> JSON:
        """The whole page as readers will get it; nothing here depends on the clock."""
        meta = {k: str(release.metadata.get(k) or "") for k in METADATA_KEYS}
        meta["column"] = str(release.overrides.get("column") or release.metadata.get("column")
                             or "")
        title = str(release.overrides.get("title") or release.title)
        files = [self._file(f.sha256, f.filename, str(f.path), role)
                 for role, group in (("image", release.images), ("attachment", release.attachments))
                 for f in group]
        # a correction replaces the corrected page, at the same address (更正)
        page_id = release.corrects_id or release.id
        url = release.corrects_url or release.url
        article = dict(
            title=title, meta=meta, body_html=release.body_html, url=url,
            release_id=page_id, corrected=bool(release.corrects_id),
            column_href=f"{self.base}/columns/{column_slug(meta['column'])}.html",
            images=[f for f in files if f["role"] == "image"],
            attachments=[f for f in files if f["role"] == "attachment"],
            record_href=f"{self.base}/transparency/releases/{release.id}.json")
        # the footer names the hash of the <article> above it, so render it once without
        page_hash = article_hash(self._page("article.html", page_hash="", **article))
        html = self._page("article.html", page_hash=page_hash, **article)
        return {"id": page_id, "path": f"articles/{page_id}.html", "url": url,
                "page_hash": page_hash,
                "title": title, "column": meta["column"], "summary": release.summary,
                "date_published": meta["date_published"], "issuing_body": meta["issuing_body"],
                "meta": meta, "files": files, "html": html, "body": release.body_html,
                "parent_id": release.parent_id}

    def _file(self, sha256: str, filename: str, source: str, role: str) -> JSON:
        name = safe_filename(filename)
        return {"sha256": sha256, "filename": name, "source": source, "role": role,
                "href": f"{self.base}/files/{sha256}/{quote(name)}"}

    def problems(self, payload: JSON) -> list[Problem]:
        found = self.limit_problems(payload)
        if not payload["title"].strip():
            found.append(Problem("title", "标题不能为空"))
        if not re.sub(r"<[^>]*>|&nbsp;|\s", "", payload["body"]) and "<img" not in payload["body"]:
            found.append(Problem("body", "正文不能为空"))
        if not payload["column"].strip():
            found.append(Problem("column", "网站栏目不能为空"))
        meta = payload["meta"]
        found += [Problem(f"metadata.{k}", "网站发布必填")
                  for k in REQUIRED_METADATA if not meta.get(k, "").strip()]
        if meta.get("disclosure") and (refusal := disclosure_problem(meta["disclosure"])):
            found.append(Problem("metadata.disclosure", refusal))
        for k in ("date_published", "date_written"):
            if meta.get(k) and not _is_iso_date(meta[k]):
                found.append(Problem(f"metadata.{k}", "日期格式应为 2026-11-29"))
        found += [Problem("attachments", f"文件 {f['filename']} 的摘要不是 SHA-256")
                  for f in payload["files"] if not SHA256_HEX.fullmatch(f["sha256"])]
        return found

    def document(self, payload: JSON, fmt: str) -> str:
        return payload["html"]

    # ---------------------------------------------------------------- calls

    def stage(self, payload: JSON, key: str) -> JSON:
        """The slow part before go-live: files verified and copied, page written, all aside
        in .staging/ where readers cannot reach them (an embargoed file is not public)."""
        staged = self.root / ".staging" / f"{_key_name(key)}.html"
        try:
            files = [(f, approved_bytes(f["sha256"], f["filename"], f["source"]))
                     for f in _checked(payload["files"])]  # all of them before writing any
            for f, data in files:
                write_atomically(self._staged_file(f), data)
            write_atomically(staged, payload["html"].encode("utf-8"))
        except OSError as exc:
            raise io_error(exc, "暂存") from None
        return {"staged_path": str(staged)}

    def publish(self, payload: JSON, staged: JSON, key: str) -> Receipt:
        """Go live: files into files/, the staged page renamed into place, then the lists."""
        page = self.root / payload["path"]
        data = payload["html"].encode("utf-8")
        staged_path = Path(staged["staged_path"]) if staged.get("staged_path") else None
        with self._site() as manifest:
            try:
                files = self._files_ready(payload["files"])  # verified: a mismatch sends nothing
                for target, source, content in files:
                    if source is not None:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(source, target)
                    else:
                        write_atomically(target, content)
                if staged_path and staged_path.is_file() and staged_path.read_bytes() == data:
                    page.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staged_path, page)  # the go-live instant: one rename
                else:  # not staged here (a re-publish, or staged content went stale)
                    write_atomically(page, data)
                    if staged_path:
                        staged_path.unlink(missing_ok=True)
                shown = [_public_path(f) for f in payload["files"]]
                for relative in (payload["path"], *shown):  # live again after a withdrawal
                    (self.root / GONE / relative).unlink(missing_ok=True)
            except OSError as exc:
                raise io_error(exc, "发布页面") from None
            now = dt.datetime.now(dt.UTC)
            before = manifest.get(str(payload["id"]))
            manifest[str(payload["id"])] = {
                k: payload[k] for k in ("url", "title", "column", "summary", "date_published",
                                        "issuing_body", "path")
            } | {"updated": now.isoformat(), "page_sha256": _sha(data),
                 "id": payload["id"], "parent_id": payload.get("parent_id"), "files": shown}
            if before:  # a correction or re-publish may drop a file the page showed
                try:
                    self._take_down(before.get("files", []), manifest)
                except OSError as exc:
                    raise io_error(exc, "撤下文件") from None
        return Receipt(str(payload["id"]), payload["url"], now,
                       {"page_sha256": _sha(data), "path": payload["path"]})

    def lookup(self, payload: JSON, key: str, staged: JSON | None = None) -> Receipt | None:
        """Live means: this exact page is on disk *and* the site lists it."""
        page = self.root / payload["path"]
        entry = self._read_manifest().get(str(payload["id"]))
        data = payload["html"].encode("utf-8")
        if entry is None or not page.is_file() or page.read_bytes() != data:
            return None
        return Receipt(str(payload["id"]), payload["url"],
                       dt.datetime.fromisoformat(entry["updated"]),
                       {"page_sha256": entry["page_sha256"], "path": payload["path"]})

    def withdraw(self, receipt: Receipt) -> None:
        """Take it off every list and leave a notice at the same URL (links keep working)."""
        with self._site() as manifest:
            entry = manifest.pop(receipt.remote_id, None)
            page = self.root / (entry["path"] if entry else
                                receipt.details.get("path", f"articles/{receipt.remote_id}.html"))
            if entry is None and (not page.is_file() or _is_notice(page)):
                return  # already withdrawn: a second run changes nothing
            notice = self._page("withdrawn.html", release_id=receipt.remote_id,
                                title=entry["title"] if entry else "",
                                withdrawn_on=dt.datetime.now(BEIJING).date().isoformat())
            try:
                write_atomically(page, notice.encode("utf-8"))
                write_atomically(self.root / GONE / page.relative_to(self.root), b"")
                self._take_down(entry.get("files", []) if entry else [], manifest)
            except OSError as exc:
                raise io_error(exc, "撤回页面") from None

    def read_back(self, payload: JSON, receipt: Receipt) -> str | None:
        """The page as the public gets it from the web server ("" when it is gone)."""
        url = f"{self.base}/{payload['path']}"
        with outbound.session(self.outbound) as session:
            response = http.call(session, "GET", url, read_timeout=READ_BACK_TIMEOUT,
                                 allow_redirects=False)
        if response.status_code in (404, 410):
            return ""
        if response.status_code != 200:
            where = response.headers.get("location")
            seen = f"HTTP {response.status_code}" + (f" → {where[:300]}" if where else "")
            raise RetryableError(f"网站页面读取失败（{seen}）",
                                 code=f"http_{response.status_code}")
        return response.content.decode("utf-8", errors="replace")

    def shown(self, payload: JSON) -> str:
        return payload["html"]

    def test_connection(self) -> str:
        """Writable web root; a new site also gets its (empty) home page, feed and sitemap."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".probe"
            probe.write_text("ok")
            probe.unlink()
            if not (self.root / "index.html").exists():
                with self._site():
                    pass
        except OSError as exc:
            raise PermanentError(f"网站目录 {self.root} 不可写：{exc.strerror or exc}",
                                 code="io") from None
        return f"web root {self.root} writable"

    # ------------------------------------------------------------ the site's own record

    def _staged_file(self, f: JSON) -> Path:
        return self.root / ".staging" / _public_path(f)

    def _files_ready(self, files: list[JSON]) -> list[tuple[Path, Path | None, bytes]]:
        """Each file still to put in place, with its verified bytes: from its staged copy
        (then moved by rename) or, when not staged here, from the store."""
        ready = []
        for f in _checked(files):
            target = self.root / _public_path(f)
            staged = self._staged_file(f)
            if target.is_file() and _file_sha(target) == f["sha256"]:
                staged.unlink(missing_ok=True)
                continue  # already public: another live page shows the same file
            source = staged if staged.is_file() else None
            ready.append((target, source, approved_bytes(f["sha256"], f["filename"],
                                                         source or f["source"])))
        return ready

    def _take_down(self, paths: list[str], manifest: dict[str, Any]) -> None:
        """Remove files no page in the manifest shows any more; they answer 410 from now."""
        shown = {p for entry in manifest.values() for p in entry.get("files", [])}
        take_down(self.root, [p for p in paths if p not in shown])

    def _read_manifest(self) -> dict[str, Any]:
        path = self.root / "manifest.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    @contextmanager
    def _site(self) -> Iterator[dict[str, Any]]:
        """The manifest, locked against every other process; on a clean exit the derived
        pages are rewritten, then the manifest last: it is the commit point lookup() reads.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock = open(self.root / ".lock", "a")  # held for the whole block
        except OSError as exc:
            raise io_error(exc, "加锁") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            manifest = self._read_manifest()
            yield manifest
            try:
                self._regenerate(manifest)
                write_atomically(self.root / "manifest.json",
                                 json.dumps(manifest, ensure_ascii=False, indent=1,
                                            sort_keys=True).encode("utf-8"))
            except OSError as exc:  # the page may be live while the lists are not
                raise OutcomeUnknown(f"页面已写入，但首页/栏目/订阅未能更新：{exc}",
                                     code=f"io:{exc.errno}") from None

    def _regenerate(self, manifest: dict[str, Any]) -> None:
        entries = sorted(manifest.values(), key=lambda e: (e["date_published"], e["updated"]),
                         reverse=True)
        columns = sorted({e["column"] for e in entries})
        nav = [{"name": c, "slug": column_slug(c),
                "entries": [e for e in entries if e["column"] == c]} for c in columns]
        written = {"index.html"}
        self._write("index.html", self._page("index.html", entries=entries[:HOME_ENTRIES],
                                             columns=nav, per_column=HOME_PER_COLUMN))
        for column in nav:
            written.add(f"columns/{column['slug']}.html")
            self._write(f"columns/{column['slug']}.html", self._page(
                "list.html", heading=column["name"], columns=nav, entries=column["entries"]))
        for root, items in _threads(manifest).items():  # 重大突发事件: first statement + updates
            written.add(f"threads/{root}.html")
            self._write(f"threads/{root}.html", self._page(
                "list.html", heading=f"{manifest[str(root)]['title']}（持续更新）", columns=nav,
                entries=items))
        for folder in ("columns", "threads"):  # a column or thread emptied by a withdrawal
            for stale in (self.root / folder).glob("*.html"):
                if f"{folder}/{stale.name}" not in written:
                    stale.unlink(missing_ok=True)
        updated = max((e["updated"] for e in entries), default="1970-01-01T00:00:00+00:00")
        write_atomically(self.root / "feed.atom", self._feed(entries[:FEED_ENTRIES], updated))
        write_atomically(self.root / "sitemap.xml", self._sitemap(entries))

    def _feed(self, entries: list[dict[str, Any]], updated: str) -> bytes:
        site = self.config.site_name
        return atom.feed(
            feed_id=f"{self.base}/", title=site, updated=updated, author=site,
            links=[{"rel": "self", "type": "application/atom+xml", "href": f"{self.base}/feed.atom"},
                   {"rel": "alternate", "type": "text/html", "href": f"{self.base}/index.html"}],
            entries=[{"id": e["url"], "title": e["title"], "updated": e["updated"],
                      "author": e["issuing_body"] or site, "categories": [e["column"]],
                      "links": [{"rel": "alternate", "type": "text/html", "href": e["url"]}],
                      "summary": e["summary"] or e["title"]} for e in entries])

    def _sitemap(self, entries: list[dict[str, Any]]) -> bytes:
        """sitemaps.org 0.9: the home page first (the schema wants at least one <url>)."""
        urlset = etree.Element(f"{{{SITEMAP_NS}}}urlset", nsmap={None: SITEMAP_NS})
        latest = max((e["updated"] for e in entries), default=None)
        for loc, updated in [(f"{self.base}/index.html", latest),
                             *((e["url"], e["updated"]) for e in entries)]:
            url = etree.SubElement(urlset, f"{{{SITEMAP_NS}}}url")
            etree.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = atom.xml_text(loc)
            if updated:
                etree.SubElement(url, f"{{{SITEMAP_NS}}}lastmod").text = updated[:10]
        return etree.tostring(urlset, xml_declaration=True, encoding="utf-8", pretty_print=True)

    def _write(self, relative: str, text: str) -> None:
        write_atomically(self.root / relative, text.encode("utf-8"))


def _threads(manifest: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """Follow-ups grouped under the first release of their story, oldest first."""
    def root(entry: dict[str, Any]) -> int:
        seen = set()
        while entry.get("parent_id") and str(entry["parent_id"]) in manifest \
                and entry["parent_id"] not in seen:
            seen.add(entry["parent_id"])
            entry = manifest[str(entry["parent_id"])]
        return int(entry.get("id", 0))

    threads: dict[int, list[dict[str, Any]]] = {}
    for entry in manifest.values():
        if entry.get("id") is not None:
            threads.setdefault(root(entry), []).append(entry)
    return {r: sorted(items, key=lambda e: e["updated"])
            for r, items in threads.items() if len(items) > 1}


def _checked(files: list[JSON]) -> list[JSON]:
    for f in files:
        if not SHA256_HEX.fullmatch(f["sha256"]):
            raise PermanentError(f"文件 {f['filename']} 的摘要无效", code="bad-file")
    return files


def _public_path(f: JSON) -> str:
    return f"files/{f['sha256']}/{safe_filename(f['filename'])}"


def _key_name(key: str) -> str:
    """The delivery key as a file name, hashed when it holds anything but [A-Za-z0-9._-]."""
    return key if SAFE_KEY.fullmatch(key) and not key.startswith(".") else \
        "k" + hashlib.sha1(key.encode("utf-8")).hexdigest()


def _is_iso_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _is_notice(page: Path) -> bool:
    return b'name="tongfa-withdrawn"' in page.read_bytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
