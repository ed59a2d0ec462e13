"""Pre-publish checks, run at submit and again before go-live, with the site's settings."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.domain.checks import CheckConfig, Finding, blocking, check_release
from orchestrator.settings import Settings
from orchestrator.store.models import Release


@cache
def _words(path: Path | None) -> tuple[str, ...] | None:
    if path is None:
        return None
    return tuple(w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip())


def config_for(settings: Settings) -> CheckConfig:
    extra: dict[str, Any] = {}
    words = _words(settings.sensitive_words_file)
    if words is not None:
        extra["sensitive_words"] = words
    return CheckConfig(allowed_link_domains=tuple(settings.allowed_link_domains),
                       site_domain=urlsplit(settings.site_base_url).hostname or "", **extra)


def findings(settings: Settings, release: Release, payloads: dict[str, Any]) -> list[Finding]:
    """Every finding about this release and what each channel will show of it."""
    texts = {}
    for name, payload in payloads.items():
        for key in ("text", "content", "digest"):
            if isinstance(payload, dict) and payload.get(key):
                texts[f"{name}.{key}"] = str(payload[key])
    return check_release(release.title, release.body_html, release.summary, release.meta, texts,
                         config_for(settings))


def as_dicts(found: list[Finding]) -> list[dict[str, str]]:
    return [{"rule": f.rule, "severity": f.severity, "where": f.where, "message": f.message,
             "excerpt": f.excerpt} for f in found]


__all__ = ["findings", "blocking", "as_dicts", "config_for"]
