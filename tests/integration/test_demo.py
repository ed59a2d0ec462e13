"""`tongfa demo`: the sample release to every built-in channel, files arriving whole at the desk."""

import email
import email.policy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

pytestmark = pytest.mark.integration


def test_the_demo_reaches_every_channel(tmp_path):
    result = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "demo", "--json",
                             "--keep", str(tmp_path)], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout[result.stdout.index("{"):])
    states = {c["channel"]: c["state"] for c in report["channels"]}
    assert states == dict.fromkeys(
        ["website", "weibo-office", "weibo-press", "wechat", "newsfeed"], "published")
    assert all(c["url"] for c in report["channels"]) and report["spread_ms"] is not None
    drop = tmp_path / "desk" / "incoming"
    for name in ("tongfa-1-v1.xml", "tongfa-1-v1.nitf.xml"):
        root = etree.parse(str(drop / name)).getroot()  # whole, well-formed XML
        assert "省政府召开常务会议部署冬季安全生产工作" in etree.tostring(root, encoding="unicode")
    assert not list(drop.glob(".*part"))
    mail = email.message_from_bytes(next((tmp_path / "desk" / "mailbox").glob("*.eml"))
                                    .read_bytes(), policy=email.policy.default)
    assert mail["subject"].startswith("省政府召开常务会议部署冬季安全生产工作")
    assert Path(tmp_path / "site" / "articles" / "1.html").is_file()
