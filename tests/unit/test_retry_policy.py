"""Backoff of the email outbox: exponential, capped, jittered within half the ceiling."""

from __future__ import annotations

import random
from datetime import timedelta

from notifications.outbox import RetryPolicy


def test_backoff_doubles_then_caps_with_bounded_jitter() -> None:
    policy = RetryPolicy(base_seconds=60, cap_seconds=600, max_attempts=8)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (9, 600)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(
            timedelta(seconds=ceiling / 2) <= d <= timedelta(seconds=ceiling) for d in delays
        )
        assert len(set(delays)) > 100


def test_jitter_extremes() -> None:
    class Fixed(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def random(self) -> float:
            return self.value

    policy = RetryPolicy(base_seconds=10, cap_seconds=1000)
    assert policy.delay(3, Fixed(0.0)) == timedelta(seconds=20)
    assert policy.delay(3, Fixed(1.0)) == timedelta(seconds=40)
