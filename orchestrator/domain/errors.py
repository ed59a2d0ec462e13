"""Errors the use cases raise; every entry point turns them into a one-line refusal."""


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
