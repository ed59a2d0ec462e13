"""The retry policy: one object, used for every delivery of a channel instance.

Exponential backoff with full jitter, a cap on attempts and on age, and the
channel's own retry-after (rate-limit windows) honoured as a floor.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields
from typing import Any

from orchestrator.domain.errors import InvalidInput

# bounds that keep "never loops" true: a week of trying at most, a hundred attempts
LIMITS = {"base_seconds": (0.0, 3600.0), "cap_seconds": (0.0, 86_400.0),
          "max_attempts": (1, 100), "max_age_seconds": (1.0, 7 * 86_400.0)}


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
    def from_config(cls, config: Any) -> RetryPolicy:
        """The policy a channel's `config.retry` states (defaults for what it leaves out);
        InvalidInput naming each key that is unknown, of the wrong type or out of bounds."""
        if config is None:
            return cls()
        if not isinstance(config, dict):
            raise InvalidInput([("", "须为对象，如 {\"max_attempts\": 8}")])
        known = {f.name for f in fields(cls)}
        problems = [(str(key), "未知的重试设置项，可用：" + "、".join(sorted(known)))
                    for key in config if key not in known]
        for key, value in config.items():
            if key not in known:
                continue
            low, high = LIMITS[key]
            whole = key == "max_attempts"
            if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
                problems.append((key, "须为整数" if whole else "须为数字（秒）"))
            elif not (math.isfinite(value) and low <= value <= high):
                problems.append((key, f"须在 {low:g} 到 {high:g} 之间"))
        if problems:
            raise InvalidInput(problems)
        policy = cls(**config)
        if policy.cap_seconds < policy.base_seconds:
            raise InvalidInput([("cap_seconds", "不能小于 base_seconds")])
        return policy


DEFAULT_RETRY = RetryPolicy()
