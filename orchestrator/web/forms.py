"""The compose form ⇄ the release input the use cases take, and the unsaved preview.

One flat dict of form values is used both ways, so a refused form comes back exactly
as it was typed. The preview renders the unsaved input through the real adapters, as
the release it would become (rendering.draft, the same path as `tongfa preview`), so what
the author sees is what reviewers would sign and what would be sent.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData

from channels.contract import ChannelError, ReleaseView
from channels.registry import UnknownKind, adapter_class
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.release import (
    METADATA_KEYS,
    METADATA_LABELS,
    Disclosure,
    Metadata,
    disclosure_problem,
    parse_release,
)
from orchestrator.store.models import ChannelInstance, Release
from orchestrator.usecases.channels import adapter_for, unit_channels
from orchestrator.usecases.releases import correction_problems
from orchestrator.usecases.rendering import draft, release_view
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from orchestrator.web.pages import field_label, zh

log = logging.getLogger(__name__)



def _input_type(key: str) -> str:
    shown = str(Metadata.model_fields[key].annotation)
    return "select" if key == "disclosure" else "date" if "date" in shown else "text"


# (key, label, input type, required) — the 政府信息公开 fields, in the order officers read
# them, as the domain's Metadata model states them
METADATA = tuple((key, METADATA_LABELS[key], _input_type(key), Metadata.model_fields[key].is_required())
                 for key in METADATA_KEYS)
DISCLOSURES = [d.value for d in Disclosure]
# what an author may override per channel kind (adapters read these keys)
OVERRIDES: dict[str, tuple[tuple[str, str], ...]] = {
    "website": (("title", "网站标题（留空用主标题）"), ("column", "网站栏目（留空用上面的栏目）")),
}
DEFAULT_OVERRIDES = (("text", "本渠道文案（留空自动生成）"),)


def override_fields(kind: str) -> tuple[tuple[str, str], ...]:
    return OVERRIDES.get(kind, DEFAULT_OVERRIDES)


def blank_values() -> dict[str, Any]:
    return {"title": "", "summary": "", "body": "", "column": "新闻发布", "priority": "normal",
            "parent": "", "corrects": "", "co_authors": "", "group": "", "channels": [], "md": {"subject_category": "综合政务",
                                                 "disclosure": Disclosure.PROACTIVE.value,
                                                 "validity": "有效"}, "ov": {}}


def values_of(form: FormData) -> dict[str, Any]:
    """The form as typed, for re-display and for release_data()."""
    values = blank_values()
    for key in ("title", "summary", "body", "column", "priority", "parent", "corrects",
                "co_authors", "group"):
        values[key] = str(form.get(key, "")).strip()
    values["body"] = str(form.get("body", ""))
    values["channels"] = [str(c) for c in form.getlist("channels")]
    values["md"] = {key: str(form.get(f"md_{key}", "")).strip() for key, *_ in METADATA}
    values["ov"] = {
        name[3:]: str(value) for name, value in form.multi_items() if name.startswith("ov_")
    }
    return values


def values_of_release(release: Release) -> dict[str, Any]:
    values = blank_values()
    values.update(title=release.title, summary=release.summary, body=release.body_source,
                  column=release.site_column, priority=release.priority,
                  parent=str(release.parent_id or ""), corrects=str(release.corrects_id or ""),
                  channels=list(release.channels),
                  co_authors=", ".join(release.co_authors), group=release.golive_group or "")
    values["md"] = {key: str(release.meta.get(key) or "") for key, *_ in METADATA}
    values["ov"] = {f"{key}__{channel}": str(value)
                    for channel, fields in release.overrides.items()
                    for key, value in fields.items()}
    return values


def release_data(values: dict[str, Any]) -> dict[str, Any]:
    """Form values → the raw input parse_release() validates (empty optional fields omitted)."""
    overrides: dict[str, dict[str, str]] = {}
    for name, value in values["ov"].items():
        key, _, channel = name.partition("__")
        if value.strip() and channel in values["channels"]:
            overrides.setdefault(channel, {})[key] = value.strip()
    data: dict[str, Any] = {
        "title": values["title"], "summary": values["summary"], "body": values["body"],
        "column": values["column"] or "新闻发布", "channels": values["channels"],
        "overrides": overrides, "priority": values["priority"] or "normal",
        "metadata": {k: v for k, v in values["md"].items() if v},
    }
    names = values.get("co_authors", "").replace("，", ",").split(",")
    data["co_authors"] = [name.strip() for name in names if name.strip()]
    if values.get("group"):
        data["group"] = values["group"]
    if values["parent"]:
        data["parent"] = values["parent"]  # parse_release reads the number and checks its range
    if values.get("corrects"):
        data["corrects"] = values["corrects"]
    return data


def problems_of(exc: InvalidInput) -> list[dict[str, str]]:
    return [{"field": field_label(f), "message": zh(m)} for f, m in exc.problems]


def channel_rows(ctx: Context, author: str) -> list[ChannelInstance]:
    """The channels `author` may name in a release: their unit's."""
    with UnitOfWork(ctx) as uow:
        rows = unit_channels(uow.session, author)
        for row in rows:
            uow.session.expunge(row)
        return rows


