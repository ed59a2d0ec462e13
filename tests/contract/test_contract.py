"""The contract test kit: every adapter kind must pass all of this.

render → validate → stage → publish → lookup → withdraw, and the typing of errors.
"""

from __future__ import annotations

import json
import time

import pytest

from channels.contract import (
    ChannelError,
    CredentialsExpired,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RetryableError,
    ValidationFailed,
)
from channels.registry import adapter_class, kinds
from orchestrator.domain.hashing import canonical_json
from tests.contract.harnesses import FAULTS, HARNESSES, aware, view

ERRORS = {"retryable": RetryableError, "rate_limited": RateLimited, "permanent": PermanentError,
          "credentials_expired": CredentialsExpired, "outcome_unknown": OutcomeUnknown}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request, tmp_path):
    with HARNESSES[request.param](tmp_path) as h:
        yield h


def test_every_installed_kind_has_a_harness():
    assert set(kinds()) - {"memory"} <= set(HARNESSES), "add a harness for each new adapter"


def test_it_declares_itself(harness):
    adapter = harness.adapter()
    if harness.kind != "memory":
        assert adapter_class(harness.kind) is type(adapter)
    assert adapter.kind == harness.kind and adapter.formats
    payload = adapter.render(view())
    for fmt in adapter.formats:
        assert isinstance(adapter.document(payload, fmt), str) and adapter.document(payload, fmt)


def test_render_is_deterministic_and_json(harness):
    one, two = harness.adapter().render(view()), harness.adapter().render(view())
    assert canonical_json(one) == canonical_json(two)
    assert json.loads(canonical_json(one)) == json.loads(json.dumps(one, default=str))


def test_validate_accepts_a_good_release_and_names_the_field_of_a_bad_one(harness):
    adapter = harness.adapter()
    adapter.validate(adapter.render(view()))
    with pytest.raises(ValidationFailed) as err:
        adapter.validate(adapter.render(harness.bad_view))
    assert err.value.problems and all(p.field and p.message for p in err.value.problems)


def test_stage_publish_lookup_withdraw(harness):
    adapter = harness.adapter()
    payload = adapter.render(view())
    staged = adapter.stage(payload, "kit-key-1")
    json.dumps(staged)
    assert adapter.lookup(payload, "kit-key-1") is None  # staged is not live
    receipt = adapter.publish(payload, staged, "kit-key-1")
    assert receipt.remote_id and aware(receipt.published_at)
    if adapter.capabilities.async_publish:  # live only once the platform confirms
        assert not harness.is_live(receipt) or receipt.details.get("confirmed", True)
        for _ in range(50):
            confirmed = adapter.confirm(receipt)
            if confirmed is not None:
                receipt = confirmed
                break
            time.sleep(0.1)
        assert receipt.details.get("confirmed") and receipt.url
    assert harness.is_live(receipt)
    found = adapter.lookup(payload, "kit-key-1")
    assert found is not None and found.remote_id == receipt.remote_id
    if adapter.capabilities.can_withdraw:
        adapter.withdraw(receipt)
        assert not harness.is_live(receipt)


@pytest.mark.parametrize(("kind", "error"),
                         [(k, e) for k, errors in sorted(FAULTS.items()) for e in errors])
def test_errors_are_typed(kind, error, tmp_path):
    with HARNESSES[kind](tmp_path) as harness:
        _raises_typed(harness, error)


def test_every_harness_declares_its_faults():
    assert set(FAULTS) == set(HARNESSES)


def _raises_typed(harness, error):
    adapter = harness.adapter()
    payload = adapter.render(view(release_id=7))
    staged = adapter.stage(payload, "kit-key-2")
    harness.faults[error]()
    with pytest.raises(ChannelError) as err:
        adapter.publish(payload, staged, "kit-key-2")
    assert isinstance(err.value, ERRORS[error]), f"{type(err.value).__name__}: {err.value}"


def _with(payload: dict, dotted: str, value: str) -> dict:
    changed = json.loads(json.dumps(payload, default=str))
    *parents, last = dotted.split(".")
    node = changed
    for key in parents:
        node = node[key]
    node[last] = value
    return changed


def test_each_declared_limit_is_what_validate_and_the_console_count(harness):
    """Limits are stated once, on the adapter class: its own validate and the console's
    counter both read them from there (a limit an adapter forgot to check fails here)."""
    from orchestrator.web.forms import counted

    adapter = harness.adapter()
    payload = adapter.render(view())
    for limit in adapter.limits:
        at_most = _with(payload, limit.field, "字" * limit.most)
        assert limit.problem(at_most) is None
        assert f"/ {limit.most} 字" in (counted(adapter.kind, at_most) or "")
        too_long = _with(payload, limit.field, "字" * (limit.most + 1))
        with pytest.raises(ValidationFailed) as err:
            adapter.validate(too_long)
        named = [p for p in err.value.problems if p.field == limit.field.rsplit(".", 1)[-1]]
        assert any(f"不超过{limit.most}字" in p.message for p in named), err.value.problems


def test_what_may_be_published_is_one_rule(harness):
    """An adapter that reads 公开属性 refuses with the domain's own rule and words."""
    from orchestrator.domain.release import disclosure_problem

    adapter = harness.adapter()
    metadata = dict(view().metadata, disclosure="依申请公开")
    payload = adapter.render(view(metadata=metadata))
    said = [p.message for p in adapter.problems(payload) if p.field == "metadata.disclosure"]
    if "disclosure" in json.dumps(payload, default=str):  # the kind carries the metadata
        assert said == [disclosure_problem("依申请公开")]
    else:
        assert said == []
