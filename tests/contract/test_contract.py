"""The contract test kit over tongfa's own kinds: every adapter kind must pass all of it.

The suite itself is channels/contract_kit.py, the one a plugin's tests use too.
"""

from __future__ import annotations

from channels.contract_kit import ContractSuite
from channels.registry import kinds
from tests.contract.harnesses import FAULTS, HARNESSES


class TestContract(ContractSuite):
    harnesses = HARNESSES
    faults = FAULTS


def test_every_installed_kind_has_a_harness():
    assert set(kinds()) - {"memory"} <= set(HARNESSES), "add a harness for each new adapter"
