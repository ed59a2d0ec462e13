"""The sandboxes' wire logs and fault schedules: every call that reached a platform is
recorded with its answer, refusals included, and faults come by request count."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from channels.contract import OutcomeUnknown, RetryableError
from channels.newsfeed import NewsfeedAdapter
from channels.sandbox import cms, wirelog
from channels.sandbox.desk import PASSWORD, USER, SftpServer, SmtpServer
from channels.sandbox.faults import Faults, _hits
from channels.sandbox.server import SandboxServer
from channels.sandbox.weibo import create_app as weibo_app
from tests.channels.test_cms_push import SECRET, adapter_for
from tests.channels.test_cms_push import release as cms_release
from tests.channels.test_newsfeed import release as feed_release

UID, TOKEN = "5000000001", "tok-1"
SHARE = "/2/statuses/share.json"
LINK = "http://127.0.0.1/articles/7.html"


def wire(url):
    return requests.get(f"{url}/_sandbox/wire", timeout=5).json()


def fault_log(url):
    return requests.get(f"{url}/_sandbox/faults/log", timeout=5).json()


def test_weibo_logs_every_share_with_its_answer_and_its_faults_by_count():
    with SandboxServer(weibo_app({UID: TOKEN})) as server:
        requests.post(f"{server.url}/_sandbox/faults", timeout=5, json={"schedule": [
            {"path": "statuses/share.json", "fault": "drop", "at": [2]},
            {"path": "statuses/share.json", "fault": "busy", "at": [3]}]}).raise_for_status()
        answers = [requests.post(f"{server.url}{SHARE}", timeout=5, data={
            "access_token": TOKEN, "status": f"{'甲乙'[i % 2]}通知 {LINK}?v={i % 2}"}).status_code
            for i in range(4)]
        assert answers == [200, 504, 500, 400]  # ok, answer lost, busy, repeat (20019)
        log = wire(server.url)
        assert [(e["answer"], e["accepted"]) for e in log] == [
            ("ok", True), ("dropped:504", True), ("10001", False), ("20019", False)]
        assert {e["account"] for e in log} == {UID}
        assert {e["target"] for e in log} == {f"{LINK}?v=0", f"{LINK}?v=1"}
        assert all(e["create"] and len(e["digest"]) == 64 for e in log)
        assert [(f["fault"], f["n"], f["source"]) for f in fault_log(server.url)] == [
            ("drop", 2, "schedule"), ("busy", 3, "schedule")]


def test_a_share_schedule_picks_the_same_requests_whatever_the_order_of_arrival():
    rule = {"share": 0.3}
    first = [n for n in range(1, 200) if _hits(rule, n, "7/0/share")]
    again = [n for n in reversed(range(1, 200)) if _hits(rule, n, "7/0/share")]
    assert first == sorted(again) and 30 < len(first) < 90
    assert first != [n for n in range(1, 200) if _hits(rule, n, "8/0/share")]  # the seed counts


def test_a_schedule_picks_requests_by_number():
    assert [n for n in range(1, 13) if _hits({"every": 5, "offset": 2}, n, "")] == [2, 7, 12]
    assert [n for n in range(1, 13) if _hits({"at": [3, 4]}, n, "")] == [3, 4]


def test_a_schedule_rule_must_say_which_requests():
    with pytest.raises(ValueError, match="which requests"):
        Faults(schedule=[{"path": "x", "fault": "busy"}])


def test_the_cms_receiver_logs_refusals_repeats_and_a_push_kept_before_a_late_answer():
    with SandboxServer(cms.create_app(SECRET)) as server:
        requests.post(f"{server.url}/_sandbox/faults", timeout=5, json={"schedule": [
            {"path": "/api/releases", "fault": "status", "status": 503, "at": [1]},
            {"path": "/api/releases", "fault": "slow", "ms": 1200, "at": [2]}]})
        adapter = adapter_for(server, timeout_seconds=0.4)
        payload = adapter.render(cms_release(7))
        with pytest.raises(RetryableError):
            adapter.publish(payload, {}, "tongfa-7-r1-cms")
        with pytest.raises(OutcomeUnknown):  # kept, but answered after we stopped waiting
            adapter.publish(payload, {}, "tongfa-7-r1-cms")
        adapter.publish(payload, {}, "tongfa-7-r1-cms")  # a repeat: the first answer again
        assert [(e["answer"], e["accepted"], e["target"]) for e in wire(server.url)] == [
            ("503", False, "tongfa-7-r1-cms"), ("201", True, "tongfa-7-r1-cms"),
            ("repeat", False, "tongfa-7-r1-cms")]
        assert adapter.lookup(payload, "tongfa-7-r1-cms") is not None


def test_the_desk_logs_uploads_renames_and_mail_and_breaks_them_by_count(tmp_path: Path):
    (tmp_path / "desk").mkdir()
    with SftpServer(tmp_path / "desk") as sftp, SmtpServer() as smtp:
        sftp.faults.set(schedule=[{"path": "sftp/upload", "fault": "disconnect", "at": [1]},
                                  {"path": "sftp/rename", "fault": "drop", "at": [1]}])
        smtp.faults.set(schedule=[{"path": "smtp/DATA", "fault": "status", "at": [1]}])
        adapter = NewsfeedAdapter({"delivery": ["sftp", "email"], "sftp": {
            "host": "127.0.0.1", "port": sftp.port, "username": USER, "accept_any_host_key": True,
            "timeout_seconds": 3}, "email": {"host": "127.0.0.1", "port": smtp.port,
                                             "from_addr": "press@127.0.0.1",
                                             "to_addrs": ["desk@127.0.0.1"]}},
            {"sftp_password": PASSWORD})
        payload, key = adapter.render(feed_release(7)), "tongfa-7-r1-newsfeed"
        with pytest.raises(RetryableError):  # the connection breaks mid-upload
            adapter.publish(payload, {}, key)
        with pytest.raises(OutcomeUnknown):  # renamed into place, answer lost
            adapter.publish(payload, {}, key)
        with pytest.raises(RetryableError):  # the file is in place: only the mail goes; 451
            adapter.publish(payload, {}, key)
        adapter.publish(payload, {}, key)
        assert [(e["operation"], e["answer"], e["accepted"]) for e in sftp.wire.entries()] == [
            ("upload", "disconnected", False), ("upload", "ok", False), ("rename", "dropped", True)]
        assert {e["target"] for e in sftp.wire.entries()} == {"tongfa-7-v1.xml"}
        mails = smtp.wire.entries()
        assert [(e["answer"], e["accepted"]) for e in mails] == [("451", False), ("250", True)]
        assert {e["target"] for e in mails} == {f"<{key}@press.example.gov.cn>"}
        assert [f["fault"] for f in sftp.faults.logged() + smtp.faults.logged()] == [
            "disconnect", "drop", "status"]


def test_a_wire_log_given_a_directory_can_be_read_from_it(tmp_path: Path):
    log = wirelog.WireLog("smtp", tmp_path)
    log.record(account="a", operation="DATA", target="<k@d>", answer="250", accepted=True,
               create=True, content=b"x", received_at=time.time())
    assert wirelog.read(tmp_path) == log.entries()


def test_wechat_logs_each_submit_by_the_article_it_publishes_repeats_included(tmp_path: Path):
    from channels.sandbox.wechat import create_app as wechat_app
    from channels.wechat import WeChatAdapter
    from tests.contract.harnesses import view

    with SandboxServer(wechat_app({"wx0001": "secret-1"})) as server:
        requests.post(f"{server.url}/_sandbox/faults", timeout=5, json={"schedule": [
            {"path": "freepublish/submit", "fault": "quota", "at": [1]}]})
        wx = WeChatAdapter({"api_base": server.url, "appid": "wx0001", "sandbox": True,
                            "token_store": str(tmp_path)}, {"appsecret": "secret-1"})
        payload = wx.render(view(id=7, url=LINK))
        staged = wx.stage(payload, "k7")
        for _ in range(3):  # 45009; published; the same draft again, gone from the box (40007)
            try:
                wx.publish(payload, staged, "k7")
            except Exception:  # noqa: BLE001, S110 (the answers are what is checked)
                pass
        log = wire(server.url)
        assert [(e["answer"], e["accepted"]) for e in log] == [
            ("45009", False), ("ok", True), ("40007", False)]
        assert {(e["account"], e["target"], e["operation"]) for e in log} == {
            ("wx0001", LINK, "freepublish/submit")}
