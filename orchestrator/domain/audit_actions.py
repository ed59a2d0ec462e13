"""Every action the audit trail records, named once, with what the console calls it.

`audit.record` takes only these: a new kind of event is added here first, with its
Chinese name, so the trail, its filters and the console never disagree on a name.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    label: str

    def __new__(cls, value: str, label: str) -> Action:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    RELEASE_CREATED = "release.created", "创建稿件"
    RELEASE_EDITED = "release.edited", "修改稿件"
    RELEASE_SUBMITTED = "release.submitted", "提交审核"
    REVIEW_SIGNED = "review.signed", "签署"
    REVIEW_REJECTED = "review.rejected", "退回"
    RELEASE_APPROVED = "release.approved", "签发通过"
    RELEASE_SCHEDULED = "release.scheduled", "设定上线时间"
    RELEASE_RESCHEDULE_REQUESTED = "release.reschedule_requested", "申请改期"
    RELEASE_RESCHEDULED = "release.rescheduled", "签署改期"
    RELEASE_RESCHEDULE_REFUSED = "release.reschedule_refused", "驳回改期"
    RELEASE_HELD = "release.held", "暂缓上线"
    RELEASE_GO_LIVE = "release.go_live", "上线"
    RELEASE_FORCED_GO_LIVE = "release.forced_go_live", "强制上线"
    RELEASE_FINISHED = "release.finished", "发布结束"
    RELEASE_WITHDRAWN = "release.withdrawn", "撤回"
    RELEASE_GROUP_CONSENTED = "release.group_consented", "同意加入同步上线组"
    RELEASE_GROUP_REFUSED = "release.group_refused", "拒绝加入同步上线组"
    RELEASE_GROUP_REMOVED = "release.group_removed", "移出同步上线组"
    GROUP_LAPSED = "group.lapsed", "同步上线组名失效"
    DELIVERY_CREATED = "delivery.created", "生成投递"
    DELIVERY_STATE = "delivery.state", "投递状态变化"
    DELIVERY_ATTEMPT_STAGE = "delivery.attempt.stage", "准备尝试"
    DELIVERY_ATTEMPT_PUBLISH = "delivery.attempt.publish", "发布尝试"
    DELIVERY_ATTEMPT_LOOKUP = "delivery.attempt.lookup", "查询是否已发出"
    DELIVERY_ATTEMPT_CONFIRM = "delivery.attempt.confirm", "确认上线"
    DELIVERY_ATTEMPT_WITHDRAW = "delivery.attempt.withdraw", "撤回尝试"
    DELIVERY_REFUSED = "delivery.refused", "拒绝发送（内容与签发不一致）"
    DELIVERY_LEASE_EXPIRED = "delivery.lease_expired", "投递超时收回"
    DELIVERY_RESEND = "delivery.resend", "重新发送"
    DELIVERY_CANCELLED = "delivery.cancelled", "取消投递"
    DELIVERY_MARKED_PUBLISHED = "delivery.marked_published", "人工确认已发布"
    CHANNEL_SAVED = "channel.saved", "保存渠道"
    CHANNEL_TESTED = "channel.tested", "测试连接"
    CHANNEL_PAUSED = "channel.paused", "暂停渠道"
    CHANNEL_RESUMED = "channel.resumed", "恢复渠道"
    CHANNEL_CREDENTIALS_REJECTED = "channel.credentials_rejected", "渠道凭据被拒"
    CHANNEL_KEY_ROTATED = "channel.key_rotated", "更换凭据加密密钥"
    PAGE_RECORDED = "transparency.page_recorded", "记录网页内容哈希"
    USER_SAVED = "user.saved", "保存用户"
    USER_PASSWORD_SET = "user.password_set", "设置密码"
    USER_ROLES_CHANGED = "user.roles_changed", "调整角色"
    USER_DISABLED = "user.disabled", "停用用户"
    USER_ENABLED = "user.enabled", "启用用户"
    TOKEN_CREATED = "token.created", "签发接口令牌"
    TOKEN_REVOKED = "token.revoked", "吊销接口令牌"
    UNIT_SAVED = "unit.saved", "保存单位"
    ALERT_NEEDS_DECISION = "alert.needs_decision", "告警：待人工决定"
    ALERT_HELD = "alert.held", "告警：上线受阻"
    ALERT_INTEGRITY = "alert.integrity", "告警：线上内容与签发不一致"
    INTEGRITY_ALERT = "integrity.alert", "完整性检查告警"


def action_named(name: str) -> Action:
    """The action of that name; ValueError names an action nobody declared."""
    try:
        return Action(name)
    except ValueError:
        raise ValueError(f"undeclared audit action {name!r}: add it to Action") from None
