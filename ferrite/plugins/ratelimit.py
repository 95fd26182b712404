"""Per-visitor rate limiting, keyed by the session hash, so no IP address is ever kept.

A token bucket per (site, session): `burst` events at once, refilled at
`events_per_minute`. Time is the hit's own, so imported logs are limited as they
happened. Excess events are discarded with reason `rate_limited` (counted, and in the
edge's X-Ferrite-Filtered header), never stored.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from pydantic import Field

from ferrite.core.config import Config, Table
from ferrite.core.event import Event
from ferrite.core.hookspecs import hookimpl


class Settings(Table):
    events_per_minute: float = Field(120, gt=0, description="Sustained events per visitor.")
    burst: int = Field(60, ge=1, description="Events a visitor may send at once.")
    max_visitors: int = Field(100_000, ge=100,
                              description="Buckets kept in memory; the least recent go first.")


class RateLimit:
    def __init__(self, settings: Settings) -> None:
        self.rate = settings.events_per_minute / 60.0
        self.burst = float(settings.burst)
        self.max_visitors = settings.max_visitors
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @hookimpl(trylast=True)
    def ferrite_enrich(self, event: Event) -> str | None:
        if not event.session:
            return None
        key = (event.site, event.session)
        now = event.ts.timestamp()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, max(now, last))
            if len(self._buckets) > self.max_visitors:
                self._buckets.popitem(last=False)
        return None if allowed else "rate_limited"


@hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@hookimpl
def ferrite_plugin(settings: Settings, config: Config) -> RateLimit:
    return RateLimit(settings)
