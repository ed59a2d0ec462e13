"""The assessment report (考核): per department, per channel, per quarter."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections import defaultdict
from html import escape
from typing import Any

from sqlmodel import Session, select

from orchestrator.domain.clock import EARLIEST, LATEST
from orchestrator.domain.errors import InvalidInput
from orchestrator.store.models import AuditEvent, Delivery, Release

QUARTER = re.compile(r"([0-9]{4})Q([1-4])")
COLUMNS = ("department", "channel", "published", "median_approval_to_live_s", "failures",
           "corrections")


def quarter_bounds(quarter: str) -> tuple[dt.datetime, dt.datetime]:
    match = QUARTER.fullmatch(quarter)
    if not match:
        raise InvalidInput([("quarter", "like 2026Q4")])
    year, q = int(match[1]), int(match[2])
    if not EARLIEST.year <= year < LATEST.year:  # the years a typed time may name
        raise InvalidInput([("quarter", f"a year from {EARLIEST.year} to {LATEST.year - 1}")])
    start = dt.datetime(year, 3 * q - 2, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1, tzinfo=dt.UTC)
    return start, end


def assessment(session: Session, quarter: str) -> list[dict[str, Any]]:
    start, end = quarter_bounds(quarter)
    rows = session.exec(
        select(Delivery, Release).join(Release, Release.id == Delivery.release_id)
        .where(Delivery.revision == Release.revision, Release.created_at < end)
    ).all()
    approved = dict(session.exec(select(AuditEvent.release_id, AuditEvent.at).where(
        AuditEvent.action == "release.approved")).all())
    cells: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"published": 0, "delays": [], "failures": 0, "corrections": 0})
    for delivery, release in rows:
        cell = cells[(release.meta.get("issuing_body", "—"), delivery.channel)]
        when = delivery.published_at
        if delivery.state in ("published", "withdrawn") and when and start <= when < end:
            cell["published"] += 1
            if release.corrects_id:
                cell["corrections"] += 1
            if release.id in approved:
                cell["delays"].append((when - approved[release.id]).total_seconds())
        elif delivery.state == "failed" and start <= delivery.updated_at < end:
            cell["failures"] += 1
    return [
        {"department": dept, "channel": channel, "published": c["published"],
         "median_approval_to_live_s": round(statistics.median(c["delays"]), 3)
         if c["delays"] else None, "failures": c["failures"], "corrections": c["corrections"]}
        for (dept, channel), c in sorted(cells.items())
        if c["published"] or c["failures"]
    ]


def svg_chart(rows: list[dict[str, Any]], title: str) -> str:
    """A bar chart of items published per department and channel (plain SVG, no plotting stack)."""
    bar, gap, left, width = 22, 8, 260, 420
    most = max((r["published"] for r in rows), default=1) or 1
    height = 60 + len(rows) * (bar + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" '
             f'height="{height}" font-family="sans-serif" font-size="13">',
             f'<text x="10" y="24" font-size="16">{escape(title)}</text>']
    for i, row in enumerate(rows):
        y = 44 + i * (bar + gap)
        length = width * row["published"] / most
        parts.append(f'<text x="10" y="{y + 16}">{escape(row["department"])} · '
                     f'{escape(row["channel"])}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar}" '
                     f'fill="#b50000"><title>{row["published"]}</title></rect>')
        parts.append(f'<text x="{left + length + 6:.1f}" y="{y + 16}">{row["published"]}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
