"""A reader can check that a government web page is the one that went live: its footer
names the hash of the article and links to its publishing record — the go-live event and
the logged page hash, each with an inclusion proof against a signed checkpoint."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from orchestrator.usecases import transparency
from tests.test_audit_proofs import SCRIPT
from tests.test_website_files import approved, get, site  # noqa: F401 - the fixture


def test_a_live_page_verifies_against_its_publishing_record(ctx, site, tmp_path):  # noqa: F811
    rid = approved(ctx, tmp_path, "关于公布冬季供暖价格的通知")
    transparency.checkpoint(ctx)  # the go-live event is in the log: its page hash is logged
    transparency.checkpoint(ctx)  # and that too: the record is published
    page = get(f"{site}/articles/{rid}.html")
    footer = re.search(
        r'内容哈希（SHA-256）<code>([0-9a-f]{64})</code> · <a href="([^"]+)"', page.text
    )
    assert page.status_code == 200 and footer, page.text[-600:]
    assert footer.group(2).endswith(f"/transparency/releases/{rid}.json")
    record = get(f"{site}/transparency/releases/{rid}.json").json()
    assert record["page_hash"] == footer.group(1)
    assert record["go_live"]["event"]["action"] == "release.go_live"
    (tmp_path / "page.html").write_text(page.text, encoding="utf-8")
    (tmp_path / "record.json").write_text(json.dumps(record), encoding="utf-8")
    vkey = transparency.log_verifier(ctx.settings).vkey()

    def check(page_file: str = "page.html", record_file: str = "record.json"):
        return subprocess.run(
            [
                sys.executable,
                "-I",
                str(SCRIPT),
                str(tmp_path / record_file),
                "--page",
                str(tmp_path / page_file),
                "--vkey",
                vkey,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = check()
    assert result.returncode == 0 and "is the one it published" in result.stdout, result.stdout

    defaced = page.text.replace(
        "关于公布冬季供暖价格的通知</h1>", "关于公布冬季供暖价格的通知（已废止）</h1>"
    )
    assert defaced != page.text
    (tmp_path / "defaced.html").write_text(defaced, encoding="utf-8")
    result = check(page_file="defaced.html")
    assert result.returncode == 1 and "differs" in result.stdout

    record["go_live"]["event"]["at"] = "2026-01-01T00:00:00.000+00:00"  # an earlier go-live
    (tmp_path / "backdated.json").write_text(json.dumps(record), encoding="utf-8")
    assert check(record_file="backdated.json").returncode == 1


def test_a_go_live_committed_after_a_later_one_was_logged_still_gets_its_record(
    ctx,
    site,  # noqa: F811
    tmp_path,
):
    """Ids are taken at flush, positions at sequencing: a go-live whose transaction took
    its id first but committed after a later go-live was already in a checkpoint comes
    later in the log. Its page is recorded all the same (progress goes by log position)."""
    from sqlalchemy import text

    first = approved(ctx, tmp_path, "关于甲的通知")
    second = approved(ctx, tmp_path, "关于乙的通知")
    with ctx.engine.begin() as conn:  # the first go-live's commit, held back
        held = (
            conn.execute(
                text(
                    "SELECT * FROM audit_event WHERE action = 'release.go_live' AND release_id = :r"
                ),
                {"r": first},
            )
            .mappings()
            .one()
        )
        conn.execute(text("DELETE FROM audit_event WHERE id = :i"), {"i": held["id"]})
    transparency.checkpoint(ctx)
    transparency.checkpoint(ctx)
    releases_dir = ctx.settings.resolved_site_root / "transparency" / "releases"
    assert (releases_dir / f"{second}.json").is_file()
    with ctx.engine.begin() as conn:  # ... and now it commits, with the id it took before
        conn.execute(
            text(
                "INSERT INTO audit_event (id, at, actor, action, subject_type, subject_id, "
                "release_id, channel, before, after, detail, prev_hash, hash) VALUES (:id, :at, "
                ":actor, :action, :subject_type, :subject_id, :release_id, :channel, :before, "
                ":after, :detail, :prev_hash, :hash)"
            ),
            {k: v for k, v in held.items() if k != "seq"},
        )
    for _ in range(3):
        transparency.checkpoint(ctx)
    assert (releases_dir / f"{first}.json").is_file()


def test_a_corrected_page_verifies_against_the_correction_and_the_first_against_its_own(
    ctx,
    site,  # noqa: F811
    tmp_path,
):
    first = approved(ctx, tmp_path, "关于公布冬季供暖价格的通知")
    transparency.checkpoint(ctx)
    transparency.checkpoint(ctx)
    original = get(f"{site}/articles/{first}.html").content
    fix = approved(ctx, tmp_path, "关于公布冬季供暖价格的通知（更正）", corrects=first)
    transparency.checkpoint(ctx)
    transparency.checkpoint(ctx)
    corrected = get(f"{site}/articles/{first}.html").content  # same address, new page
    assert corrected != original and f"/transparency/releases/{fix}.json".encode() in corrected
    vkey = transparency.log_verifier(ctx.settings).vkey()
    for rid, page, ok in ((first, original, 0), (fix, corrected, 0), (first, corrected, 1)):
        (tmp_path / "page.html").write_bytes(page)
        record = get(f"{site}/transparency/releases/{rid}.json").content
        (tmp_path / "record.json").write_bytes(record)
        result = subprocess.run(
            [
                sys.executable,
                "-I",
                str(SCRIPT),
                str(tmp_path / "record.json"),
                "--page",
                str(tmp_path / "page.html"),
                "--vkey",
                vkey,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == ok, (rid, result.stdout)
