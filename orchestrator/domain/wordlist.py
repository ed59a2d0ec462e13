"""Find every listed word in a text in one pass, however the text tries to hide it.

Why an Aho-Corasick automaton: the sensitive-word list is configurable and can run to
tens of thousands of entries, while a release body is tens of thousands of characters;
checking word by word (or one big regex alternation) grows with the list, the automaton
does not. It is small enough to own here, so the project carries no extra dependency.

Why normalise first: spam writers (and sometimes honest authors pasting from Hong Kong,
Macao or Taiwan sources) write 網上賭場 for 网上赌场, 博 彩 or 博*彩 for 博彩, full-width
ＣＡＳＩＮＯ for casino. Text and words go through the same `normalise`: NFKC (full-width to
half-width), lower case, traditional to simplified by the character table below, and every
space, punctuation mark, symbol and invisible character dropped. Matches are reported
with offsets into the *original* text, so an excerpt shows what the author wrote.

The traditional table is character by character, one direction only (traditional forms
are many-to-one onto simplified ones, so this is safe). It covers the characters of the
default list and common ones; a deployment that adds words with other characters extends
`_TRADITIONAL` (a word list entry in simplified form is all it needs).

The other ways text hides live here too: a keyword block laid out to look like a list
(`keyword_runs`), and inline CSS that shows text to search engines but not to readers
(`hidden_reason`): both are how defaced government pages carried gambling spam.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import compress

# Pairs "traditional simplified", one per entry.
_TRADITIONAL = """
網网 賭赌 場场 時时 機机 詞词 測测 試试 絡络 馬马 門门 開开 關关 東东 車车 長长 發发 髮发
會会 來来 個个 們们 這这 對对 說说 話话 語语 讀读 寫写 書书 學学 國国 際际 電电 腦脑 號号
碼码 點点 線线 區区 縣县 鎮镇 鄉乡 廣广 黨党 衛卫 華华 萬万 與与 為为 無无 愛爱 樂乐 錢钱
銀银 貸贷 買买 賣卖 購购 獎奖 註注 冊册 贏赢 輸输 贈赠 紅红 資资 訊讯 傳传 聞闻 報报 紙纸
視视 頻频 圖图 廳厅 處处 辦办 務务 員员 經经 濟济 達达 運运 動动 幣币 義义 產产 業业 戰战
歡欢 觀观 聽听 讓让 請请 謝谢 議议 論论 證证 據据 設设 計计 樣样 應应 該该 種种 體体 見见
現现 實实 驗验 險险 類类 韓韩 鐵铁 銷销 額额 頁页 項项 題题 顯显 風风 飛飞 幾几 氣气 陽阳
陰阴 隊队 雙双 雜杂 難难 靈灵 麗丽 齊齐 龍龙 盜盗 槍枪 彈弹 藥药 頭头 殺杀 亂乱 娛娱 遊游
戲戏 幫帮 團团 圍围 園园 億亿 優优 傷伤 價价 兒儿 內内 兩两 劇剧 勞劳 勝胜 協协 單单 嚴严
壓压 壞坏 夢梦 婦妇 寶宝 屬属 層层 帶带 廢废 彙汇 徵征 復复 複复 懷怀 戶户 擁拥 擇择 擊击
擴扩 敵敌 斷断 曆历 歷历 條条 權权 橫横 檢检 歲岁 歸归 殘残 漢汉 滅灭 潔洁 濕湿 灣湾 熱热
燈灯 爭争 爾尔 獨独 環环 療疗 盡尽 監监 稅税 穩稳 競竞 筆笔 範范 簡简 糧粮 紀纪 約约 級级
細细 組组 結结 統统 絕绝 維维 綜综 緊紧 總总 績绩 繼继 續续 罰罚 職职 聯联 聲声 舉举 舊旧
藝艺 蘇苏 蘭兰 補补 裝装 製制 規规 覺觉 親亲 訂订 討讨 訓训 記记 許许 訪访 評评 詳详 認认
誤误 調调 談谈 講讲 譯译 護护 變变 豐丰 貝贝 負负 財财 責责 質质 費费 貿贸 賀贺 賠赔 賞赏
賽赛 跡迹 軍军 輕轻 載载 輛辆 輪轮 農农 連连 進进 遠远 適适 選选 遺遗 還还 郵邮 醫医 針针
鋼钢 錄录 錯错 鍵键 鎖锁 鏈链 閉闭 間间 閱阅 闆板 隨随 雞鸡 離离 靜静 響响 預预 領领 願愿
顧顾 飯饭 館馆 鬥斗 魚鱼 鳥鸟 麼么 黃黄 衝冲 蘋苹 頒颁 佈布 傑杰 淨净 凈净 減减 幹干 於于
裡里 裏里 後后 臺台 颱台 麵面 鬆松 獲获 穫获 鐘钟 鍾钟 瀏浏 覽览 賓宾 偽伪 紋纹
"""
TRADITIONAL_TO_SIMPLIFIED: dict[str, str] = {
    pair[0]: pair[1] for pair in _TRADITIONAL.split() if pair[0] != pair[1]
}
_TRADITIONAL_CHAR = re.compile(f"[{''.join(TRADITIONAL_TO_SIMPLIFIED)}]")

# Unicode categories that carry no meaning for matching: punctuation (P*), symbols (S*),
# separators (Z*), control/format/unassigned (C*: zero-width spaces, soft hyphens...).
_DROPPED = ("P", "S", "Z", "C")


class _FoldTable(dict[int, str]):
    """For str.translate: what each character becomes, worked out once per character.

    Why a table: translate runs in C, so folding a 20,000-character body costs about a
    millisecond; a Python loop over the characters costs ten times that.
    """

    def __missing__(self, code: int) -> str:
        kept = []
        for c in unicodedata.normalize("NFKC", chr(code)).lower():
            c = TRADITIONAL_TO_SIMPLIFIED.get(c, c)
            if unicodedata.category(c)[0] not in _DROPPED:
                kept.append(c)
        folded = self[code] = "".join(kept)
        return folded


class _WidthTable(dict[int, str]):
    """For str.translate: how many characters each one folds to, as chr(0), chr(1), chr(2) (2+)."""

    def __missing__(self, code: int) -> str:
        width = self[code] = chr(min(len(_FOLD[code]), 2))
        return width


_FOLD = _FoldTable()
_WIDTH = _WidthTable()


def to_simplified(text: str) -> str:
    """Traditional characters replaced by simplified ones; same length, same offsets."""
    return _TRADITIONAL_CHAR.sub(lambda m: TRADITIONAL_TO_SIMPLIFIED[m.group()], text)


def fold(text: str) -> str:
    """The matching form of `text`."""
    return text.translate(_FOLD)


def normalise(text: str) -> tuple[str, list[int]]:
    """The matching form of `text` and, for each of its characters, the original offset."""
    widths = text.translate(_WIDTH)
    if "\x02" not in widths:  # the usual case: each character kept whole or dropped
        return fold(text), list(compress(range(len(text)), widths.encode("ascii")))
    offsets: list[int] = []
    for i, char in enumerate(text):
        offsets.extend([i] * len(_FOLD[ord(char)]))
    return fold(text), offsets


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
        hits = self.find_folded(fold(text)) if self.words else []
        if not hits:
            return []
        _, offsets = normalise(text)  # only worked out when there is something to show
        return [
            Match(self.words[index], offsets[start], offsets[end - 1] + 1)
            for start, end, index in hits
        ]


@lru_cache(maxsize=16)
def matcher(words: tuple[str, ...]) -> WordMatcher:
    """The automaton for a list, built once: building is the slow part, finding is not."""
    return WordMatcher(words)


@lru_cache(maxsize=1)
def default_sensitive_words() -> tuple[str, ...]:
    """The illustrative list shipped in data/sensitive_words.txt (# starts a comment)."""
    text = resources.files(__package__).joinpath("data/sensitive_words.txt").read_text("utf-8")
    return tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


# Vocabulary of injected gambling spam, used to tell a spam block from an innocent list
# of keywords. Deliberately narrow: 澳门, 棋牌, 彩票 alone occur in honest releases.
DEFAULT_SPAM_WORDS: tuple[str, ...] = (
    "博彩", "六合彩", "赌场", "网上赌场", "百家乐", "时时彩", "赌球", "老虎机", "真人荷官",
    "娱乐城", "线上娱乐", "体育投注", "彩票投注", "投注", "彩金", "注册送", "开户送", "返水",
    "葡京", "太阳城", "电子游艺", "赌博", "casino", "baccarat", "betting",
)  # fmt: skip


_SENTENCE = re.compile(r"[。！？；：!?]|\.(?=\s|$)")
_TOKEN = re.compile(r"[^\s,，、|｜/／·•\x1f]+")
_PROSE_SEPARATOR = re.compile(r"[，、]")


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
