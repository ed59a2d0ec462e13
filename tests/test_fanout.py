"""Fan-out on one database: claims, staging before go-live, the hash check, retries."""

from sqlmodel import select

from orchestrator.store.models import AuditEvent, Delivery, DeliveryAttempt, Release
from orchestrator.usecases.delivery import firing
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests import fakes
from tests.conftest import approve_all, drain


def deliveries(ctx, release_id):
    with UnitOfWork(ctx) as uow:
        return {d.channel: d for d in uow.session.exec(
            select(Delivery).where(Delivery.release_id == release_id))}


def release(ctx, release_id):
    with UnitOfWork(ctx) as uow:
        return uow.session.get(Release, release_id)


def test_approval_stages_every_channel_then_publishes_all(ctx, new_release):
    rid = new_release()
    assert approve_all(ctx, rid) == "approved"
    assert ctx.queue.sent == [("stage_release", {"release_id": rid})]
    ran = drain(ctx)
    assert ran == ["stage_release"]  # the worker that staged the last channel fires at once
    assert [len(fakes.posts(a)) for a in ("alpha", "beta")] == [1, 1]
    done = release(ctx, rid)
    assert done.state == "published" and done.spread_ms is not None
    for d in deliveries(ctx, rid).values():
        assert d.state == "published" and d.url.startswith("memory://") and d.published_at


def test_a_duplicated_task_publishes_once(ctx, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    ctx.queue.sent = ctx.queue.sent * 2  # the broker delivered every message twice
    drain(ctx)
    firing.fire(ctx, rid)  # and a stray fire after the fact
    assert [len(fakes.posts(a)) for a in ("alpha", "beta")] == [1, 1]
    assert release(ctx, rid).state == "published"


def test_tampered_content_is_never_sent(ctx, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    with UnitOfWork(ctx) as uow:  # the body changes in the database after sign-off
        row = uow.session.get(Release, rid)
        row.body_html = "<p>博彩 广告</p>" + row.body_html
        uow.session.add(row)
        uow.commit()
    drain(ctx)
    assert fakes.posts("alpha") == [] and fakes.posts("beta") == []
    assert {d.last_error_code for d in deliveries(ctx, rid).values()} == {"content_hash_mismatch"}
    assert release(ctx, rid).state == "approved"  # held, never publishing
    with UnitOfWork(ctx) as uow:
        refused = uow.session.exec(select(AuditEvent).where(AuditEvent.action == "delivery.refused")).all()
        assert len(refused) == 2


def test_a_tampered_delivery_payload_is_never_sent(ctx, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    with UnitOfWork(ctx) as uow:
        row = uow.session.exec(select(Delivery).where(Delivery.channel == "beta")).one()
        row.payload = {**row.payload, "text": "替换后的内容"}
        uow.session.add(row)
        uow.commit()
    drain(ctx)
    assert len(fakes.posts("alpha")) == 0  # held: beta never staged, so nothing went live
    assert deliveries(ctx, rid)["beta"].last_error_code == "content_hash_mismatch"


def test_a_failed_stage_holds_every_channel_back(ctx, new_release):
    rid = new_release()
    fakes.plan("beta", "stage", "permanent")
    approve_all(ctx, rid)
    drain(ctx)
    assert fakes.posts("alpha") == []
    assert deliveries(ctx, rid)["alpha"].state == "staged"
    held = release(ctx, rid)
    assert held.state == "approved" and "beta" in held.state_reason


def test_retryable_errors_are_retried_and_every_attempt_recorded(ctx, new_release):
    rid = new_release()
    fakes.plan("alpha", "stage", "retryable")
    fakes.plan("alpha", "publish", "rate_limited")
    approve_all(ctx, rid)
    drain(ctx)
    alpha = deliveries(ctx, rid)["alpha"]
    assert alpha.state == "published" and len(fakes.posts("alpha")) == 1
    with UnitOfWork(ctx) as uow:
        attempts = uow.session.exec(select(DeliveryAttempt).where(
            DeliveryAttempt.delivery_id == alpha.id).order_by(DeliveryAttempt.id)).all()
    assert [(a.phase, a.outcome) for a in attempts] == [
        ("stage", "retryable"), ("stage", "ok"), ("publish", "rate_limited"), ("publish", "ok")]
    assert all(a.duration_ms >= 0 and a.ended_at >= a.started_at for a in attempts)


def test_unknown_outcome_is_reconciled_without_a_second_post(ctx, new_release):
    rid = new_release()
    fakes.plan("alpha", "publish", "unknown_after_post")
    approve_all(ctx, rid)
    ran = drain(ctx)
    assert "reconcile" in ran
    assert len(fakes.posts("alpha")) == 1
    assert deliveries(ctx, rid)["alpha"].state == "published"
    assert release(ctx, rid).state == "published"


def test_a_permanent_publish_error_ends_partially_published(ctx, new_release):
    rid = new_release()
    fakes.plan("beta", "publish", "permanent")
    approve_all(ctx, rid)
    drain(ctx)
    assert release(ctx, rid).state == "partially_published"
    assert deliveries(ctx, rid)["beta"].state == "failed"


def test_every_delivery_step_is_in_the_audit_trail(ctx, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    drain(ctx)
    with UnitOfWork(ctx) as uow:
        actions = [e.action for e in uow.session.exec(
            select(AuditEvent).where(AuditEvent.release_id == rid).order_by(AuditEvent.id))]
    assert actions.count("delivery.attempt.stage") == 2
    assert actions.count("delivery.attempt.publish") == 2
    for expected in ("release.created", "release.submitted", "review.signed", "release.approved",
                     "delivery.created", "release.go_live", "release.finished"):
        assert expected in actions


def test_a_template_altered_after_sign_off_is_caught(ctx, people, tmp_path, monkeypatch):
    import channels.website as website
    from orchestrator.usecases import channels as channel_cases
    from orchestrator.usecases import releases as release_cases
    from tests.conftest import release_input

    with UnitOfWork(ctx) as uow:
        channel_cases.save_channel(uow, "website", "website",
                                   {"web_root": str(tmp_path / "site")}, None, "admin_ops")
    with UnitOfWork(ctx) as uow:
        rid = release_cases.create(uow, release_input(channels=["website"]), "press")
    approve_all(ctx, rid)
    original = website.render
    monkeypatch.setattr(website, "render", lambda kind, name, **kw: original(kind, name, **kw)
                        .replace("<main>", "<main><p>博彩 六合彩 网上赌场</p>"))
    drain(ctx)
    assert not (tmp_path / "site" / "articles" / f"{rid}.html").exists()
    assert deliveries(ctx, rid)["website"].last_error_code == "content_hash_mismatch"
