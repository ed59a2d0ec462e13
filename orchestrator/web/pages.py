"""What every console page shares: the templates, times in Beijing time, redirects, actions.

Kept apart from console.py so each room's module can import it without a cycle.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from orchestrator.domain.audit_actions import Action
from orchestrator.domain.errors import Forbidden, InvalidInput, Refused
from orchestrator.domain.release import METADATA_LABELS
from orchestrator.domain.states import STATE_LABELS
from orchestrator.usecases.unit_of_work import Context
from orchestrator.web.auth import Viewer, csrf_token, flash

HERE = Path(__file__).resolve().parent
CST = dt.timezone(dt.timedelta(hours=8), "CST")  # China has one zone and no summer time

templates = Jinja2Templates(directory=str(HERE / "templates"))

ACTION_LABELS = {action.value: action.label for action in Action}
ROLE_LABELS = {
    "author": "新闻办撰稿", "reviewer": "部门审核", "secrecy": "保密审查", "approver": "领导签发",
    "channel_admin": "渠道管理", "auditor": "审计", "admin": "系统管理员",
}


def local_time(value: dt.datetime | str | None, seconds: bool = False) -> str:
    """Times are stored in UTC and shown in Beijing time."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


templates.env.filters["local"] = local_time
templates.env.filters["state"] = lambda s: STATE_LABELS.get(str(s), str(s))
templates.env.filters["role"] = lambda r: ROLE_LABELS.get(str(r), str(r))
templates.env.filters["action"] = lambda a: ACTION_LABELS.get(str(a), "")
# readable JSON (Chinese as is); autoescaping still applies, unlike Jinja's tojson|safe
templates.env.filters["jsonish"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)


def ctx_of(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def root(request: Request) -> str:
    """Where the console is mounted (e.g. /console): every link is built from it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def render(request: Request, template: str, who: Viewer | None, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> Response:
    session = request.state.session
    messages = session.pop("flash", []) if "flash" in session else []
    return templates.TemplateResponse(
        request, template,
        {"who": who, "root": root(request), "csrf": csrf_token(request), "flashes": messages,
         "states": STATE_LABELS, **context},
        status_code=status, headers=headers,
    )


def redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(root(request) + path, status_code=303)


def problem_text(exc: Refused) -> str:
    if isinstance(exc, InvalidInput):
        return "；".join(f"{field_label(f)}：{zh(m)}" for f, m in exc.problems)
    return str(exc)


def act(request: Request, who: Viewer, action: Callable[[], str | None], back: str,
        back_on_refusal: str | None = None) -> Response:
    """Run one use case for a button: success or refusal is flashed, then back to `back`.

    A refusal by the rules (Forbidden, e.g. signing one's own release) is a 403 page,
    so neither a crafted POST nor a stale button can pass for success.
    """
    try:
        message = action()
    except Forbidden as exc:
        return render(request, "error.html", who, status=403, title="无权操作", message=str(exc))
    except Refused as exc:
        flash(request, f"未能完成：{problem_text(exc)}", "error")
        return redirect(request, back_on_refusal or back)
    else:
        if message:
            flash(request, message)
    return redirect(request, back)


FIELD_LABELS = {
    "title": "标题", "summary": "摘要", "body": "正文", "column": "栏目", "channels": "发布渠道",
    **{f"metadata.{key}": label for key, label in METADATA_LABELS.items()}, "parent": "所属主稿",
    "corrects": "更正稿件",
    "priority": "紧急程度", "at": "上线时间", "config": "配置", "kind": "类型", "name": "名称",
    "credentials": "凭据", "release": "稿件编号", "since": "起始时间", "until": "截止时间",
    "reason": "理由", "comment": "意见", "url": "链接", "co_authors": "合作者", "group": "同步上线组",
}
MESSAGES = {
    "Field required": "必填",
    "String should have at least 1 character": "不能为空",
    "List should have at least 1 item after validation, not 0": "至少选择一个",
    "Input should be a valid date or datetime, input is too short": "日期格式应为 2026-11-29",
}


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name, name)


def zh(message: str) -> str:
    """The commonest validation messages in Chinese; the rest as the rules say them."""
    for english, chinese in MESSAGES.items():
        if message.startswith(english):
            return chinese
    return message
