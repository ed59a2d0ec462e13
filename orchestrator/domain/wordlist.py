"""Find every listed word in a text in one pass, however the text tries to hide it.

Why an Aho-Corasick automaton: the sensitive-word list is configurable and can run to
tens of thousands of entries, while a release body is tens of thousands of characters;
checking word by word (or one big regex alternation) grows with the list, the automaton
does not. It is small enough to own here, so the project carries no extra dependency.

Why a reading form: spam writers (and sometimes honest authors pasting from Hong Kong,
Macao or Taiwan sources) write 網上賭場 for 网上赌场, 机\u200b密 for 机密, full-width
ＣＡＳＩＮＯ for casino. Every rule reads `reading_form(text)`: NFKC (full-width to
half-width), every default-ignorable character (zero-width, bidi controls,
variation selectors, tags…) removed, traditional forms turned simplified by
OpenCC (t2s), and every blank-looking character (U+2800, any space separator) a
space. Its `span` maps any stretch of it back to the text as written, so an excerpt
shows what the author wrote. Word matching then also drops case, spaces, punctuation and
symbols (`fold`), so 博 彩 and 博*彩 are 博彩.

The word lists themselves (`parse_word_list`) have categories with a severity each: see
docs/checks.md for the format.

The other ways text hides live here too: a keyword block laid out to look like a list
(`keyword_runs`), and inline CSS that shows text to search engines but not to readers
(`hidden_reason`): both are how defaced government pages carried gambling spam.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import compress

import opencc
import regex

BLOCK = "block"  # cannot be published
FLAG = "flag"  # a reviewer must look
SEVERITIES = (BLOCK, FLAG)

# Characters a reader does not see, which break a word for a naive matcher: every
# Default_Ignorable_Code_Point of Unicode's DerivedCoreProperties (zero-width space and
# joiners, bidi controls, soft hyphen, byte-order mark, Hangul fillers, variation
# selectors, tag characters, ...), as the `regex` module keeps it with each Unicode release.
_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")


# Characters a reader sees as a blank that are not ignorable: every space separator (Zs;
# NFKC makes most of them a space, not U+1680) and the braille blank U+2800, which fonts draw
# empty. They read as a space, so 机\u2800密★1年 is the spaced marking 机 密★1年.
_BLANK = regex.compile(r"[\p{Zs}\u2800]")


def invisible(char: str) -> bool:
    """Whether a character is one a reader does not see (Default_Ignorable_Code_Point)."""
    return _IGNORABLE.match(char) is not None


class _ReadTable(dict[int, str]):
    """For str.translate: each character's NFKC form without invisible characters.

    Why a table: translate runs in C, so a 50,000-character body costs about a millisecond.
    """

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if invisible(char):
            read = ""
        else:
            read = " " if _BLANK.match(char) else unicodedata.normalize("NFKC", char)
        read = self[code] = _IGNORABLE.sub("", read)
        return read


class _ReadWidth(dict[int, str]):
    """For str.translate: how many characters each one reads as: chr(0), chr(1), chr(2) (2+)."""

    def __missing__(self, code: int) -> str:
        width = self[code] = chr(min(len(_READ[code]), 2))
        return width


_READ = _ReadTable()
_READ_WIDTH = _ReadWidth()
_T2S = opencc.OpenCC("t2s")


def simplified_aligned(text: str, convert: Callable[[str], str] = _T2S.convert) -> str:
    """`text` with traditional forms made simplified, character for character.

    OpenCC converts phrases (乾隆 stays, 乾燥 becomes 干燥), which is what we want; a phrase
    whose simplified form has another length would shift every offset after it, so such a
    stretch is converted one character at a time instead (and a character that still
    changes length is kept as written). The result always has the length of `text`.
    """
    converted = convert(text)
    if len(converted) == len(text):
        return converted
    parts = []
    for piece in re.findall(r"\w+|\W+", text):
        out = convert(piece)
        if len(out) != len(piece):
            out = "".join(c if len(s := convert(c)) != 1 else s for c in piece)
        parts.append(out)
    return "".join(parts)


@dataclass(frozen=True)
class Reading:
    """The form every rule reads, and where each of its characters was written.

    `text[i]` comes from `written[starts[i]:ends[i]]`: usually one character, sometimes
    more (a letter and its combining accent), and one written character may read as
    several (㍿ as 株式会社), each pointing at it.
    """

    written: str
    text: str
    starts: Sequence[int]
    ends: Sequence[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Where `text[start:end]` was written: `written[a:b]`."""
        if end <= start:
            at = self.starts[start] if start < len(self.text) else len(self.written)
            return at, at
        return self.starts[start], self.ends[end - 1]

    def as_written(self, start: int, end: int) -> str:
        a, b = self.span(start, end)
        return self.written[a:b]


