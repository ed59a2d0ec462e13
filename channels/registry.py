"""Find adapter kinds through the `tongfa.channels` entry-point group.

A third party ships an adapter as its own package by declaring, in its pyproject:
    [project.entry-points."tongfa.channels"]
    mykind = "mypackage.adapter:MyAdapter"
(docs/adapters.md, "Shipping an adapter as its own package").

Each kind is imported on first use, so one broken package cannot take the others down: a
kind whose import raises, or that names no ChannelAdapter, is logged once, kept as broken
with the reason, and refused as BrokenKind (an UnknownKind: every caller that passes over a
kind it does not know passes over it too), while every other kind loads as before. A kind
not found rescans the installed packages once before it is refused, so a package installed
after start is found without a restart.
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from channels.contract import JSON, ChannelAdapter

GROUP = "tongfa.channels"
log = logging.getLogger(__name__)
loaded: dict[str, type[ChannelAdapter]] = {}
# kind -> (why it did not load, the entry point that failed): tried again only once the
# installed package changes (an upgrade), not at every lookup
broken: dict[str, tuple[str, EntryPoint]] = {}
_lock = threading.Lock()


class UnknownKind(LookupError):
    pass


class BrokenKind(UnknownKind):
    """The kind is installed but its package failed to load."""


@dataclass(frozen=True)
class Kind:
    """An installed kind as `tongfa channels kinds` shows it."""

    name: str
    target: str  # module:attribute the entry point names
    package: str  # the distribution that declares it
    version: str
    problem: str | None = None  # why it cannot be used; None when it loaded

    def to_json(self) -> JSON:
        return {"name": self.name, "target": self.target, "package": self.package,
                "version": self.version, "loaded": self.problem is None,
                "problem": self.problem}


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def rescan() -> None:
    """Read the installed packages' entry points again (a package installed since start)."""
    importlib.invalidate_caches()
    _entry_points.cache_clear()


def kinds() -> list[str]:
    return sorted(set(_entry_points()) | set(loaded))


def _why(exc: BaseException) -> str:
    """What went wrong, without the exception's text (a plugin's message may carry
    anything): its type, and for an import the module that is missing."""
    missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    return f"{type(exc).__name__}" + (f" (module {missing})" if missing else "")


def _load(ep: EntryPoint) -> type[ChannelAdapter]:
    try:
        cls = ep.load()
    except Exception as exc:  # anything a plugin's import can raise stays with that plugin
        log.exception("channel kind %s (%s) failed to load", ep.name, ep.value)
        raise BrokenKind(f"channel kind {ep.name!r} is installed but failed to load: "
                         f"{_why(exc)}") from None
    if not (isinstance(cls, type) and issubclass(cls, ChannelAdapter)):
        log.error("channel kind %s: %s is not a ChannelAdapter", ep.name, ep.value)
        raise BrokenKind(f"channel kind {ep.name!r}: entry point {ep.value} "
                         "is not a ChannelAdapter")
    return cls


def adapter_class(kind: str) -> type[ChannelAdapter]:
    found = loaded.get(kind)
    if found is not None:
        return found
    with _lock:  # one import per kind, however many threads ask at once
        if kind in loaded:
            return loaded[kind]
        ep = _entry_points().get(kind)
        if ep is None:
            rescan()
            ep = _entry_points().get(kind)
        if ep is None:
            raise UnknownKind(f"unknown channel kind {kind!r} (installed: {', '.join(kinds())})")
        if kind in broken and _same(broken[kind][1], ep):
            raise BrokenKind(broken[kind][0])
        try:
            loaded[kind] = _load(ep)
        except BrokenKind as exc:
            broken[kind] = (str(exc), ep)
            raise
    return loaded[kind]


def _same(one: EntryPoint, other: EntryPoint) -> bool:
    version = [getattr(getattr(ep, "dist", None), "version", None) for ep in (one, other)]
    return one.value == other.value and version[0] == version[1]


def make_adapter(kind: str, config: JSON, credentials: JSON | None = None) -> ChannelAdapter:
    return adapter_class(kind)(config, credentials)


def installed() -> list[Kind]:
    """Every kind installed now, each loaded (a broken one is listed with why, not raised)."""
    rescan()
    found = []
    for name in kinds():
        problem = None
        try:
            cls = adapter_class(name)
        except UnknownKind as exc:
            cls, problem = None, str(exc)
        ep = _entry_points().get(name)
        dist = getattr(ep, "dist", None)
        if ep is not None:
            target = ep.value
        else:  # put in `loaded` by hand (tests)
            target = f"{cls.__module__}:{cls.__qualname__}" if cls else ""
        found.append(Kind(name, target, dist.name if dist else "", dist.version if dist else "",
                          problem))
    return found
