"""What an author writes: the release input, its validation and sanitising.

Field values use the domain's own terms (`disclosure: 主动公开`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Any

import nh3
from markdown_it import MarkdownIt
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from orchestrator.domain.clock import Instant
from orchestrator.domain.errors import InvalidInput


class Disclosure(StrEnum):
    PROACTIVE = "主动公开"
    ON_REQUEST = "依申请公开"
    NOT_DISCLOSED = "不予公开"


class Priority(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"


MAX_ID = 2**53  # ids are 64-bit in the database; larger numbers are refused, not overflowed

# What no output can carry: XML 1.0, HTML, e-mail headers and CSV all break on these.
# Everywhere: C0 controls but tab/LF/CR, DEL, C1 (incl. U+0085), surrogates, U+FFFE/U+FFFF.
_NEVER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# In a one-line field (a title becomes an Atom <title>, an e-mail Subject, a CSV cell) also
# no line or paragraph break; a tab is harmless there and comes with pasted text.
_BREAKS = re.compile("[\r\n\u2028\u2029]")


def _refuse(char: str, where: int, one_line: bool) -> PydanticCustomError:
    kind = "换行符" if one_line and _BREAKS.match(char) else "控制字符或无效字符"
    return PydanticCustomError(
        "text_character", "第 {position} 个字符是{kind} U+{code}，不能使用" +
        ("（此项只能是一行）" if one_line else ""),
        {"position": where + 1, "kind": kind, "code": f"{ord(char):04X}"})


# letters that look alike across these scripts (Latin o, Cyrillic о, Greek ο): one name
# never mixes them, so a look-alike cannot pass for another group
_LOOK_ALIKE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def group_name(value: str) -> str:
    """A go-live group's name as signers read it, so one that looks the same is the same
    group: NFKC (full-width letters), invisible characters dropped, traditional forms made
    simplified (wordlist.reading_form), surrounding spaces stripped. Refuses a name that
    mixes Latin, Cyrillic or Greek letters (a look-alike of another name)."""
    from orchestrator.domain.wordlist import reading_form

    read = " ".join(reading_form(value).text.split())
    scripts = {script for char in read if char.isalpha()
               for script in _LOOK_ALIKE_SCRIPTS if unicodedata.name(char, "").startswith(script)}
    if len(scripts) > 1:
        raise PydanticCustomError("group_script", "组名混用了拉丁、西里尔或希腊字母（形近字），请只用一种")
    if not read:
        raise PydanticCustomError("group_empty", "组名不能为空")
    return read


def storable(value: str) -> bool:
    """No character no output (and no database) can carry: usable as a name or key."""
    return _NEVER.search(value) is None


def one_line(value: str) -> str:
    """A single-line field: a title, a summary, a metadata value, a channel name."""
    bad = _NEVER.search(value) or _BREAKS.search(value)
    if bad:
        raise _refuse(bad.group(), bad.start(), one_line=True)
    return value


def text(value: str) -> str:
    """A multi-line field (the body): pasted Windows line endings become LF first."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    bad = _NEVER.search(value)
    if bad:
        raise _refuse(bad.group(), bad.start(), one_line=False)
    return value


OneLine = Annotated[str, AfterValidator(one_line)]
MAX_URL = 2000


def note_problems(note: str, field: str = "note", limit: int = 500) -> list[tuple[str, str]]:
    """A short one-line remark for the audit trail."""
    try:
        one_line(note)
    except PydanticCustomError as exc:
        return [(field, str(exc))]
    return [(field, f"不超过 {limit} 个字符")] if len(note) > limit else []


