"""Jinja2 rendering over templates/<kind>/: the one place adapters render text.

Where a kind's templates are read:
- tongfa's own kinds: the top-level templates/ folder. A wheel ships it as the package data
  of `tongfa_data.templates` (setup.py maps the folder there, with examples/ beside it), read
  through importlib.resources; a source tree reads its own folder, the one being edited.
- a kind from another package (a plugin, docs/adapters.md): templates/<kind>/ inside the
  package of the module that defines its adapter class, never tongfa's folder: a plugin's
  templates are found in its wheel, and one it does not ship is not found in tongfa's.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound, select_autoescape

SOURCE_TREE = Path(__file__).resolve().parent.parent


@cache
def shipped(folder: str) -> Traversable:
    """tongfa's own `templates` or `examples` folder (where it is does not change while
    the process runs; what is in it is read afresh)."""
    if (SOURCE_TREE / "pyproject.toml").is_file() and (SOURCE_TREE / folder).is_dir():
        return SOURCE_TREE / folder
    return files(f"tongfa_data.{folder}")


class ResourceLoader(BaseLoader):
    """Templates under one folder read through importlib.resources (a directory, a zip);
    a file changed on disk is read again, as Jinja's FileSystemLoader would."""

    def __init__(self, root: Traversable) -> None:
        self.root = root

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, object]:
        parts = template.split("/")
        if any(p in ("", ".", "..") or "\\" in p for p in parts):
            raise TemplateNotFound(template)
        resource = _child(self.root, *parts)
        if not resource.is_file():
            raise TemplateNotFound(template)
        source = resource.read_text(encoding="utf-8")
        return source, str(resource), lambda: _read_or_none(resource) == source


def _child(root: Traversable, *parts: str) -> Traversable:
    for part in parts:  # one name at a time: Python 3.11's MultiplexedPath takes no more
        root = root / part
    return root


def _read_or_none(resource: Traversable) -> str | None:
    try:
        return resource.read_text(encoding="utf-8")
    except OSError:
        return None


def templates_of(kind: str) -> Traversable:
    """The folder holding templates/<kind>/: the package of the kind's adapter class when
    that is not tongfa's own; tongfa's templates/ for its own kinds and for a name no
    installed adapter answers to."""
    from channels.registry import UnknownKind, adapter_class

    try:
        module = sys.modules[adapter_class(kind).__module__]
    except UnknownKind:
        return shipped("templates")
    package = module.__package__ or module.__name__
    if package == __package__:  # defined in tongfa's channels package
        return shipped("templates")
    return files(package) / "templates"


_environments: dict[str, Environment] = {}


def environment(root: Traversable) -> Environment:
    """One environment, and so one compiled-template cache, per templates folder."""
    found = _environments.get(str(root))
    if found is None:
        found = _environments.setdefault(str(root), Environment(
            loader=ResourceLoader(root),
            autoescape=select_autoescape(["html", "xml", "atom"]),
            undefined=StrictUndefined,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        ))
    return found


def render(kind: str, name: str, **context: object) -> str:
    """Render templates/<kind>/<name>; a missing variable is an error, not blank text."""
    return environment(templates_of(kind)).get_template(f"{kind}/{name}").render(**context)


def read_bytes(kind: str, name: str) -> bytes:
    """A file of templates/<kind>/ as it is (an image a channel sends as is)."""
    return _child(templates_of(kind), kind, name).read_bytes()
