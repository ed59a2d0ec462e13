"""Pre-publish content checks: each rule fires when it should and stays quiet when it should."""

from __future__ import annotations

import random
import time

import pytest

from orchestrator.domain.checks import (
    BLOCK,
    FLAG,
    ChannelView,
    CheckConfig,
    Finding,
    blocking,
    check_release,
)
from orchestrator.domain.wordlist import WordMatcher, default_sensitive_words, normalise

SITE = "example.gov.cn"
CONFIG = CheckConfig(site_domain=SITE)

GOOD_METADATA: dict[str, str | None] = {
    "index_number": "11320000014349/2026-00012",
    "issuing_body": "某省人民政府办公厅",
    "document_number": "某政办发〔2026〕8号",
    "date_written": "2026-03-01",
    "date_published": "2026-03-05",
    "subject_category": "综合政务",
    "disclosure": "主动公开",
    "validity": "有效",
}

TITLE = "某省人民政府办公厅关于做好2026年春季农业生产工作的通知"
OFFICIAL_BODY = (
    "<p>各设区市人民政府，省各委办厅局，省各直属单位：</p>"
    "<p>为切实做好今年春季农业生产工作，经省人民政府同意，现就有关事项通知如下。</p>"
    "<p>一、南京、无锡、徐州、常州、苏州、南通、连云港、淮安、盐城、扬州、镇江、泰州、宿迁"
    "等13个设区市要压实责任，确保粮食播种面积稳定。</p>"
    '<p>详细政策见<a href="https://www.example.gov.cn/art/2026/3/5/art_1.html">省政府网站</a>'
    "，咨询邮箱：nongye@163.com。本文已经过保密审查，各单位要加强保密工作。</p>"
)
WEIBO_TEXT = (
    f"【{TITLE}】春季农业生产工作有关事项 https://www.example.gov.cn/art/2026/3/5/art_1.html"
)


def check(
    title: str = TITLE,
    body: str = OFFICIAL_BODY,
    summary: str = "",
    metadata: dict[str, str | None] | None = None,
    channels: dict[str, str] | None = None,
    config: CheckConfig = CONFIG,
) -> list[Finding]:
    return check_release(
        title,
        body,
        summary,
        GOOD_METADATA if metadata is None else metadata,
        {} if channels is None else channels,
        config,
    )


def rules(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def with_metadata(**changes: str | None) -> dict[str, str | None]:
    return {**GOOD_METADATA, **changes}


# ------------------------------------------------------------------------ the whole


def test_a_clean_official_release_has_no_findings():
    assert check(channels={"weibo-office.text": WEIBO_TEXT}) == []


def test_blocking_keeps_only_block_findings():
    findings = [
        Finding("sensitive_word", FLAG, "body:paragraph 1", "m"),
        Finding("disclosure", BLOCK, "metadata.disclosure", "m"),
    ]
    assert blocking(findings) == [findings[1]]


def test_findings_are_in_reading_order_metadata_first():
    body = "<p>第一段。</p><p>机密★1年</p><p>第三段。</p>"
    findings = check(title="机密 通知", body=body, metadata=with_metadata(disclosure="不予公开"))
    assert [f.where for f in findings] == ["metadata.disclosure", "title", "body:paragraph 2"]


# ------------------------------------------------------------------------- metadata


def test_complete_metadata_has_no_metadata_findings():
    assert rules(check(), "metadata") == []


def test_missing_required_metadata_blocks():
    metadata = with_metadata(index_number="", issuing_body=None, date_published="  ")
    findings = rules(check(metadata=metadata), "metadata")
    assert {f.where for f in findings} == {
        "metadata.index_number",
        "metadata.issuing_body",
        "metadata.date_published",
    }
    assert all(f.severity == BLOCK for f in findings)
    assert any("索引号" in f.message for f in findings)


def test_absent_document_number_is_fine():
    assert rules(check(metadata=with_metadata(document_number=None)), "metadata") == []


@pytest.mark.parametrize(
    "number",
    [
        "某政办发[2026]8号",
        "某政办发（2026）8号",
        "某政办发〔26〕8号",
        "某政办发〔2026〕8",
        "〔2026〕8号",
    ],
)
def test_malformed_document_number_blocks(number):
    [finding] = rules(check(metadata=with_metadata(document_number=number)), "metadata")
    assert (finding.severity, finding.where) == (BLOCK, "metadata.document_number")
    assert "〔" in finding.message and finding.excerpt == number


@pytest.mark.parametrize("value", ["2026/03/05", "20260305", "2026-02-30", "3月5日"])
def test_non_iso_date_blocks(value):
    [finding] = rules(check(metadata=with_metadata(date_published=value)), "metadata")
    assert (finding.severity, finding.where) == (BLOCK, "metadata.date_published")


def test_date_written_after_date_published_blocks():
    metadata = with_metadata(date_written="2026-03-06", date_published="2026-03-05")
    [finding] = rules(check(metadata=metadata), "metadata")
    assert (finding.severity, finding.where) == (BLOCK, "metadata.date_written")
    assert "晚于" in finding.message


def test_same_day_written_and_published_is_fine():
    metadata = with_metadata(date_written="2026-03-05", date_published="2026-03-05")
    assert rules(check(metadata=metadata), "metadata") == []


def test_document_number_year_unlike_date_written_is_flagged():
    metadata = with_metadata(document_number="某政办发〔2025〕8号")
    [finding] = rules(check(metadata=metadata), "metadata")
    assert (finding.severity, finding.where) == (FLAG, "metadata.document_number")


# ----------------------------------------------------------------------- disclosure


@pytest.mark.parametrize("value", ["依申请公开", "不予公开", "", None])
def test_anything_but_proactive_disclosure_blocks(value):
    [finding] = rules(check(metadata=with_metadata(disclosure=value)), "disclosure")
    assert (finding.severity, finding.where) == (BLOCK, "metadata.disclosure")
    assert "主动公开" in finding.message


def test_proactive_disclosure_passes():
    assert rules(check(), "disclosure") == []


# ---------------------------------------------------------------- confidentiality


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("title", "机密★1年 关于某项工作的通知"),
        ("title", "（绝密）关于某项工作的通知"),
        ("summary", "秘密★长期"),
        ("summary", "绝密★启用前"),
        ("summary", "密级：机密"),
        ("body", "<p>内部资料 注意保密</p>"),
        ("body", "<p>内部资料，请勿外传</p>"),
        ("body", "<p>正文。<br>内部资料 仅供参考</p>"),
        ("title", "【内部资料】关于某项工作的通知"),
        ("body", "<p>注意保密</p>"),
        ("body", "<p>機密★6個月</p>"),  # traditional form
    ],
)
def test_confidentiality_marking_blocks(field, text):
    args = {"title": TITLE, "body": OFFICIAL_BODY, "summary": "", field: text}
    findings = rules(check(**args), "confidentiality_marking")
    assert findings and all(f.severity == BLOCK for f in findings)
    assert findings[0].where.startswith(field)


