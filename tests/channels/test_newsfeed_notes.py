"""A newsfeed e-mail goes out once. Each mail is marked in the shared note store: `sending`
(one step, only if unmarked) before DATA, `mailed` on the server's 250, cleared on its
refusal. lookup() answers "not sent" only without a mark, so a worker that dies, or
hears nothing, after the server took the mail never makes the desks a second one.
Counted from the desk's SMTP wire log."""

import uuid
from pathlib import Path

import pytest

from channels import newsfeed
from channels.contract import OutcomeUnknowable, OutcomeUnknown, RetryableError
from channels.newsfeed import NewsfeedAdapter
from channels.sandbox.desk import SmtpServer
from channels.wechat_token import store_for
from tests import services
from tests.channels.test_newsfeed import email_config, release

KEY = "tongfa-8-r1-paper"


def adapter(port: int, notes: Path, **email: float) -> NewsfeedAdapter:
    return NewsfeedAdapter({"delivery": ["atom", "email"], "email": email_config(port, **email),
                            "atom": {"directory": str(notes.parent / "feed")},
                            "note_store": str(notes)})


def data_calls(server: SmtpServer) -> list[str]:
    return [e["answer"] for e in server.wire.entries() if e["operation"] == "DATA"]


def test_lookup_finds_a_mail_the_server_accepted_even_from_another_worker(tmp_path):
    with SmtpServer() as server:
        one = adapter(server.port, tmp_path / "notes")
        payload = one.render(release())
        assert one.lookup(payload, KEY) is None  # nothing went out yet
        one.publish(payload, {}, KEY)
        other = adapter(server.port, tmp_path / "notes")  # the next worker, after a crash
        found = other.lookup(payload, KEY)
        assert found is not None and found.details["message_id"] == \
            "<tongfa-8-r1-paper@press.example.gov.cn>"
        assert other.lookup(payload, "tongfa-8-r2-paper") is None  # another delivery's mail
        other.publish(payload, {}, KEY)  # a re-send after a later failure: nothing to send
    assert data_calls(server) == ["250"]


def test_a_refused_mail_is_not_noted_and_may_go_again(tmp_path):
    with SmtpServer() as server:
        server.faults.set(schedule=[{"path": "smtp/DATA", "fault": "status", "at": [1]}])
        one = adapter(server.port, tmp_path / "notes")
        payload = one.render(release())
        with pytest.raises(RetryableError):  # 451
            one.publish(payload, {}, KEY)
        assert one.lookup(payload, KEY) is None
        one.publish(payload, {}, KEY)
        assert one.lookup(payload, KEY) is not None
    assert data_calls(server) == ["451", "250"]


def test_a_mail_whose_250_never_came_is_not_taken_for_unsent(tmp_path, monkeypatch):
    with SmtpServer() as server:  # takes the mail, then answers after the client gave up
        server.faults.set(schedule=[{"path": "smtp/DATA", "fault": "hold", "at": [1],
                                     "ms": 1500}])
        one = adapter(server.port, tmp_path / "notes", timeout_seconds=0.5)
        payload = one.render(release())
        with pytest.raises(OutcomeUnknown):
            one.publish(payload, {}, KEY)
        other = adapter(server.port, tmp_path / "notes", timeout_seconds=0.5)
        with pytest.raises(OutcomeUnknown) as look:  # its call may still be running
            other.lookup(payload, KEY)
        assert not isinstance(look.value, OutcomeUnknowable)
        with pytest.raises(OutcomeUnknown):  # nor does another call send it meanwhile
            other.publish(payload, {}, KEY)
        assert data_calls(server) == ["250"]
        # past the longest its call can take, no look can tell: a person decides
        monkeypatch.setattr(newsfeed, "MAIL_SLACK_SECONDS", -60.0)
        with pytest.raises(OutcomeUnknowable):
            other.lookup(payload, KEY)
        with pytest.raises(OutcomeUnknowable):  # and it says so every time it is asked
            other.lookup(payload, KEY)
        assert data_calls(server) == ["250"]
        other.publish(payload, {}, KEY)  # only their re-send (they found no mail) goes out
        assert other.lookup(payload, KEY) is not None
    assert data_calls(server) == ["250", "250"]


def test_a_note_store_that_cannot_be_written_sends_nothing(tmp_path):
    (tmp_path / "notes").write_text("a file where the store's folder should be")
    with SmtpServer() as server:
        one = NewsfeedAdapter({"delivery": ["email"], "email": email_config(server.port),
                               "note_store": str(tmp_path / "notes" / "x")})
        with pytest.raises(RetryableError):
            one.publish(one.render(release()), {}, KEY)
    assert data_calls(server) == []


@pytest.mark.parametrize("where", ["folder", "redis"])
def test_of_two_workers_marking_one_mail_one_wins(tmp_path, where):
    location = str(tmp_path) if where == "folder" else services.redis_url(db=13)
    one, other = store_for(location), store_for(location)
    name = f"mailed:<{uuid.uuid4().hex}@test>"  # the Redis is shared: a name of its own
    assert one.remember_first(name, "a") is True
    assert other.remember_first(name, "b") is False
    assert other.recall(name) == "a"
    one.forget(name)
    assert other.remember_first(name, "b") is True
    one.forget(name)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".note-")]


def test_each_installation_keeps_its_own_mail_marks(tmp_path):
    """Message-IDs repeat across installations (release 1 of each): marks kept in one
    machine-wide folder took one installation's mail as the other's and never sent it."""
    from orchestrator.settings import Settings
    from orchestrator.store.models import ChannelInstance
    from orchestrator.usecases.channels import adapter_for

    row = ChannelInstance(name="newsfeed", kind="newsfeed", config={
        "provider_domain": "press.example.gov.cn", "delivery": ["email"],
        "email": {"host": "127.0.0.1", "port": 2525, "from_addr": "a@example.gov.cn",
                  "to_addrs": ["desk@example.gov.cn"], "sandbox": True}})
    one, two = (adapter_for(Settings(var_dir=tmp_path / name, _env_file=None), row)
                for name in ("one", "two"))
    assert one.notes.remember_first("tongfa-1-v1", "mailed")
    assert two.notes.remember_first("tongfa-1-v1", "sending")  # not the other's
    assert str(tmp_path / "one") in str(one.notes.dir)
