"""Reconciliation that ends: unknown outcomes count under the channel's retry policy, and a
delivery whose lookup keeps answering "not sent" stops in needs_decision, with an alert,
for a person to re-send it or mark it published. Never an endless loop."""

from __future__ import annotations

import pytest
from sqlmodel import select

from channels.sandbox.desk import SmtpServer
from orchestrator.domain import clock
from orchestrator.domain.errors import Forbidden, InvalidInput, Refused
from orchestrator.settings import Settings
from orchestrator.store.models import Alert, AuditEvent, Delivery, DeliveryAttempt, Release
from orchestrator.usecases import alerts, channels, recovery, scheduler
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests import fakes
from tests.conftest import approve_all, drain

MAX_ATTEMPTS = 8


@pytest.fixture
def settings(tmp_path, database_url, alert_hook) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(var_dir=tmp_path, database_url=database_url,
                    site_base_url="http://127.0.0.1:8000/site", alert_webhook_url=alert_hook[0],
                    alert_webhook_secret="whsec_" + "C" * 32, outbound_allow=("127.0.0.1",),
                    _env_file=None)


def delivery(ctx: Context, channel: str) -> Delivery:
    with UnitOfWork(ctx) as uow:
        return uow.session.exec(select(Delivery).where(Delivery.channel == channel)).one()


def release(ctx: Context, rid: int) -> Release:
    with UnitOfWork(ctx) as uow:
        return uow.session.get(Release, rid)


def run_until_quiet(ctx: Context, rounds: int = 60, task_limit: int = 400) -> int:
    """Workers and the scheduler as in production, with time moving on between rounds
    (past any backoff), until nothing is owed; returns the tasks run."""
    ran = 0
    for _ in range(rounds):
        ran += len(drain(ctx, limit=task_limit))
        if ran >= task_limit:
            break
        clock.travel(301)
        scheduler.tick(ctx, redrive_after=0)
        if not ctx.queue.sent:
            break
    return ran


@pytest.fixture
def weibo_20017(ctx: Context, new_release):  # type: ignore[no-untyped-def]
    """alpha answers every publish with 20017 (an unknown outcome) and never posts."""
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "alpha", "memory",
                              {"account": "alpha", "retry": {"base_seconds": 1.0,
                                                             "max_attempts": MAX_ATTEMPTS}},
                              None, "admin_ops")
    fakes.always("alpha", "publish", "unknown_not_posted")
    rid = new_release()
    approve_all(ctx, rid)
    return rid


def test_20017_on_every_call_ends_in_needs_decision_within_the_policy(ctx, weibo_20017, alert_hook):
    run_until_quiet(ctx)
    alpha = delivery(ctx, "alpha")
    sends = fakes.CALLS[("alpha", "publish")]
    assert 1 <= sends <= MAX_ATTEMPTS, f"{sends} publish calls with max_attempts {MAX_ATTEMPTS}"
    assert alpha.state == "needs_decision"
    assert fakes.posts("alpha") == []
    with UnitOfWork(ctx) as uow:
        publishes = uow.session.exec(select(DeliveryAttempt).where(
            DeliveryAttempt.delivery_id == alpha.id, DeliveryAttempt.phase == "publish")).all()
    assert len(publishes) == sends and {a.error_code for a in publishes} == {"20017"}
    # the other channel went out; the release waits for the person, it is not finished
    assert delivery(ctx, "beta").state == "published"
    assert release(ctx, weibo_20017).state == "publishing"
    # and a person hears of it, once: an alert row, its audit event, the webhook
    with UnitOfWork(ctx) as uow:
        [alert] = uow.session.exec(select(Alert)).all()
        events = uow.session.exec(select(AuditEvent).where(
            AuditEvent.action == "alert.needs_decision")).all()
    assert alert.kind == "needs_decision" and alert.delivery_id == alpha.id
    assert alert.sent_at is not None and len(events) == 1
    [told] = alert_hook[1]
    assert told["kind"] == "needs_decision" and told["delivery_id"] == alpha.id
    assert "alpha" in told["text"] and "重新发送" in told["text"]


