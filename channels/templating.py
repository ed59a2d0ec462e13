"""Jinja2 rendering over templates/<kind>/: the one place adapters render text."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@cache
def environment(directory: Path = TEMPLATES_DIR) -> Environment:
    return Environment(
        loader=FileSystemLoader(str(directory)),
        autoescape=select_autoescape(["html", "xml", "atom"]),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(kind: str, name: str, **context: object) -> str:
    """Render templates/<kind>/<name>; a missing variable is an error, not blank text."""
    return environment().get_template(f"{kind}/{name}").render(**context)
