"""The contract test kit, as a pytest plugin: every adapter kind, tongfa's own and a plugin's,
passes the same suite (docs/adapters.md, "The contract test kit").

Installed with tongfa as the `pytest11` entry point `channels.contract_kit`, so a plugin's
own tests need no conftest: subclass ContractSuite, name a harness per kind, and pytest runs
render determinism, validation naming fields, stage → publish → lookup → withdraw against a
real local counterpart, and the typing of every error the harness can provoke:

    from channels.contract_kit import ContractSuite, Harness, view

    class TestMyKind(ContractSuite):
        harnesses = {"mykind": my_harness}   # kind -> (tmp_path -> context manager of Harness)
        faults = {"mykind": ("retryable",)}  # kind -> the error kinds its harness can arm
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from channels.contract import (
    ChannelAdapter,
    ChannelError,
    CredentialsExpired,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    Receipt,
    ReleaseView,
    RetryableError,
    ValidationFailed,
)
from channels.registry import adapter_class

ERRORS: dict[str, type[ChannelError]] = {
    "retryable": RetryableError,
    "rate_limited": RateLimited,
    "permanent": PermanentError,
    "credentials_expired": CredentialsExpired,
    "outcome_unknown": OutcomeUnknown,
}


def view(release_id: int = 42, **changes: Any) -> ReleaseView:
    """A release as the orchestrator hands it to an adapter; `changes` replace fields."""
    base = dict(
        id=release_id,
        title="关于做好冬季安全生产工作的通知",
        body_html="<p>各市人民政府：</p><p>请<strong>认真贯彻落实</strong>。</p>",
        summary="部署冬季安全生产。",
        metadata={
            "index_number": "11440000/2026-00042",
            "issuing_body": "省人民政府办公厅",
            "document_number": "某政办发〔2026〕8号",
            "date_written": "2026-11-20",
            "date_published": "2026-11-29",
            "subject_category": "安全生产",
            "disclosure": "主动公开",
            "validity": "有效",
            "column": "政务要闻",
        },
        priority="normal",
        url=f"http://127.0.0.1:8000/site/articles/{release_id}.html",
    )
    base.update(changes)
    return ReleaseView(**base)


@dataclass
class Harness:
    """One kind against a real local counterpart (a folder, a sandbox server)."""

    kind: str
    adapter: Callable[[], ChannelAdapter]
    is_live: Callable[[Receipt], bool]  # seen from the channel's side, not the adapter's
    bad_view: ReleaseView | None = None  # breaks the channel's limits
    faults: dict[str, Callable[[], None]] = field(default_factory=dict)  # error kind -> arm it


HarnessFactory = Callable[[Path], AbstractContextManager[Harness]]


def aware(value: dt.datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)


def _with(payload: dict[str, Any], dotted: str, value: str) -> dict[str, Any]:
    """A copy of the payload with one (dotted) field set to value."""
    changed = json.loads(json.dumps(payload, default=str))
    *parents, last = dotted.split(".")
    node = changed
    for key in parents:
        node = node[key]
    node[last] = value
    return changed


# ------------------------------------------------------------------ the pytest plugin


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    suite = metafunc.cls
    if suite is None or not issubclass(suite, ContractSuite):
        return
    if "contract_kind" in metafunc.fixturenames:
        metafunc.parametrize("contract_kind", sorted(suite.harnesses))
    if "contract_fault" in metafunc.fixturenames:
        pairs = [(k, e) for k, errors in sorted(suite.faults.items()) for e in errors]
        metafunc.parametrize("contract_fault", pairs, ids=[f"{k}-{e}" for k, e in pairs])


@pytest.fixture
def contract_harness(
    request: pytest.FixtureRequest, contract_kind: str, tmp_path: Path
) -> Iterator[Harness]:
    with request.cls.harnesses[contract_kind](tmp_path) as harness:
        yield harness


class ContractSuite:
    """What every adapter kind must pass. Subclass it (class name `Test…`) with
    `harnesses` and `faults`; every kind named gets every test."""

    harnesses: ClassVar[dict[str, HarnessFactory]] = {}
    faults: ClassVar[dict[str, tuple[str, ...]]] = {}

    def test_it_declares_itself(self, contract_harness: Harness) -> None:
        harness = contract_harness
        adapter = harness.adapter()
        assert adapter_class(harness.kind) is type(adapter), "the registry finds the kind"
        assert adapter.kind == harness.kind and adapter.formats
        payload = adapter.render(view())
        for fmt in adapter.formats:
            assert isinstance(adapter.document(payload, fmt), str)
            assert adapter.document(payload, fmt)

    def test_render_is_deterministic_and_json(self, contract_harness: Harness) -> None:
        from orchestrator.domain.hashing import canonical_json

        one, two = (
            contract_harness.adapter().render(view()),
            contract_harness.adapter().render(view()),
        )
        assert canonical_json(one) == canonical_json(two)
        assert json.loads(canonical_json(one)) == json.loads(json.dumps(one, default=str))

    def test_validate_accepts_a_good_release_and_names_the_field_of_a_bad_one(
        self, contract_harness: Harness
    ) -> None:
        adapter = contract_harness.adapter()
        adapter.validate(adapter.render(view()))
        assert contract_harness.bad_view is not None, "the harness needs a bad_view"
        with pytest.raises(ValidationFailed) as err:
            adapter.validate(adapter.render(contract_harness.bad_view))
        assert err.value.problems and all(p.field and p.message for p in err.value.problems)

    def test_each_declared_limit_is_what_validate_checks(self, contract_harness: Harness) -> None:
        """Limits are stated once, on the adapter class (ChannelAdapter.limits): a limit
        the adapter's own validate forgets to check fails here."""
        adapter = contract_harness.adapter()
        payload = adapter.render(view())
        for limit in adapter.limits:
            at_most = _with(payload, limit.field, "字" * limit.most)
            assert limit.problem(at_most) is None
            too_long = _with(payload, limit.field, "字" * (limit.most + 1))
            with pytest.raises(ValidationFailed) as err:
                adapter.validate(too_long)
            named = [p for p in err.value.problems if p.field == limit.field.rsplit(".", 1)[-1]]
            assert any(f"不超过{limit.most}字" in p.message for p in named), err.value.problems

    def test_what_may_be_published_is_one_rule(self, contract_harness: Harness) -> None:
        """A kind that carries 公开属性 refuses with the domain's own rule and words."""
        from orchestrator.domain.release import disclosure_problem

        adapter = contract_harness.adapter()
        metadata = dict(view().metadata, disclosure="依申请公开")
        payload = adapter.render(view(metadata=metadata))
        said = [p.message for p in adapter.problems(payload) if p.field == "metadata.disclosure"]
        if "disclosure" in json.dumps(payload, default=str):  # the kind carries the metadata
            assert said == [disclosure_problem("依申请公开")]
        else:
            assert said == []

    def test_stage_publish_lookup_withdraw(self, contract_harness: Harness) -> None:
        harness, adapter = contract_harness, contract_harness.adapter()
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

    def test_errors_are_typed(self, contract_fault: tuple[str, str], tmp_path: Path) -> None:
        kind, error = contract_fault
        with self.harnesses[kind](tmp_path) as harness:
            adapter = harness.adapter()
            payload = adapter.render(view(release_id=7))
            staged = adapter.stage(payload, "kit-key-2")
            harness.faults[error]()
            with pytest.raises(ChannelError) as err:
                adapter.publish(payload, staged, "kit-key-2")
            assert isinstance(err.value, ERRORS[error]), f"{type(err.value).__name__}: {err.value}"

    def test_every_harness_declares_its_faults(self) -> None:
        assert set(self.faults) == set(self.harnesses)
        for kind, errors in self.faults.items():
            assert set(errors) <= set(ERRORS), f"{kind}: unknown error kinds"
