"""Pre-publish content checks: what must stop a release, and what a reviewer must look at.

Why: under 谁发布谁审查 the press office answers for everything it puts out, and defaced
government pages have been found with gambling keyword blocks, hidden text and foreign
links above and below the official text. These checks run on exactly what will be
published: the release's title, summary, metadata and sanitised body, every string a reader
of each channel will see in its rendered payload (titles of every kind, sluglines, digests,
the website's whole page, the feed's NewsML/NITF text and e-mail), and the per-channel
overrides as the author wrote them. Pure: no database, no web.

Every rule reads the text's reading form (wordlist.reading_form: NFKC, every
default-ignorable character removed, blank-looking ones as spaces, traditional made
simplified by OpenCC), so 机\u200b密★1年 and 祕密★1年 are 机密★1年 and 秘密★1年 and
机\u2800密★1年 is 机 密★1年; excerpts still show what the author wrote. A field is read as
its channel shows it (ChannelView.kinds): as typed (Weibo's text: <!-- 机密★1年 --> is on
screen), as HTML, or as XML for its text; of unknown kind, both as typed and as HTML. HTML is
read as shown: 机<a href=…>密</a>★1年 is 机密★1年, an image's alt is read in its place, an
element's title (tooltip) with its paragraph.

Severity per rule ("block": cannot be published; "flag": a reviewer must look):
- metadata, block: 索引号/发布机构/发布日期 missing; 文号 not 〔YYYY〕N号; a date not
  YYYY-MM-DD; 成文日期 after 发布日期. flag: 文号 year is not 成文日期's year.
- disclosure, block: 公开属性 is not 主动公开.
- confidentiality_marking, block: a marking (机密★1年, 秘密★, 密级：机密, a grade word or
  注意保密 standing alone or in brackets as a stamp (【机密】, （秘密）), 内部资料 so or
  heading a line (内部资料，请勿外传; not 内部资料性出版物), also spaced out (机 密 ★ 1 年) and with any star or asterisk
  (☆ ✩ ⭐ ＊ *). flag: a grade word in running text (揭开…的秘密, 商业秘密): a person decides.
  Talk about the process (保密审查, 保密工作, 各单位要注意保密，…) or about such material
  (不得将内部资料上传至互联网) is no finding.
- sensitive_word, block or flag by the word's category in the list (docs/checks.md): a
  listed word, also in traditional form or broken up by spaces/punctuation (wordlist.py).
- link_not_allowed, block: a URL in any HTML attribute or written in the text whose host is
  neither the site nor an allowed domain (or their subdomains); javascript:, data:, ftp: etc.
  Read as a browser reads it (http:evil.com, //evil.com, evil。com, http://博彩网.com by its
  IDNA form xn--9kro4zezz.com); in the text also a bare
  domain ending in a public suffix (bet365.com, not ASP.NET, Node.js, 报告.pdf or 8.30).
  In a channel's payload, the addresses that channel generates for itself (its `url`,
  `link`, `href`, `marker` fields, the feed's provider domain) count as the site's.
- spam_keyword_block, block: >= 8 short separated keywords with >= 2 gambling words, or a
  line without sentence punctuation with >= 3. flag: >= 8 distinct short keywords in a line
  without sentence punctuation (a tag list, or SEO): a person decides.
- keyword_stack, the category's severity: N distinct words of a word-list category marked
  stack=N anywhere in the release together (spam split one word a field or paragraph).
- hidden_text, block: text or links a reader cannot see (display:none, visibility:hidden,
  font-size <= 1px, opacity 0, colour of the background, off-screen, zero size). Nothing in an
  official release is hidden on purpose; it is the defacement signature.

Body paragraphs are the HTML's block elements in source order, hidden ones included,
numbered from 1: "body:paragraph 3" is 正文第3段. Each distinct text is checked once, at the
first place a reader meets it: release fields first, then overrides, then each channel's
payload ("channel website.title", "channel feed.item.slugline", "channel website.html:
paragraph 2"), so a marking in the title is one finding, not one per channel.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import idna
import lxml.html
from lxml import etree
from publicsuffixlist import PublicSuffixList

from orchestrator.domain.release import (
    DOCUMENT_NUMBER,
    METADATA_LABELS,
    REQUIRED_TO_PUBLISH,
    disclosure_problem,
)
from orchestrator.domain.wordlist import (
    BLOCK,
    DEFAULT_SPAM_WORDS,
    FLAG,
    KeywordStack,
    ListedWord,
    Reading,
    background_of,
    default_sensitive_words,
    has_sentence,
    hidden_reason,
    keyword_runs,
    keyword_stacks,
    matcher,
    parse_style,
    reading_form,
)


@dataclass(frozen=True)
class Finding:
    """One thing found, said so a press officer knows where it is and what to do."""

    rule: str
    severity: str  # BLOCK or FLAG
    where: str  # "title", "summary", "body:paragraph 3", "metadata.document_number", "channel X"
    message: str  # Chinese, actionable
    excerpt: str = ""


@dataclass(frozen=True)
class CheckConfig:
    """What a deployment may tune. Frozen and hashable, so compiled matchers are cached."""

    # a plain word is a flag; a ListedWord carries its category and severity
    sensitive_words: tuple[str | ListedWord, ...] = field(default_factory=default_sensitive_words)
    allowed_link_domains: tuple[str, ...] = ()
    site_domain: str = ""  # the government website's own domain; always allowed
    spam_words: tuple[str, ...] = DEFAULT_SPAM_WORDS
    keyword_run: int = 8  # this many short separated keywords make a "keyword block"
    # link schemes an adapter writes into its own payload and replaces when it stages
    # (WeChat's in-article images): ours, in a payload, not an author's link
    placeholder_schemes: tuple[str, ...] = ()


def blocking(findings: list[Finding]) -> list[Finding]:
    """The findings that stop publication."""
    return [f for f in findings if f.severity == BLOCK]


@dataclass
class _Unit:
    """One place a reader sees text: a field, a body paragraph or a channel text."""

    where: str
    label: str  # the same place in Chinese, for messages
    text: str
    links: list[str] = field(default_factory=list)  # from HTML attributes
    own_hosts: tuple[str, ...] = ()  # a channel payload's addresses for itself
    generated: bool = False  # rendered by an adapter (not typed by the author)

    @cached_property
    def reading(self) -> Reading:
        """The text as a reader sees it: a link's boundary is no break (机<a>密</a>★1年)."""
        return reading_form(self.text.replace(_SEP, ""))


