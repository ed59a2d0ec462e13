"""Atom feeds (RFC 4287) built as XML trees with lxml, never as text templates.

Every value goes in as element text or an attribute, so markup in a title stays text and
the serialiser escapes it; characters XML 1.0 cannot carry at all (C0 controls other than
tab/newline/CR, U+FFFE/U+FFFF, lone surrogates) are dropped first. Whatever reached the
store, the feed is well-formed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from lxml import etree

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# the complement of XML 1.0's Char production (§2.2)
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """`value` as text XML can carry: characters outside XML 1.0 are removed."""
    return NOT_XML.sub("", "" if value is None else str(value))


def _add(parent: etree._Element, tag: str, text: object = None, **attrs: object) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ATOM_NS}}}{tag}")
    for name, value in attrs.items():
        element.set(name, xml_text(value))
    if text is not None:
        element.text = xml_text(text)
    return element


def _links(parent: etree._Element, links: Iterable[Mapping[str, Any]]) -> None:
    for link in links:
        _add(parent, "link", **{k: v for k, v in link.items() if v not in (None, "")})


def feed(*, feed_id: str, title: str, updated: str, author: str,
         links: Iterable[Mapping[str, Any]] = (), entries: Iterable[Mapping[str, Any]] = (),
         generator: str | None = None, lang: str = "zh-CN") -> bytes:
    """The feed document, UTF-8 with an XML declaration.

    An entry is a mapping with id, title, updated, author, summary, and optionally
    `links` (attribute mappings: rel, type, href, length) and `categories` (terms).
    """
    root = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    root.set(XML_LANG, lang)
    _add(root, "title", title)
    _add(root, "id", feed_id)
    _links(root, links)
    _add(root, "updated", updated)
    _add(_add(root, "author"), "name", author)
    if generator:
        _add(root, "generator", generator)
    for e in entries:
        entry = _add(root, "entry")
        _add(entry, "id", e["id"])
        _add(entry, "title", e["title"])
        _add(entry, "updated", e["updated"])
        _add(_add(entry, "author"), "name", e["author"])
        for term in e.get("categories", ()):
            if xml_text(term).strip():
                _add(entry, "category", term=term)
        _links(entry, e.get("links", ()))
        _add(entry, "summary", e["summary"])
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