def test_confidentiality_marking_names_the_paragraph():
    body = "<p>第一段。</p><p>第二段。</p><p>本件为机密★1年文件。</p>"
    [finding] = rules(check(body=body), "confidentiality_marking")
    assert finding.where == "body:paragraph 3"
    assert finding.message.startswith("正文第3段含密级标识“机密★1年”，不得公开发布")
    assert "机密★1年" in finding.excerpt


def test_grade_word_in_running_text_is_flagged_not_blocked():
    body = "<p>科普展带领观众揭开宇宙起源的秘密。</p><p>依法保护企业商业秘密。</p>"
    findings = rules(check(body=body), "confidentiality_marking")
    assert [(f.severity, f.where) for f in findings] == [
        (FLAG, "body:paragraph 1"),
        (FLAG, "body:paragraph 2"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "本文已经过保密审查。",
        "各单位要加强保密工作，注意保密工作纪律。",
        "修订《内部资料性出版物管理办法》。",
    ],
)
def test_talking_about_confidentiality_is_not_a_marking(text):
    assert rules(check(body=f"<p>{text}</p>"), "confidentiality_marking") == []


# ------------------------------------------------------------------ sensitive words


def test_default_list_loads_from_the_data_file():
    words = {w.word for w in default_sensitive_words()}
    assert "博彩" in words and "六合彩" in words and "网上赌场" in words
    assert not any(w.startswith(("#", "[")) or "#" in w for w in words)


@pytest.mark.parametrize(
    "written",
    ["博彩", "博 彩", "博*彩", "博　彩", "博\u200b彩", "博-彩", "網上賭場", "网·上·赌·场"],
)
def test_sensitive_word_is_found_however_written(written):
    body = f"<p>有群众反映某网站发布{written}广告，有关部门已依法处置。</p>"
    [finding] = rules(check(body=body), "sensitive_word")
    assert (finding.severity, finding.where) == (FLAG, "body:paragraph 1")
    assert " ".join(written.split()) in finding.excerpt  # runs of spaces shown as one


def test_sensitive_words_alone_do_not_block():
    body = "<p>有群众反映某网站发布博彩广告，有关部门已依法处置。</p>"
    assert blocking(check(body=body)) == []


def test_text_without_listed_words_has_no_sensitive_finding():
    assert rules(check(body="<p>博物馆彩陶展开幕。</p>"), "sensitive_word") == []


def test_sensitive_word_list_is_configurable():
    config = CheckConfig(site_domain=SITE, sensitive_words=("春季农业",))
    findings = rules(check(config=config), "sensitive_word")
    assert [f.where for f in findings] == ["title", "body:paragraph 2"]
    assert "“春季农业”" in findings[0].message
    body = "<p>有群众反映某网站发布博彩广告。</p>"
    assert rules(check(title="通知", body=body, config=config), "sensitive_word") == []


def test_matcher_reports_overlapping_and_nested_words():
    matcher = WordMatcher(["he", "she", "his", "hers"])
    found = {(m.word, m.start, m.end) for m in matcher.find("ushers")}
    assert found == {("she", 1, 4), ("he", 2, 4), ("hers", 2, 6)}


def test_matcher_offsets_point_into_the_text_as_written():
    text = "访问網 上*賭場立即注册"
    [match] = WordMatcher(["网上赌场"]).find(text)
    assert text[match.start : match.end] == "網 上*賭場"


def test_matcher_with_no_words_finds_nothing():
    assert WordMatcher([]).find("博彩") == []
    assert WordMatcher(["  ", "**"]).find("博彩") == []