def live_url_problems(url: str, hosts: tuple[str, ...] | None = None,
                      field: str = "url") -> list[tuple[str, str]]:
    """A URL a person says a delivery went live at: readers are sent there, so it is a plain
    https link (one line, no credentials, no port, no hidden or direction characters) on
    one of the channel's own public web hosts, spelled in ASCII (no look-alike letters).
    Without `hosts`, only the shape is checked."""
    import unicodedata
    from urllib.parse import urlsplit

    try:
        one_line(url)
    except PydanticCustomError as exc:
        return [(field, str(exc))]
    if not url.strip():
        return [(field, "请填写发布后的链接")]
    if len(url) > MAX_URL:
        return [(field, f"链接不超过 {MAX_URL} 个字符")]
    if url != url.strip() or any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf")
                                 for c in url):
        return [(field, "链接含有空白、控制或方向字符")]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [(field, "不是有效的 https 链接")]
    if parts.scheme != "https" or not parts.hostname:
        return [(field, "应为 https 链接")]
    if "@" in parts.netloc or port is not None:
        return [(field, "链接不能带用户名、密码或端口")]
    if not parts.netloc.isascii():
        return [(field, "链接的域名含有非 ASCII 字符（可能是形近字仿冒）")]
    if hosts is None:
        return []
    if not hosts:
        return [(field, "该渠道没有可供读者访问的公开网页")]
    if parts.hostname not in hosts:
        return [(field, f"不是本渠道平台上的链接（应为 {'、'.join(hosts)}）")]
    return []


Text = Annotated[str, AfterValidator(text)]
ReleaseId = Annotated[int, Field(ge=1, le=MAX_ID)]

# Override keys the adapters read (channels/*.py render()), by what each becomes:
# one line — website/cms_push/newsfeed title and column, newsfeed slugline (and the
# NewsML/NITF headline), WeChat author and digest (its 摘要), a summary;
# text — the Weibo post (line breaks are allowed in a post); version — a positive number.
# Any other key is kept (the adapter ignores it) but holds only JSON and clean text.
OVERRIDE_RULES: dict[str, str] = {
    "title": "one_line", "column": "one_line", "slugline": "one_line", "headline": "one_line",
    "author": "one_line", "digest": "one_line", "summary": "one_line", "text": "text",
    "version": "version",
}


