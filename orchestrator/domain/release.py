"""What an author writes: the release input, its validation and sanitising.

Field values use the domain's own terms (`disclosure: 主动公开`).
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Any

import nh3
from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.domain.errors import InvalidInput


class Disclosure(StrEnum):
    PROACTIVE = "主动公开"
    ON_REQUEST = "依申请公开"
    NOT_DISCLOSED = "不予公开"


class Priority(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"


DOCUMENT_NUMBER = re.compile(r"^\S+〔\d{4}〕\d+号$")

ALLOWED_TAGS = {
    "p", "br", "h2", "h3", "h4", "strong", "em", "b", "i", "u", "ul", "ol", "li",
    "blockquote", "table", "thead", "tbody", "tr", "th", "td", "a", "img", "span", "hr",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt"}, "td": {"colspan", "rowspan"}}


class Metadata(BaseModel):
    """政府信息公开 metadata of one item."""

    model_config = ConfigDict(extra="forbid")

    index_number: str = Field(min_length=1, max_length=64, description="索引号")
    issuing_body: str = Field(min_length=1, max_length=100, description="发布机构")
    document_number: str | None = Field(None, description="文号, e.g. 某政办发〔2014〕8号")
    date_written: dt.date | None = Field(None, description="成文日期")
    date_published: dt.date | None = Field(None, description="发布日期")
    subject_category: str = Field("综合政务", max_length=50, description="主题分类")
    disclosure: Disclosure = Field(description="公开属性")
    validity: str = Field("有效", max_length=20, description="有效性")

    @field_validator("document_number")
    @classmethod
    def _document_number(cls, value: str | None) -> str | None:
        if value is not None and not DOCUMENT_NUMBER.match(value):
            raise ValueError("文号 must look like 某政办发〔2014〕8号 (year in 〔〕 brackets)")
        return value


class ReleaseInput(BaseModel):
    """A release as written in a YAML/JSON file or sent to the API."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1)
    body_format: str = Field("markdown", pattern="^(markdown|html)$")
    summary: str = Field("", max_length=500)
    metadata: Metadata
    column: str = Field("新闻发布", min_length=1, max_length=50, description="website 栏目")
    channels: list[str] = Field(min_length=1, description="target channel instance names")
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    images: list[str] = Field(default_factory=list, description="file paths")
    attachments: list[str] = Field(default_factory=list, description="file paths")
    priority: Priority = Priority.NORMAL
    parent: int | None = Field(None, description="id of the release this one follows up")
    corrects: int | None = Field(None, description="id of the published release this corrects")
    group: str | None = Field(
        None, max_length=64, description="go-live group: releases that go live as one"
    )
    go_live_at: dt.datetime | None = None
    co_authors: list[str] = Field(
        default_factory=list, max_length=20,
        description="people (authors) who may edit, submit and schedule it too; set by its owner",
    )

    @field_validator("co_authors")
    @classmethod
    def _co_author_names(cls, value: list[str]) -> list[str]:
        names = [name.strip() for name in value]
        if any(not name or len(name) > 64 for name in names):
            raise ValueError("each co-author is a user name of 1 to 64 characters")
        if len(set(names)) != len(names):
            raise ValueError("a co-author is listed twice")
        return names

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value

    @field_validator("go_live_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-29T09:00:00+08:00")
        return value


def parse_release(data: Any) -> ReleaseInput:
    """Validate raw input; on error, raise InvalidInput naming every bad field."""
    if not isinstance(data, dict):
        raise InvalidInput([("(file)", "must be a mapping of release fields")])
    try:
        return ReleaseInput.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            [(".".join(str(p) for p in err["loc"]) or "(file)", err["msg"]) for err in exc.errors()]
        ) from None


_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def sanitised_body(body: str, body_format: str) -> str:
    """Markdown or HTML in; only a safe subset of HTML is ever stored."""
    html = _markdown.render(body) if body_format == "markdown" else body
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
    ).strip()
