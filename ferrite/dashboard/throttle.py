"""Login throttling, in memory only: failures per account and per client in a sliding
window. The client key is a keyed hash of its address with a key that never leaves the
process, so not even memory holds an IP address. Per worker process by design."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable


class Throttle:
    def __init__(self, per_account: int, per_client: int, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = {"account": per_account, "client": per_client}
        self.window = window_seconds
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def client_key(self, address: str) -> str:
        return hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()[:32]

    def _recent(self, kind: str, key: str) -> deque[float]:
        now = self.clock()
        times = self._failures.get((kind, key))
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[(kind, key)]
        return times

    def wait(self, account: str, client: str) -> int:
        """Seconds to wait before another attempt may be checked (0: go ahead)."""
        waits = []
        for kind, key in (("account", account.lower()), ("client", client)):
            times = self._recent(kind, key)
            if len(times) >= self.limits[kind]:
                waits.append(times[0] + self.window - self.clock())
        return max(1, round(max(waits))) if waits else 0

    def failed(self, account: str, client: str) -> None:
        now = self.clock()
        for kind, key in (("account", account.lower()), ("client", client)):
            self._failures.setdefault((kind, key), deque()).append(now)
        if len(self._failures) > 100_000:  # a flood of made-up accounts: forget the oldest
            for stale in list(self._failures)[:50_000]:
                del self._failures[stale]

    def succeeded(self, account: str) -> None:
        self._failures.pop(("account", account.lower()), None)
