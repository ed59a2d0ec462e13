"""IPTC documents for the newspaper feed: NewsML-G2 and NITF 3.6 from a release's HTML.

Pure functions, no I/O: the sanitised body becomes XHTML (NewsML-G2 inline) and NITF
block content that validate against the official schemas.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import lxml.html
from lxml import etree

from channels.contract import JSON
from channels.templating import render

NITF_NS, XHTML_NS = "http://iptc.org/std/NITF/2006-10-18/", "http://www.w3.org/1999/xhtml"
SUFFIX = {"newsml": ".xml", "nitf": ".nitf.xml"}
BLOCKS = {"p", "h2", "h3", "h4", "ul", "ol", "blockquote", "table", "hr"}
XHTML_ATTRS = {"a": ("href", "title"), "img": ("src", "alt"), "td": ("colspan", "rowspan"),
               "th": ("colspan", "rowspan")}
XHTML_TAGS = {"p", "br", "h2", "h3", "h4", "strong", "em", "b", "i", "u", "ul", "ol", "li",
              "blockquote", "table", "thead", "tbody", "tr", "th", "td", "a", "img", "span", "hr"}
NITF_TAGS = {"p": "p", "h2": "hl2", "h3": "hl2", "h4": "hl2", "ul": "ul", "ol": "ol", "li": "li",
             "table": "table", "thead": "thead", "tbody": "tbody", "tr": "tr", "th": "th",
             "td": "td", "a": "a", "br": "br", "hr": "hr", "strong": "em", "b": "em", "em": "em",
             "i": "em", "u": "em"}


def file_names(item_id: int, version: int) -> dict[str, str]:
    """ASCII file names: a desk's poller and any filesystem take them as they are."""
    return {fmt: f"tongfa-{item_id}-v{version}{suffix}" for fmt, suffix in SUFFIX.items()}


def message_id(key: str, domain: str) -> str:
    local = key if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,80}", key) else \
        hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    return f"<{local}@{domain}>"


def documents(item: JSON, body: etree._Element) -> dict[str, str]:
    """Template for the envelope, lxml for the body: the result is parsed, so always well-formed."""
    def build(template: str, slot: str, content: list[etree._Element]) -> str:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)  # one per call: threads
        root = etree.fromstring(render("newsfeed", template, **item).encode("utf-8"), parser)
        root.find(slot).extend(content)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")

    html = etree.Element(f"{{{XHTML_NS}}}html", nsmap={None: XHTML_NS})
    etree.SubElement(etree.SubElement(html, f"{{{XHTML_NS}}}head"),
                     f"{{{XHTML_NS}}}title").text = item["title"]
    _copy(body, etree.SubElement(html, f"{{{XHTML_NS}}}body"), _to_xhtml)
    content = etree.Element(f"{{{NITF_NS}}}body.content")
    _copy(body, content, _to_nitf)
    return {"newsml": build("newsml.xml", ".//{*}inlineXML", [html]),
            "nitf": build("nitf.xml", f".//{{{NITF_NS}}}body.content", list(content))}


def fragment(body_html: str) -> etree._Element:
    """The sanitised body as a tree whose top level (and each quote's) holds blocks only."""
    root = lxml.html.fragment_fromstring(body_html or "", create_parent="div")
    for box in [root, *root.iter("blockquote")]:
        children, lead = list(box), box.text
        box.text, run = None, None
        for child in children:
            box.remove(child)
        if lead and lead.strip():
            run = etree.SubElement(box, "p")
            run.text = lead
        for child in children:
            tail, child.tail = child.tail, None
            if not isinstance(child.tag, str):  # a comment: its text goes, its tail stays
                pass
            elif child.tag in BLOCKS:
                box.append(child)
                run = None
            else:
                run = run if run is not None else etree.SubElement(box, "p")
                run.append(child)
            if tail and (run is not None or tail.strip()):
                run = run if run is not None else etree.SubElement(box, "p")
                _append_text(run, tail)
    return root


def _append_text(element: etree._Element, text: str | None) -> None:
    if not text:
        return
    if len(element):
        element[-1].tail = (element[-1].tail or "") + text
    else:
        element.text = (element.text or "") + text


def _copy(source: etree._Element, target: etree._Element, rule: Any) -> None:
    """Copy source's content under target; `rule` maps each element (target itself: unwrap)."""
    _append_text(target, source.text)
    for child in source:
        if isinstance(child.tag, str):
            _copy(child, rule(child, target), rule)
        _append_text(target, child.tail)


def _to_xhtml(node: etree._Element, parent: etree._Element) -> etree._Element:
    if node.tag not in XHTML_TAGS:
        return parent
    keep = XHTML_ATTRS.get(node.tag, ())
    made = etree.SubElement(parent, f"{{{XHTML_NS}}}{node.tag}",
                            {k: v for k, v in node.attrib.items() if k in keep})
    if node.tag == "img":
        made.set("alt", node.get("alt", ""))
    return made


def _to_nitf(node: etree._Element, parent: etree._Element) -> etree._Element:
    def sub(tag: str, **attrs: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{NITF_NS}}}{tag}", attrs)

    if node.tag == "blockquote":
        return etree.SubElement(sub("bq"), f"{{{NITF_NS}}}block")
    if node.tag == "img":  # inline in the text: a link to the picture
        link = sub("a", href=node.get("src", ""))
        link.text = node.get("alt") or "图片"
        return link
    name = NITF_TAGS.get(node.tag)
    if name is None:
        return parent
    attrs = {k: v for k, v in node.attrib.items()
             if (k in ("href", "title") and name == "a")
             or (k in ("colspan", "rowspan") and v.isdigit())}
    made = sub(name, **attrs)
    if node.tag in ("strong", "b"):
        made.set("class", "strong")
    return made


def plain_text(body: etree._Element) -> str:
    """The body as a desk editor reads it in a mail client."""
    lines = []
    for block in body:
        if block.tag in ("ul", "ol"):
            lines.append("\n".join(f"{f'{i}.' if block.tag == 'ol' else '·'} {_text(li)}"
                                   for i, li in enumerate(block.iter("li"), 1)))
        elif block.tag == "blockquote":
            lines.append(plain_text(block))
        elif block.tag == "table":
            lines.append("\n".join(" | ".join(_text(c) for c in tr if isinstance(c.tag, str))
                                   for tr in block.iter("tr")))
        elif _text(block):
            lines.append(_text(block))
    return "\n\n".join(lines)


def _text(element: etree._Element) -> str:
    return " ".join(element.text_content().split())
