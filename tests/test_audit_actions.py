"""Audit action names are stated once (orchestrator.domain.audit_actions.Action)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from orchestrator.domain.audit_actions import Action, action_named
from orchestrator.usecases import audit
from orchestrator.usecases.unit_of_work import UnitOfWork

ROOT = Path(__file__).resolve().parents[1]


def test_an_undeclared_action_is_refused_before_anything_is_written(ctx):
    with pytest.raises(ValueError, match="undeclared audit action 'release.creatd'"):
        with UnitOfWork(ctx) as uow:
            audit.record(uow.session, actor="a", action="release.creatd", subject_type="release",
                         subject_id=1)
    with UnitOfWork(ctx) as uow:
        assert audit.query(uow.session, action="release.creatd") == []


def test_every_action_has_a_chinese_name_and_one_value():
    assert len({a.value for a in Action}) == len(Action)
    for action in Action:
        assert action.label and not action.label.isascii(), action
        assert action_named(action.value) is action



def test_no_code_writes_an_action_as_a_bare_string():
    """Call sites name Action members, so a typo fails at import, not in an audit query."""
    found = []
    code = [p for top in ("orchestrator", "channels", "workers", "deploy", "bench")
            for p in (ROOT / top).rglob("*.py")]
    for path in code:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "record":
                for kw in node.keywords:
                    if kw.arg == "action" and isinstance(kw.value, ast.Constant | ast.JoinedStr):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
