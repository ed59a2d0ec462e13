"""Find adapter kinds through the `tongfa.channels` entry-point group.

A third party ships an adapter as its own package by declaring, in its pyproject:
    [project.entry-points."tongfa.channels"]
    mykind = "mypackage.adapter:MyAdapter"
Each kind is imported on first use, so one broken package cannot take the others down.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from channels.contract import JSON, ChannelAdapter

GROUP = "tongfa.channels"
loaded: dict[str, type[ChannelAdapter]] = {}


class UnknownKind(LookupError):
    pass


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def kinds() -> list[str]:
    return sorted(set(_entry_points()) | set(loaded))


def adapter_class(kind: str) -> type[ChannelAdapter]:
    if kind not in loaded:
        ep = _entry_points().get(kind)
        if ep is None:
            raise UnknownKind(f"unknown channel kind {kind!r} (installed: {', '.join(kinds())})")
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, ChannelAdapter)):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a ChannelAdapter")
        loaded[kind] = cls
    return loaded[kind]


def make_adapter(kind: str, config: JSON, credentials: JSON | None = None) -> ChannelAdapter:
    return adapter_class(kind)(config, credentials)