def test_the_reaper_never_re_drives_a_delivery_that_needs_a_decision(ctx, weibo_20017):
    run_until_quiet(ctx)
    alpha = delivery(ctx, "alpha")
    assert alpha.state == "needs_decision"
    calls = dict(fakes.CALLS)
    for _ in range(3):  # hours pass; the scheduler ticks; nothing is owed by the machine
        clock.travel(3600)
        scheduler.tick(ctx, redrive_after=0)
        drain(ctx)
    assert delivery(ctx, "alpha").state == "needs_decision"
    assert dict(fakes.CALLS) == calls and delivery(ctx, "alpha").attempts == alpha.attempts


def test_the_channel_admin_re_sends_with_a_fresh_budget_and_it_is_audited(ctx, weibo_20017):
    run_until_quiet(ctx)
    alpha = delivery(ctx, "alpha")
    with UnitOfWork(ctx) as uow, pytest.raises(Forbidden):
        recovery.resend(uow, alpha.id, "press")
    fakes.ALWAYS.clear()  # the platform's similar-text window has passed
    with UnitOfWork(ctx) as uow:
        recovery.resend(uow, alpha.id, "admin_ops")
    run_until_quiet(ctx)
    assert delivery(ctx, "alpha").state == "published" and len(fakes.posts("alpha")) == 1
    assert release(ctx, weibo_20017).state == "published"
    with UnitOfWork(ctx) as uow:
        [event] = uow.session.exec(select(AuditEvent).where(
            AuditEvent.action == "delivery.resend")).all()
        open_alerts = alerts.open_alerts(uow.session)
    assert event.actor == "admin_ops" and event.before["state"] == "needs_decision"
    assert open_alerts == []  # the decision closed the alert


def test_a_re_send_that_meets_20017_again_ends_in_needs_decision_again(ctx, weibo_20017):
    run_until_quiet(ctx)
    first = fakes.CALLS[("alpha", "publish")]
    with UnitOfWork(ctx) as uow:
        recovery.resend(uow, delivery(ctx, "alpha").id, "admin_ops")
    run_until_quiet(ctx)
    assert delivery(ctx, "alpha").state == "needs_decision"
    assert fakes.CALLS[("alpha", "publish")] - first <= MAX_ATTEMPTS  # one fresh budget


def test_the_channel_admin_marks_it_published_with_its_url(ctx, weibo_20017):
    run_until_quiet(ctx)
    alpha = delivery(ctx, "alpha")
    for bad in ("", "javascript:alert(1)", "weibo.com/123", "https://weibo.com/1\r\nX: y",
                "https://" + "a" * 2001 + ".cn", "ftp://weibo.com/1"):
        with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput, match="url"):
            recovery.mark_published(uow, alpha.id, "admin_ops", bad)
    assert delivery(ctx, "alpha").state == "needs_decision"  # nothing half-written
    with UnitOfWork(ctx) as uow, pytest.raises(Forbidden):
        recovery.mark_published(uow, alpha.id, "leader", "https://weibo.com/1/AbC")
    with UnitOfWork(ctx) as uow:
        recovery.mark_published(uow, alpha.id, "admin_ops", "https://weibo.com/1/AbC",
                                note="在微博后台找到了这条")
    done = delivery(ctx, "alpha")
    assert done.state == "published" and done.url == "https://weibo.com/1/AbC"
    assert release(ctx, weibo_20017).state == "published"
    with UnitOfWork(ctx) as uow:
        [event] = uow.session.exec(select(AuditEvent).where(
            AuditEvent.action == "delivery.marked_published")).all()
        assert alerts.open_alerts(uow.session) == []
    assert event.actor == "admin_ops" and event.after["url"] == "https://weibo.com/1/AbC"
    with UnitOfWork(ctx) as uow, pytest.raises(Refused):  # decided once
        recovery.mark_published(uow, alpha.id, "admin_ops", "https://weibo.com/1/AbC")


