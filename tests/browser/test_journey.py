"""The main journey in a real browser: compose → three signatures → schedule → live board → audit."""

from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import expect

from orchestrator.domain import clock
from orchestrator.usecases import scheduler
from tests.browser.conftest import WEIBO_TOKEN, Served, screenshot
from tests.conftest import drain

TITLE = "关于做好2026年冬季供暖保障工作的通知"
CST = dt.timezone(dt.timedelta(hours=8))


def compose(page, served: Served) -> int:  # type: ignore[no-untyped-def]
    page.goto(f"{served.url}/press/new")
    page.get_by_label("标题", exact=True).fill(TITLE)
    page.get_by_label("摘要").fill("部署全省冬季供暖保障。")
    page.get_by_label("正文（Markdown）").fill("各市人民政府：\n\n请**切实做好**供暖保障。")
    page.get_by_label("索引号").fill("11440000/2026-00042")
    page.get_by_label("发布机构").fill("省人民政府办公厅")
    page.get_by_label("文号").fill("某政办发〔2026〕42号")
    page.get_by_label("成文日期").fill("2026-11-20")
    page.locator('input[name=channels][value="gov-site"]').check()
    page.locator('input[name=channels][value="weibo-office"]').check()

    weibo = page.locator('.panel[data-channel="weibo-office"]')
    expect(weibo.locator(".count")).to_contain_text("/ 140 字")
    site = page.frame_locator('.panel[data-channel="gov-site"] iframe')
    expect(site.locator("h1")).to_have_text(TITLE)
    expect(site.locator("table.meta")).to_contain_text("某政办发〔2026〕42号")

    # a channel's limit is shown before anything is submitted
    choice = page.locator(".channel-choice", has=page.locator('input[value="weibo-office"]'))
    choice.locator("summary").click()
    override = page.locator('textarea[name="ov_text__weibo-office"]')
    override.fill("供暖" * 100)
    expect(weibo.locator("ul.problems")).to_contain_text("不超过140字")
    expect(page.locator("#preview-status")).to_have_text("（有需要修改的地方）")
    override.fill("")
    expect(weibo.locator("ul.problems")).to_have_count(0)
    expect(page.locator("#preview-status")).to_have_text("（可以提交）")
    expect(site.locator("h1")).to_have_text(TITLE)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "press-compose", full_page=False)  # Chromium leaves script-made frames blank in full-page shots

    page.get_by_role("button", name="保存并提交审核").click()
    page.wait_for_url(re.compile(r".*/press/\d+$"))
    expect(page.locator("#release-state")).to_have_text("审核中")
    return int(page.url.rsplit("/", 1)[1])


def sign(page, served: Served, release_id: int, digest: str, shot: bool) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{served.url}/review")
    if shot:
        screenshot(page, "reviewer-queue")
    page.get_by_role("link", name=TITLE).click()
    expect(page.locator("#digest")).to_have_text(digest)
    expect(page.locator(".panel", has_text="weibo-office")).to_contain_text("部署全省冬季供暖保障")
    if shot:
        screenshot(page, "reviewer-release")
    page.get_by_role("button", name="同意并签署").click()
    expect(page.locator(".flash.ok")).to_contain_text(f"已签署稿件 {release_id}")
    expect(page.locator("#queue")).not_to_contain_text(TITLE)


