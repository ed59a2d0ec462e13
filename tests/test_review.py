"""The review gate: named sign-off bound to the content, never by the author."""

import threading

import pytest
from sqlmodel import select

from orchestrator.domain.errors import Forbidden, InvalidInput, Refused
from orchestrator.store.models import AuditEvent, Delivery, Release, SignOff
from orchestrator.usecases import releases, review
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests.conftest import approve_all, release_input


def submit(ctx, release_id, actor="press"):
    with UnitOfWork(ctx) as uow:
        return releases.submit(uow, release_id, actor)


def approve(ctx, release_id, signer, comment=""):
    with UnitOfWork(ctx) as uow:
        return review.approve(uow, release_id, signer, comment)


def state_of(ctx, release_id):
    with UnitOfWork(ctx) as uow:
        return uow.session.get(Release, release_id).state


def test_the_default_policy_needs_reviewer_secrecy_and_approver(ctx, new_release):
    rid = new_release()
    digest = submit(ctx, rid)
    assert approve(ctx, rid, "reviewer") == "in_review"
    assert approve(ctx, rid, "secrecy") == "in_review"
    assert approve(ctx, rid, "leader") == "approved"
    with UnitOfWork(ctx) as uow:
        rows = uow.session.exec(select(SignOff).where(SignOff.release_id == rid)).all()
        assert [r.role for r in rows] == ["reviewer", "secrecy", "approver"]
        assert {r.content_hash for r in rows} == {digest}
        assert uow.session.get(Release, rid).approved_hash == digest
        assert len(uow.session.exec(select(Delivery)).all()) == 2


def test_the_author_cannot_sign_their_own_release(ctx, new_release):
    from orchestrator.usecases.users import add_user

    with UnitOfWork(ctx) as uow:  # the author also holds the reviewer role
        add_user(uow, "press", ["reviewer"])
    rid = new_release()
    submit(ctx, rid)
    with pytest.raises(Forbidden, match="author cannot sign"):
        approve(ctx, rid, "press")
    assert state_of(ctx, rid) == "in_review"


def test_one_person_signs_once(ctx, new_release):
    rid = new_release()
    submit(ctx, rid)
    approve(ctx, rid, "allrounder")  # holds every reviewing role
    with pytest.raises(Forbidden, match="already signed"):
        approve(ctx, rid, "allrounder")


def test_a_signer_without_the_step_role_is_refused(ctx, new_release):
    rid = new_release()
    submit(ctx, rid)
    with pytest.raises(Forbidden, match="needs the role reviewer"):
        approve(ctx, rid, "leader")  # the approver cannot jump the queue


def test_edit_after_signoff_voids_it(ctx, new_release):
    rid = new_release()
    submit(ctx, rid)
    approve(ctx, rid, "reviewer")
    with UnitOfWork(ctx) as uow:
        releases.edit(uow, rid, release_input(title="关于做好冬季安全生产工作的通知（修订）"), "press")
    with UnitOfWork(ctx) as uow:
        rows = uow.session.exec(select(SignOff).where(SignOff.release_id == rid)).all()
        assert [r.voided for r in rows] == [True]
        edited = uow.session.exec(select(AuditEvent).where(AuditEvent.action == "release.edited")).one()
        assert edited.detail["signoffs_voided"] == 1
    assert state_of(ctx, rid) == "in_review"
    approve(ctx, rid, "reviewer")  # the same reviewer must sign the new content again


def test_edit_after_approval_goes_back_to_review_and_cancels_deliveries(ctx, new_release):
    rid = new_release()
    approve_all(ctx, rid)
    with UnitOfWork(ctx) as uow:
        releases.edit(uow, rid, release_input(summary="新的摘要"), "press")
    assert state_of(ctx, rid) == "in_review"
    with UnitOfWork(ctx) as uow:
        assert {d.state for d in uow.session.exec(select(Delivery)).all()} == {"cancelled"}
        assert uow.session.get(Release, rid).approved_hash is None