def test_cancel_needs_a_reason_and_is_audited_with_the_state_it_cancelled(ctx, weibo_20017):
    """A cancelled needs_decision (it may be live) must read differently from a cancelled
    failure in the audit trail, and say why."""
    run_until_quiet(ctx)
    alpha = delivery(ctx, "alpha")
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput, match="reason"):
        recovery.cancel(uow, alpha.id, "admin_ops", "  ")
    with UnitOfWork(ctx) as uow, pytest.raises(Forbidden):
        recovery.cancel(uow, alpha.id, "leader", "平台上查无此条")
    assert delivery(ctx, "alpha").state == "needs_decision"  # nothing half-written
    with UnitOfWork(ctx) as uow:
        recovery.cancel(uow, alpha.id, "admin_ops", "平台上查无此条，不再发送")
    assert delivery(ctx, "alpha").state == "cancelled"
    assert release(ctx, weibo_20017).state == "published"  # finishes with the other channel
    with UnitOfWork(ctx) as uow:
        [event] = uow.session.exec(select(AuditEvent).where(
            AuditEvent.action == "delivery.cancelled")).all()
        assert alerts.open_alerts(uow.session) == []
    assert event.actor == "admin_ops" and event.before["state"] == "needs_decision"
    assert event.detail["reason"] == "平台上查无此条，不再发送"


@pytest.mark.parametrize("url", [
    "http://weibo.com/1/AbC",  # not https
    "http://10.1.2.3/x",  # a private address
    "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
    "https://192.168.1.10/weibo/1",
    "https://user:hunter2@weibo.com/1/AbC",  # credentials, shown to every reader
    "https://weibo.com:8443/1/AbC",
    "https://weibo.com/1/\u202egnp.exe",  # a direction override: reads as another address
    "https://weibo.com/1/Ab\u200bC",
    "https://w\u0435ibo.com/1/AbC",  # Cyrillic е: a look-alike of weibo.com
    "https://xn--wibo-53d.com/1/AbC",  # the same look-alike, as IDNA
    "https://weibo.com.evil.example/1/AbC",
    "https://mp.weixin.qq.com/s/AbC",  # another platform
])
def test_mark_published_takes_only_a_plain_https_link_on_the_channels_own_host(
        ctx, weibo_20017, url):
    run_until_quiet(ctx)
    alpha = delivery(ctx, "alpha")
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput, match="url"):
        recovery.mark_published(uow, alpha.id, "admin_ops", url)
    assert delivery(ctx, "alpha").state == "needs_decision"


def test_a_lookup_that_never_answers_asks_a_person_after_max_age(ctx, new_release):
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "alpha", "memory",
                              {"account": "alpha", "retry": {"base_seconds": 1.0,
                                                             "max_age_seconds": 3600}},
                              None, "admin_ops")
    fakes.plan("alpha", "publish", "unknown_not_posted")
    fakes.always("alpha", "lookup", "unknown_not_posted")
    approve_all(ctx, new_release())
    run_until_quiet(ctx, rounds=40)
    assert delivery(ctx, "alpha").state == "needs_decision"
    assert fakes.CALLS[("alpha", "publish")] == 1  # never re-sent while nobody could tell


def test_a_lookup_that_can_never_tell_asks_a_person_at_once(ctx, new_release, alert_hook):
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "alpha", "memory",
                              {"account": "alpha", "retry": {"base_seconds": 1.0}},
                              None, "admin_ops")
    fakes.plan("alpha", "publish", "unknown_after_post")
    fakes.always("alpha", "lookup", "unknowable")
    approve_all(ctx, new_release())
    run_until_quiet(ctx, rounds=5)  # not the policy's six hours of looking
    alpha = delivery(ctx, "alpha")
    assert alpha.state == "needs_decision" and alpha.last_error_code == "unconfirmed"
    assert fakes.CALLS[("alpha", "lookup")] == 1 and fakes.CALLS[("alpha", "publish")] == 1
    assert [told["delivery_id"] for told in alert_hook[1]] == [alpha.id]


