"""What the console refuses, seen from a real browser: self-approval, forged posts, wrong rooms."""

from __future__ import annotations

from playwright.sync_api import expect

from orchestrator.usecases import releases
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests.browser.conftest import Served, screenshot
from tests.conftest import release_input

POST_WITH_TOKEN = """async ([url, body]) => {
  const token = document.querySelector('input[name=csrf]').value;
  const form = new URLSearchParams({csrf: token, ...body});
  const answer = await fetch(url, {method: 'POST', body: form, redirect: 'manual'});
  return answer.status;
}"""


def test_an_author_who_also_reviews_cannot_sign_their_own_release(person, served: Served) -> None:  # type: ignore[no-untyped-def]
    with UnitOfWork(served.ctx) as uow:
        rid = releases.create(uow, release_input(title="自己写的稿件"), "chief")
    with UnitOfWork(served.ctx) as uow:
        releases.submit(uow, rid, "chief")
    chief = person("chief")
    chief.goto(f"{served.url}/review")
    expect(chief.locator("#queue")).not_to_contain_text("自己写的稿件")
    chief.goto(f"{served.url}/review/{rid}")
    expect(chief.locator("#why-not")).to_contain_text("作者本人不能签发")
    expect(chief.get_by_role("button", name="同意并签署")).to_have_count(0)
    screenshot(chief, "self-approval-refused")
    status = chief.evaluate(POST_WITH_TOKEN, [f"{served.url}/review/{rid}/approve", {}])
    assert status == 403
    with UnitOfWork(served.ctx) as uow:
        release = releases.get_release(uow.session, rid)
        assert release.state == "in_review" and releases.signoffs_view(uow.session, release) == []


def test_a_form_posted_without_its_csrf_token_is_rejected(person, served: Served) -> None:  # type: ignore[no-untyped-def]
    press = person("press")
    press.goto(f"{served.url}/press/new")
    press.get_by_label("标题", exact=True).fill("没有校验码的稿件")
    press.evaluate("""() => {
        document.querySelector('#compose input[name=csrf]').remove();
        document.getElementById('compose').noValidate = true;  // past the browser's own checks
    }""")
    press.get_by_role("button", name="保存草稿").click()
    expect(press.locator("h1")).to_have_text("请求被拒绝")
    expect(press.locator(".flash.error")).to_contain_text("CSRF")
    status = press.evaluate("""async (url) => (await fetch(url, {method: 'POST',
        body: new URLSearchParams({title: 'x'}), redirect: 'manual'})).status""",
                            f"{served.url}/press/new")
    assert status == 403
    with UnitOfWork(served.ctx) as uow:
        assert releases.list_releases(uow.session) == []


def test_an_auditor_cannot_edit(person, served: Served) -> None:  # type: ignore[no-untyped-def]
    auditor = person("auditor")
    auditor.goto(f"{served.url}/")
    nav = auditor.get_by_role("navigation", name="功能区")
    expect(nav.get_by_role("link")).to_have_text(["审计"])
    for path in ("/press/new", "/channels/alpha/edit", "/review"):
        answer = auditor.goto(f"{served.url}{path}")
        assert answer.status == 403, path
        expect(auditor.locator("h1")).to_have_text("无权访问")
    auditor.goto(f"{served.url}/audit")
    for url, body in ((f"{served.url}/press/new", {"title": "审计员的稿件"}),
                      (f"{served.url}/channels/alpha/edit",
                       {"kind": "memory", "config": '{"account": "x"}'})):
        assert auditor.evaluate(POST_WITH_TOKEN, [url, body]) == 403
    with UnitOfWork(served.ctx) as uow:
        assert releases.list_releases(uow.session) == []


def test_a_reviewer_cannot_configure_channels(person, served: Served) -> None:  # type: ignore[no-untyped-def]
    reviewer = person("reviewer")
    answer = reviewer.goto(f"{served.url}/channels")
    assert answer.status == 403
    expect(reviewer.locator(".flash.error")).to_contain_text("没有访问此页面所需的角色")
    reviewer.goto(f"{served.url}/review")
    for path, body in (("/channels/alpha/edit", {"kind": "memory", "config": '{"account": "x"}',
                                                 "credentials": '{"token": "mine"}'}),
                       ("/channels/alpha/pause", {"paused": "1"}),
                       ("/channels/alpha/test", {})):
        assert reviewer.evaluate(POST_WITH_TOKEN, [f"{served.url}{path}", body]) == 403
    from orchestrator.usecases.channels import get_channel

    with UnitOfWork(served.ctx) as uow:
        alpha = get_channel(uow.session, "alpha")
        assert alpha.config["account"] == "alpha" and not alpha.paused
