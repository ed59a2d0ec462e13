"""The command line on a new empty database: outputs, --json shapes, refusals."""

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "release.yaml"


@pytest.fixture
def tongfa(tmp_path):
    env = {**os.environ, "TONGFA_VAR_DIR": str(tmp_path / "var"),
           "TONGFA_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    env.pop("TONGFA_BROKER_URL", None)

    def run(*args, ok=True):
        result = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args],
                                capture_output=True, text=True, env=env, timeout=60)
        assert (result.returncode == 0) == ok, result.stderr
        return result

    return run


def test_a_release_through_the_cli(tongfa, tmp_path):
    for name, role in (("press", "author"), ("li", "reviewer"), ("wang", "secrecy"),
                       ("zhao", "approver"), ("ops", "channel_admin")):
        token = tongfa("users", "add", name, "--role", role).stdout.strip()
        assert token.startswith("tf_") and len(token.splitlines()) == 1
    site = json.dumps({"web_root": str(tmp_path / "var" / "site")})
    tongfa("channels", "add", "website", "--kind", "website", "--config", site, "--as", "ops")
    tongfa("channels", "add", "weibo-office", "--kind", "weibo", "--config", json.dumps(
        {"api_base": "http://127.0.0.1:9", "safe_domain": "127.0.0.1", "sandbox": True}),
        "--credentials", '{"access_token": "super-secret-token"}', "--as", "ops")
    assert "super-secret-token" not in tongfa("channels", "list", "--json").stdout
    assert "ok" in tongfa("channels", "test", "website").stdout
    failed = tongfa("channels", "test", "weibo-office", ok=False)
    assert "FAILED" in failed.stdout and "super-secret-token" not in failed.stdout

    release_file = tmp_path / "r.yaml"
    release_file.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        "channels: [website, weibo-office, weibo-press]", "channels: [website, weibo-office]")
        .replace("  weibo-press:\n", "  weibo-office:\n"), encoding="utf-8")
    rid = tongfa("release", "create", str(release_file), "--as", "press").stdout.strip()
    assert rid == "1"
    digest = tongfa("release", "submit", rid, "--as", "press").stdout.strip()
    assert len(digest) == 64
    refused = tongfa("review", "approve", rid, "--as", "press", ok=False)
    assert refused.stderr.startswith("refused:") and len(refused.stderr.strip().splitlines()) == 1
    for signer in ("li", "wang", "zhao"):
        tongfa("review", "approve", rid, "--as", signer, "--comment", "同意")
    header = json.loads(tongfa("release", "show", rid, "--as", "ops", "--json").stdout)
    assert "metadata" not in header and "signoffs" not in header  # channel admins: the header
    tongfa("release", "show", rid, "--as", "nobody", ok=False)
    shown = json.loads(tongfa("release", "show", rid, "--as", "li", "--json").stdout)
    assert {"id", "state", "content_hash", "signoffs"} <= set(shown)
    assert shown["state"] == "approved" and shown["content_hash"] == digest
    assert [s["signer"] for s in shown["signoffs"]] == ["li", "wang", "zhao"]
    rows = json.loads(tongfa("deliveries", rid, "--as", "ops", "--json").stdout)
    assert {r["channel"] for r in rows} == {"website", "weibo-office"}
    assert all({"channel", "state", "remote_id", "url", "published_at"} <= set(r) for r in rows)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).replace(microsecond=0).isoformat()
    asked = tongfa("release", "schedule", rid, "--at", soon, "--as", "press")
    assert "until an approver signs" in asked.stdout
    tongfa("release", "reschedule", rid, "--as", "press", ok=False)  # four-eyes
    assert "scheduled" in tongfa("release", "reschedule", rid, "--as", "zhao").stdout
    exported = list(csv.DictReader(io.StringIO(tongfa("audit", "query", "--release", rid,
                                                      "--csv").stdout)))
    assert [e["action"] for e in exported][:2] == ["release.created", "release.submitted"]
    assert "OK" in tongfa("audit", "verify").stdout


