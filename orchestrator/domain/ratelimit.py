"""Token-bucket arithmetic for a channel account's posting quota (pure; the store keeps state)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from orchestrator.domain.errors import InvalidInput

MAX_PER_SECONDS = 7 * 86_400.0  # a week: a longer window is no quota anyone can reason about


@dataclass(frozen=True)
class RateLimit:
    """`capacity` posts at most, refilled evenly over `per_seconds` (e.g. 30 per 3600 s)."""

    capacity: float
    per_seconds: float

    @property
    def rate(self) -> float:
        return self.capacity / self.per_seconds

    def refill(self, tokens: float, elapsed: float) -> float:
        return min(self.capacity, tokens + max(0.0, elapsed) * self.rate)

    def wait_for_one(self, tokens: float) -> float:
        """Seconds until one token is there (0 when it already is)."""
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    @classmethod
    def from_config(cls, config: Any) -> RateLimit | None:
        """The quota `{capacity, per_seconds}` states (None: no quota); InvalidInput naming
        each key that is missing, unknown, not a number or not positive."""
        if config is None or config == {}:
            return None
        if not isinstance(config, dict):
            raise InvalidInput([("", "须为对象，如 {\"capacity\": 30, \"per_seconds\": 3600}，或 null 表示不限")])
        problems = [(str(key), "未知的设置项，可用：capacity、per_seconds")
                    for key in config if key not in ("capacity", "per_seconds")]
        for key, low, high in (("capacity", 1.0, 1e6), ("per_seconds", 1.0, MAX_PER_SECONDS)):
            value = config.get(key)
            if value is None:
                problems.append((key, "缺少此项"))
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append((key, "须为数字"))
            elif not (math.isfinite(value) and low <= value <= high):
                problems.append((key, f"须在 {low:g} 到 {high:g} 之间"))
        if problems:
            raise InvalidInput(problems)
        return cls(float(config["capacity"]), float(config["per_seconds"]))
