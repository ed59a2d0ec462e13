"""Tests of each channel adapter against its sandbox."""

from __future__ import annotations


def weibo_mid(status_id: str) -> str:
    """How weibo.com writes a post's numeric id in its links: base62, four characters per
    seven decimal digits, read from the right."""
    from channels.weibo import BASE62

    digits, groups = status_id, []
    while digits:
        digits, group = digits[:-7], int(digits[-7:])
        chars = ""
        while group:
            group, rest = divmod(group, 62)
            chars = BASE62[rest] + chars
        groups.append(chars.rjust(4, "0") if digits else chars)
    return "".join(reversed(groups))
