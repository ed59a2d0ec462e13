"""Errors the use cases raise; every entry point turns them into a one-line refusal."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class Refused(Exception):
    """A user action the rules do not allow; the message says why, to the user."""


class NotFound(Refused):
    pass


class Forbidden(Refused):
    """The actor lacks the role, or the rules forbid this actor (e.g. self-approval)."""


class InvalidInput(Refused):
    """Bad input; the message names the field."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in problems))


class IllegalTransition(Refused):
    def __init__(self, entity: str, current: str, target: str) -> None:
        self.entity, self.current, self.target = entity, current, target
        super().__init__(f"{entity} cannot go from {current} to {target}")


# where a web framework says a value came from: not part of the field's name
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def invalid_input(errors: Iterable[Mapping[str, Any]], prefix: str = "") -> InvalidInput:
    """Pydantic's validation errors as a refusal naming each field (dotted: config.endpoint),
    with the rule's message only: never the input itself, which can hold a secret."""
    problems = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in _LOCATIONS:
            loc = loc[1:]
        field = ".".join([prefix, *loc] if prefix else loc) or "(body)"
        problems.append((field, str(error.get("msg") or "invalid")))
    return InvalidInput(problems)