def test_matcher_on_a_long_body_and_a_large_list_finds_every_planted_word():
    rng = random.Random(20260305)
    alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    words = list(
        dict.fromkeys("".join(rng.choices(alphabet, k=rng.randint(2, 6))) for _ in range(10_000))
    )
    planted = rng.sample(words, 40)
    chunks = []
    for word in planted:
        chunks.append("".join(rng.choices(alphabet, k=500)))
        chunks.append(word[0] + " " + word[1:])  # planted with an evasive space
    body = "".join(chunks)
    assert len(body) >= 20_000
    matcher = WordMatcher(words)
    matcher.find(body)  # first sight of each character fills the fold table
    started = time.perf_counter()
    found = matcher.find(body)
    elapsed_ms = (time.perf_counter() - started) * 1000
    # bench: 15-30 ms on a 2-vCPU machine under load (load average 8); most of it in find_folded
    print(f"bench: {len(body)} chars x {len(words)} words: {elapsed_ms:.1f} ms")
    assert set(planted) <= {m.word for m in found}
    # and exactly what a brute-force search over the normalised text finds
    folded, offsets = normalise(body)
    first_index = {original: i for i, original in reversed(list(enumerate(offsets)))}
    brute = set()
    for word in words:
        key = normalise(word)[0]  # the alphabet holds a few traditional forms (來, 亂)
        i = folded.find(key)
        while i != -1:
            brute.add((word, i))
            i = folded.find(key, i + 1)
    assert {(m.word, first_index[m.start]) for m in found} == brute


# ------------------------------------------------------------------------------ links


@pytest.mark.parametrize(
    "body",
    [
        '<p><a href="https://example.gov.cn/a.html">本站</a></p>',
        '<p><a href="https://www.example.gov.cn/a.html">子域名</a></p>',
        '<p><img src="https://img.www.example.gov.cn/x.png" alt="图"></p>',
        '<p><a href="/art/2026/3/5/art_1.html">相对链接</a><a href="#top">顶部</a></p>',
        '<p><a href="mailto:office@example.gov.cn">邮件</a>，电话<a href="tel:025-12345">12345</a></p>',
        "<p>请访问 https://www.example.gov.cn/zwgk/ 查看。</p>",
        "<p>联系邮箱：nongye@163.com。</p>",
    ],
)
def test_links_to_the_site_and_its_subdomains_are_allowed(body):
    assert rules(check(body=body), "link_not_allowed") == []


@pytest.mark.parametrize(
    ("body", "host"),
    [
        ('<p><a href="http://casino.example.com/">点击</a></p>', "casino.example.com"),
        ('<p><img src="https://cdn.evil.net/x.png" alt=""></p>', "cdn.evil.net"),
        ("<p>详情请访问www.888bet.com注册。</p>", "www.888bet.com"),
        ("<p>详情请访问888bet.cc注册。</p>", "888bet.cc"),
        ('<p><a href="https://example.gov.cn.evil.com/">仿冒</a></p>', "example.gov.cn.evil.com"),
        ('<p><a href="https://badexample.gov.cn/">仿冒</a></p>', "badexample.gov.cn"),
        ('<p><a href="https://example.gov.cn@evil.com/">仿冒</a></p>', "evil.com"),
        ('<p><a href="https://evil.com\\@example.gov.cn/">仿冒</a></p>', "evil.com"),
        ('<p><a href="//evil.com/x">协议相对</a></p>', "evil.com"),
        ("<p>ｗｗｗ．ｅｖｉｌ．ｃｏｍ</p>", "www.evil.com"),
        ("<p style=\"background:url('https://evil.com/bg.png')\">正文。</p>", "evil.com"),
    ],
)
def test_links_elsewhere_block(body, host):
    [finding] = rules(check(body=body), "link_not_allowed")
    assert (finding.severity, finding.where) == (BLOCK, "body:paragraph 1")
    assert f"“{host}”" in finding.message


@pytest.mark.parametrize(
    "href", ["javascript:alert(1)", "java\nscript:alert(1)", "data:text/html,x"]
)
def test_script_and_data_links_block(href):
    [finding] = rules(check(body=f'<p><a href="{href}">点击</a></p>'), "link_not_allowed")
    assert finding.severity == BLOCK and "链接类型" in finding.message


def test_allowed_domains_are_configurable():
    config = CheckConfig(site_domain=SITE, allowed_link_domains=("https://www.gov.cn/",))
    body = '<p>转载自<a href="https://www.gov.cn/zhengce/content/1.htm">中国政府网</a>。</p>'
    assert rules(check(body=body, config=config), "link_not_allowed") == []
    assert len(rules(check(body=body), "link_not_allowed")) == 1


def test_channel_text_links_are_checked_too():
    channels = {"weibo-office.text": WEIBO_TEXT + " 另见 http://t.evil.com/abc"}
    [finding] = rules(check(channels=channels), "link_not_allowed")
    assert finding.where == "channel weibo-office.text"
    assert finding.message.startswith("渠道文本“weibo-office.text”含外部链接")


def test_a_link_in_href_and_text_is_reported_once():
    body = '<p><a href="http://evil.com/">http://evil.com/</a></p>'
    assert len(rules(check(body=body), "link_not_allowed")) == 1


# ----------------------------------------------------------------- injected spam

SPAM_ABOVE = (
    "<div>澳门博彩 六合彩开奖 网上赌场 百家乐 时时彩 真人荷官 老虎机 娱乐城 体育投注 "
    "注册送彩金 www.888bet.com</div>"
)
SPAM_BELOW = (
    '<div><a href="/s/1">博彩网站</a><a href="/s/2">六合彩</a><a href="/s/3">百家乐</a>'
    '<a href="/s/4">时时彩</a><a href="/s/5">赌球</a><a href="/s/6">老虎机</a>'
    '<a href="/s/7">彩票投注</a><a href="/s/8">电子游艺</a></div>'
)