def test_a_newsfeed_mail_whose_sender_died_mid_send_is_a_persons_decision(ctx, people, tmp_path):
    """A worker marked the mail `sending` and died: no worker sends it again; a person is
    asked, and only their re-send goes out. Counted from the desk's wire log."""
    from channels import iptc
    from channels.wechat_token import FileTokenStore
    from orchestrator.usecases import releases as releases_uc
    from tests.conftest import release_input

    notes = tmp_path / "private" / "mail-notes"
    with SmtpServer() as desk:
        config = {"delivery": ["email"], "sandbox": True, "note_store": str(notes),
                  "email": {"host": "127.0.0.1", "port": desk.port,
                            "from_addr": "press@example.gov.cn",
                            "to_addrs": ["desk@paper.example.cn"]}}
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "paper", "newsfeed", config, {}, "admin_ops")
        with UnitOfWork(ctx) as uow:
            rid = releases_uc.create(uow, release_input(channels=["paper"]), "press")
        message_id = iptc.message_id(f"tongfa-{rid}-r1-paper", "press.example.gov.cn")
        # what a worker SIGKILLed between its mark and its note leaves behind
        FileTokenStore(notes).remember(f"mailed:{message_id}",
                                       '{"state": "sending", "at": 1000000000.0}')
        approve_all(ctx, rid)
        run_until_quiet(ctx)
        paper = delivery(ctx, "paper")
        assert paper.state == "needs_decision" and paper.last_error_code == "mail_unconfirmed"
        assert desk.wire.entries() == []  # no worker sent it
        with UnitOfWork(ctx) as uow:  # the admin found no mail in the desk's inbox
            recovery.resend(uow, paper.id, "admin_ops")
        run_until_quiet(ctx)
        assert delivery(ctx, "paper").state == "published"
        assert [e["answer"] for e in desk.wire.entries()] == ["250"]


@pytest.mark.parametrize(("retry", "field"), [
    ({"max_attempts": "8"}, "config.retry.max_attempts"),
    ({"bogus": 1}, "config.retry.bogus"),  # once a TypeError in the worker
    ({"max_attempts": -1}, "config.retry.max_attempts"),
    ({"base_seconds": -5}, "config.retry.base_seconds"),
    ({"max_attempts": 10**12}, "config.retry.max_attempts"),  # 'never loops' only in name
    ({"max_age_seconds": 1e300}, "config.retry.max_age_seconds"),
    ({"max_attempts": True}, "config.retry.max_attempts"),
    ("eight", "config.retry"),
])
def test_a_bad_retry_policy_is_refused_when_saved_naming_the_key(ctx, retry, field):
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput) as refused:
        channels.save_channel(uow, "alpha", "memory", {"account": "alpha", "retry": retry},
                              None, "admin_ops")
    assert [f for f, _ in refused.value.problems] == [field]


def test_a_retry_policy_edited_into_the_database_fails_only_its_channel(ctx, new_release):
    with UnitOfWork(ctx) as uow:  # past the check: written by hand in the database
        alpha = channels.get_channel(uow.session, "alpha")
        alpha.config = {**alpha.config, "retry": {"bogus": 1}}
        uow.session.add(alpha)
        uow.commit()
    fakes.plan("alpha", "publish", "retryable")
    approve_all(ctx, new_release())
    run_until_quiet(ctx)  # no worker task crashes
    failed = delivery(ctx, "alpha")
    assert failed.state == "failed" and "retry.bogus" in failed.last_error
    assert delivery(ctx, "beta").state == "published"


# ------------------------------------------------------------------ the entry points


