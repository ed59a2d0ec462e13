"""The government website (政府网站是第一平台): static pages written into a web root.

Staging writes the page where readers cannot see it; publishing is one rename plus
regenerating the derived pages (home, column lists, Atom feed, sitemap) from the
site's own manifest, under a file lock, each file replaced atomically, so a reader
never sees half a page and two workers never lose each other's entries.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from channels.contract import (
    JSON,
    Capabilities,
    ChannelAdapter,
    PermanentError,
    Problem,
    Receipt,
    ReleaseView,
)
from channels.templating import render

REQUIRED_METADATA = ("index_number", "issuing_body", "date_published", "disclosure")
HOME_ENTRIES = 30


class WebsiteConfig(BaseModel):
    web_root: str
    base_url: str = "http://127.0.0.1:8000/site"
    site_name: str = "某省人民政府"


def column_slug(name: str) -> str:
    """Stable ASCII file name for a 栏目."""
    return "c" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


class WebsiteAdapter(ChannelAdapter):
    kind = "website"
    capabilities = Capabilities(can_update=True, can_withdraw=True, can_lookup=True)
    config_model = WebsiteConfig
    formats = ("html",)

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

    def render(self, release: ReleaseView) -> JSON:
        meta = {k: release.metadata.get(k, "") for k in (
            "index_number", "issuing_body", "document_number", "date_written",
            "date_published", "subject_category", "disclosure", "validity", "column")}
        meta["column"] = release.overrides.get("column") or meta["column"]
        title = release.overrides.get("title") or release.title
        files = [{"sha256": f.sha256, "filename": f.filename, "source": str(f.path)}
                 for f in (*release.images, *release.attachments)]
        # a correction replaces the corrected page, at the same address (更正)
        page_id = release.corrects_id or release.id
        url = release.corrects_url or release.url
        html = self._page("article.html", title=title, meta=meta, body_html=release.body_html,
                          url=url, release_id=page_id, corrected=bool(release.corrects_id),
                          images=release.images, attachments=release.attachments)
        return {"id": page_id, "path": f"articles/{page_id}.html", "url": url,
                "title": title, "column": meta["column"], "summary": release.summary,
                "date_published": meta["date_published"], "issuing_body": meta["issuing_body"],
                "meta": meta, "files": files, "html": html, "body": release.body_html,
                "parent_id": release.parent_id}

    def problems(self, payload: JSON) -> list[Problem]:
        found = []
        if not payload["title"].strip() or len(payload["title"]) > 200:
            found.append(Problem("title", "1 to 200 characters"))
        if not payload["body"].strip():
            found.append(Problem("body", "empty"))
        found += [Problem(f"metadata.{k}", "required on the website")
                  for k in REQUIRED_METADATA if not payload["meta"].get(k)]
        return found

    def document(self, payload: JSON, fmt: str) -> str:
        return payload["html"]

    # ---------------------------------------------------------------- calls

    def stage(self, payload: JSON, key: str) -> JSON:
        try:
            for f in payload["files"]:
                target = self.root / "files" / f["sha256"] / f["filename"]
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f["source"], target)
            staged = self.root / ".staging" / f"{key}.html"
            write_atomically(staged, payload["html"].encode("utf-8"))
        except OSError as exc:
            raise PermanentError(f"cannot write into the web root: {exc}", code="io") from None
        return {"staged_path": str(staged)}

    def publish(self, payload: JSON, staged: JSON, key: str) -> Receipt:
        page = self.root / payload["path"]
        data = payload["html"].encode("utf-8")
        staged_path = Path(staged.get("staged_path", ""))
        page.parent.mkdir(parents=True, exist_ok=True)
        if staged_path.is_file() and staged_path.read_bytes() == data:
            os.replace(staged_path, page)  # the go-live instant: one rename
        else:
            write_atomically(page, data)
        now = dt.datetime.now(dt.UTC)
        with self._manifest() as manifest:
            manifest[str(payload["id"])] = {
                k: payload[k] for k in ("url", "title", "column", "summary", "date_published",
                                        "issuing_body", "path")
            } | {"updated": now.isoformat(timespec="seconds"), "page_sha256": _sha(data),
                 "id": payload["id"], "parent_id": payload.get("parent_id")}
        return Receipt(str(payload["id"]), payload["url"], now,
                       {"page_sha256": _sha(data), "path": payload["path"]})

    def lookup(self, payload: JSON, key: str) -> Receipt | None:
        page = self.root / payload["path"]
        entry = self._read_manifest().get(str(payload["id"]))
        if entry is None or not page.is_file() or page.read_bytes() != payload["html"].encode():
            return None
        return Receipt(str(payload["id"]), payload["url"],
                       dt.datetime.fromisoformat(entry["updated"]),
                       {"page_sha256": entry["page_sha256"], "path": payload["path"]})

    def withdraw(self, receipt: Receipt) -> None:
        with self._manifest() as manifest:
            entry = manifest.pop(receipt.remote_id, None)
        if entry is not None:
            notice = self._page("withdrawn.html", title=entry["title"],
                                withdrawn_at=dt.datetime.now(dt.UTC).date().isoformat())
            write_atomically(self.root / entry["path"], notice.encode("utf-8"))

    def read_back(self, payload: JSON, receipt: Receipt) -> str | None:
        page = self.root / payload["path"]
        return page.read_text(encoding="utf-8", errors="replace") if page.is_file() else ""

    def shown(self, payload: JSON) -> str:
        return payload["html"]

    def test_connection(self) -> str:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".probe"
            probe.write_text("ok")
            probe.unlink()
            if not (self.root / "index.html").exists():  # a new site has a home page at once
                with self._manifest():
                    pass
        except OSError as exc:
            raise PermanentError(f"web root not writable: {exc}", code="io") from None
        return f"web root {self.root} writable"

    # ------------------------------------------------------------ the site's own record

    def _read_manifest(self) -> dict[str, Any]:
        path = self.root / "manifest.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    @contextmanager
    def _manifest(self) -> Iterator[dict[str, Any]]:
        """The manifest, locked; on exit it and every derived page are rewritten."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            manifest = self._read_manifest()
            yield manifest
            write_atomically(self.root / "manifest.json",
                             json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
            self._regenerate(manifest)

    def _regenerate(self, manifest: dict[str, Any]) -> None:
        entries = sorted(manifest.values(), key=lambda e: (e["date_published"], e["updated"]),
                         reverse=True)
        columns = sorted({e["column"] for e in entries})
        nav = [{"name": c, "slug": column_slug(c)} for c in columns]
        self._write("index.html", self._page("list.html", heading=self.config.site_name,
                                             entries=entries[:HOME_ENTRIES], columns=nav))
        for column in nav:
            self._write(f"columns/{column['slug']}.html", self._page(
                "list.html", heading=column["name"], columns=nav,
                entries=[e for e in entries if e["column"] == column["name"]]))
        for root, items in _threads(manifest).items():  # 重大突发事件: first statement + updates
            self._write(f"threads/{root}.html", self._page(
                "list.html", heading=f"{manifest[str(root)]['title']}（持续更新）", columns=nav,
                entries=items))
        updated = max((e["updated"] for e in entries), default="1970-01-01T00:00:00+00:00")
        self._write("feed.atom", render("website", "feed.atom", site_name=self.config.site_name,
                                        base_url=self.base, entries=entries[:50], updated=updated))
        self._write("sitemap.xml", render("website", "sitemap.xml", entries=entries))

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


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
