"""Per-key request budget for the Stats API: a token bucket refilled continuously, so a
client that spreads its requests is never refused and a burst gets a Retry-After."""

from __future__ import annotations

import math
import threading
import time


class KeyLimiter:
    def __init__(self, per_hour: int) -> None:
        self.capacity = float(per_hour)
        self.rate = per_hour / 3600.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str, now: float | None = None) -> int:
        """0 when the request may go ahead, else the seconds to wait for the next one."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return 0
            self._buckets[key_id] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))