def test_preview_prints_what_each_kind_would_send(tongfa, tmp_path):
    tongfa("channels", "add", "website", "--kind", "website", "--config",
           json.dumps({"web_root": str(tmp_path / "var" / "site")}))
    tongfa("channels", "add", "weibo-office", "--kind", "weibo", "--config", json.dumps(
        {"api_base": "http://127.0.0.1:9", "safe_domain": "127.0.0.1", "sandbox": True}))
    page = tongfa("preview", str(EXAMPLE), "--kind", "website").stdout
    assert page.startswith("<!DOCTYPE html>") and "某政办发〔2026〕18号" in page
    post = tongfa("preview", str(EXAMPLE), "--kind", "weibo").stdout
    assert "省政府召开常务会议" in post and "/140 字" in post
    bad = tongfa("preview", str(EXAMPLE), "--kind", "nonesuch", ok=False)
    assert bad.stderr.startswith("refused: kind: unknown channel kind")


def test_people_and_their_tokens_through_the_cli(tongfa):
    first = tongfa("users", "add", "press", "--role", "author", "--expires-days", "5").stdout.strip()
    second = tongfa("users", "new-token", "press", "--label", "cms").stdout.strip()
    listed = json.loads(tongfa("users", "tokens", "press", "--json").stdout)
    assert [t["label"] for t in listed] == ["", "cms"]
    assert first.startswith(listed[0]["id"]) and second.startswith(listed[1]["id"])
    shown = tongfa("users", "tokens", "press").stdout
    assert first not in shown and second not in shown and "active" in shown
    assert "revoked" in tongfa("users", "revoke-token", listed[1]["id"]).stdout
    assert json.loads(tongfa("users", "tokens", "press", "--json").stdout)[1]["state"] == "revoked"
    assert tongfa("users", "revoke-token", "tf_nosuchtok", ok=False).stderr.startswith("refused:")
    assert "expires_days" in tongfa("users", "new-token", "press", "--expires-days", "0",
                                    ok=False).stderr

    assert tongfa("users", "roles", "press", "--add", "reviewer").stdout.strip() == (
        "press: author, reviewer")
    assert tongfa("users", "roles", "press", "--remove", "reviewer").stdout.strip() == (
        "press: author")
    assert "role" in tongfa("users", "roles", "press", "--remove", "author", ok=False).stderr
    tongfa("users", "disable", "press")
    assert "(disabled)" in tongfa("users", "list").stdout
    refused = tongfa("release", "create", str(EXAMPLE), "--as", "press", ok=False)
    assert "press is disabled" in refused.stderr
    tongfa("users", "enable", "press")
    trail = tongfa("audit", "query", "--json").stdout
    assert first not in trail and second not in trail


@pytest.fixture
def user_variable_says_someone_else(monkeypatch):
    monkeypatch.setenv("USER", "someone-else")  # set by anyone: it does not name the operator
    monkeypatch.setenv("LOGNAME", "someone-else")


def test_cli_actions_record_the_operating_system_user(user_variable_says_someone_else, tongfa):
    import pwd

    tongfa("users", "add", "press", "--role", "author")
    tongfa("users", "disable", "press")
    events = json.loads(tongfa("audit", "query", "--json").stdout)
    me = pwd.getpwuid(os.getuid()).pw_name
    assert events and all(e["detail"]["via"] == "cli" and e["detail"]["os_user"] == me
                          for e in events)
    assert "OK" in tongfa("audit", "verify").stdout
