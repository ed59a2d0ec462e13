"""How Weibo reads a status's text: where its links are and how long it is.

One rule, used by the adapter (to refuse before sending), the console (to show the
count) and the sandbox (to answer 20012 as the platform does):

- a link runs over URL characters (RFC 3986) only: a space, a full-width sign or a
  汉字 ends it, so `http://a.cn/x中文` is the link `http://a.cn/x` then two 汉字;
- the platform rewrites every link to a short link (`http://t.cn/…`), so a link
  counts as 20 units whatever its own length (a 300-byte URL too);
- any other ASCII character is 1 unit, anything else 2; the length is
  ceil(units / 2) 汉字, at most 140.
"""

from __future__ import annotations

import math
import re

LIMIT = 140  # 汉字
LINK_UNITS = 20  # a t.cn short link, whatever the link's own length
LINK = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.IGNORECASE)
SHORT_HOST = "t.cn"


def links(text: str) -> list[str]:
    return LINK.findall(text)


def weibo_length(text: str) -> int:
    """The length Weibo shows for a status, in 汉字."""
    units = LINK_UNITS * len(links(text))
    units += sum(1 if ord(ch) < 128 else 2 for ch in LINK.sub("", text))
    return math.ceil(units / 2)


def is_short_link(url: str) -> bool:
    return re.fullmatch(r"https?://t\.cn/[A-Za-z0-9]+", url) is not None
