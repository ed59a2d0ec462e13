"""The command line on a new empty database: outputs, --json shapes, refusals."""

import csv
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
    site = json.dumps({"web_root": str(tmp_path / "site")})
    tongfa("channels", "add", "website", "--kind", "website", "--config", site, "--as", "ops")
    tongfa("channels", "add", "weibo-office", "--kind", "weibo", "--config", json.dumps(
        {"api_base": "http://127.0.0.1:9", "safe_domain": "127.0.0.1"}),
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
    asked = tongfa("release", "schedule", rid, "--at", "2099-01-01T09:00:00+08:00", "--as", "press")
    assert "until an approver signs" in asked.stdout
    tongfa("release", "reschedule", rid, "--as", "press", ok=False)  # four-eyes
    assert "scheduled" in tongfa("release", "reschedule", rid, "--as", "zhao").stdout
    exported = list(csv.DictReader(io.StringIO(tongfa("audit", "query", "--release", rid,
                                                      "--csv").stdout)))
    assert [e["action"] for e in exported][:2] == ["release.created", "release.submitted"]
    assert "OK" in tongfa("audit", "verify").stdout


def test_preview_prints_what_each_kind_would_send(tongfa, tmp_path):
    tongfa("channels", "add", "website", "--kind", "website", "--config",
           json.dumps({"web_root": str(tmp_path / "site")}))
    tongfa("channels", "add", "weibo-office", "--kind", "weibo", "--config", json.dumps(
        {"api_base": "http://127.0.0.1:9", "safe_domain": "127.0.0.1"}))
    page = tongfa("preview", str(EXAMPLE), "--kind", "website").stdout
    assert page.startswith("<!DOCTYPE html>") and "某政办发〔2026〕18号" in page
    post = tongfa("preview", str(EXAMPLE), "--kind", "weibo").stdout
    assert "省政府召开常务会议" in post and "/140 字" in post
    bad = tongfa("preview", str(EXAMPLE), "--kind", "nonesuch", ok=False)
    assert bad.stderr.startswith("refused: kind: unknown channel kind")
