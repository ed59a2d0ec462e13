"""The e-mail transport never lets a line break into a header (defence in depth: the
release input refuses them first). A CR/LF title once made `EmailMessage` raise inside
publish; the worker took that for an unknown outcome and, e-mail being unreadable, sent
the release round the publish loop for ever."""

from __future__ import annotations

import pytest

from channels.contract import PermanentError
from channels.newsfeed import NewsfeedAdapter
from tests.channels.test_newsfeed import TITLE, SmtpServer, email_config, go_live, release


def test_a_line_break_in_the_title_reaches_the_desk_as_one_header_line():
    with SmtpServer() as server:
        adapter = NewsfeedAdapter({"delivery": ["email"], "email": email_config(server.port)})
        payload, _ = go_live(adapter, release(title=f"{TITLE}\r\nBcc: evil@example.com\u2028x"))
    assert "\n" not in payload["email"]["subject"] and "\r" not in payload["email"]["subject"]
    [msg] = server.parsed()
    assert msg["subject"] == f"{TITLE} Bcc: evil@example.com x"
    assert msg["bcc"] is None and len(msg.get_all("subject")) == 1


def test_a_header_the_email_library_refuses_is_a_permanent_error_not_a_crash():
    with SmtpServer() as server:
        adapter = NewsfeedAdapter({"delivery": ["email"], "email": email_config(server.port)})
        payload = adapter.render(release())
        payload["email"]["subject"] = "注入\r\nBcc: evil@example.com"  # as a stale payload might
        with pytest.raises(PermanentError) as err:
            adapter.publish(payload, {}, "tongfa-8-r1-paper")
    assert err.value.code == "bad_header" and server.messages == []
