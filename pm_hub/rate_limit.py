"""Per-caller request limits (token buckets): a runaway script cannot starve the
kitchen. Over the limit, a request is answered ``rate_limited`` and does nothing."""

from __future__ import annotations

import time


class TokenBucket:
    """``rate`` requests per second on average, bursts up to ``burst``."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class RateLimiter:
    """One bucket per key (connection id, token subject); ``rate`` 0 disables limits."""

    def __init__(self, rate: float, burst: float | None = None, *, max_keys: int = 100_000):
        self.rate = rate
        self.burst = burst if burst is not None else rate * 2
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, key: str) -> bool:
        if self.rate <= 0:
            return True
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # crude but bounded; buckets refill fast anyway
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.take()

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)
