"""The contract between the engine and a storage plugin (documented in docs/plugins.md).

A storage plugin answers `ferrite_stats_store()` with an object that has the methods of
`StatsStore`. The engine hands it a `StatsRequest` (one site, one UTC interval, the
dimensions to group by, a filter tree) and takes back additive `Measures` per group; every
metric (bounce rate, percentages, comparisons, ordering, pages) is derived by the engine, so
a store only counts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol, runtime_checkable

# raised by stores when their database cannot be reached, answered 503
from ferrite.core.errors import StoreUnavailable as StoreUnavailable

#: Dimensions whose value belongs to the event (the page it happened on, its name, props).
EVENT_DIMENSIONS = ("event:page", "event:name")
#: Dimensions whose value belongs to the visit: taken from the visit's first event
#: (`visit:exit_page` from its last). Enrichers' columns join as `visit:COLUMN`.
VISIT_DIMENSIONS = (
    "visit:entry_page", "visit:exit_page", "visit:source", "visit:channel", "visit:referrer",
    "visit:utm_source", "visit:utm_medium", "visit:utm_campaign", "visit:browser", "visit:os",
    "visit:device",
)
TIME_DIMENSIONS = ("time:hour", "time:day", "time:week", "time:month")
PROPS = "event:props:"


class QueryTimeout(Exception):
    """The store stopped a query at the request's deadline."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One simple filter: `dimension` compared with any of `values` (an OR)."""

    op: str  # is, is_not, contains, contains_not, matches, matches_not
    dimension: str
    values: tuple[str, ...]
    case_sensitive: bool = True

    @property
    def negated(self) -> bool:
        return self.op.endswith("_not")


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # and, or
    children: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Filter


Filter = Condition | Logic | Not


def dimensions_of(flt: Filter | None) -> set[str]:
    """Every dimension a filter tree reads."""
    if flt is None:
        return set()
    if isinstance(flt, Condition):
        return {flt.dimension}
    if isinstance(flt, Not):
        return dimensions_of(flt.child)
    return set().union(*(dimensions_of(c) for c in flt.children))


@dataclass(frozen=True, slots=True)
class TimeBuckets:
    """How `time:*` dimensions are labelled: local time is `ts + offset`, where the offset
    is the last entry of `offsets` whose UTC instant is at or before `ts` (a zone's
    offset changes only at DST transitions, so a range needs few entries)."""

    zone: str
    offsets: tuple[tuple[datetime, int], ...]  # (UTC instant, seconds east of UTC)


@dataclass(frozen=True, slots=True)
class StatsRequest:
    """What to count. `start` and `end` are aware UTC datetimes, `end` excluded.

    Labels of time dimensions: `time:hour` "YYYY-MM-DD HH:00:00", `time:day` "YYYY-MM-DD",
    `time:week` the Monday "YYYY-MM-DD", `time:month` "YYYY-MM-01", all in local time.
    Every other dimension's value is the stored text ("" when unset).
    """

    site: str
    start: datetime
    end: datetime
    dimensions: tuple[str, ...] = ()
    filter: Filter | None = None
    buckets: TimeBuckets | None = None
    #: time.monotonic() after which the store should raise QueryTimeout.
    deadline: float = field(default_factory=lambda: time.monotonic() + 10)


@dataclass(slots=True)
class Measures:
    """Additive counts of one group. Visitors and visits are counted per UTC day (a
    session id lives one UTC day), so two days' measures add up exactly."""

    visitors: int = 0
    visits: int = 0
    pageviews: int = 0
    events: int = 0
    bounces: int = 0  # visits with one pageview and no other event
    duration: float = 0.0  # seconds, summed over visits

    def add(self, other: Measures) -> None:
        self.visitors += other.visitors
        self.visits += other.visits
        self.pageviews += other.pageviews
        self.events += other.events
        self.bounces += other.bounces
        self.duration += other.duration


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A Stats API key as stored: never the key itself, only its SHA-256."""

    id: str
    name: str
    key_hash: str
    sites: tuple[str, ...]
    created: datetime
    revoked: datetime | None = None


@runtime_checkable
class StatsStore(Protocol):
    def query(self, request: StatsRequest) -> dict[tuple[str, ...], Measures]:
        """Measures per group, keyed by the values of `request.dimensions` in order (the
        empty tuple without dimensions). Only groups with at least one event appear."""

    def first_day(self, site: str) -> date | None:
        """The UTC day of the site's oldest event, for the `all` range."""

    def sites(self) -> list[str]:
        """Every site with events, sorted."""

    def dimensions(self) -> list[str]:
        """The enrichers' columns this store can group by (as `visit:NAME`)."""

    def add_key(self, record: KeyRecord) -> None: ...

    def find_key(self, key_hash: str) -> KeyRecord | None: ...

    def list_keys(self) -> list[KeyRecord]: ...

    def revoke_key(self, key_id: str) -> bool:
        """Revoke by id; False when no live key has it."""

    def close(self) -> None: ...

    # Optional: `prop_keys(site, start, end, limit) -> list[str]`, the prop keys of the
    # range's events, most used first (the dashboard's props panels).