def test_reject_needs_a_reason_and_returns_to_draft_on_edit(ctx, new_release):
    rid = new_release()
    submit(ctx, rid)
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput, match="comment"):
        review.reject(uow, rid, "reviewer", "  ")
    with UnitOfWork(ctx) as uow:
        review.reject(uow, rid, "reviewer", "文号有误")
    assert state_of(ctx, rid) == "rejected"
    with UnitOfWork(ctx) as uow:
        releases.edit(uow, rid, release_input(), "press")
    assert state_of(ctx, rid) == "draft"


@pytest.mark.parametrize("disclosure", ["依申请公开", "不予公开"])
def test_only_proactive_disclosure_can_be_submitted(ctx, people, memory_channels, disclosure):
    meta = release_input().metadata.model_dump(mode="json")
    data = release_input(metadata={**meta, "disclosure": disclosure})
    with UnitOfWork(ctx) as uow:
        rid = releases.create(uow, data, "press")
    with pytest.raises(Refused, match="主动公开"):
        submit(ctx, rid)
    assert state_of(ctx, rid) == "draft"


def test_over_limit_payload_is_refused_at_submit_naming_channel_and_field(ctx, new_release):
    rid = new_release(overrides={"alpha": {"text": "长" * 600}})
    with pytest.raises(InvalidInput, match=r"alpha\.text"):
        submit(ctx, rid)
    assert state_of(ctx, rid) == "draft"


def test_content_changed_behind_the_gate_cannot_be_signed(ctx, new_release):
    rid = new_release()
    submit(ctx, rid)
    with UnitOfWork(ctx) as uow:  # someone edits the row directly, not through the use case
        row = uow.session.get(Release, rid)
        row.body_html = "<p>篡改</p>"
        uow.session.add(row)
        uow.commit()
    with pytest.raises(Refused, match="content changed"):
        approve(ctx, rid, "reviewer")


def test_urgent_releases_take_the_fast_track_but_never_self_approval(ctx, new_release):
    from orchestrator.usecases.users import add_user

    with UnitOfWork(ctx) as uow:
        add_user(uow, "press", ["secrecy"])  # the author also holds the first urgent role
    rid = new_release(priority="urgent")
    submit(ctx, rid)
    with pytest.raises(Forbidden, match="author cannot sign"):
        approve(ctx, rid, "press")
    assert approve(ctx, rid, "secrecy") == "in_review"
    assert approve(ctx, rid, "leader") == "approved"


def test_a_confidentiality_marking_blocks_submission_naming_the_paragraph(ctx, new_release):
    rid = new_release(body="各市人民政府：\n\n机密★1年\n\n请认真贯彻落实。")
    with pytest.raises(InvalidInput) as err:
        submit(ctx, rid)
    assert any(field.startswith("body:paragraph") and "机密" in msg
               for field, msg in err.value.problems)
    assert state_of(ctx, rid) == "draft"


def test_flagged_words_are_shown_but_do_not_block(ctx, new_release):
    rid = new_release(summary="严厉打击网上赌场等违法犯罪活动。")
    submit(ctx, rid)
    with UnitOfWork(ctx) as uow:
        found = releases.check(uow, rid)
    assert any(f["rule"] == "sensitive_word" and f["severity"] == "flag" for f in found)


