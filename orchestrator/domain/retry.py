"""The retry policy: one object, used for every delivery of a channel instance.

Exponential backoff with full jitter, a cap on attempts and on age, and the
channel's own retry-after (rate-limit windows) honoured as a floor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    max_attempts: int = 8
    max_age_seconds: float = 6 * 3600.0

    def may_retry(self, attempts_so_far: int, age_seconds: float) -> bool:
        return attempts_so_far < self.max_attempts and age_seconds < self.max_age_seconds

    def delay(
        self, attempts_so_far: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before the next attempt (full jitter: uniform in [0, backoff])."""
        backoff = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts_so_far - 1))
        jittered = (rng or random).uniform(0, backoff)
        return max(jittered, retry_after or 0.0)

    @classmethod
    def from_config(cls, config: dict | None) -> RetryPolicy:
        return cls(**(config or {}))


DEFAULT_RETRY = RetryPolicy()
