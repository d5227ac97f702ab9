"""Retry delays for the service's own retries (resent outputs, failed commits)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from beaconwatch.config import KafkaConfig


@dataclass(frozen=True, slots=True)
class Backoff:
    """Full-jitter exponential backoff: attempt n waits U(0, min(max_s, base_s * 2**n)), so
    many clients retrying after one outage do not all hit the broker at once."""

    base_s: float = 0.1
    max_s: float = 10.0

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.max_s, self.base_s * 2 ** min(attempt, 30)))

    @classmethod
    def of(cls, kafka: KafkaConfig) -> Backoff:
        return cls(kafka.retry_backoff_ms / 1000, kafka.retry_backoff_max_ms / 1000)