@lru_cache(maxsize=512)  # each rule reads the same paragraph: read it once
def reading_form(text: str) -> Reading:
    """NFKC, invisible characters removed, blanks as spaces, traditional made simplified;
    offsets kept."""
    read = text.translate(_READ)
    starts: Sequence[int]
    ends: Sequence[int]
    # NFKC never reads a character as nothing: with no invisible one, the same length
    # means one for one (the usual case, checked without a second pass)
    if len(read) == len(text) and not _IGNORABLE.search(text):
        starts, ends = range(len(text)), range(1, len(text) + 1)
    elif "\x02" not in (widths := text.translate(_READ_WIDTH)):  # some characters dropped, none widened
        starts = list(compress(range(len(text)), widths.encode("ascii")))
        ends = [i + 1 for i in starts]
    else:
        starts, ends = [], []
        for i, char in enumerate(text):
            n = len(_READ[ord(char)])
            starts.extend([i] * n)
            ends.extend([i + 1] * n)
    if not unicodedata.is_normalized("NFKC", read):  # combining marks: compose per cluster
        read, starts, ends = _composed(text)
    return Reading(text, simplified_aligned(read), starts, ends)


def _composed(text: str) -> tuple[str, list[int], list[int]]:
    """The slow path: NFKC per cluster (a base character and the marks that follow it)."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i = 0
    while i < len(text):
        j = i + 1
        while j < len(text) and (unicodedata.combining(text[j]) or invisible(text[j])):
            j += 1
        piece = unicodedata.normalize("NFKC", text[i:j].translate(_READ))
        out.append(piece)
        starts.extend([i] * len(piece))
        ends.extend([j] * len(piece))
        i = j
    return "".join(out), starts, ends


def to_simplified(text: str) -> str:
    """Traditional forms replaced by simplified ones; same length, same offsets."""
    return simplified_aligned(text)


# Unicode categories that carry no meaning for matching words: punctuation (P*), symbols
# (S*), separators (Z*), control/format/unassigned (C*).
_DROPPED = ("P", "S", "Z", "C")


class _FoldTable(dict[int, str]):
    """For str.translate: a reading-form character in lower case, or nothing if dropped."""

    def __missing__(self, code: int) -> str:
        kept = [c for c in chr(code).lower() if unicodedata.category(c)[0] not in _DROPPED]
        folded = self[code] = "".join(kept)
        return folded


class _WidthTable(dict[int, str]):
    """For str.translate: how many characters each one folds to, as chr(0), chr(1), chr(2) (2+)."""

    def __missing__(self, code: int) -> str:
        width = self[code] = chr(min(len(_FOLD[code]), 2))
        return width


_FOLD = _FoldTable()
_WIDTH = _WidthTable()


def fold(text: str) -> str:
    """The matching form of `text`."""
    return _fold(text)


def normalise(text: str) -> tuple[str, list[int]]:
    """The matching form of `text` and, for each of its characters, the original offset."""
    folded, starts, _ = _folded(text)
    return folded, starts


@lru_cache(maxsize=512)  # the sensitive and the spam word lists read the same text
def _fold(text: str) -> str:
    return reading_form(text).text.translate(_FOLD)


def _folded(text: str) -> tuple[str, list[int], list[int]]:
    reading = reading_form(text)
    widths = reading.text.translate(_WIDTH)
    kept: Iterable[int]
    if "\x02" not in widths:  # the usual case: each character kept whole or dropped
        kept = list(compress(range(len(reading.text)), widths.encode("ascii")))
    else:
        kept = [i for i, c in enumerate(reading.text) for _ in range(len(_FOLD[ord(c)]))]
    starts, ends = reading.starts, reading.ends
    return _fold(text), [starts[i] for i in kept], [ends[i] for i in kept]


@dataclass(frozen=True)
class Match:
    """One occurrence of a listed word: `text[start:end]` is how it was written."""

    word: str
    start: int
    end: int


class WordMatcher:
    """An Aho-Corasick automaton over the normalised forms of a word list.

    Built once per list (the caller caches it); `find` is one pass over the text
    whatever the size of the list. Overlapping and nested words are all reported.
    """

    def __init__(self, words: Iterable[str]) -> None:
        self._goto: list[dict[str, int]] = [{}]
        self._fail: list[int] = [0]
        self._out: list[tuple[int, ...]] = [()]
        self.words: list[str] = []  # as listed, one per distinct normalised form
        self._lengths: list[int] = []
        seen: set[str] = set()
        for word in words:
            key = fold(word)
            if key and key not in seen:
                seen.add(key)
                self._add(key, len(self.words))
                self.words.append(word.strip())
                self._lengths.append(len(key))
        self._link()

    def __len__(self) -> int:
        return len(self.words)

    def _add(self, key: str, index: int) -> None:
        node = 0
        for char in key:
            nxt = self._goto[node].get(char)
            if nxt is None:
                nxt = len(self._goto)
                self._goto[node][char] = nxt
                self._goto.append({})
                self._fail.append(0)
                self._out.append(())
            node = nxt
        self._out[node] = (*self._out[node], index)

    def _link(self) -> None:
        """Failure links, breadth first: the longest proper suffix that is also a prefix."""
        queue = deque(self._goto[0].values())
        while queue:
            node = queue.popleft()
            for char, child in self._goto[node].items():
                queue.append(child)
                fail = self._fail[node]
                while fail and char not in self._goto[fail]:
                    fail = self._fail[fail]
                target = self._goto[fail].get(char, 0)
                self._fail[child] = target if target != child else 0
                # a node reports its own words and those of its failure target
                self._out[child] = self._out[child] + self._out[self._fail[child]]

    def find_folded(self, text: str) -> list[tuple[int, int, int]]:
        """(start, end, word index) in an already folded text.

        The hot loop of the checks, written for CPython: the current node's transitions
        are kept in a local, and failure links are followed only on a miss.
        """
        goto, fail, out, lengths = self._goto, self._fail, self._out, self._lengths
        root = goto[0]
        node, here, hits, end = 0, root, [], 0
        for char in text:
            end += 1
            nxt = here.get(char)
            if nxt is None:
                while node:
                    node = fail[node]
                    nxt = goto[node].get(char)
                    if nxt is not None:
                        break
                else:
                    nxt = root.get(char, 0)
            node, here = nxt, goto[nxt]
            if out[node]:
                hits.extend((end - lengths[index], end, index) for index in out[node])
        return hits

    def find(self, text: str) -> list[Match]:
        """Every occurrence, with offsets into `text` as written (evasions included)."""
        hits = self.find_folded(_fold(text)) if self.words else []
        if not hits:
            return []
        _, starts, ends = _folded(text)  # only worked out when there is something to show
        return [Match(self.words[index], starts[start], ends[end - 1]) for start, end, index in hits]


@lru_cache(maxsize=16)
def matcher(words: tuple[str, ...]) -> WordMatcher:
    """The automaton for a list, built once: building is the slow part, finding is not."""
    return WordMatcher(words)


@dataclass(frozen=True)
class ListedWord:
    """One entry of a word list: the word, its category, and what a hit does.

    `stack` 0: the word alone is a hit. N (a keyword stack): N distinct words of the category
    anywhere in one release together are one hit, however they are spread over its fields,
    paragraphs and channels; one alone is none.
    """

    word: str
    category: str = ""
    severity: str = FLAG
    stack: int = 0


@dataclass(frozen=True)
class KeywordStack:
    """A category whose words count together: `size` distinct ones in a release are a hit."""

    category: str
    size: int
    severity: str
    words: tuple[str, ...]


def keyword_stacks(words: Iterable[str | ListedWord]) -> tuple[KeywordStack, ...]:
    """The keyword stacks of a word list, in the order they first appear.

    A category's header written twice with the same settings is one stack."""
    stacks: dict[tuple[str, int, str], list[str]] = {}
    for w in words:
        if isinstance(w, ListedWord) and w.stack:
            stacks.setdefault((w.category, w.stack, w.severity), []).append(w.word)
    return tuple(KeywordStack(category, size, severity, tuple(found))
                 for (category, size, severity), found in stacks.items())