_BLOCK_TAGS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 li blockquote td th tr table ul ol dl dt dd pre section article "
    "header footer aside nav figure figcaption caption address center form hr".split()
)
_SKIP_TAGS = frozenset({"script", "style", "template", "head", "title", "meta"})
_URL_ATTRS = ("href", "src", "action", "data", "poster", "background", "formaction")
_SEP = "\x1f"  # marks inline-link boundaries: <a>博彩</a><a>六合彩</a> is two keywords
_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")\s]+)")
_MARKUP = re.compile(r"<[A-Za-z!/?][^>]*>|&(?:#\d+|#x[0-9a-f]+|[a-z]+\d*);", re.IGNORECASE)
_SPACES = re.compile(r"[^\S\n\x1f]+")  # any whitespace but line breaks and _SEP


class _HtmlWalker:
    """Splits HTML into paragraphs and notes hidden elements and URL attributes on the way."""

    def __init__(self) -> None:
        self.paragraphs: list[tuple[str, list[str]]] = []
        self.hidden: list[tuple[int, str, str]] = []  # (paragraph, reason, text)
        self._buf: list[str] = []
        self._links: list[str] = []
        self._titles: list[str] = []
        self._media = False

    def flush(self) -> None:
        text = _squash("\n".join(["".join(self._buf), *self._titles]))
        if text or self._media or self._links:
            self.paragraphs.append((text, self._links))
        self._buf, self._links, self._titles, self._media = [], [], [], False

    def visit(self, el: etree._Element, hidden: bool, background: str) -> None:
        if not isinstance(el.tag, str):  # comment or processing instruction
            return
        tag = el.tag.lower()
        if tag in _BLOCK_TAGS:
            self.flush()
        self._links += [el.get(a, "").strip() for a in _URL_ATTRS if el.get(a, "").strip()]
        self._links += _CSS_URL.findall(el.get("style") or "")  # background:url(...)
        if tag in _SKIP_TAGS:
            return
        style = parse_style(el.get("style") or "")
        background = background_of(style, el.attrib) or background
        reason = None if hidden else hidden_reason(style, el.attrib, background)
        paragraph = len(self.paragraphs) + 1
        self._media |= tag in ("img", "video", "audio", "iframe", "embed", "object")
        self._buf.append("\n" if tag == "br" else _SEP if tag == "a" else "")
        # what a reader is shown besides the text: an image's alt in its place, a tooltip
        self._buf.append((el.get("alt") or "") if tag in ("img", "area", "input") else "")
        self._titles += [el.get("title")] if (el.get("title") or "").strip() else []
        self._buf.append(el.text or "")
        for child in el:
            self.visit(child, hidden or reason is not None, background)
            self._buf.append(child.tail or "")
        self._buf.append(_SEP if tag == "a" else "")
        if reason:
            text = _squash(el.text_content())
            if text or el.find(".//a") is not None or el.find(".//img") is not None:
                self.hidden.append((paragraph, reason, text))
        if tag in _BLOCK_TAGS:
            self.flush()


def _squash(text: str) -> str:
    """Collapse runs of spaces and blank lines; keep single line breaks (from <br>)."""
    lines = (_SPACES.sub(" ", line).strip(" ") for line in text.split("\n"))
    return "\n".join(line for line in lines if line.strip(" " + _SEP))