def test_defaced_page_keyword_blocks_above_and_below_the_official_text_block():
    body = SPAM_ABOVE + OFFICIAL_BODY + SPAM_BELOW
    findings = check(body=body)
    spam = rules(findings, "spam_keyword_block")
    assert [(f.severity, f.where) for f in spam] == [
        (BLOCK, "body:paragraph 1"),
        (BLOCK, "body:paragraph 6"),
    ]
    assert "赌博类词语" in spam[0].message and "六合彩" in spam[0].excerpt
    assert rules(findings, "link_not_allowed")[0].where == "body:paragraph 1"
    # the official paragraphs in between carry no finding at all
    assert not [f for f in findings if f.where in {f"body:paragraph {n}" for n in (2, 3, 4, 5)}]


def test_keyword_block_injected_into_a_plain_channel_text_blocks():
    text = WEIBO_TEXT + "\n博彩,六合彩,网上赌场,百家乐,时时彩,真人荷官,老虎机,娱乐城"
    [finding] = rules(check(channels={"weibo-office.text": text}), "spam_keyword_block")
    assert (finding.severity, finding.where) == (BLOCK, "channel weibo-office.text")


def test_gambling_words_run_together_without_separators_block():
    [finding] = rules(check(body="<p>澳门博彩六合彩网上赌场百家乐</p>"), "spam_keyword_block")
    assert finding.severity == BLOCK


def test_anti_gambling_notice_listing_gambling_forms_is_not_spam():
    body = (
        "<p>严厉打击六合彩、时时彩、百家乐、网上赌场、赌球、老虎机、网络赌博、彩票投注、"
        "真人荷官等违法犯罪活动。</p>"
    )
    findings = check(body=body)
    assert rules(findings, "spam_keyword_block") == []
    assert rules(findings, "sensitive_word")  # a reviewer still sees the words
    assert blocking(findings) == []


def test_keyword_list_without_spam_words_and_without_sentences_is_flagged():
    body = "<p>城市 建设 管理 服务 发展 规划 交通 环境 教育 医疗</p>"
    [finding] = rules(check(body=body), "spam_keyword_block")
    assert (finding.severity, finding.where) == (FLAG, "body:paragraph 1")


def test_short_lists_and_sentences_are_not_keyword_blocks():
    body = (
        "<p>关键词：春耕 备耕 农资 种子</p>"
        "<p>南京 无锡 徐州 常州 苏州 南通 连云港 淮安，共8个市参加了会议。</p>"
        "<p>Provincial Government Announces New Measures for the Spring Farming Season</p>"
        "<p>The measures take effect on 1 April and cover all thirteen cities.</p>"
    )
    assert rules(check(body=body), "spam_keyword_block") == []


# ---------------------------------------------------------------------- hidden text


@pytest.mark.parametrize(
    "element",
    [
        '<p style="display:none">博彩 网址</p>',
        '<p style="DISPLAY: none !important">博彩 网址</p>',
        "<p hidden>博彩 网址</p>",
        '<span style="visibility:hidden">博彩 网址</span>',
        '<span style="font-size:0">博彩 网址</span>',
        '<span style="font-size:0px">博彩 网址</span>',
        '<span style="font-size:1px">博彩 网址</span>',
        '<span style="opacity:0">博彩 网址</span>',
        '<span style="color:#fff">博彩 网址</span>',
        '<span style="color:#FFFFFF">博彩 网址</span>',
        '<span style="color:rgb(255, 255, 255)">博彩 网址</span>',
        '<div style="background:#f5f5f5"><span style="color:#f5f5f5">博彩 网址</span></div>',
        '<font color="white">博彩 网址</font>',
        '<div style="position:absolute;left:-9999px">博彩 网址</div>',
        '<p style="text-indent:-9999px">博彩 网址</p>',
        '<div style="height:0;overflow:hidden">博彩 网址</div>',
        '<div style="display:none"><a href="/x"><img src="/y.png" alt=""></a></div>',
    ],
)
def test_hidden_text_blocks(element):
    body = OFFICIAL_BODY + element
    [finding] = rules(check(body=body), "hidden_text")
    assert (finding.severity, finding.where) == (BLOCK, "body:paragraph 5")
    assert finding.message.startswith("正文第5段含读者看不见的内容")


@pytest.mark.parametrize(
    "element",
    [
        '<p style="color:#333">正文。</p>',
        '<p style="background:#c00;color:#fff">白字红底的通知标题。</p>',
        '<div style="position:absolute;left:10px">正文。</div>',
        '<p style="font-size:16px;text-indent:2em">正文。</p>',
        '<span style="display:none"></span>',
    ],
)
def test_visible_styling_is_not_hidden_text(element):
    assert rules(check(body=OFFICIAL_BODY + element), "hidden_text") == []


def test_hidden_text_inside_a_paragraph_names_that_paragraph_once():
    body = (
        "<p>第一段。</p>"
        '<p>第二段正文<span style="display:none">博彩<b style="font-size:0">六合彩</b></span>。</p>'
    )
    [finding] = rules(check(body=body), "hidden_text")
    assert finding.where == "body:paragraph 2"
    assert finding.excerpt == "博彩六合彩"


def test_hidden_text_in_an_html_channel_text_blocks():
    channels = {"wechat-main.content": '<p>正文。</p><p style="display:none">博彩</p>'}
    [finding] = rules(check(channels=channels), "hidden_text")
    assert finding.where == "channel wechat-main.content:paragraph 2"


# ------------------------------------------------- normalised text: every rule, same form

ZW = "\u200b"


@pytest.mark.parametrize(
    "hidden",
    ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202e", "\u2060", "\u2064",
     "\u00ad", "\ufeff"],
)
def test_a_marking_broken_by_an_invisible_character_blocks(hidden):
    title = f"关于春季农业生产的通知 机{hidden}密★1年"
    [finding] = rules(check(title=title), "confidentiality_marking")
    assert (finding.severity, finding.where) == (BLOCK, "title")
    assert f"机{hidden}密★1年" in finding.excerpt  # the excerpt shows what the author wrote