class WordListError(ValueError):
    """A word list that cannot be read; the message names the file and the line."""


_SECTION = re.compile(r"\[([^\[\]]*)\]\s*(.*)")
_SETTING = re.compile(r"[A-Za-z_]+\s*=")


def parse_word_list(text: str, source: str) -> tuple[ListedWord, ...]:
    """A word list file: `[category] severity=block|flag [stack=N]` headers, one word a line,
    `#` comments.

    Words above the first header are flags without a category, so a plain list of one
    word a line still reads as it always did. The format is documented in docs/checks.md.
    """
    words: list[ListedWord] = []
    category, severity, stack = "", FLAG, 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()  # a word never contains #: the rest is a comment

        def bad(reason: str, line: str = line, number: int = number) -> WordListError:
            return WordListError(f"{source}:{number}: {reason}：{line}")

        if not line:
            continue
        if line.startswith("["):
            header = _SECTION.fullmatch(line)
            if header is None:
                raise bad("类别行应写成“[类别] severity=block”或“[类别] severity=flag”")
            category, severity, stack = header.group(1).strip(), FLAG, 0
            if not category:
                raise bad("类别名不能为空")
            for setting in header.group(2).split():
                key, _, value = setting.partition("=")
                if key == "severity":
                    if value not in SEVERITIES:
                        raise bad(f"未知的严重程度“{value}”，只能是 block（不得发布）或 flag（提请审核）")
                    severity = value
                elif key == "stack":
                    if not (value.isascii() and value.isdigit() and 2 <= int(value) <= 100):
                        raise bad(f"stack 应为 2 到 100 之间的整数（几个词同时出现算命中），不是“{value}”")
                    stack = int(value)
                else:
                    raise bad(f"未知的设置“{key}”，类别行只能设置 severity 和 stack")
        elif _SETTING.match(line):
            raise bad("设置只能写在类别行上，如“[赌博] severity=flag”")
        else:
            words.append(ListedWord(line, category, severity, stack))
    return tuple(words)


