"""Find adapter kinds through the `tongfa.channels` entry-point group.

A third party ships an adapter as its own package by declaring, in its pyproject:
    [project.entry-points."tongfa.channels"]
    mykind = "mypackage.adapter:MyAdapter"
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from channels.contract import ChannelAdapter, JSON

GROUP = "tongfa.channels"


class UnknownKind(LookupError):
    pass


@cache
def adapter_kinds() -> dict[str, type[ChannelAdapter]]:
    kinds: dict[str, type[ChannelAdapter]] = {}
    for ep in entry_points(group=GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, ChannelAdapter)):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a ChannelAdapter")
        kinds[ep.name] = cls
    return kinds


def adapter_class(kind: str) -> type[ChannelAdapter]:
    try:
        return adapter_kinds()[kind]
    except KeyError:
        known = ", ".join(sorted(adapter_kinds())) or "none"
        raise UnknownKind(f"unknown channel kind {kind!r} (installed: {known})") from None


def make_adapter(kind: str, config: JSON, credentials: JSON | None = None) -> ChannelAdapter:
    return adapter_class(kind)(config, credentials)