@pytest.mark.parametrize("blank", ["\u2800", "\u115f", "\uffa0", "\u2000", "\u2005",
                                   "\u200a", "\u3000", "\u1680", "\u205f"])
def test_a_marking_spaced_by_a_blank_looking_character_blocks(blank):
    """A braille blank (U+2800) or any space separator reads as the space a reader sees."""
    [finding] = rules(check(title=f"机{blank}密★1年 关于春季农业生产的通知"), "confidentiality_marking")
    assert (finding.severity, finding.where) == (BLOCK, "title")
    assert finding.excerpt.startswith("机") and "密★1年" in finding.excerpt


def test_a_full_width_marking_blocks():
    [finding] = rules(check(summary="机密★１年"), "confidentiality_marking")
    assert finding.severity == BLOCK and "机密★１年" in finding.excerpt


def test_a_link_broken_by_an_invisible_character_blocks():
    body = f"<p>更多优惠请访问 888bet{ZW}.com 注册。</p>"
    [finding] = rules(check(body=body), "link_not_allowed")
    assert finding.severity == BLOCK and "888bet.com" in finding.message


def test_a_keyword_block_broken_by_invisible_characters_blocks():
    words = ["博彩", "六合彩", "网上赌场", "百家乐", "时时彩", "真人荷官", "老虎机", "娱乐城"]
    line = " ".join(w[0] + ZW + w[1:] for w in words)
    [finding] = rules(check(body=f"<div>{line}</div>"), "spam_keyword_block")
    assert finding.severity == BLOCK
    assert "博\u200b彩" in finding.excerpt


def test_gambling_words_broken_by_invisible_characters_run_together_block():
    line = "".join(w[0] + "\u00ad" + w[1:] for w in ("澳门博彩", "六合彩", "网上赌场", "百家乐"))
    [finding] = rules(check(body=f"<p>{line}</p>"), "spam_keyword_block")
    assert finding.severity == BLOCK


# ---------------------------------------------- traditional forms through OpenCC

@pytest.mark.parametrize(("written", "listed"), [
    ("賭球盤口", "赌球盘口"), ("當場開獎", "当场开奖"), ("違規代辦", "违规代办"),
])
def test_traditional_forms_beyond_the_old_hand_table_match(written, listed):
    text = f"据报，有人在网上发布{written}信息。"
    [match] = WordMatcher([listed]).find(text)
    assert text[match.start : match.end] == written


def test_a_marking_in_a_variant_traditional_form_blocks():
    [finding] = rules(check(summary="祕密★1年 春季农业生产"), "confidentiality_marking")
    assert finding.severity == BLOCK and "祕密★1年" in finding.excerpt


def test_reading_form_maps_every_character_back_to_what_was_written():
    from orchestrator.domain.wordlist import reading_form

    text = "機\u200b密★１年，詳見ｗｗｗ.ｅｖｉｌ.com\ufeff。㍿"
    reading = reading_form(text)
    assert reading.text == "机密★1年,详见www.evil.com。株式会社"
    assert len(reading.starts) == len(reading.ends) == len(reading.text)
    a, b = reading.span(0, reading.text.index("年") + 1)
    assert text[a:b] == "機\u200b密★１年"
    start = reading.text.index("www")
    end = start + len("www.evil.com")
    a, b = reading.span(start, end)
    assert text[a:b] == "ｗｗｗ.ｅｖｉｌ.com"
    a, b = reading.span(reading.text.index("株"), len(reading.text))
    assert text[a:b] == "㍿"  # one character read as four still points at itself


def test_reading_form_keeps_offsets_when_a_conversion_changes_length():
    from orchestrator.domain.wordlist import simplified_aligned

    def lengthening(text: str) -> str:  # a dictionary that turns one phrase into a longer one
        return text.replace("乾隆", "乾隆帝").replace("後", "后")

    text = "乾隆年間之後，機密★1年"
    out = simplified_aligned(text, lengthening)
    assert len(out) == len(text)
    assert out.index("后") == text.index("後")


def test_checking_a_large_body_is_quick():
    alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)] + list("，。、：；")

    def body(seed: int) -> str:
        rng = random.Random(seed)
        return "".join(f"<p>{''.join(rng.choices(alphabet, k=490))}。</p>" for _ in range(100))

    check(body=body(1))  # first sight of each character fills the tables
    fresh = body(2)  # a body not read before: nothing cached
    started = time.perf_counter()
    found = check(body=fresh, summary="機密★１年")
    elapsed_ms = (time.perf_counter() - started) * 1000
    # bench: 90-160 ms for 49,100 characters on a 2-core machine at load average 10
    print(f"bench: check_release on {len(fresh) - 700} characters: {elapsed_ms:.0f} ms")
    assert [f.where for f in blocking(found)] == ["summary"]
    assert elapsed_ms < 3000  # a generous bound: fails on an accidental quadratic, not on load


# ----------------------------------------------------------------------- word lists

WORD_LIST = """\
# 某省新闻办 敏感词表（示例）
[赌博广告] severity=block   # 只在广告里出现的说法
赌球盘口
注册送彩金  # 2026年3月新增

[赌博] severity=flag
博彩
"""


def test_a_word_list_has_categories_severities_and_comments():
    from orchestrator.domain.wordlist import parse_word_list

    words = parse_word_list(WORD_LIST, "words.txt")
    assert [(w.word, w.category, w.severity) for w in words] == [
        ("赌球盘口", "赌博广告", "block"), ("注册送彩金", "赌博广告", "block"), ("博彩", "赌博", "flag")]