def test_compose_sign_schedule_follow_and_audit(person, served: Served) -> None:  # type: ignore[no-untyped-def]
    press = person("press")
    release_id = compose(press, served)
    digest = press.locator("code.hash").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)

    for name in ("reviewer", "secrecy", "leader"):
        sign(person(name), served, release_id, digest, shot=name == "reviewer")

    press.reload()
    expect(press.locator("#release-state")).to_have_text("已签发")
    at = (clock.utcnow() + dt.timedelta(minutes=2)).astimezone(CST)
    press.get_by_label("定时上线（北京时间）").fill(at.strftime("%Y-%m-%dT%H:%M"))
    press.get_by_role("button", name="定时上线", exact=True).click()
    # the go-live time is signed too: after sign-off the author asks, a leader signs
    expect(press.locator(".flash.ok")).to_contain_text(f"已申请改为定于 {at:%Y-%m-%d %H:%M}")
    expect(press.locator("#reschedule")).to_contain_text("待领导签发人签署")
    leader = person("leader")
    leader.goto(f"{served.url}/review/{release_id}")
    expect(leader.locator("#reschedule")).to_contain_text(f"{at:%Y-%m-%d %H:%M}")
    leader.get_by_role("button", name="同意改期并签署").click()
    expect(leader.locator(".flash.ok")).to_contain_text("改期申请已签署生效")
    press.reload()
    expect(press.locator("#release-state")).to_have_text("已定时")

    drain(served.ctx)  # the workers stage every channel ahead of the go-live time
    board = press.locator("#board")
    for channel in ("gov-site", "weibo-office"):
        expect(board.locator(f'tr[data-channel="{channel}"]')).to_have_attribute(
            "data-state", "staged")
    clock.travel(3 * 60)
    assert scheduler.tick(served.ctx)["fired"] == 1
    drain(served.ctx)
    for channel in ("gov-site", "weibo-office"):  # the page was not reloaded: it polls
        expect(board.locator(f'tr[data-channel="{channel}"]')).to_have_attribute(
            "data-state", "published")
    expect(press.locator("#release-state")).to_have_text("已发布")
    expect(press.locator("#board-status")).to_have_text("（已完成）")
    expect(press.locator("#schedule")).to_be_hidden()  # too late to schedule now
    site_link = board.locator('tr[data-channel="gov-site"] a')
    expect(site_link).to_have_attribute("href", re.compile(rf"/site/articles/{release_id}\.html$"))
    page_text = press.request.get(site_link.get_attribute("href")).text()
    assert TITLE in page_text and "某政办发〔2026〕42号" in page_text
    weibo_link = board.locator('tr[data-channel="weibo-office"] a')
    expect(weibo_link).to_have_attribute("href", re.compile("^" + re.escape(served.weibo_url)))
    screenshot(press, "press-board")

    phone = person("press", width=390, height=844)
    phone.goto(f"{served.url}/press/{release_id}")
    expect(phone.locator("#board-status")).to_have_text("（已完成）")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(phone, "press-board-phone")

    auditor = person("auditor")
    auditor.goto(f"{served.url}/audit")
    auditor.get_by_label("稿件编号").fill(str(release_id))
    auditor.get_by_role("button", name="检索").click()
    events = auditor.locator("#events")
    for signer in ("reviewer", "secrecy", "leader"):
        expect(events.locator("tr", has_text="review.signed").filter(has_text=signer)
               ).to_have_count(1)
    screenshot(auditor, "auditor-audit")
    auditor.get_by_role("button", name="校验审计链").click()
    expect(auditor.locator("#verdict")).to_contain_text("审计链完整")
    auditor.goto(f"{served.url}/audit/release/{release_id}")
    expect(auditor.locator("#timeline")).to_contain_text("release.go_live")
    with auditor.expect_download() as download:
        auditor.get_by_role("link", name="导出 CSV").click()
    exported = download.value.path().read_text(encoding="utf-8-sig")
    lines = exported.strip().splitlines()
    assert lines[0].startswith("id,at,actor,action")
    assert any(",release.approved," in line for line in lines)
    assert sum(",review.signed," in line for line in lines) == 3
    screenshot(auditor, "auditor-timeline")

    admin = person("admin_ops")
    admin.goto(f"{served.url}/channels")
    expect(admin.locator('#channels tr[data-channel="weibo-office"]')).to_contain_text("已保存")
    assert WEIBO_TOKEN not in admin.content()
    admin.goto(f"{served.url}/channels/weibo-office/edit")
    assert WEIBO_TOKEN not in admin.content()
    admin.goto(f"{served.url}/channels")
    screenshot(admin, "channel-admin-channels")
