"""Every legal and every illegal transition of both state machines."""

import itertools

import pytest

from orchestrator.domain.errors import IllegalTransition
from orchestrator.domain.states import (
    DELIVERY_TRANSITIONS,
    RELEASE_TRANSITIONS,
    DeliveryState,
    ReleaseState,
    delivery_transition,
    release_transition,
)

RELEASE_PAIRS = list(itertools.product(ReleaseState, ReleaseState))
DELIVERY_PAIRS = list(itertools.product(DeliveryState, DeliveryState))


def test_every_state_has_a_row():
    assert set(RELEASE_TRANSITIONS) == set(ReleaseState)
    assert set(DELIVERY_TRANSITIONS) == set(DeliveryState)


@pytest.mark.parametrize(("current", "target"), RELEASE_PAIRS, ids=lambda s: s.value)
def test_release_transition(current, target):
    if target in RELEASE_TRANSITIONS[current]:
        assert release_transition(current.value, target) == target
    else:
        with pytest.raises(IllegalTransition) as err:
            release_transition(current.value, target)
        assert current.value in str(err.value) and target.value in str(err.value)


@pytest.mark.parametrize(("current", "target"), DELIVERY_PAIRS, ids=lambda s: s.value)
def test_delivery_transition(current, target):
    if target in DELIVERY_TRANSITIONS[current]:
        assert delivery_transition(current.value, target) == target
    else:
        with pytest.raises(IllegalTransition):
            delivery_transition(current.value, target)


def test_the_documented_lifecycle_is_legal():
    path = ["draft", "in_review", "approved", "scheduled", "publishing", "published", "withdrawn"]
    for current, target in itertools.pairwise(path):
        release_transition(current, ReleaseState(target))
    release_transition("in_review", ReleaseState.REJECTED)
    release_transition("rejected", ReleaseState.DRAFT)


def test_published_cannot_go_back_to_review():
    with pytest.raises(IllegalTransition):
        release_transition("published", ReleaseState.IN_REVIEW)
