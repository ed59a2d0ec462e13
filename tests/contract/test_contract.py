"""The contract test kit over tongfa's own kinds: every adapter kind must pass all of it.

The suite itself is channels/contract_kit.py, the one a plugin's tests use too.
"""

from __future__ import annotations

from channels.contract_kit import ContractSuite, view
from channels.registry import kinds
from tests.contract.harnesses import FAULTS, HARNESSES


class TestContract(ContractSuite):
    harnesses = HARNESSES
    faults = FAULTS


def test_every_installed_kind_has_a_harness():
    assert set(kinds()) - {"memory"} <= set(HARNESSES), "add a harness for each new adapter"


def test_the_consoles_counter_reads_each_kinds_declared_limits(tmp_path):
    """The compose preview counts each limited field as its adapter class declares it."""
    from orchestrator.web.forms import counted

    for kind, factory in sorted(HARNESSES.items()):
        with factory(tmp_path / kind) as harness:
            adapter = harness.adapter()
            payload = adapter.render(view())
            for limit in adapter.limits:
                shown = counted(kind, payload) or ""
                assert f"/ {limit.most} 字" in shown, (kind, shown)