def _html_units(html: str, where: str, label: str) -> tuple[list[_Unit], list[Finding]]:
    walker = _HtmlWalker()
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div") if html.strip() else None
    except (etree.ParserError, ValueError):  # nothing an HTML parser can use: read as text
        return [_Unit(where, label, html)], []
    if root is not None:
        walker.visit(root, False, "#ffffff")
        walker.flush()
    units = [
        _Unit(f"{where}:paragraph {n}", f"{label}第{n}段", text, links)
        for n, (text, links) in enumerate(walker.paragraphs, start=1)
    ]
    hidden = [
        Finding("hidden_text", BLOCK, f"{where}:paragraph {n}",
                f"{label}第{n}段含读者看不见的内容（{reason}），这是网页被植入垃圾信息的典型手法，"
                "须删除后再发布", _clip(text))
        for n, reason, text in walker.hidden
    ]  # fmt: skip
    return units, hidden


def _stars() -> str:
    """Every star and asterisk Unicode names so (★☆✩✭✮⭐*…): a marking's star, however drawn."""
    ranges = ((0x20, 0x3000), (0xFE00, 0x10000), (0x1F000, 0x1FC00))
    found = [chr(c) for a, b in ranges for c in range(a, b)
             if {"STAR", "ASTERISK", "PENTAGRAM"} & set(unicodedata.name(chr(c), "").split())
             and unicodedata.category(chr(c))[0] in "SP"]
    return "[" + "".join(map(re.escape, found)) + "]"


def _brackets(category: str) -> str:
    """Opening (Ps) or closing (Pe) brackets a stamp is set in (【机密】, （秘密）), not 《》〈〉:
    《秘密》 is a book or film."""
    found = [chr(c) for c in range(0x10000)
             if unicodedata.category(chr(c)) == category and chr(c) not in "《》〈〉⟨⟩"]
    return "".join(map(re.escape, found)) + ("<" if category == "Ps" else ">")


# What may stand between the characters of a marking: spaces (机 密 ★ 1 年, a line break
# from <br>), dashes, underscores, dots, middle dots.
_GAP = r"[\s\-_.·・•‧]*"


def _spaced(*words: str) -> str:
    return "|".join(_GAP.join(map(re.escape, word)) for word in words)


_GRADE = _spaced("绝密", "机密", "秘密")
_STAR = _stars()
_OPEN, _CLOSE = _brackets("Ps"), _brackets("Pe")
_PERIOD = rf"\d+{_GAP}(?:{_spaced('个月', '月', '年')})|{_spaced('长期', '启用前')}"
_STAMP = rf"{_GRADE}|{_spaced('注意保密', '内部资料')}"
_MARKING = re.compile(
    rf"(?:{_GRADE}){_GAP}{_STAR}{_GAP}(?:{_PERIOD})?"  # 机密★1年, 绝密★启用前, 机 密 ☆ 1 年
    rf"|{_spaced('密级')}{_GAP}:?{_GAP}(?:{_GRADE})"  # 密级：机密 (： is : once NFKC)
    rf"|(?<![^\s{_OPEN}])(?:{_STAMP})(?![^\s{_CLOSE}])"  # a stamp, alone or in brackets (【机密】)
    # 内部资料 heading a line is a stamp (内部资料，请勿外传); in a sentence it is talk about such
    # material (不得将内部资料上传至互联网), and 内部资料性出版物 is a regulated publication category
    rf"|(?m:^)[^\S\n]*(?:{_spaced('内部资料')})(?!{_GAP}性)"
)
_GRADE_WORD = re.compile("绝密|机密|秘密")


def _confidentiality(unit: _Unit) -> list[Finding]:
    reading = unit.reading
    findings, covered = [], set()
    for m in _MARKING.finditer(reading.text):
        covered.update(range(m.start(), m.end()))
        findings.append(Finding(
            "confidentiality_marking", BLOCK, unit.where,
            f"{unit.label}含密级标识“{m.group().strip()}”，不得公开发布；如确已解密，"
            "请删除标识并附解密依据", _excerpt(reading, m.start(), m.end())))  # fmt: skip
    for m in _GRADE_WORD.finditer(reading.text):
        if m.start() not in covered:
            findings.append(Finding(
                "confidentiality_marking", FLAG, unit.where,
                f"{unit.label}出现“{m.group()}”，请审核人员确认不是密级标识、不涉及涉密内容",
                _excerpt(reading, m.start(), m.end())))  # fmt: skip
    return findings


@lru_cache(maxsize=16)
def _word_list(words: tuple[str | ListedWord, ...]) -> tuple[tuple[str, ...], dict[str, ListedWord]]:
    """The words for the matcher (blocking ones first: they win a tie) and each one's entry.

    Words of a keyword stack are not hits alone: `_keyword_stacks` counts them."""
    entries = [w if isinstance(w, ListedWord) else ListedWord(w) for w in words]
    entries = [w for w in entries if not w.stack]
    entries.sort(key=lambda w: w.severity != BLOCK)
    return tuple(w.word for w in entries), {w.word.strip(): w for w in reversed(entries)}


