"""Property-based fuzzing (hypothesis): the release parser and the console's forms.

No input gives anything but a release or a refusal naming the field (a 4xx over HTTP).
Deterministic in CI: derandomize=True (the examples follow from the test's source), no
example database, and a bounded example count (docs/guarantees.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.bootstrap import make_app
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.release import ReleaseInput, parse_release
from tests.test_console import console, csrf_of, login  # noqa: F401  (the console fixture)

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=150,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# every code point, surrogates included (json.loads makes lone ones from "\ud800")
anything = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
control_heavy = st.text(st.sampled_from(
    "a中\t\n\r\x00\x0b\x0c\x1b\x7f\x85\x9b\u2028\u2029\ufeff\ufffe\uffff\ud800\udfff=+-@ "),
    max_size=12)
texts = st.one_of(anything, control_heavy)
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), texts)
json_ish = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)), max_leaves=12)

VALID: dict[str, Any] = {
    "title": "关于做好冬季安全生产工作的通知", "summary": "部署。", "body": "正文",
    "metadata": {"index_number": "1", "issuing_body": "省人民政府办公厅", "disclosure": "主动公开",
                 "document_number": "某政办发〔2026〕8号", "date_written": "2026-11-20"},
    "channels": ["alpha"], "overrides": {"alpha": {"title": "t", "text": "x"}},
    "parent": 1, "go_live_at": "2026-12-01T09:00:00+08:00", "group": "g",
}
FIELDS = [("title",), ("summary",), ("body",), ("column",), ("group",), ("parent",),
          ("corrects",), ("go_live_at",), ("priority",), ("body_format",), ("channels",),
          ("images",), ("overrides",), ("overrides", "alpha"), ("overrides", "alpha", "title"),
          ("overrides", "alpha", "text"), ("overrides", "alpha", "slugline"),
          ("overrides", "alpha", "version"), ("metadata",)] + [
    ("metadata", k) for k in ("index_number", "issuing_body", "document_number", "date_written",
                              "date_published", "subject_category", "disclosure", "validity")]
ONE_LINE_BAD = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
TEXT_BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def parsed_or_refused(data: Any) -> ReleaseInput | None:
    try:
        release = parse_release(data)
    except InvalidInput as exc:
        assert exc.problems and all(field for field, _ in exc.problems)
        json.dumps(exc.problems, ensure_ascii=False).encode("utf-8")  # can be shown anywhere
        return None
    # what is accepted can be stored and sent: JSON, UTF-8, no broken characters
    dumped = release.model_dump(mode="json")
    json.dumps(dumped, ensure_ascii=False, allow_nan=False).encode("utf-8")
    for value in (release.title, release.summary, release.column, release.group or "",
                  *release.channels, *(v for v in release.metadata.model_dump(mode="json")
                                       .values() if isinstance(v, str))):
        assert not ONE_LINE_BAD.search(value), value
    assert not TEXT_BAD.search(release.body)
    return release


@FUZZ
@given(json_ish)
def test_parse_release_takes_any_json_and_refuses_or_parses(data):
    parsed_or_refused(data)


@FUZZ
@given(st.sampled_from(FIELDS), json_ish)
def test_any_value_in_any_field_of_a_valid_release(path, value):
    data = json.loads(json.dumps(VALID))
    target = data
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    parsed_or_refused(data)


# ------------------------------------------------------------------ the console's forms

form_text = st.one_of(st.text(st.characters(codec="utf-8"), max_size=30), control_heavy.filter(
    lambda s: not re.search("[\ud800-\udfff]", s)), st.sampled_from([
        "", "0", "-1", "²", "١٢", "9" * 30, "2026-13-40", "0001-01-01T00:00", "9999-12-31T23:59",
        "2026-12-01T09:00+14:00", "alpha", "主动公开", "urgent", "=1+1"]))
ids = st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.just(1),
                st.sampled_from(["²", "x", "1e3", "-0"]))
COMPOSE_KEYS = ["title", "summary", "body", "column", "priority", "parent", "then",
                *(f"md_{k}" for k in ("index_number", "issuing_body", "document_number",
                                      "date_written", "date_published", "subject_category",
                                      "disclosure", "validity")),
                "ov_title__alpha", "ov_text__alpha", "ov_column__alpha"]


@pytest.fixture
def everyone(console):  # noqa: F811
    """The press officer (who owns the releases the fuzz edits), given every role: no room
    or role check stops a fuzzed call short."""
    from orchestrator.domain.review import ROLES
    from orchestrator.usecases import users
    from orchestrator.usecases.unit_of_work import UnitOfWork

    with UnitOfWork(console) as uow:
        users.change_roles(uow, "press", "root", add=list(ROLES))
    client = TestClient(make_app(console), raise_server_exceptions=False)
    assert login(client, "press").status_code == 303
    return client


@pytest.fixture
def author(everyone):
    return everyone, csrf_of(everyone, "/console/")


@FUZZ
@given(st.fixed_dictionaries({k: form_text for k in COMPOSE_KEYS}),
       st.lists(st.sampled_from(["alpha", "beta", "nowhere", ""]), max_size=3),
       st.sampled_from(["/console/press/new", "/console/press/preview",
                        "/console/press/1/edit"]))
def test_compose_and_preview_never_answer_5xx(author, form, channels, path):
    client, token = author
    data = {**form, "csrf": token, "channels": channels}
    answer = client.post(path, data=data)
    assert answer.status_code < 500, (path, data, answer.text[:300])


@FUZZ
@given(ids, form_text, st.sampled_from(["schedule", "submit", "edit", "board.json", ""]))
def test_release_routes_never_answer_5xx_for_any_id_or_time(author, release_id, at, action):
    client, token = author
    path = f"/console/press/{release_id}" + (f"/{action}" if action else "")
    if action in ("schedule", "submit"):
        answer = client.post(path, data={"csrf": token, "set": "1", "at": at})
    else:
        answer = client.get(path)
    assert answer.status_code < 500, (path, at, answer.text[:300])


@pytest.fixture
def auditor(everyone):
    return everyone


@FUZZ
@given(st.one_of(st.just(""), ids), form_text, form_text, ids)
def test_audit_search_and_export_never_answer_5xx(auditor, release, since, actor, after_id):
    query = {"release": str(release), "since": since, "until": since, "actor": actor,
             "after_id": str(after_id)}  # a page cursor as hostile as an id
    for path in ("/console/audit", "/console/audit/export.csv", f"/console/audit/release/{release}"):
        answer = auditor.get(path, params=query)
        assert answer.status_code < 500, (path, query, answer.text[:300])