def test_a_block_category_stops_a_release_and_a_flag_category_does_not():
    from orchestrator.domain.wordlist import parse_word_list

    config = CheckConfig(site_domain=SITE, sensitive_words=parse_word_list(WORD_LIST, "w.txt"))
    blocked = rules(check(body="<p>网上出现賭球盤口信息。</p>", config=config), "sensitive_word")
    assert [(f.severity, f.where) for f in blocked] == [(BLOCK, "body:paragraph 1")]
    assert "赌博广告" in blocked[0].message and "賭球盤口" in blocked[0].excerpt
    flagged = rules(check(body="<p>打击博彩活动。</p>", config=config), "sensitive_word")
    assert [f.severity for f in flagged] == [FLAG]


@pytest.mark.parametrize(("text", "line", "says"), [
    ("[赌博] severity=maybe\n博彩\n", 1, "maybe"),
    ("博彩\n[赌博 severity=block\n", 2, "["),
    ("[赌博] level=block\n", 1, "level"),
    ("[赌博] severity=block\n# 注释\nseverity=flag\n", 3, "severity"),
    ("[] severity=block\n", 1, "[]"),
])
def test_a_malformed_word_list_names_the_file_and_line(text, line, says):
    from orchestrator.domain.wordlist import WordListError, parse_word_list

    with pytest.raises(WordListError) as err:
        parse_word_list(text, "/etc/tongfa/words.txt")
    assert f"/etc/tongfa/words.txt:{line}:" in str(err.value) and says in str(err.value)


def test_the_shipped_list_has_categories_with_severities():
    words = default_sensitive_words()
    assert {w.severity for w in words} <= {BLOCK, FLAG}
    assert all(w.category for w in words)
    assert {w.word for w in words} >= {"博彩", "六合彩", "网上赌场"}


# ------------------------------------------- findings of the attack on the checks (2026-12)

# Every Default_Ignorable_Code_Point (Unicode DerivedCoreProperties), not a hand-kept range:
# a combining grapheme joiner, Hangul fillers, Mongolian free variation selectors,
# variation selectors, tag characters, the invisible operators and deprecated format controls.
@pytest.mark.parametrize("hidden", [
    "\u034f", "\u115f", "\u1160", "\u3164", "\uffa0", "\u180b", "\u180f", "\ufe00", "\ufe0f",
    "\U000e0000", "\U000e0041", "\U000e0fff", "\u2065", "\u206a", "\u206f", "\u17b4",
    "\U0001d173",
])
def test_any_default_ignorable_character_is_read_as_nothing(hidden):
    [finding] = rules(check(title=f"关于春季农业生产的通知 机{hidden}密★1年"), "confidentiality_marking")
    assert (finding.severity, finding.where) == (BLOCK, "title")
    assert f"机{hidden}密★1年" in finding.excerpt
    body = f"<p>更多优惠请访问 888bet{hidden}.com 注册。</p>"
    [link] = rules(check(body=body), "link_not_allowed")
    assert "888bet.com" in link.message


@pytest.mark.parametrize(("text", "host"), [
    ("详见http:evil.com注册", "evil.com"),
    ("详见http:/evil.com/reg注册", "evil.com"),
    ("详见https:\\\\evil.com注册", "evil.com"),
    ("详见HTTP:evil.xyz注册", "evil.xyz"),
    ("详见ftp://evil.com/list", "ftp"),
    ("详见 //evil.com/x 注册", "evil.com"),
    ("详见hxxp://evil.com/x", "evil.com"),
    ("详见 evil。com 注册", "evil.com"),
    ("详见 evil｡com 注册", "evil.com"),
    ("详见 evil．com 注册", "evil.com"),
    ("详见www。evil。com注册", "www.evil.com"),
    ("详见bet365.com注册", "bet365.com"),
    ("欢迎访问Bet365.Com", "bet365.com"),
    ("详见888bet.vip注册", "888bet.vip"),
    ("详见example.gov.cn.evil.com", "example.gov.cn.evil.com"),
    ("详见casino.xn--fiqs8s注册", "casino.xn--fiqs8s"),
])
def test_a_link_written_any_way_a_browser_or_a_reader_follows_blocks(text, host):
    [finding] = rules(check(body=f"<p>{text}</p>"), "link_not_allowed")
    assert (finding.severity, finding.where) == (BLOCK, "body:paragraph 1")
    assert f"“{host}" in finding.message, finding.message


@pytest.mark.parametrize(("text", "host"), [
    ("详情请见 http://博彩网.com/promo 。", "xn--9kro4zezz.com"),
    ("详情请见 http://xn--9kro4zezz.com/promo 。", "xn--9kro4zezz.com"),
    ("关于开展活动的通知 https://例子.测试/x", "xn--fsqu00a.xn--0zwm56d"),
    ("详见http://博彩网。com注册", "xn--9kro4zezz.com"),
    ("详见 https://bücher.de/x", "xn--bcher-kva.de"),
])
def test_a_link_with_a_unicode_host_is_checked_by_its_idna_form(text, host):
    for found in (check(title=f"{TITLE}{text}"), check(channels={"weibo-office.text": text})):
        [finding] = rules(found, "link_not_allowed")
        assert finding.severity == BLOCK and host in finding.message, finding.message


def test_an_allowed_domain_is_allowed_in_unicode_or_idna_form():
    config = CheckConfig(site_domain=SITE, allowed_link_domains=("政府.cn",))
    body = '<p><a href="http://xn--mxtq1m.cn/a">一</a> 详见 https://www.政府.cn/b 。</p>'
    assert rules(check(body=body, config=config), "link_not_allowed") == []