def _sensitive(unit: _Unit, config: CheckConfig) -> list[Finding]:
    """One finding per place and severity, naming every word found (a spam block has dozens)."""
    words, entry = _word_list(config.sensitive_words)
    hits = matcher(words).find(unit.text)
    findings = []
    for severity in (BLOCK, FLAG):
        mine = [m for m in hits if entry[m.word].severity == severity]
        if not mine:
            continue
        found = list(dict.fromkeys(m.word for m in mine))
        named = "、".join(f"“{w}”" for w in found[:5]) + (f"等{len(found)}个" if len(found) > 5 else "")
        if severity == BLOCK:
            kinds = "、".join(dict.fromkeys(entry[w].category for w in found if entry[w].category))
            message = f"{unit.label}含禁用词{named}" + (f"（{kinds}类）" if kinds else "") + "，不得发布，须删除"
        else:
            message = f"{unit.label}含敏感词{named}，请审核人员确认用语是否恰当"
        findings.append(Finding("sensitive_word", severity, unit.where, message,
                                _excerpt(unit.text, mine[0].start, mine[0].end)))
    return findings


@lru_cache(maxsize=16)
def _stacks(words: tuple[str | ListedWord, ...]) -> tuple[KeywordStack, ...]:
    return keyword_stacks(words)


def _keyword_stacks(units: list[_Unit], config: CheckConfig) -> list[Finding]:
    """A keyword stack's words counted over the whole release: every field, paragraph and
    channel together, so spam split one word a paragraph is still a block of spam."""
    findings = []
    for stack in _stacks(config.sensitive_words):
        found: dict[str, tuple[_Unit, Any]] = {}  # word: where a reader first meets it
        for unit in units:
            for m in matcher(stack.words).find(unit.text):
                found.setdefault(m.word, (unit, m))
        if len(found) < stack.size:
            continue
        unit, first = next(iter(found.values()))
        places = "、".join(dict.fromkeys(u.label for u, _ in found.values()))
        named = "、".join(f"“{w}”" for w in list(found)[:6]) + ("等" if len(found) > 6 else "")
        said = (f"发布内容含“{stack.category}”类词语{len(found)}个（{named}，见{places}），"
                f"同时出现{stack.size}个即为关键词堆砌，")
        findings.append(Finding(
            "keyword_stack", stack.severity, unit.where,
            said + ("疑似被植入的垃圾信息，须删除" if stack.severity == BLOCK
                    else "请审核人员确认是否为正文内容"),
            _excerpt(unit.text, first.start, first.end)))  # fmt: skip
    return findings


# A link written in the text, as a reader (or a channel that makes links of text) follows it.
# The host is ASCII labels separated by a full stop or by one of the dots IDNA reads as a full
# stop (。．｡: ．is . and ｡ is 。 once NFKC); the rest runs to a space, CJK text or punctuation.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_URL_CHARS = r"[a-z0-9\-._~:/?#@$&*+=%\\\[\]。]*"
# After a scheme the host may be in any script (http://博彩网.com, https://例子.测试): a
# label begun in another script runs through its word characters; one begun in Latin runs
# through Latin letters only, so the CJK text right after http://evil.com注册 is no host.
_IDN_HOST = r"(?:[^\W\x00-\u024f][\w-]*|[a-z0-9\u00c0-\u024f-]+)(?:[.。](?:[^\W\x00-\u024f][\w-]*|[a-z0-9\u00c0-\u024f-]+))*"
_SCHEMED = re.compile(  # with //, or without (http:evil.com) when a dotted host follows
    rf"(?i)(?<![a-z0-9+.-])(?:https?|s?ftps?|wss?):"
    rf"(?:[/\\]{{2}}(?:{_IDN_HOST}|\[)|[/\\]?(?=[a-z0-9._~%:@-]*[.。][a-z0-9])[a-z0-9])"
    rf"{_URL_CHARS}"
)
_HOST_IN_TEXT = re.compile(
    rf"(?i)(?<![a-z0-9@._/-])(?P<slashes>//)?(?P<host>{_LABEL}(?:[.。]{_LABEL})+)\.?"
    rf"(?![a-z0-9@-])(?P<rest>(?::\d+)?(?:[/?#]{_URL_CHARS})?)"
)
_SAFE_SCHEMES = frozenset({"http", "https", "", "mailto", "tel"})
# Schemes whose URLs a browser reads with any number of slashes or backslashes after the
# colon (WHATWG URL: http:evil.com and http:/\\evil.com are http://evil.com).
_SPECIAL_SCHEMES = ("http", "https", "ftp", "ws", "wss")


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    """The public suffix list (ICANN section), shipped with the package: no download."""
    return PublicSuffixList(accept_unknown=False, only_icann=True)