@lru_cache(maxsize=1)
def default_sensitive_words() -> tuple[ListedWord, ...]:
    """The list shipped in data/sensitive_words.txt (format: docs/checks.md)."""
    path = resources.files(__package__).joinpath("data/sensitive_words.txt")
    return parse_word_list(path.read_text("utf-8"), "orchestrator/domain/data/sensitive_words.txt")


# Vocabulary of injected gambling spam, used to tell a spam block from an innocent list
# of keywords. Deliberately narrow: 澳门, 棋牌, 彩票 alone occur in honest releases.
DEFAULT_SPAM_WORDS: tuple[str, ...] = (
    "博彩", "六合彩", "赌场", "网上赌场", "百家乐", "时时彩", "赌球", "老虎机", "真人荷官",
    "娱乐城", "线上娱乐", "体育投注", "彩票投注", "投注", "彩金", "注册送", "开户送", "返水",
    "葡京", "太阳城", "电子游艺", "赌博", "casino", "baccarat", "betting",
)  # fmt: skip


# Rules read NFKC text, where ；：！？ are ; : ! ?: a colon counts unless it is in a URL or a time.
_SENTENCE = re.compile(r"[。！？；：!?;]|:(?![/\d])|\.(?=\s|$)")
_TOKEN = re.compile(r"[^\s,，、|｜/／·•\x1f]+")
_PROSE_SEPARATOR = re.compile(r"[,，、]")


def has_sentence(line: str) -> bool:
    """Whether a line has sentence punctuation: official text does, keyword spam does not."""
    return bool(_SENTENCE.search(line))


@dataclass(frozen=True)
class KeywordRun:
    """Consecutive short separated tokens: `line[start:end]`, how many, and its spam words."""

    start: int
    end: int
    count: int
    distinct: int
    latin: int  # tokens that are plain Latin-letter words: English prose, not a keyword list
    spam_words: frozenset[str]