def counted(kind: str, payload: dict[str, Any]) -> str | None:
    """Characters as the channel counts them, for the fields its adapter limits."""
    try:
        limits = adapter_class(kind).limits
    except UnknownKind:
        return None
    shown = []
    for limit in limits:
        if (value := limit.value_in(payload)) is not None:
            shown.append(limit.shown(value) if len(limits) == 1 else f"{limit.label} {limit.shown(value)}")
    return "；".join(shown) or None


def preview(ctx: Context, values: dict[str, Any], actor: str) -> dict[str, Any]:
    """Every chosen channel's document for the unsaved form, with its problems."""
    try:
        data = parse_release(release_data(values))
    except InvalidInput as exc:
        return {"ok": False, "problems": problems_of(exc), "channels": []}
    problems = []
    refusal = disclosure_problem(data.metadata.disclosure)
    if refusal is not None:
        problems.append({"field": METADATA_LABELS["disclosure"], "message": refusal})
    rows = {row.name: row for row in channel_rows(ctx, actor)}
    shown = []
    with UnitOfWork(ctx) as uow:
        if wrong := correction_problems(uow.session, data.corrects, actor):
            problems += problems_of(InvalidInput(wrong))
            data = data.model_copy(update={"corrects": None})  # nothing of that release shown
        release, _ = draft(data, Path("."))  # the form names no files
        for name in data.channels:
            row = rows.get(name)
            if row is None:
                problems.append({"field": "发布渠道", "message": f"没有名为 {name} 的渠道"})
                continue
            shown.append(_one(ctx, row, release_view(ctx.settings, release, name,
                                                     session=uow.session)))
    return {"ok": not problems and all(not c["problems"] for c in shown),
            "problems": problems, "channels": shown}


def _one(ctx: Context, row: ChannelInstance, view: ReleaseView) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": row.name, "kind": row.kind, "problems": [],
                             "document": "", "html": False, "count": None}
    try:
        adapter = adapter_for(ctx.settings, row)
        payload = adapter.render(view)
        fmt = adapter.formats[0]
        entry.update(document=adapter.document(payload, fmt), html=fmt == "html",
                     count=counted(row.kind, payload))
        entry["problems"] = [f"{p.field}：{p.message}" for p in adapter.problems(payload)]
    except (ChannelError, InvalidInput) as exc:
        entry["problems"] = [str(exc)]
    except Exception as exc:  # a preview must show the trouble, not fail the page
        log.exception("preview of %s failed", row.name)
        entry["problems"] = [f"无法渲染：{type(exc).__name__}"]
    return entry
