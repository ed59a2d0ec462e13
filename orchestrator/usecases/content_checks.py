"""Pre-publish checks, run at submit and again before go-live, with the site's settings."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, select

from channels.contract import ChannelAdapter
from channels.registry import UnknownKind, adapter_class
from channels.wechat import IMAGE_REF
from orchestrator.domain.checks import ChannelView, CheckConfig, Finding, blocking, check_release
from orchestrator.domain.errors import Refused
from orchestrator.domain.wordlist import ListedWord, WordListError, parse_word_list
from orchestrator.settings import Settings
from orchestrator.store.models import ChannelInstance, Release

KindOf = Callable[[ChannelInstance], type[ChannelAdapter]]


def word_list(path: Path) -> tuple[ListedWord, ...]:
    """A deployment's list file, read again whenever it changes (no restart needed)."""
    try:
        stat = path.stat()
        return _parsed(path, stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise WordListError(f"{path}: 无法读取敏感词表（{exc.strerror}）") from None


@lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int, size: int) -> tuple[ListedWord, ...]:
    return parse_word_list(path.read_text(encoding="utf-8"), str(path))


def config_for(settings: Settings) -> CheckConfig:
    extra: dict[str, Any] = {}
    if settings.sensitive_words_file is not None:
        try:
            extra["sensitive_words"] = word_list(settings.sensitive_words_file)
        except WordListError as exc:  # the list went bad while the service runs
            raise Refused(f"敏感词表有误，发布前检查无法进行：{exc}") from None
    return CheckConfig(allowed_link_domains=tuple(settings.allowed_link_domains),
                       site_domain=urlsplit(settings.site_base_url).hostname or "",
                       placeholder_schemes=(IMAGE_REF.rstrip(":"),), **extra)


def findings(settings: Settings, session: Session, release: Release,
             payloads: dict[str, Any], kind_of: KindOf | None = None) -> list[Finding]:
    """Every finding about this release and what each channel will show of it.

    Every string of every channel's payload and of the release's overrides is read (see
    orchestrator.domain.checks) as that channel shows it, not just the fields called text
    or content.
    """
    kinds = field_kinds(session, set(payloads) | set(release.overrides), kind_of)
    views = {name: ChannelView(payload if isinstance(payload, dict) else {},
                               release.overrides.get(name) or {}, kinds.get(name, {}))
             for name, payload in payloads.items()}
    return check_release(release.title, release.body_html, release.summary, release.meta, {},
                         config_for(settings), views)


def field_kinds(session: Session, names: set[str], kind_of: KindOf | None = None
                ) -> dict[str, dict[str, str]]:
    """How each named channel shows its fields (its adapter's field_kinds, its class found
    by `kind_of`, e.g. a worker's warm adapters); a channel that is gone or of a kind not
    installed says nothing, so its fields are read both ways."""
    kind_of = kind_of or (lambda row: adapter_class(row.kind))
    rows = session.exec(select(ChannelInstance).where(ChannelInstance.name.in_(names)))
    found = {}
    for row in rows:
        try:
            found[row.name] = dict(kind_of(row).field_kinds)
        except UnknownKind:
            continue
    return found


def as_dicts(found: list[Finding]) -> list[dict[str, str]]:
    return [{"rule": f.rule, "severity": f.severity, "where": f.where, "message": f.message,
             "excerpt": f.excerpt} for f in found]


__all__ = ["findings", "field_kinds", "blocking", "as_dicts", "config_for", "word_list"]