def keyword_runs(line: str, min_count: int, spam: WordMatcher) -> list[KeywordRun]:
    """Runs of at least `min_count` short tokens (<= 12 characters, no sentence mark).

    Why the separators matter: a sentence enumerating 南京、无锡、徐州… or 六合彩、时时彩…
    (an anti-gambling notice) is prose, so in a line that has sentence punctuation the
    prose separators 、 and ， end a run; spaces, | and / (how injected blocks are laid
    out) do not. In a line without sentences every separator joins.
    """
    prose = has_sentence(line)
    runs: list[list[re.Match[str]]] = []
    tokens = list(_TOKEN.finditer(line))
    for prev, tok in zip([None, *tokens], tokens, strict=False):
        if len(tok.group()) > 12 or _SENTENCE.search(tok.group()):
            continue  # a sentence, not a keyword: it ends any run
        gap = line[prev.end() : tok.start()] if prev else ""
        if prev and runs and runs[-1][-1] is prev and not (prose and _PROSE_SEPARATOR.search(gap)):
            runs[-1].append(tok)
        else:
            runs.append([tok])
    return [
        KeywordRun(
            start=run[0].start(),
            end=run[-1].end(),
            count=len(run),
            distinct=len({t.group() for t in run}),
            latin=sum(t.group().isascii() and t.group().isalpha() for t in run),
            spam_words=frozenset(m.word for m in spam.find(line[run[0].start() : run[-1].end()])),
        )
        for run in runs
        if len(run) >= min_count
    ]


_NAMED = {"white": "#ffffff", "black": "#000000", "red": "#ff0000", "blue": "#0000ff",
          "green": "#008000", "gray": "#808080", "grey": "#808080", "silver": "#c0c0c0",
          "yellow": "#ffff00", "transparent": "transparent"}  # fmt: skip
_LENGTH = re.compile(r"^(-?\d*\.?\d+)(px|pt|em|rem|%)?$")


def parse_style(style: str) -> dict[str, str]:
    """An inline style attribute as {property: value}, lower case, !important dropped."""
    declarations = (d.split(":", 1) for d in style.split(";") if ":" in d)
    return {k.strip().lower(): v.lower().replace("!important", "").strip() for k, v in declarations}


def _color(value: str) -> str | None:
    """A CSS colour as #rrggbb ("transparent" when fully transparent); None if unknown."""
    value = value.replace(" ", "")
    if value in _NAMED:
        return _NAMED[value]
    if m := re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6})", value):
        digits = m.group(1)
        return "#" + ("".join(c * 2 for c in digits) if len(digits) == 3 else digits)
    if m := re.fullmatch(r"rgba?\((\d+),(\d+),(\d+)(?:,([\d.]+%?))?\)", value):
        if m.group(4) is not None and float(m.group(4).rstrip("%")) == 0:
            return "transparent"
        return "#" + "".join(f"{min(int(m.group(i)), 255):02x}" for i in (1, 2, 3))
    return None


def background_of(style: dict[str, str], attrs: Mapping[str, str]) -> str | None:
    """The background colour an element sets itself (None: it shows its parent's)."""
    for token in (style.get("background-color", "") + " " + style.get("background", "")).split():
        color = _color(token)
        if color and color != "transparent":
            return color
    return _color((attrs.get("bgcolor") or "").lower())


def _px(value: str) -> float | None:
    m = _LENGTH.match(value.strip())
    if not m or m.group(2) == "%":
        return None
    scale = {"em": 16.0, "rem": 16.0, "pt": 4 / 3}.get(m.group(2) or "px", 1.0)
    return float(m.group(1)) * scale


_SHIFTS = ("text-indent", "margin-left", "margin-top")  # move text off-screen unpositioned


def hidden_reason(style: dict[str, str], attrs: Mapping[str, str], background: str) -> str | None:
    """Why a reader would not see an element, in Chinese, or None when they would.

    `background` is the colour the element is shown on (its own or inherited).
    """
    get = style.get
    if attrs.get("hidden") is not None or get("display") == "none":
        return "display:none" if get("display") == "none" else "hidden属性"
    if get("visibility") in ("hidden", "collapse"):
        return "visibility:hidden"
    if (size := _px(get("font-size", "x"))) is not None and size <= 1:
        return "字号为0"
    if (opacity := get("opacity")) and _px(opacity) == 0:
        return "透明度为0"
    color = _color(get("color", "") or (attrs.get("color") or "").lower())
    if color == "transparent" or (color and color == background):
        return "文字颜色与背景相同"
    positioned = get("position") in ("absolute", "fixed")
    for prop in ("left", "top", "right", "bottom", "text-indent", "margin-left", "margin-top"):
        offset = _px(get(prop, "x"))
        if offset is not None and offset <= -500 and (positioned or prop in _SHIFTS):
            return "移出屏幕之外"
    if get("overflow") == "hidden" and any(
        _px(get(p, "x")) == 0 for p in ("height", "width", "max-height", "max-width")
    ):
        return "尺寸为0"
    return None