@pytest.mark.parametrize("href", ["http:evil.com", "https:/evil.com/x", "http:\\\\evil.com",
                                  "http://evil。com/", "HTTP:EVIL.COM"])
def test_a_slashless_or_odd_href_is_read_as_a_browser_reads_it(href):
    [finding] = rules(check(body=f'<p><a href="{href}">点击</a></p>'), "link_not_allowed")
    assert finding.severity == BLOCK and "evil.com" in finding.message


@pytest.mark.parametrize("text", [
    "系统采用ASP.NET和VB.NET开发，前端使用Node.js与Vue.js。",
    "附件：实施方案.pdf、报告.docx、统计表.xlsx、汇报材料.zip。",
    "软件版本1.2.3升级至V2.0.1，Python3.11。",
    "会议时间：上午10:30，8.30前报到，下午2:00结束，全程9.5小时。",
    "2026.03.05发布，增长3.5个百分点。",
    "承办单位：Jiangsu Yinhe Technology Co.Ltd。",
    "联系邮箱：nongye@163.com，电话025-12345678。",
    "请访问本站 www.example.gov.cn 或 https://example.gov.cn/zwgk 查看。",
    "请下载附件 guide.zip 按要求填写后报送。",
    "详见 readme.md、intro.mov、main.py、install.sh 和附件2.zip。",
])
def test_names_files_versions_and_times_are_not_links(text):
    assert rules(check(body=f"<p>{text}</p>"), "link_not_allowed") == []


@pytest.mark.parametrize(("text", "host"), [
    ("详见 bet365.zip 注册", "bet365.zip"),
    ("详见 casino.zip/reg 注册", "casino.zip"),
    ("详见 888bet.cc 注册", "888bet.cc"),
    ("详见 www.guide.zip", "www.guide.zip"),
    ("详见 //guide.zip 下载", "guide.zip"),
    ("详见 http://guide.zip", "guide.zip"),
    ("详见 casino.mov:8080", "casino.mov"),
])
def test_a_file_extension_domain_written_as_an_address_blocks(text, host):
    [finding] = rules(check(body=f"<p>{text}</p>"), "link_not_allowed")
    assert finding.severity == BLOCK and f"“{host}" in finding.message, finding.message


def test_a_weibo_hashtag_and_a_timetable_raise_nothing():
    text = f"#春季农业生产# #乡村振兴# 今天10:30，{TITLE} https://www.example.gov.cn/a.html"
    assert check(channels={"weibo-office.text": text}) == []


@pytest.mark.parametrize("body", [
    '<p>机<a href="/x">密</a>★1年</p>',
    '<p><a href="/a">机</a><a href="/b">密</a>★1年</p>',
    '<p>机<b>密</b><i>★</i>1年</p>',
    '<p>机<img src="/x.png" alt="密">★1年</p>',
    '<p><img src="/x.png" alt="机密★1年"></p>',
    '<p><a href="/x" title="绝密★启用前">点击</a></p>',
    '<p title="秘密★长期">正文。</p>',
])
def test_a_marking_split_by_markup_or_kept_in_alt_or_title_blocks(body):
    findings = rules(check(body=body), "confidentiality_marking")
    assert findings and all(f.severity == BLOCK for f in findings), findings
    assert findings[0].where == "body:paragraph 1"


@pytest.mark.parametrize("text", [
    "机 密 ★ 1 年", "机　密★1年", "机密 ★ 长 期", "绝 密 ★ 启 用 前", "机-密★1年",
    "机密☆1年", "机密✩1年", "机密✭1年", "机密✮1年", "机密＊1年", "机密*1年", "机密⭐1年",
    "机密⭐\ufe0f1年", "机密✯6个月", "机密🌟1年",
    "【机密】", "[绝密]", "（秘密）", "〔机密〕", "［绝密］", "【 机 密 】", "〖秘密〗",
    "本件【机密】请勿外传", "密 级 ： 机 密", "密级 绝密",
])
def test_a_marking_written_with_spaces_stars_or_brackets_blocks(text):
    findings = rules(check(title=f"{text} 关于春季农业生产的通知"), "confidentiality_marking")
    assert [f.severity for f in findings][:1] == [BLOCK], findings
    assert findings[0].where == "title"


@pytest.mark.parametrize("text", [
    "各单位要注意保密，妥善保管文件。",
    "请注意保密，不得外传会议内容。",
    "保密工作要常抓不懈，注意保密工作纪律。",
    "全省保密工作会议召开。",
    "电影《秘密》今晚上映。",
    "各单位不得将内部资料上传至互联网。",
    "严禁通过微信群传播内部资料和涉密文件。",
])
def test_ordinary_sentences_about_secrecy_are_not_markings(text):
    assert [f for f in check(body=f"<p>{text}</p>") if f.rule == "confidentiality_marking"
            and f.severity == BLOCK] == []


@pytest.mark.parametrize("body", ['<p><a href="http://[x">点击</a></p>', "<p>详见http://[::1</p>"])
def test_a_link_no_parser_can_read_blocks_instead_of_crashing(body):
    [finding] = rules(check(body=body), "link_not_allowed")
    assert finding.severity == BLOCK


# -------------------------------------------------- keyword stacks: spam split to pieces

AD_WORDS = ("葡京娱乐城", "注册送", "首存", "返水")  # the shipped [赌博广告用语] stack=4