# File extensions; those that are also top-level domains (.zip .mov .md .py .sh .pl .rs .ai
# .ps .et .java .mobi) make a file name look like an address. Not .cc: rare for a file in a
# press release, common for gambling sites.
_FILE_EXTENSIONS = frozenset(
    "doc docx xls xlsx et ppt pptx dps wps pdf ofd txt rtf csv zip rar 7z gz tar jpg jpeg png gif "
    "bmp svg webp tif tiff mp3 mp4 mov avi wmv mkv wav py js ts md sh pl rs java c cpp h cs rb "
    "php html htm css json xml yaml yml ini log exe msi apk dmg iso bin dat ai psd ps eps dwg "
    "epub mobi".split()
)


def _bare_domain(host: str, rest: str) -> bool:
    """Whether a name written without scheme or www (bet365.com) is an address.

    It must end in a public suffix and have a name before it (so Node.js, 报告.pdf, 1.2.3 and
    8.30 are not). A suffix in capitals is how names are written (ASP.NET, VB.NET, Co.Ltd):
    such a name is an address only with a digit, a third label, a port or a path (BET365.COM).
    A suffix that is also a file extension is a file name (guide.zip, readme.md, main.py)
    unless a port or path follows or the name mixes letters and digits as gambling sites'
    do (bet365.zip, 888bet.mov); with //, www. or a scheme it is an address anyway (see
    _links_in_text).
    """
    folded = host.replace("。", ".").lower()
    if _suffixes().privatesuffix(folded) is None:
        return False
    *_, name, suffix = folded.split(".")
    mixed = re.search(r"[a-z]", name) and re.search(r"\d", name)
    if suffix in _FILE_EXTENSIONS and not rest and not mixed:
        return False
    suffix = re.split(r"[.。]", host)[-1]
    return suffix.islower() or bool(rest) or any(c.isdigit() for c in host) or folded.count(".") > 1


def _browser_url(url: str) -> str:
    """A link as a browser reads it: controls and spaces dropped, \\ as /, http:evil.com as
    http://evil.com, the IDNA full stops 。 as dots in the host."""
    raw = "".join(c for c in url if c > " ").replace("\\", "/")
    scheme, colon, rest = raw.partition(":")
    if colon and scheme.lower() in _SPECIAL_SCHEMES:
        raw = f"{scheme}://{rest.lstrip('/')}"
    parts = urlsplit(raw)
    if "。" in parts.netloc:
        raw = urlunsplit(parts._replace(netloc=parts.netloc.replace("。", ".")))
    return raw


def _ascii_host(host: str) -> str | None:
    """A host as a browser looks it up: a Unicode name by its IDNA form (博彩网.com is
    xn--9kro4zezz.com); None when no IDNA form exists, so no reader can tell where it goes."""
    host = host.rstrip(".")
    if host.isascii():
        return host.lower()
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return None


def _domain(entry: str) -> str:
    entry = entry.strip().lower()
    host = urlsplit(entry if "//" in entry else "//" + entry).hostname or ""
    return _ascii_host(host.lstrip("*.")) or ""


def _links_in_text(text: str) -> list[tuple[int, int, str]]:
    """(start, end, url to check) for every link written in a reading-form text."""
    found = [(m.start(), m.start() + len(u), u)
             for m in _SCHEMED.finditer(text) if (u := m.group().rstrip(".,:;?!。"))]
    rest = _SCHEMED.sub(lambda m: " " * len(m.group()), text)
    for m in _HOST_IN_TEXT.finditer(rest):
        host, tail = m.group("host"), (m.group("rest") or "").rstrip(".,:;?!。")
        if m.group("slashes") or host.lower().startswith(("www.", "www。")) or _bare_domain(host, tail):
            end = m.end("host") + len(tail)
            found.append((m.start(), end, "http://" + rest[m.start():end].lstrip("/")))
    return found


def _links(unit: _Unit, config: CheckConfig) -> list[Finding]:
    hosts = (config.site_domain, *config.allowed_link_domains, *unit.own_hosts)
    allowed = [d for d in map(_domain, hosts) if d]
    reading = unit.reading
    candidates = [(reading_form(link).text, link) for link in unit.links]
    candidates += [(url, reading.as_written(a, b)) for a, b, url in _links_in_text(reading.text)]
    findings: dict[str, Finding] = {}
    for url, written in candidates:
        try:
            parts = urlsplit(_browser_url(url))
        except ValueError:  # http://[… : no reader can tell where it goes
            findings[url] = Finding("link_not_allowed", BLOCK, unit.where,
                                    f"{unit.label}含无法识别的链接，须删除或改正", _clip(written))
            continue
        scheme = parts.scheme.lower()
        if unit.generated and scheme in config.placeholder_schemes:
            continue
        if scheme not in _SAFE_SCHEMES:
            findings[scheme] = Finding(
                "link_not_allowed", BLOCK, unit.where,
                f"{unit.label}含不允许的链接类型“{scheme}:”，须删除", _clip(written))  # fmt: skip
            continue
        if scheme in ("mailto", "tel") or not parts.netloc:
            continue  # same site (relative link) or a contact address
        if (host := _ascii_host(parts.hostname or "")) is None:
            findings[url] = Finding("link_not_allowed", BLOCK, unit.where,
                                    f"{unit.label}含无法识别的链接，须删除或改正", _clip(written))
            continue
        if not any(host == d or host.endswith("." + d) for d in allowed):
            permitted = "、".join(dict.fromkeys(allowed)) or "未配置任何域名"
            name = (parts.hostname or "").rstrip(".")
            shown = host if name == host else f"{name}（即{host}）"  # what was written, and where it goes
            findings[host] = Finding(
                "link_not_allowed", BLOCK, unit.where,
                f"{unit.label}含外部链接“{shown}”，不在允许的域名（{permitted}）之内，"
                "请删除或改为本站链接", _clip(written))  # fmt: skip
    return list(findings.values())


