"""The assessment report (考核) counts what each department published on each channel."""

import pytest
from lxml import etree

from orchestrator.domain.errors import InvalidInput
from orchestrator.usecases import report
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests import fakes
from tests.conftest import approve_all, drain


def test_published_failures_and_corrections_per_department_and_channel(ctx, new_release):
    first = new_release()
    approve_all(ctx, first)
    drain(ctx)
    fakes.plan("beta", "publish", "permanent")
    second = new_release(title="第二条")
    approve_all(ctx, second)
    drain(ctx)
    fix = new_release(corrects=first, title="更正")
    approve_all(ctx, fix)
    drain(ctx)
    from orchestrator.domain.clock import utcnow

    quarter = f"{utcnow().year}Q{(utcnow().month - 1) // 3 + 1}"
    with UnitOfWork(ctx) as uow:
        rows = {r["channel"]: r for r in report.assessment(uow.session, quarter)}
    assert rows["alpha"]["published"] == 3 and rows["alpha"]["corrections"] == 1
    assert rows["beta"]["published"] == 2 and rows["beta"]["failures"] == 1
    assert rows["alpha"]["department"] == "省人民政府办公厅"
    assert rows["alpha"]["median_approval_to_live_s"] >= 0
    svg = report.svg_chart(list(rows.values()), "考核")
    assert etree.fromstring(svg.encode()).tag.endswith("svg")
    with UnitOfWork(ctx) as uow:
        assert report.assessment(uow.session, "2020Q1") == []


def test_quarter_is_checked():
    assert report.quarter_bounds("2026Q4")[1].year == 2027
    with pytest.raises(InvalidInput, match="quarter"):
        report.quarter_bounds("2026-4")