@pytest.mark.parametrize(("change", "where"), [
    ({"title": "省政府召开常务会议 机\u200b密★1年"}, "title"),
    ({"overrides": {"website": {"title": "省政府常务会议 机密★1年"}}}, "overrides.website.title"),
    ({"summary": "祕密★1年。会议研究部署今冬明春安全生产。"}, "summary"),
    ({"body": "会议研究部署今冬明春安全生产。\n\n机[密](/site/1.html)★1年"}, "body:paragraph 2"),
    ({"title": "（绝 密）省政府常务会议"}, "title"),
    ({"title": "省政府常务会议 机密\u2b50\ufe0f1年"}, "title"),
], ids=["zero-width", "override", "traditional", "split-by-a-link", "bracketed", "emoji-star"])
def test_release_check_and_submit_refuse_what_would_be_published(tongfa, tmp_path, change, where):
    import yaml

    tongfa("users", "add", "press", "--role", "author")
    tongfa("channels", "add", "website", "--kind", "website", "--config",
           json.dumps({"web_root": str(tmp_path / "var" / "site")}))
    data = {**yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")), "channels": ["website"],
            "overrides": {}, **change}
    release_file = tmp_path / "r.json"
    release_file.write_text(json.dumps(data, ensure_ascii=False, default=str), encoding="utf-8")
    rid = tongfa("release", "create", str(release_file), "--as", "press").stdout.strip()

    shown = tongfa("release", "check", rid, "--as", "press", ok=False)  # something blocks: exit 1
    assert shown.returncode == 1
    line = next(x for x in shown.stdout.splitlines() if x.startswith("BLOCK"))
    assert where in line and "密级标识" in line
    found = json.loads(tongfa("release", "check", rid, "--as", "press", "--json", ok=False).stdout)
    assert all(set(f) == {"rule", "severity", "where", "message", "excerpt"} for f in found)
    assert {"rule": "confidentiality_marking", "severity": "block", "where": where} in [
        {k: f[k] for k in ("rule", "severity", "where")} for f in found]

    refused = tongfa("release", "submit", rid, "--as", "press", ok=False)
    assert refused.stderr.startswith("refused:") and where in refused.stderr
    assert json.loads(tongfa("release", "show", rid, "--as", "press", "--json").stdout)["state"] == "draft"


def test_release_check_of_a_clean_release_exits_zero(tongfa, tmp_path):
    tongfa("users", "add", "press", "--role", "author")
    tongfa("channels", "add", "website", "--kind", "website", "--config",
           json.dumps({"web_root": str(tmp_path / "var" / "site")}))
    release_file = tmp_path / "r.yaml"
    release_file.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        "channels: [website, weibo-office, weibo-press]", "channels: [website]")
        .replace("  weibo-press:\n    text: 【权威发布】省政府常务会议部署冬季安全生产，详情请看省政府网站。\n",
                 "  {}\n").replace("overrides:\n  {}", "overrides: {}"), encoding="utf-8")
    rid = tongfa("release", "create", str(release_file), "--as", "press").stdout.strip()
    assert tongfa("release", "check", rid, "--as", "press").stdout.strip() == "no findings"
    assert json.loads(tongfa("release", "check", rid, "--as", "press", "--json").stdout) == []


def _children() -> dict[int, list[int]]:
    """parent pid → its children's pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> dict[int, str]:
    """pid → start time (field 22 of /proc/pid/stat, so a reused pid is not taken for it)."""
    tree, found, todo = _children(), {}, [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if (started := _started(child)) is not None:
                found[child] = started
                todo.append(child)
    return found


def _started(pid: int) -> str | None:
    """Its start time while it runs; None once it is gone (or only a zombie is left)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def test_serve_stops_its_workers_and_scheduler_on_sigterm(tmp_path):
    """`docker stop`, systemd and kill send SIGTERM: the workers stop with serve, as on Ctrl-C."""
    import signal
    import time
    import urllib.request

    from tests.rig import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGFA_")}
    env.update(TONGFA_VAR_DIR=str(tmp_path / "var"), TONGFA_PORT=str(port),
               TONGFA_SITE_BASE_URL=f"http://127.0.0.1:{port}/site",
               TONGFA_DESK_SFTP_PORT=str(free_port()), TONGFA_DESK_SMTP_PORT=str(free_port()))
    serve = subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "serve",
                              "--workers", "1"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while True:  # up: the API answers and every worker has its pool
            assert serve.poll() is None, serve.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "tongfa serve did not come up"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            except OSError:
                time.sleep(0.2)
                continue
            started = _descendants(serve.pid)
            workers = [pid for pid in started if pid in _children().get(serve.pid, [])]
            if len(workers) == 3 and len(started) >= 3 + 4:  # normal ×2, urgent, integrity
                break
            time.sleep(0.2)
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        deadline = time.monotonic() + 30  # a process may still be on its way out
        left = started
        while left and time.monotonic() < deadline:
            left = {pid: at for pid, at in started.items() if _started(pid) == at}
            time.sleep(0.1)
        assert not left, f"still running after SIGTERM: {sorted(left)}"
        assert serve.returncode == 0  # a clean stop, not the signal's default death
    finally:
        for pid, at in started.items():  # never leave a red run's processes behind
            if _started(pid) == at:
                os.kill(pid, signal.SIGKILL)
        if serve.poll() is None:
            serve.kill()
        serve.wait()