def _spam(unit: _Unit, config: CheckConfig) -> list[Finding]:
    spam, findings, at = matcher(config.spam_words), [], 0
    reading = reading_form(unit.text)  # with link edges: <a>博彩</a><a>六合彩</a> is two keywords
    for line in reading.text.split("\n"):
        line_at, at = at, at + len(line) + 1
        prose, found = has_sentence(line), None
        for run in keyword_runs(line, config.keyword_run, spam):
            span = (run.start, run.end)
            if len(run.spam_words) >= 2:
                found = (BLOCK, *span, f"{run.count}个关键词，含赌博类词语“{_few(run.spam_words)}”")
            elif not prose and run.distinct >= config.keyword_run and run.latin * 2 < run.count:
                found = found or (FLAG, *span, f"{run.distinct}个互不相关的短词，没有成句")
        if not found and not prose and len(words := {m.word for m in spam.find(line)}) >= 3:
            found = (BLOCK, 0, len(line), f"赌博类词语“{_few(words)}”等堆砌")
        if found:
            severity, start, end, what = found
            action = "疑似被植入的垃圾信息，须删除" if severity == BLOCK else "请确认是否为正文内容"
            findings.append(Finding("spam_keyword_block", severity, unit.where,
                                    f"{unit.label}是关键词堆砌（{what}），{action}",
                                    _clip(reading.as_written(line_at + start, line_at + end))))  # fmt: skip
    return findings


_DOC_PARTS = re.compile(r"^\S+〔(\d{4})〕(\d+)号$")  # mirrors release.DOCUMENT_NUMBER
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_REQUIRED = {key: METADATA_LABELS[key] for key in REQUIRED_TO_PUBLISH}


def _metadata(metadata: dict[str, str | None]) -> list[Finding]:
    def get(key: str) -> str:
        value = metadata.get(key)
        return "" if value is None else str(value).strip()

    def finding(key: str, message: str, severity: str = BLOCK) -> Finding:
        return Finding("metadata", severity, f"metadata.{key}", message, get(key))

    findings = [
        finding(k, f"缺少{n}，政府信息公开要求必须填写") for k, n in _REQUIRED.items() if not get(k)
    ]
    dates: dict[str, dt.date] = {}
    for key in ("date_written", "date_published"):
        name = METADATA_LABELS[key]
        if value := get(key):
            if (date := _iso_date(value)) is None:
                findings.append(
                    finding(key, f"{name}“{value}”不是有效日期，请按2026-03-01格式填写")
                )
            else:
                dates[key] = date
    if "date_written" in dates and "date_published" in dates:
        if dates["date_written"] > dates["date_published"]:
            findings.append(finding("date_written", "成文日期晚于发布日期，请核对两个日期"))
    if number := get("document_number"):
        parts = _DOC_PARTS.match(number)
        if not DOCUMENT_NUMBER.match(number) or not parts:
            findings.append(finding("document_number",
                f"文号“{number}”格式不对，应为“机关代字〔年份〕序号号”，如“某政办发〔2014〕8号”，"
                "年份用六角括号〔〕，不用[]、【】或（）"))  # fmt: skip
        else:
            written = dates.get("date_written")
            if written and int(parts.group(1)) != written.year:
                findings.append(finding("document_number",
                    f"文号年份{parts.group(1)}与成文日期年份{written.year}不一致，请核对", FLAG))  # fmt: skip
    return findings


def _iso_date(value: str) -> dt.date | None:
    """Only YYYY-MM-DD: fromisoformat alone would also take 20260301 or 2026-W09-7."""
    try:
        return dt.date.fromisoformat(value) if _ISO_DATE.match(value) else None
    except ValueError:
        return None


def _disclosure(metadata: dict[str, str | None]) -> list[Finding]:
    problem = disclosure_problem(metadata.get("disclosure"))
    if problem is None:
        return []
    return [Finding("disclosure", BLOCK, "metadata.disclosure", problem,
                    (metadata.get("disclosure") or "").strip())]