def _override_errors(value: Any, loc: tuple[str | int, ...], rule: str,
                     found: list[InitErrorDetails]) -> Any:
    """One override value checked (and line endings normalised) by its rule; JSON only."""

    def fail(kind: str, message: str, ctx: dict[str, Any] | None = None) -> None:
        found.append(InitErrorDetails(type=PydanticCustomError(kind, message, ctx), loc=loc,
                                      input=value))

    if rule == "version":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
            fail("override_version", "版本号应为正整数")
        return value
    if rule in ("one_line", "text") and not isinstance(value, str):
        fail("override_text", "应为文本")
        return value
    if isinstance(value, str):
        try:
            return one_line(value) if rule == "one_line" else text(value)
        except PydanticCustomError as exc:
            found.append(InitErrorDetails(type=exc, loc=loc, input=value))
            return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or _NEVER.search(key) or _BREAKS.search(key):
                fail("override_key", "键名 {key} 不能使用", {"key": ascii(key)})
                continue
            out[key] = _override_errors(item, (*loc, key), "any", found)
        return out
    if isinstance(value, list):
        return [_override_errors(item, (*loc, i), "any", found) for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        fail("override_number", "数字必须有限")
    elif value is not None and not isinstance(value, bool | int | float):
        fail("override_type", "只能是文本、数字、列表或映射")
    return value


def checked_overrides(overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: list[InitErrorDetails] = []
    out: dict[str, dict[str, Any]] = {}
    for channel, fields in overrides.items():
        if _NEVER.search(channel) or _BREAKS.search(channel):
            found.append(InitErrorDetails(
                type=PydanticCustomError("override_key", "渠道名 {key} 不能使用",
                                         {"key": ascii(channel)}), loc=(), input=channel))
            continue
        out[channel] = {}
        for key, value in fields.items():
            if _NEVER.search(key) or _BREAKS.search(key):
                found.append(InitErrorDetails(
                    type=PydanticCustomError("override_key", "键名 {key} 不能使用",
                                             {"key": ascii(key)}), loc=(channel,), input=key))
                continue
            out[channel][key] = _override_errors(value, (channel, key),
                                                 OVERRIDE_RULES.get(key, "any"), found)
    if found:
        raise ValidationError.from_exception_data("overrides", found)
    return out


def go_live_problems(at: dt.datetime | None, *, now: dt.datetime, horizon_days: int,
                     field: str = "go_live_at") -> list[tuple[str, str]]:
    """A go-live time must lie ahead, and not further than the horizon (a setting).

    Checked by the use case (it has the clock and the settings), not when a file is read.
    """
    if at is None:
        return []
    if at <= now:
        return [(field, f"上线时间 {at.isoformat()} 已过去；立即上线请留空")]
    if at > now + dt.timedelta(days=horizon_days):
        return [(field, f"上线时间 {at.isoformat()} 超出 {horizon_days} 天以内的范围")]
    return []


DOCUMENT_NUMBER = re.compile(r"^\S+〔\d{4}〕\d+号$")

ALLOWED_TAGS = {
    "p", "br", "h2", "h3", "h4", "strong", "em", "b", "i", "u", "ul", "ol", "li",
    "blockquote", "table", "thead", "tbody", "tr", "th", "td", "a", "img", "span", "hr",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt"}, "td": {"colspan", "rowspan"}}


class Metadata(BaseModel):
    """政府信息公开 metadata of one item."""

    model_config = ConfigDict(extra="forbid")

    index_number: OneLine = Field(min_length=1, max_length=64, title="索引号")
    issuing_body: OneLine = Field(min_length=1, max_length=100, title="发布机构")
    document_number: OneLine | None = Field(None, title="文号",
                                            description="e.g. 某政办发〔2014〕8号")
    date_written: dt.date | None = Field(None, title="成文日期")
    date_published: dt.date | None = Field(None, title="发布日期")
    subject_category: OneLine = Field("综合政务", max_length=50, title="主题分类")
    disclosure: Disclosure = Field(title="公开属性")
    validity: OneLine = Field("有效", max_length=20, title="有效性")

    @field_validator("document_number")
    @classmethod
    def _document_number(cls, value: str | None) -> str | None:
        if value is not None and not DOCUMENT_NUMBER.match(value):
            raise ValueError("文号 must look like 某政办发〔2014〕8号 (year in 〔〕 brackets)")
        return value


# The 政府信息公开 fields in their order, and what the press office calls each: stated once,
# here; adapters, checks and the console read them from these names.
METADATA_KEYS: tuple[str, ...] = tuple(Metadata.model_fields)
METADATA_LABELS: dict[str, str] = {k: f.title or k for k, f in Metadata.model_fields.items()}
PUBLISHABLE = Disclosure.PROACTIVE  # 公开为常态: only proactively disclosed items go out
# what 政府信息公开 asks of every published item (the Metadata model lets a draft lack some)
REQUIRED_TO_PUBLISH = ("index_number", "issuing_body", "date_published")


def disclosure_problem(value: object) -> str | None:
    """Why an item with this 公开属性 may not be published anywhere, or None when it may."""
    said = str(value or "").strip()
    if said == PUBLISHABLE.value:
        return None
    shown = f"公开属性为“{said}”" if said else "未填写公开属性"
    return f"{shown}，只有“{PUBLISHABLE.value}”的信息可以发布"


class ReleaseInput(BaseModel):
    """A release as written in a YAML/JSON file or sent to the API."""

    model_config = ConfigDict(extra="forbid")

    title: OneLine = Field(min_length=1, max_length=200)
    body: Text = Field(min_length=1)
    body_format: str = Field("markdown", pattern="^(markdown|html)$")
    summary: OneLine = Field("", max_length=500)
    metadata: Metadata
    column: OneLine = Field("新闻发布", min_length=1, max_length=50, description="website 栏目")
    channels: list[OneLine] = Field(min_length=1, description="target channel instance names")
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    images: list[OneLine] = Field(default_factory=list, description="file paths")
    attachments: list[OneLine] = Field(default_factory=list, description="file paths")
    priority: Priority = Priority.NORMAL
    parent: ReleaseId | None = Field(None, description="id of the release this one follows up")
    corrects: ReleaseId | None = Field(
        None, description="id of the published release this corrects")
    group: OneLine | None = Field(
        None, max_length=64, description="go-live group: releases that go live as one"
    )
    go_live_at: Instant | None = None  # clock.instant: without an offset, Beijing time
    co_authors: list[str] = Field(
        default_factory=list, max_length=20,
        description="people (authors) who may edit, submit and schedule it too; set by its owner",
    )

    @field_validator("group")
    @classmethod
    def _group_name(cls, value: str | None) -> str | None:
        return None if value is None else group_name(value)

    @field_validator("co_authors")
    @classmethod
    def _co_author_names(cls, value: list[str]) -> list[str]:
        names = [one_line(name).strip() for name in value]
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

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return checked_overrides(value)


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
