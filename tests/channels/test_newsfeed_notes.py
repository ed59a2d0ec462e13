"""A newsfeed e-mail goes out once: the accepted Message-ID is noted for lookup(), so a
worker that dies after the mail server said 250 does not make the desks a second mail."""

from pathlib import Path

import pytest

from channels.contract import RetryableError
from channels.newsfeed import NewsfeedAdapter
from channels.sandbox.desk import SmtpServer
from tests.channels.test_newsfeed import email_config, release


def adapter(port: int, notes: Path) -> NewsfeedAdapter:
    return NewsfeedAdapter({"delivery": ["atom", "email"], "email": email_config(port),
                            "atom": {"directory": str(notes.parent / "feed")},
                            "note_store": str(notes)})


def test_lookup_finds_a_mail_the_server_accepted_even_from_another_worker(tmp_path):
    with SmtpServer() as server:
        one = adapter(server.port, tmp_path / "notes")
        payload = one.render(release())
        assert one.lookup(payload, "tongfa-8-r1-paper") is None  # nothing went out yet
        one.publish(payload, {}, "tongfa-8-r1-paper")
        other = adapter(server.port, tmp_path / "notes")  # the next worker, after a crash
        found = other.lookup(payload, "tongfa-8-r1-paper")
        assert found is not None and found.details["message_id"] == \
            "<tongfa-8-r1-paper@press.example.gov.cn>"
        assert other.lookup(payload, "tongfa-8-r2-paper") is None  # another delivery's mail
    assert len(server.messages) == 1


def test_a_refused_mail_is_not_noted(tmp_path):
    with SmtpServer() as server:
        server.faults.set(schedule=[{"path": "smtp/DATA", "fault": "status", "at": [1]}])
        one = adapter(server.port, tmp_path / "notes")
        payload = one.render(release())
        with pytest.raises(RetryableError):  # 451
            one.publish(payload, {}, "tongfa-8-r1-paper")
        assert one.lookup(payload, "tongfa-8-r1-paper") is None