def test_the_decision_over_the_api(ctx, people, weibo_20017):
    from fastapi.testclient import TestClient

    from orchestrator.bootstrap import make_app

    run_until_quiet(ctx)
    api = TestClient(make_app(ctx))

    def as_(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {people[who]}"}

    assert api.get("/api/v1/decisions", headers=as_("press")).status_code == 403
    [waiting] = api.get("/api/v1/decisions", headers=as_("admin_ops")).json()
    assert waiting["channel"] == "alpha" and waiting["release_id"] == weibo_20017
    url = f"/api/v1/deliveries/{waiting['id']}/mark-published"
    bad = api.post(url, json={"url": "javascript:alert(1)"}, headers=as_("admin_ops"))
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "url"
    assert api.post(url, json={"url": "https://weibo.com/1/X"},
                    headers=as_("auditor")).status_code == 403
    done = api.post(url, json={"url": "https://weibo.com/1/X"}, headers=as_("admin_ops"))
    assert done.status_code == 200
    assert api.get("/api/v1/decisions", headers=as_("admin_ops")).json() == []
    shown = api.get(f"/api/v1/releases/{weibo_20017}", headers=as_("press")).json()
    assert shown["state"] == "published"


def test_the_decision_through_the_cli(ctx, weibo_20017, tmp_path):
    import json
    import os
    import subprocess
    import sys

    run_until_quiet(ctx)
    env = {**os.environ, "TONGFA_VAR_DIR": str(ctx.settings.var_dir),
           "TONGFA_DATABASE_URL": ctx.settings.database_url}
    env.pop("TONGFA_BROKER_URL", None)

    def tongfa(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args],
                                capture_output=True, text=True, env=env, timeout=60)
        assert (result.returncode == 0) == ok, result.stderr
        return result

    tongfa("delivery", "decisions", "--as", "press", ok=False)
    [waiting] = json.loads(tongfa("delivery", "decisions", "--as", "admin_ops", "--json").stdout)
    assert "needs_decision" in tongfa("alerts").stdout
    refused = tongfa("delivery", "mark-published", str(waiting["id"]), "--as", "admin_ops",
                     "--url", "weibo.com/1", ok=False)
    assert refused.stderr.startswith("refused: url")
    tongfa("delivery", "resend", str(waiting["id"]), "--as", "admin_ops")
    assert delivery(ctx, "alpha").state == "pending"
    assert "no open alerts" in tongfa("alerts").stdout


# ------------------------------------------------- an error before the request left


class CountingSmtp(SmtpServer):
    """The desk's mailbox, counting every MAIL FROM: an envelope on the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]  # noqa: N802
        self.envelopes += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


@pytest.mark.parametrize("email_changes, code", [
    ({"from_addr": "press@example.gov.cn\r\nBcc: evil@example.com"}, "bad_header"),
    ({"provider_domain": "新闻办.政务"}, "bad_message"),  # Message-ID the encoder refuses
], ids=["crlf-header", "unencodable-message-id"])
def test_a_request_the_email_library_refuses_fails_at_once_with_nothing_sent(
        ctx, people, email_changes, code):
    from orchestrator.usecases import releases as releases_uc
    from tests.conftest import release_input

    with CountingSmtp() as desk:
        section = {"host": "127.0.0.1", "port": desk.port, "from_addr": "press@example.gov.cn",
                   "to_addrs": ["desk@paper.example.cn"]}
        config = {"delivery": ["email"], "sandbox": True,
                  "email": {**section, **{k: v for k, v in email_changes.items()
                                         if k in section}},
                  **{k: v for k, v in email_changes.items() if k not in section}}
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, "paper", "newsfeed", config, {}, "admin_ops")
        with UnitOfWork(ctx) as uow:
            rid = releases_uc.create(uow, release_input(channels=["paper"]), "press")
        approve_all(ctx, rid)
        run_until_quiet(ctx)
        paper = delivery(ctx, "paper")
        assert paper.state == "failed" and paper.last_error_code == code
        assert "未发出任何内容" in paper.last_error or "标头" in paper.last_error
        with UnitOfWork(ctx) as uow:
            publishes = uow.session.exec(select(DeliveryAttempt).where(
                DeliveryAttempt.delivery_id == paper.id,
                DeliveryAttempt.phase == "publish")).all()
        assert [(a.outcome, a.error_code) for a in publishes] == [("permanent", code)]
        assert desk.envelopes == 0 and desk.messages == []  # nothing on the wire
    assert release(ctx, rid).state == "failed"
