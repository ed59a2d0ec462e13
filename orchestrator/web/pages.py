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

from orchestrator.domain.errors import Forbidden, InvalidInput, Refused
from orchestrator.usecases.unit_of_work import Context
from orchestrator.web.auth import Viewer, csrf_token, flash

HERE = Path(__file__).resolve().parent
CST = dt.timezone(dt.timedelta(hours=8), "CST")  # China has one zone and no summer time

templates = Jinja2Templates(directory=str(HERE / "templates"))

STATE_LABELS = {
    "draft": "草稿", "in_review": "审核中", "rejected": "已退回", "approved": "已签发",
    "scheduled": "已定时", "publishing": "发布中", "published": "已发布",
    "partially_published": "部分发布", "failed": "发布失败", "withdrawn": "已撤回",
    "pending": "待准备", "staging": "准备中", "staged": "已就绪", "confirming": "待平台确认",
    "reconciling": "核对中", "cancelled": "已取消", "needs_decision": "待人工决定",
}
ACTION_LABELS = {
    "release.created": "创建稿件", "release.edited": "修改稿件", "release.submitted": "提交审核",
    "review.signed": "签署", "review.rejected": "退回", "release.approved": "签发通过",
    "release.scheduled": "设定上线时间", "release.held": "暂缓上线", "release.go_live": "上线",
    "release.forced_go_live": "强制上线", "release.finished": "发布结束",
    "release.withdrawn": "撤回", "delivery.created": "生成投递", "delivery.state": "投递状态变化",
    "delivery.attempt.stage": "准备尝试", "delivery.attempt.publish": "发布尝试",
    "delivery.resend": "重新发送", "delivery.cancelled": "取消投递", "channel.saved": "保存渠道",
    "channel.tested": "测试连接", "channel.paused": "暂停渠道", "channel.resumed": "恢复渠道",
    "user.saved": "保存用户", "user.password_set": "设置密码",
    "user.roles_changed": "调整角色", "user.disabled": "停用用户", "user.enabled": "启用用户",
    "token.created": "签发接口令牌", "token.revoked": "吊销接口令牌",
    "release.reschedule_requested": "申请改期", "release.rescheduled": "签署改期",
    "release.reschedule_refused": "驳回改期", "release.group_consented": "同意加入同步上线组",
    "release.group_removed": "移出同步上线组",
    "release.group_refused": "拒绝加入同步上线组",
    "delivery.marked_published": "人工确认已发布", "alert.needs_decision": "告警：待人工决定",
    "alert.held": "告警：上线受阻",
}
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
    "metadata.index_number": "索引号", "metadata.issuing_body": "发布机构",
    "metadata.document_number": "文号", "metadata.date_written": "成文日期",
    "metadata.date_published": "发布日期", "metadata.subject_category": "主题分类",
    "metadata.disclosure": "公开属性", "metadata.validity": "有效性", "parent": "所属主稿", "corrects": "更正稿件",
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
