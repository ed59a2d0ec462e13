"""The notice board reads one JSON file per notice from a folder it watches.

Publishing is one atomic rename, so the board never shows half a notice; the file is named
by the delivery's idempotency key, so lookup() knows whether an attempt went out. While the
board is being serviced it leaves a `.busy` file, and then nothing can be put up.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from pydantic import BaseModel, Field

from channels.contract import (
    JSON,
    ChannelAdapter,
    Problem,
    Receipt,
    ReleaseView,
    RetryableError,
)
from channels.templating import render


class BoardConfig(BaseModel):
    board_dir: str = Field(description="the folder the board reads")
    max_chars: int = Field(120, ge=20, description="what fits on the screen")


class BulletinAdapter(ChannelAdapter):
    kind = "bulletin"
    config_model = BoardConfig
    formats = ("text",)
    directories = ("board_dir",)
    field_kinds = {"*": "text"}

    @property
    def board(self) -> Path:
        return Path(self.config.board_dir)

    def render(self, release: ReleaseView) -> JSON:
        # templates/bulletin/notice.txt of this package, not tongfa's
        return {"title": release.title, "text": render("bulletin", "notice.txt", release=release)}

    def problems(self, payload: JSON) -> list[Problem]:
        found = []
        if not payload["title"].strip():
            found.append(Problem("title", "公告屏通知须有标题"))
        if len(payload["text"]) > self.config.max_chars:
            found.append(Problem("text", f"超过公告屏可显示的 {self.config.max_chars} 字"))
        return found

    def publish(self, payload: JSON, staged: JSON, key: str) -> Receipt:
        if (self.board / ".busy").exists():
            raise RetryableError("公告屏维护中", code="busy")
        self.board.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        file, part = self.board / f"{key}.json", self.board / f".{key}.part"
        part.write_text(
            json.dumps({**payload, "published_at": now.isoformat()}, ensure_ascii=False),
            encoding="utf-8",
        )
        os.replace(part, file)
        return Receipt(key, None, now, {"file": file.name})

    def lookup(self, payload: JSON, key: str, staged: JSON | None = None) -> Receipt | None:
        file = self.board / f"{key}.json"
        if not file.is_file():
            return None
        shown = json.loads(file.read_text(encoding="utf-8"))
        return Receipt(
            key, None, dt.datetime.fromisoformat(shown["published_at"]), {"file": file.name}
        )

    def withdraw(self, receipt: Receipt) -> None:
        (self.board / receipt.details["file"]).unlink(missing_ok=True)

    def read_back(self, payload: JSON, receipt: Receipt) -> str | None:
        file = self.board / receipt.details["file"]
        return json.loads(file.read_text(encoding="utf-8"))["text"] if file.is_file() else ""

    def shown(self, payload: JSON) -> str:
        return payload["text"]

    def document(self, payload: JSON, fmt: str) -> str:
        return payload["text"]
