"""Pre-publish checks on everything a channel will show, through the use cases.

The website, WeChat and newspaper-feed adapters are the real ones: the checks read their
rendered payloads (titles of every kind, sluglines, the page's HTML, the feed's XML) and
the per-channel overrides, and stay quiet on what we generate ourselves (site links, guids,
XML namespaces, image placeholders).
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.domain.errors import InvalidInput, Refused
from orchestrator.settings import Settings
from orchestrator.usecases import channels, releases
from orchestrator.usecases.unit_of_work import Context, UnitOfWork
from tests.conftest import release_input

CHANNELS = ["website", "feed", "wx"]


@pytest.fixture
def every_kind(ctx: Context, people, tmp_path) -> list[str]:
    configs = {
        "website": ("website", {"web_root": str(tmp_path / "site")}),
        "feed": ("newsfeed", {"delivery": ["atom"], "formats": ["newsml", "nitf"],
                              "atom": {"directory": str(tmp_path / "site" / "feed")}}),
        "wx": ("wechat", {"api_base": "http://127.0.0.1:9", "appid": "wx0123456789",
                          "sandbox": True}),
    }
    for name, (kind, config) in configs.items():
        with UnitOfWork(ctx) as uow:
            channels.save_channel(uow, name, kind, config, None, "admin_ops")
    return CHANNELS


def create(ctx: Context, **changes) -> int:
    changes.setdefault("channels", CHANNELS)
    changes.setdefault("body", "各市人民政府：\n\n请**认真贯彻落实**，详见[省政府网站]"
                               "(http://127.0.0.1:8000/site/zwgk/1.html)。\n\n![图](cover.png)")
    changes.setdefault("column", "政务要闻")
    with UnitOfWork(ctx) as uow:
        return releases.create(uow, release_input(**changes), "press")


def check(ctx: Context, rid: int) -> list[dict[str, str]]:
    with UnitOfWork(ctx) as uow:
        return releases.check(uow, rid)


def submit_problems(ctx: Context, rid: int) -> list[tuple[str, str]]:
    with UnitOfWork(ctx) as uow, pytest.raises(InvalidInput) as err:
        releases.submit(uow, rid, "press")
    return err.value.problems


def test_a_clean_release_on_every_kind_has_no_findings(ctx, every_kind):
    """No false alarm on our own site links, guids, XML namespaces or image placeholders."""
    rid = create(ctx, body="各市人民政府：\n\n请**认真贯彻落实**，详见[省政府网站]"
                           "(http://127.0.0.1:8000/site/zwgk/1.html)。")
    assert check(ctx, rid) == []
    with UnitOfWork(ctx) as uow:
        assert len(releases.submit(uow, rid, "press")) == 64


@pytest.mark.parametrize(("channel", "key", "text", "rule", "label"), [
    ("website", "title", "冬季安全生产工作通知 机密★1年", "confidentiality_marking", "标题"),
    ("website", "title", "冬季安全生产 详见 http://888bet.com/reg", "link_not_allowed", "标题"),
    ("feed", "slugline", "机密★1年 冬季安全生产", "confidentiality_marking", "简题"),
    ("feed", "title", "冬季安全生产 详见 www.888bet.com", "link_not_allowed", "标题"),
    ("wx", "title", "冬季安全生产 绝密★启用前", "confidentiality_marking", "标题"),
    ("wx", "author", "机密★长期", "confidentiality_marking", "作者"),
])
def test_a_channel_override_is_checked_like_the_release_itself(ctx, every_kind, channel, key,
                                                               text, rule, label):
    rid = create(ctx, overrides={channel: {key: text}})
    found = [f for f in check(ctx, rid) if f["rule"] == rule and f["severity"] == "block"]
    assert found, check(ctx, rid)
    assert found[0]["where"] == f"overrides.{channel}.{key}"
    assert found[0]["message"].startswith(f"渠道“{channel}”的自定义{label}")
    problems = submit_problems(ctx, rid)
    assert any(field == f"overrides.{channel}.{key}" and rule in message
               for field, message in problems), problems


def test_the_same_text_in_the_title_and_in_an_override_is_refused_alike(ctx, every_kind):
    in_title = create(ctx, title="冬季安全生产工作通知 机密★1年")
    in_override = create(ctx, overrides={"website": {"title": "冬季安全生产工作通知 机密★1年"}})
    assert [f["rule"] for f in check(ctx, in_title) if f["severity"] == "block"] == [
        f["rule"] for f in check(ctx, in_override) if f["severity"] == "block"]


def test_a_finding_in_a_rendered_field_says_which_channel_and_field(ctx, every_kind):
    """The column is shown on the page, in the feed and on the CMS: it is checked there."""
    rid = create(ctx, column="政务要闻 机密★1年")
    found = {f["where"] for f in check(ctx, rid) if f["rule"] == "confidentiality_marking"}
    assert "channel website.column" in found
    messages = [f["message"] for f in check(ctx, rid) if f["where"] == "channel website.column"]
    assert messages[0].startswith("渠道“website”的栏目")


def test_a_zero_width_marking_is_refused_at_submit(ctx, every_kind):
    rid = create(ctx, title="关于做好冬季安全生产工作的通知 机\u200b密★1年")
    found = [f for f in check(ctx, rid) if f["rule"] == "confidentiality_marking"]
    assert len(found) == 1, found
    [finding] = found
    assert (finding["severity"], finding["where"]) == ("block", "title")
    assert "机\u200b密★1年" in finding["excerpt"]
    assert any(field == "title" for field, _ in submit_problems(ctx, rid))


def test_a_traditional_form_marking_is_refused_at_submit(ctx, every_kind):
    rid = create(ctx, summary="祕密★1年。部署冬季安全生产。")
    assert any(field == "summary" for field, _ in submit_problems(ctx, rid))


LIST = """\
# 本省词表：[类别] severity=block|flag，每行一个词，# 之后是注释
[赌博广告] severity=block
赌球盘口   # 2026年3月新增
[赌博] severity=flag
博彩
"""


def with_list(ctx: Context, path) -> Context:
    settings = Settings(**{**ctx.settings.model_dump(), "sensitive_words_file": path,
                           "_env_file": None})
    return Context(ctx.engine, settings, ctx.queue)


def test_a_deployment_list_with_categories_blocks_a_traditional_form(ctx, every_kind, tmp_path):
    path = tmp_path / "words.txt"
    path.write_text(LIST, encoding="utf-8")
    listed = with_list(ctx, path)
    rid = create(listed, body="据群众举报，有网站发布賭球盤口信息，公安机关已依法查处。")
    found = [f for f in check(listed, rid) if f["rule"] == "sensitive_word"]
    assert [(f["severity"], f["where"]) for f in found] == [("block", "body:paragraph 1")]
    assert "賭球盤口" in found[0]["excerpt"]
    assert any(field == "body:paragraph 1" for field, _ in submit_problems(listed, rid))


def test_a_malformed_list_file_is_named_with_its_line(ctx, every_kind, tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("[赌博] severity=block\n博彩\n[广告] severity=hide\n", encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        with_list(ctx, path)
    assert f"{path}:3:" in str(err.value) and "hide" in str(err.value)
    # a list that goes bad while the service runs: a one-line refusal, not a crash
    good = tmp_path / "good.txt"
    good.write_text(LIST, encoding="utf-8")
    listed = with_list(ctx, good)
    rid = create(listed)
    good.write_text(LIST + "[广告] severity=hide\n", encoding="utf-8")
    with UnitOfWork(listed) as uow, pytest.raises(Refused) as refused:
        releases.check(uow, rid)
    assert f"{good}:6:" in str(refused.value)


STACKED = LIST + "[赌博广告用语] severity=block stack=3\n注册送\n返水\n首存\n"


def test_spam_split_over_the_title_an_override_and_paragraphs_is_refused(ctx, every_kind,
                                                                          tmp_path):
    """One word a place: no line is a keyword block, the release together is."""
    path = tmp_path / "words.txt"
    path.write_text(STACKED, encoding="utf-8")
    listed = with_list(ctx, path)
    rid = create(listed, title="关于做好冬季安全生产工作的通知 注册送",
                 overrides={"wx": {"digest": "冬季安全生产 首存"}},
                 body="各市人民政府：\n\n请认真贯彻落实。\n\n返水")
    found = [f for f in check(listed, rid) if f["rule"] == "keyword_stack"]
    assert [(f["severity"], f["where"]) for f in found] == [("block", "title")]
    assert "渠道“wx”的自定义摘要" in found[0]["message"] and "正文第3段" in found[0]["message"]
    assert any(field == "title" and "keyword_stack" in message
               for field, message in submit_problems(listed, rid))
    two = create(listed, title="关于做好冬季安全生产工作的通知 注册送", body="请认真贯彻落实。\n\n返水")
    assert not [f for f in check(listed, two) if f["rule"] == "keyword_stack"]


@pytest.mark.parametrize(("body", "title"), [
    ("各市人民政府：\n\n机[密](http://127.0.0.1:8000/site/zwgk/1.html)★1年", None),
    ("各市人民政府：\n\n![机密★1年](cover.png)", None),
    ("各市人民政府：\n\n请认真贯彻落实。", "【机密】关于做好冬季安全生产工作的通知"),
    ("各市人民政府：\n\n请认真贯彻落实。", "关于做好冬季安全生产工作的通知 机 密 ✩ 1 年"),
    ("各市人民政府：\n\n请认真贯彻落实。", "关于做好冬季安全生产工作的通知 机\u3164密★1年"),
], ids=["split-by-link", "in-alt", "bracketed", "spaced-star", "hangul-filler"])
def test_a_disguised_marking_is_refused_at_submit(ctx, every_kind, body, title):
    rid = create(ctx, body=body, **({"title": title} if title else {}))
    found = [f for f in check(ctx, rid) if f["rule"] == "confidentiality_marking"
             and f["severity"] == "block"]
    where = "title" if title else "body:paragraph 2"
    assert [f["where"] for f in found] == [where], check(ctx, rid)
    assert any(field == where for field, _ in submit_problems(ctx, rid))


def test_links_written_to_evade_are_refused_and_names_are_not(ctx, every_kind):
    rid = create(ctx, body="系统采用ASP.NET与Node.js，附件：报告.pdf，10:30开会。\n\n"
                           "详见http:evil.com、//evil.net/x、evil。org、bet365.com")
    found = {f["excerpt"] for f in check(ctx, rid) if f["rule"] == "link_not_allowed"}
    assert found == {"http:evil.com", "//evil.net/x", "evil。org", "bet365.com"}
    assert all(field == "body:paragraph 2" for field, _ in submit_problems(ctx, rid))


@pytest.fixture
def with_weibo(ctx: Context, every_kind) -> list[str]:
    with UnitOfWork(ctx) as uow:
        channels.save_channel(uow, "wb", "weibo", {"api_base": "http://127.0.0.1:9",
                                                   "safe_domain": "127.0.0.1", "sandbox": True},
                              None, "admin_ops")
    return [*every_kind, "wb"]


@pytest.mark.parametrize(("channel", "key", "text", "rule"), [
    ("wb", "text", "今日要闻<!-- 机密★1年 -->", "confidentiality_marking"),
    ("wb", "text", "<script>机密★1年</script>今日要闻", "confidentiality_marking"),
    ("wb", "text", "<style>机密★1年</style>今日要闻", "confidentiality_marking"),
    ("wb", "text", "<title>机密★1年</title>今日要闻", "confidentiality_marking"),
    ("wb", "text", "今日要闻 <script>http://bet365.com/x</script>", "link_not_allowed"),
    ("wx", "digest", "今日要闻<!-- 机密★1年 -->", "confidentiality_marking"),
    ("website", "title", "关于冬季安全生产的通知<!-- 机密★1年 -->", "confidentiality_marking"),
])
def test_markup_in_a_plain_text_field_is_read_as_typed(ctx, with_weibo, channel, key, text,
                                                       rule):
    """Weibo's text, WeChat's digest and an escaped title show markup as typed: what a
    comment or <script> holds is on screen, not dropped as a page would drop it."""
    rid = create(ctx, channels=with_weibo, overrides={channel: {key: text}})
    found = [(f["rule"], f["where"]) for f in check(ctx, rid) if f["severity"] == "block"]
    assert (rule, f"overrides.{channel}.{key}") in found, found
    with UnitOfWork(ctx) as uow:
        shown = releases.preview(uow, rid)["channels"][channel]
    assert text in str(shown), shown  # the channel does show it as typed


@pytest.mark.parametrize(("changes", "where"), [
    ({"overrides": {"wb": {"text": "详情请见 http://博彩网.com/promo 。"}}}, "overrides.wb.text"),
    ({"title": "关于开展活动的通知 https://例子.测试/x"}, "title"),
])
def test_a_link_with_a_unicode_host_is_refused_like_its_idna_form(ctx, with_weibo, changes,
                                                                   where):
    rid = create(ctx, channels=with_weibo, **changes)
    found = [(f["rule"], f["where"]) for f in check(ctx, rid) if f["severity"] == "block"]
    assert ("link_not_allowed", where) in found, found
    assert any(field == where for field, _ in submit_problems(ctx, rid))


@pytest.mark.parametrize("body", ["请下载附件 guide.zip 按要求填写后报送。",
                                  "详见 readme.md 与 intro.mov。",
                                  "各单位不得将内部资料上传至互联网。",
                                  "严禁通过微信群传播内部资料和涉密文件。"])
def test_file_names_and_talk_of_internal_material_are_no_block(ctx, with_weibo, body):
    rid = create(ctx, channels=with_weibo, body=body)
    assert [f for f in check(ctx, rid) if f["severity"] == "block"] == []
