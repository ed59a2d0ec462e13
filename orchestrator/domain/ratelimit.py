"""Token-bucket arithmetic for a channel account's posting quota (pure; the store keeps state)."""

from __future__ import annotations

from dataclasses import dataclass


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
    def from_config(cls, config: dict | None) -> RateLimit | None:
        if not config:
            return None
        return cls(float(config["capacity"]), float(config["per_seconds"]))