# What a press officer calls a payload field: by its path, its last two keys, or its key.
_FIELD_LABELS = {
    "title": "标题", "summary": "摘要", "digest": "摘要", "text": "文本", "content": "正文",
    "body": "正文", "body_html": "正文", "html": "网页", "column": "栏目", "author": "作者",
    "slugline": "简题", "provider": "发稿单位", "filename": "文件名", "ed_note": "编辑附注",
    "email.subject": "邮件主题", "email.body": "邮件正文", "documents.newsml": "NewsML稿件",
    "documents.nitf": "NITF稿件", **METADATA_LABELS,
}  # fmt: skip
# Payload keys that carry what we generate for machines, not what a reader reads: our own
# addresses (they make the channel's own hosts, see _own_hosts), ids, hashes, store paths.
_URL_KEYS = frozenset({"url", "link", "href", "marker", "content_source_url"})
_MACHINE_KEYS = _URL_KEYS | {"guid", "provider_domain", "sha256", "path", "source"}


# How a channel shows a field to its readers: as typed (Weibo's text, an escaped title),
# rendered as HTML (an article), or an XML document read for its text (NewsML).
TEXT, HTML, XML = "text", "html", "xml"


@dataclass(frozen=True)
class ChannelView:
    """What one channel will show: its rendered payload, the overrides written for it, and
    how it shows each field (`kinds`: a dotted path without list indices or a parent of
    it, its last key, or "*" for any other field, to TEXT, HTML or XML; see
    ChannelAdapter.field_kinds)."""

    payload: Mapping[str, Any]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    kinds: Mapping[str, str] = field(default_factory=dict)

    def kind(self, path: str) -> str | None:
        """How the field at `path` is shown; None when the channel does not say."""
        parts = re.sub(r"\[\d+\]", "", path).split(".")
        paths = [".".join(parts[:n]) for n in range(len(parts), 0, -1)]  # it, then its parents
        for key in (*paths, parts[-1], "*"):
            if key in self.kinds:
                return self.kinds[key]
        return None


def check_release(
    title: str,
    body_html: str,
    summary: str,
    metadata: dict[str, str | None],
    channel_texts: dict[str, str],
    config: CheckConfig,
    channels: Mapping[str, ChannelView] | None = None,
) -> list[Finding]:
    """Every finding for a release as it will be published, in reading order.

    `channels` maps a channel's name to what it will show (see ChannelView): every string
    of its payload and of its overrides is read as that channel shows it: as typed, as
    HTML or as XML for its text. A field whose kind the channel does not say is read both
    as typed and as HTML, and the findings of either count. The older `channel_texts` maps
    a name (e.g. "weibo-office.text") to one text a channel shows, of unknown kind.
    """
    findings = _metadata(metadata) + _disclosure(metadata)
    reader = _Reader()
    for key, value in metadata.items():
        if value is not None and str(value).strip():
            reader.text(f"metadata.{key}", METADATA_LABELS.get(key, f"元数据“{key}”"), str(value))
    reader.text("title", "标题", title)
    reader.text("summary", "摘要", summary)
    reader.html(body_html, "body", "正文")
    for name, text in channel_texts.items():
        reader.any(f"channel {name}", f"渠道文本“{name}”", text, None)
    for name, view in (channels or {}).items():
        for path, text in _strings(view.overrides):
            label = f"渠道“{name}”的自定义{_field_label(path)}"
            reader.any(f"overrides.{name}.{path}", label, text, view.kind(path))
    for name, view in (channels or {}).items():
        own = tuple(sorted(_own_hosts(view.payload)))
        for path, text in _strings(view.payload):
            label = f"渠道“{name}”的{_field_label(path)}"
            reader.any(f"channel {name}.{path}", label, text, view.kind(path), own, generated=True)
    findings += reader.hidden
    for unit in reader.units:
        if unit.text or unit.links:
            findings += _confidentiality(unit) + _sensitive(unit, config)
            findings += _links(unit, config) + _spam(unit, config)
    findings += _keyword_stacks(reader.units, config)
    order = {unit.where: i for i, unit in enumerate(reader.units)}  # metadata first, then as read
    first = [f for f in findings if f.rule in ("metadata", "disclosure")]
    rest = sorted((f for f in findings if f not in first), key=lambda f: order.get(f.where, -1))
    return list(dict.fromkeys(first + rest))