def test_a_keyword_stack_split_over_fields_and_paragraphs_blocks():
    body = OFFICIAL_BODY + "".join(f"<p>{w}</p>" for w in AD_WORDS[2:])
    findings = check(title=f"{TITLE}{AD_WORDS[0]}", summary=f"春耕{AD_WORDS[1]}",
                     body=body)
    [finding] = rules(findings, "keyword_stack")
    assert (finding.severity, finding.where) == (BLOCK, "title")
    assert "“赌博广告用语”类词语5个" in finding.message  # 葡京 and 娱乐城 are two
    assert "见标题、摘要、正文第5段、正文第6段" in finding.message
    assert "葡京娱乐城" in finding.excerpt
    assert finding in blocking(findings)


def test_a_keyword_stack_counts_channel_texts_too():
    channels = {"weibo-office.text": f"{WEIBO_TEXT} 注册送 首存"}
    [finding] = rules(check(title=f"{TITLE} 葡京娱乐城", channels=channels), "keyword_stack")
    assert finding.where == "title" and "渠道文本“weibo-office.text”" in finding.message


def test_fewer_stacked_words_than_the_stack_raise_nothing():
    findings = check(title=f"{TITLE} 葡京", body=OFFICIAL_BODY + "<p>返水</p><p>注册送</p>")
    assert rules(findings, "keyword_stack") == []
    assert rules(findings, "sensitive_word") == []  # a stacked word alone is no hit


def test_a_flag_stack_flags_and_stacks_are_per_category():
    from orchestrator.domain.wordlist import parse_word_list

    words = parse_word_list("[红包] severity=flag stack=2\n红包\n扫码\n"
                            "[返利] severity=block stack=2\n返利\n加微信\n", "w.txt")
    config = CheckConfig(site_domain=SITE, sensitive_words=words)
    findings = check(title="扫码领红包", body="<p>返利。</p>", config=config)
    assert [(f.rule, f.severity) for f in findings] == [("keyword_stack", FLAG)]


def test_a_word_list_reads_stack_headers():
    from orchestrator.domain.wordlist import KeywordStack, keyword_stacks, parse_word_list

    words = parse_word_list("[赌博广告] severity=block stack=3\n注册送\n返水\n首存\n"
                            "[赌博] severity=flag\n博彩\n", "w.txt")
    assert [(w.word, w.stack) for w in words] == [
        ("注册送", 3), ("返水", 3), ("首存", 3), ("博彩", 0)]
    assert keyword_stacks(words) == (KeywordStack("赌博广告", 3, BLOCK, ("注册送", "返水", "首存")),)


@pytest.mark.parametrize("setting", ["stack=1", "stack=x", "stack=", "stack=２", "stack=101"])
def test_a_malformed_stack_names_the_line(setting):
    from orchestrator.domain.wordlist import WordListError, parse_word_list

    with pytest.raises(WordListError) as err:
        parse_word_list(f"博彩\n[赌博广告] severity=block {setting}\n注册送\n", "words.txt")
    assert "words.txt:2:" in str(err.value) and "stack" in str(err.value)


def test_html_is_read_as_shown_where_a_link_begins_or_ends():
    """A link's edges are no break in what a reader sees: neither a space nor a stamp's edge."""
    [link] = rules(check(body='<p>详见bet365<a href="/x">.com</a>注册。</p>'), "link_not_allowed")
    assert "bet365.com" in link.message
    findings = rules(check(body='<p>本件<a href="/x">机密</a>文件的处理。</p>'),
                     "confidentiality_marking")
    assert [f.severity for f in findings] == [FLAG]  # a grade word in running text, not a stamp


def test_links_side_by_side_are_separate_keywords():
    body = "<div>" + "".join(f'<a href="/s/{i}">{w}</a>' for i, w in enumerate(
        ["春耕", "备耕", "农资", "种子", "化肥", "农机", "灌溉", "植保"])) + "</div>"
    [finding] = rules(check(body=body), "spam_keyword_block")
    assert finding.severity == FLAG and "8个互不相关的短词" in finding.message


# ------------------------------------------- a field read as its channel shows it

def test_a_field_is_read_as_its_channel_shows_it_and_both_ways_when_unknown():
    typed = "今日要闻<!-- 机密★1年 -->"  # a marking only where markup is shown as typed
    entity = "今日要闻 机&#23494;★1年"  # a marking only where HTML is rendered

    def blocked(text: str, kinds: dict[str, str]) -> bool:
        views = {"c": ChannelView({"f": text}, {}, kinds)}
        found = check_release(TITLE, OFFICIAL_BODY, "", GOOD_METADATA, {}, CONFIG, views)
        return any(f.rule == "confidentiality_marking" and f.severity == BLOCK for f in found)

    assert [blocked(typed, k) for k in ({"f": "text"}, {"*": "html"}, {})] == [True, False, True]
    assert [blocked(entity, k) for k in ({"*": "text"}, {"f": "html"}, {})] == [False, True, True]
    assert blocked(typed, {"g": "html"})  # another field's kind says nothing about this one


def test_an_xml_field_is_read_for_its_text_only():
    doc = '<?xml version="1.0"?><doc xmlns="http://iptc.org/std/nar/2006-10-01/"><p>正文。</p></doc>'
    views = {"feed": ChannelView({"documents": {"newsml": doc}}, {}, {"documents": "xml"})}
    assert check_release(TITLE, OFFICIAL_BODY, "", GOOD_METADATA, {}, CONFIG, views) == []


def test_an_unknown_channel_text_with_markup_is_read_both_ways():
    found = check(channels={"weibo-office.text": "<script>机密★1年</script>今日要闻"})
    assert [(f.rule, f.severity) for f in found] == [("confidentiality_marking", BLOCK)]