class TestOnPostgreSQL:
    """Races between signers, on the database production runs (row locks are PostgreSQL's)."""

    @pytest.fixture
    def database_url(self):
        from tests.services import fresh_postgres_database

        with fresh_postgres_database() as url:
            yield url

    @staticmethod
    def race(ctx, monkeypatch, rid, *moves):
        """Run each move in its own thread, all starting together; each waits (up to a generous
        deadline) after reading the release until every other move has read it too, so
        without the row lock every move reads the same state."""
        from orchestrator.usecases import rendering

        arrived, cond = [], threading.Condition()

        def rendezvous(*args, **kwargs):
            with cond:
                arrived.append(1)
                cond.notify_all()
                cond.wait_for(lambda: len(arrived) >= len(moves), timeout=5)
            return rendering.render_all(*args, **kwargs)

        monkeypatch.setattr(review, "render_all", rendezvous)
        start = threading.Barrier(len(moves))
        outcomes: list = [None] * len(moves)

        def one(i, move):
            start.wait()
            try:
                with UnitOfWork(ctx) as uow:
                    outcomes[i] = move(uow)
            except Refused as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=one, args=(i, m)) for i, m in enumerate(moves)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return outcomes

    @staticmethod
    def valid(ctx, rid):
        with UnitOfWork(ctx) as uow:
            return [(r.step, r.decision, r.signer) for r in uow.session.exec(
                select(SignOff).where(SignOff.release_id == rid,
                                      SignOff.voided == False)  # noqa: E712
                .order_by(SignOff.id))]

    def test_two_signers_racing_for_one_step_count_once(self, ctx, new_release, monkeypatch):
        from orchestrator.usecases.users import add_user

        with UnitOfWork(ctx) as uow:
            add_user(uow, "reviewer2", ["reviewer"])
        rid = new_release()
        submit(ctx, rid)
        outcomes = self.race(ctx, monkeypatch, rid,
                             lambda uow: review.approve(uow, rid, "reviewer"),
                             lambda uow: review.approve(uow, rid, "reviewer2"))
        assert sorted(type(o).__name__ for o in outcomes) == ["Forbidden", "str"], outcomes
        assert [(step, decision) for step, decision, _ in self.valid(ctx, rid)] == [(0, "approve")]

    def test_an_approval_racing_a_rejection_leaves_one_of_them(self, ctx, new_release, monkeypatch):
        from orchestrator.usecases.users import add_user

        with UnitOfWork(ctx) as uow:
            add_user(uow, "reviewer2", ["reviewer"])
        rid = new_release()
        submit(ctx, rid)
        outcomes = self.race(ctx, monkeypatch, rid,
                             lambda uow: review.approve(uow, rid, "reviewer"),
                             lambda uow: review.reject(uow, rid, "reviewer2", "数据有误"))
        assert sum(not isinstance(o, Refused) for o in outcomes) == 1, outcomes
        signed = self.valid(ctx, rid)
        assert len(signed) == 1
        assert state_of(ctx, rid) == {"approve": "in_review", "reject": "rejected"}[signed[0][1]]

    def test_the_database_keeps_one_valid_signature_per_step_and_hash(self, ctx, new_release):
        from sqlalchemy.exc import IntegrityError

        rid = new_release()
        digest = submit(ctx, rid)
        row = {"release_id": rid, "revision": 1, "step": 0, "role": "reviewer",
               "decision": "approve", "content_hash": digest}
        with UnitOfWork(ctx) as uow:
            uow.session.add(SignOff(signer="reviewer", voided=True, **row))  # voided: not counted
            uow.session.add(SignOff(signer="reviewer", **row))
            uow.commit()
        with pytest.raises(IntegrityError), UnitOfWork(ctx) as uow:
            uow.session.add(SignOff(signer="allrounder", **row))
            uow.commit()
        with UnitOfWork(ctx) as uow:  # another purpose (a go-live move) is not a review step
            uow.session.add(SignOff(signer="leader", purpose="reschedule", **row))
            uow.commit()

    def test_a_locked_row_is_read_again_not_taken_from_the_session(self, ctx, new_release):
        from orchestrator.usecases.delivery import claims

        rid = new_release()
        with UnitOfWork(ctx) as uow:
            seen = uow.session.get(Release, rid)  # now in this session's identity map
            assert seen.state == "draft"
            with UnitOfWork(ctx) as other:  # another process moves it on meanwhile
                other.session.get(Release, rid).state = "in_review"
                other.commit()
            assert claims.locked(uow.session, Release, rid).state == "in_review"
            assert seen.state == "in_review"  # the same object, read again under the lock