class _Reader:
    """The places to check, each distinct text once, at the first place a reader meets it.

    Why: the title is also every channel's title, the body is also the page's and the
    article's paragraphs; one marking should be one finding where the author can fix it.
    A line or paragraph already read (with the same links) is not read again; a channel
    field whose every line was read is skipped.
    """

    def __init__(self) -> None:
        self.units: list[_Unit] = []
        self.hidden: list[Finding] = []
        self._lines: set[str] = set()
        self._paragraphs: set[tuple[str, tuple[str, ...]]] = set()
        self._hidden_seen: set[tuple[str, str]] = set()

    def text(self, where: str, label: str, text: str, own: tuple[str, ...] = (),
             generated: bool = False) -> None:
        lines = text.split("\n")
        fresh = [line for line in lines if _line_key(line) not in self._lines]
        self._lines.update(_line_key(line) for line in lines)
        if any(line.strip() for line in fresh):
            kept = text if len(fresh) == len(lines) else "\n".join(fresh)
            self.units.append(_Unit(where, label, kept, [], own, generated))

    def html(self, html: str, where: str, label: str, own: tuple[str, ...] = (),
             generated: bool = False) -> None:
        units, hidden = _html_units(html, where, label)
        for unit in units:
            key = (_line_key(unit.text), tuple(unit.links))
            if key not in self._paragraphs and (unit.links or key[0] not in self._lines):
                self._paragraphs.add(key)
                self._lines.update(_line_key(line) for line in [unit.text, *unit.text.split("\n")])
                unit.own_hosts, unit.generated = own, generated
                self.units.append(unit)
        for finding in hidden:
            key = (finding.message.split("（", 1)[-1], finding.excerpt)
            if key not in self._hidden_seen:
                self._hidden_seen.add(key)
                self.hidden.append(finding)

    def any(self, where: str, label: str, text: str, kind: str | None,
            own: tuple[str, ...] = (), generated: bool = False) -> None:
        """A payload or override string as its channel shows it (TEXT, HTML, XML).

        Of unknown kind (None), it is read both as typed and as a page would show it:
        `今日要闻<!-- 机密★1年 -->` shows the marking as typed, `机&#23494;` as HTML; an XML
        document (<?xml …) for its text only, as its namespaces are no links."""
        if kind == XML or (kind is None and text.lstrip().startswith("<?xml")):
            self.text(where, label, "\n".join(_xml_lines(text)), own, generated)
            return
        if kind == HTML or (kind is None and _MARKUP.search(text)):
            self.html(text, where, label, own, generated)
        if kind == TEXT or kind is None:
            self.text(where, label, text, own, generated)


def _line_key(line: str) -> str:
    """A line as compared with lines already read, as a reader sees it: spacing, list
    bullets and where a link begins or ends do not count."""
    return " ".join(line.replace(_SEP, "").split()).lstrip("·•-* ")


def _field_label(path: str) -> str:
    bare = re.sub(r"\[\d+\]", "", path)
    for key in (bare, ".".join(bare.split(".")[-2:]), bare.rsplit(".", 1)[-1]):
        if key in _FIELD_LABELS:
            return _FIELD_LABELS[key]
    return f"字段“{path}”"


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) for every non-empty string a reader will see, e.g. ("item.slugline", …)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key not in _MACHINE_KEYS:
                yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")
    elif isinstance(value, str) and value.strip():
        yield path, value


def _own_hosts(value: Any) -> set[str]:
    """The hosts a payload addresses itself at: its URL fields and the feed's provider domain."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in _URL_KEYS and isinstance(item, str):
                found.add(urlsplit(item.strip()).hostname or "")
            elif key == "provider_domain" and isinstance(item, str):
                found.add(_domain(item))
            else:
                found |= _own_hosts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= _own_hosts(item)
    return found - {""}


def _xml_lines(xml: str) -> list[str]:
    """The text of an XML document as a reader of it sees it: no tags, attributes, namespaces.

    A block of text (a paragraph, a headline) is one line, so it compares with the same
    paragraph of the body already read.
    """
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.fromstring(xml.encode("utf-8"), parser)
    except (etree.XMLSyntaxError, ValueError):
        return [xml]  # not XML after all: read every character
    lines: list[str] = []

    def visit(el: etree._Element) -> None:
        if not isinstance(el.tag, str):
            return
        children = [c for c in el if isinstance(c.tag, str)]
        blocks_inside = any(etree.QName(d).localname.lower() in _BLOCK_TAGS
                            for d in el.iterdescendants() if isinstance(d.tag, str))
        if not children or (etree.QName(el).localname.lower() in _BLOCK_TAGS and not blocks_inside):
            lines.append(_squash("".join(el.itertext())))
            return
        lines.append(el.text or "")
        for child in children:
            visit(child)
            lines.append(child.tail or "")

    visit(root)
    return [line.strip() for line in lines if line.strip()]


def _few(words: set[str] | frozenset[str]) -> str:
    return "、".join(sorted(words)[:3])


def _excerpt(text: str | Reading, start: int, end: int, context: int = 12) -> str:
    """The words around text[start:end]; for a reading form, around what was written there."""
    if isinstance(text, Reading):
        (start, end), text = text.span(start, end), text.written
    left, right = max(0, start - context), min(len(text), end + context)
    return _clip(("…" if left else "") + text[left:right] + ("…" if right < len(text) else ""))


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.replace(_SEP, " ").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
