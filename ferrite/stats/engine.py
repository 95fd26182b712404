"""One engine for every face: plan a validated query, ask the store for additive measures,
derive the metrics, compare, order and page.

Stores only count (`ferrite.stats.store`); everything Plausible-shaped happens here, so a
third-party store gets bounce rates, percentages and comparisons for free, and two stores
answer a query the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ferrite.core.config import Config
from ferrite.core.errors import FerriteError
from ferrite.core.manager import Plugins
from ferrite.core.sites import sites_of
from ferrite.stats import periods
from ferrite.stats.model import (
    Include,
    QueryBody,
    QueryError,
    check_dimension,
    check_filters,
    check_metrics,
    parse_body,
)
from ferrite.stats.periods import Period, PeriodError
from ferrite.stats.settings import StatsTable
from ferrite.stats.store import (
    TIME_DIMENSIONS,
    Filter,
    Logic,
    Measures,
    StatsRequest,
    StatsStore,
    TimeBuckets,
    dimensions_of,
)

#: Metrics that describe whole visits; with an event dimension other than event:page they
#: would mix units, as Plausible also refuses.
VISIT_METRICS = ("bounce_rate", "views_per_visit", "visit_duration")
#: Shown instead of an empty value ("" is stored for "none").
EMPTY = {"visit:source": "Direct / None"}
NOT_SET = "(not set)"


class NoStatsStore(FerriteError):
    """No plugin in the chain answers stats queries."""


def open_store(config: Config) -> StatsStore:
    store = Plugins(config).hook.ferrite_stats_store()
    if store is None:
        raise NoStatsStore("no plugin in [pipeline] plugins answers stats queries (the "
                           "ferrite_stats_store hook); add a storage plugin such as 'sqlite'")
    return store


@dataclass(frozen=True)
class Plan:
    body: QueryBody
    site: str
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...]  # as asked ("time" kept)
    resolved: tuple[str, ...]  # what the store groups by ("time" made concrete)
    filter: Filter | None
    period: Period
    comparison: Period | None
    order: tuple[tuple[str, str], ...]
    include: Include


@dataclass
class Row:
    dimensions: list[str]
    metrics: list[float | int | None]
    comparison: dict[str, Any] | None = None


@dataclass
class Answer:
    plan: Plan
    rows: list[Row]
    meta: dict[str, Any] = field(default_factory=dict)

    def v2(self) -> dict[str, Any]:
        """The response body of POST /api/v2/query."""
        plan = self.plan
        results = []
        for row in self.rows:
            out: dict[str, Any] = {"metrics": row.metrics, "dimensions": row.dimensions}
            if row.comparison is not None:
                out["comparison"] = row.comparison
            results.append(out)
        query: dict[str, Any] = {
            "site_id": plan.site, "metrics": list(plan.metrics),
            "date_range": plan.period.labels(), "filters": plan.body.filters,
            "dimensions": list(plan.dimensions), "order_by": [list(o) for o in plan.order],
            "include": plan.body.include.model_dump(exclude_defaults=True),
            "pagination": plan.body.pagination.model_dump(),
        }
        return {"results": results, "meta": self.meta, "query": query}


class Engine:
    def __init__(self, config: Config, store: StatsStore | None = None) -> None:
        self.config = config
        self.settings: StatsTable = config.stats
        self.sites = sites_of(config)
        self.store = store if store is not None else open_store(config)

    def close(self) -> None:
        self.store.close()

    def build(self, **kwargs: Any) -> int:
        """Build the store's read-side structures in each site's zone, if it keeps any."""
        builder = getattr(self.store, "build", None)
        return builder(zone=self.sites.zone, **kwargs) if builder is not None else 0

    def prop_keys(self, site: str, period: Period, limit: int = 20) -> list[str]:
        """The custom-event prop keys seen in the period, most used first (for the
        dashboard's props panels); a store without `prop_keys` has none to offer."""
        finder = getattr(self.store, "prop_keys", None)
        return finder(site, period.start, period.end, limit) if finder is not None else []

    # --- planning ---------------------------------------------------------------------

    def plan(self, body: QueryBody | dict[str, Any], *, now: datetime | None = None,
             period: Period | None = None, include_today: bool = False) -> Plan:
        if not isinstance(body, QueryBody):
            body = parse_body(body)
        now = now or datetime.now(UTC)
        site = body.site_id
        zone = self.sites.zone(site)
        extra = self.store.dimensions()
        metrics = check_metrics(body.metrics)
        dims = tuple(check_dimension(d, f"dimensions[{i}]", extra)
                     for i, d in enumerate(body.dimensions))
        if len(set(dims)) != len(dims):
            raise QueryError("dimensions", "lists a dimension more than once")
        if sum(d == "time" or d in TIME_DIMENSIONS for d in dims) > 1:
            raise QueryError("dimensions", "at most one time dimension")
        flt = check_filters(body.filters, extra, self.settings.max_pattern_length)
        if "percentage" in metrics and not dims:
            raise QueryError("metrics", "percentage needs at least one dimension")
        if "conversion_rate" in metrics and "event:name" not in dims \
                and goal_split(flt)[0] is None:
            raise QueryError("metrics", "conversion_rate needs a top-level filter on event:name "
                             "(or event:goal), or the event:name dimension")
        event_dims = [d for d in dims if d.startswith("event:") and d != "event:page"]
        visit_metrics = [m for m in metrics if m in VISIT_METRICS]
        if event_dims and visit_metrics:
            raise QueryError("metrics", f"{', '.join(visit_metrics)} describe whole visits and "
                             f"cannot be broken down by {', '.join(event_dims)}")
        if period is None:
            try:
                first = self.store.first_day(site) if body.date_range == "all" else None
                period = periods.resolve(body.date_range, zone, now, first,
                                         include_today=include_today)
            except PeriodError as exc:
                raise QueryError("date_range", str(exc)) from None
        comparison = None
        if body.include.comparisons is not None:
            try:
                comparison = periods.compare(period, body.include.comparisons.mode,
                                             body.include.comparisons.date_range)
            except PeriodError as exc:
                raise QueryError("include.comparisons", str(exc)) from None
        resolved = tuple(periods.granularity(period) if d == "time" else d for d in dims)
        order = self._order(body, metrics, dims)
        if body.include.time_labels and not any(d.startswith("time") for d in dims):
            raise QueryError("include.time_labels", "needs a time dimension")
        if body.include.imports:
            raise QueryError("include.imports", "Ferrite has no imported stats; leave it out")
        return Plan(body, site, metrics, dims, resolved, flt, period, comparison, order,
                    body.include)

    @staticmethod
    def _order(body: QueryBody, metrics: tuple[str, ...],
               dims: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        if body.order_by is not None:
            for i, (name, _) in enumerate(body.order_by):
                if name not in metrics and name not in dims:
                    raise QueryError(f"order_by[{i}]", f"{name!r} is not among the query's "
                                     f"metrics or dimensions: "
                                     f"{', '.join([*metrics, *dims])}")
            return tuple(body.order_by)
        time_dims = [d for d in dims if d == "time" or d.startswith("time:")]
        return (*((d, "asc") for d in time_dims), (metrics[0], "desc"))

    # --- answering --------------------------------------------------------------------

    def answer(self, body: QueryBody | dict[str, Any], *, now: datetime | None = None) -> Answer:
        return self.execute(self.plan(body, now=now))

    def execute(self, plan: Plan) -> Answer:
        deadline = time.monotonic() + self.settings.query_timeout_seconds
        rows = self._rows(plan, plan.period, deadline)
        if plan.comparison is not None:
            self._compare(plan, rows, self._rows(plan, plan.comparison, deadline))
        time_index = next((i for i, d in enumerate(plan.dimensions) if d.startswith("time")),
                          None)
        positions = {name: i for i, name in enumerate(plan.dimensions)}
        metric_pos = {name: i for i, name in enumerate(plan.metrics)}
        ordered = [row for _, row in sorted(rows.items())]  # ties broken by dimension values
        for name, direction in reversed(plan.order):
            if name in metric_pos:
                i = metric_pos[name]
                ordered.sort(key=lambda r, i=i: (r.metrics[i] is None, r.metrics[i] or 0),
                             reverse=direction == "desc")
            else:
                i = positions[name]
                ordered.sort(key=lambda r, i=i: r.dimensions[i], reverse=direction == "desc")
        meta: dict[str, Any] = {}
        if plan.include.time_labels and time_index is not None:
            meta["time_labels"] = periods.labels(plan.period, plan.resolved[time_index])
        if plan.include.total_rows:
            meta["total_rows"] = len(ordered)
        if plan.comparison is not None:
            meta["comparison_date_range"] = plan.comparison.labels()
        page = plan.body.pagination
        return Answer(plan, ordered[page.offset:page.offset + page.limit], meta)

    def request(self, plan: Plan, period: Period, deadline: float,
                dimensions: tuple[str, ...], flt: Filter | None) -> StatsRequest:
        # always: local days bound visits and rollups as well as time buckets
        buckets = TimeBuckets(str(period.zone),
                              periods.offsets(period.start, period.end, period.zone))
        return StatsRequest(plan.site, period.start, period.end, dimensions, flt, buckets,
                            deadline)

    def _rows(self, plan: Plan, period: Period, deadline: float) -> dict[tuple[str, ...], Row]:
        groups = self.store.query(self.request(plan, period, deadline, plan.resolved,
                                                  plan.filter))
        total = None
        if "percentage" in plan.metrics:
            whole = self.store.query(self.request(plan, period, deadline, (), plan.filter))
            total = whole.get((), Measures()).visitors
        base = None
        if "conversion_rate" in plan.metrics:
            goal, rest = goal_split(plan.filter)
            if goal is None:  # the event:name dimension is the goal
                rest = plan.filter
            # the divisor: every visitor (of the same time bucket), without the goal
            dims = tuple(d for d in plan.resolved if d in TIME_DIMENSIONS)
            base_groups = self.store.query(self.request(plan, period, deadline, dims, rest))
            base = (dims, base_groups)
        out: dict[tuple[str, ...], Row] = {}
        for key, m in groups.items():
            values = []
            for metric in plan.metrics:
                if metric == "percentage":
                    values.append(_ratio(m.visitors, total or 0, 100))
                elif metric == "conversion_rate":
                    assert base is not None
                    dims, base_groups = base
                    bkey = tuple(v for d, v in zip(plan.resolved, key, strict=True)
                                 if d in dims)
                    values.append(_ratio(m.visitors, base_groups.get(bkey, Measures()).visitors,
                                         100))
                else:
                    values.append(metric_value(metric, m))
            out[key] = Row([display(d, v) for d, v in zip(plan.resolved, key, strict=True)],
                           values)
        if not plan.dimensions and not out:  # an aggregate always has its one row
            out[()] = Row([], zeros(plan.metrics))
        return out

    def _compare(self, plan: Plan, rows: dict[tuple[str, ...], Row],
                 previous: dict[tuple[str, ...], Row]) -> None:
        """Match rows with the comparison's: by value, and time buckets by position."""
        time_index = next((i for i, d in enumerate(plan.resolved) if d in TIME_DIMENSIONS),
                          None)
        match: dict[tuple[str, ...], tuple[str, ...]] = {}
        if time_index is not None:
            assert plan.comparison is not None
            now_labels = periods.labels(plan.period, plan.resolved[time_index])
            old_labels = periods.labels(plan.comparison, plan.resolved[time_index])
            shift = dict(zip(now_labels, old_labels, strict=False))
            for key in rows:
                old = list(key)
                old[time_index] = shift.get(key[time_index], "")
                match[key] = tuple(old)
        for key, row in rows.items():
            old_key = match.get(key, key)
            old = previous.get(old_key)
            values = old.metrics if old is not None else zeros(plan.metrics)
            row.comparison = {
                "dimensions": [display(d, v) for d, v in zip(plan.resolved, old_key,
                                                             strict=True)],
                "metrics": values,
                "change": [change(m, new, was) for m, new, was in
                           zip(plan.metrics, row.metrics, values, strict=True)],
            }


def goal_split(flt: Filter | None) -> tuple[Filter | None, Filter | None]:
    """(the top-level conditions on event:name, the rest): conversion rate's numerator and
    denominator filters."""
    if flt is None:
        return None, None
    parts = flt.children if isinstance(flt, Logic) and flt.op == "and" else (flt,)
    goal = [p for p in parts if "event:name" in dimensions_of(p) and
            dimensions_of(p) <= {"event:name", "event:page"}]
    rest = [p for p in parts if p not in goal]
    if not goal:
        return None, flt
    return (goal[0] if len(goal) == 1 else Logic("and", tuple(goal)),
            None if not rest else rest[0] if len(rest) == 1 else Logic("and", tuple(rest)))


def _ratio(part: float, whole: float, scale: float = 1) -> float:
    return round(part / whole * scale, 2) if whole else 0.0


def metric_value(metric: str, m: Measures) -> float | int:
    match metric:
        case "visitors":
            return m.visitors
        case "visits":
            return m.visits
        case "pageviews":
            return m.pageviews
        case "events":
            return m.events
        case "views_per_visit":
            return _ratio(m.pageviews, m.visits)
        case "bounce_rate":
            return float(round(m.bounces / m.visits * 100)) if m.visits else 0.0
        case "visit_duration":
            return round(m.duration / m.visits) if m.visits else 0
    raise ValueError(metric)


def zeros(metrics: tuple[str, ...] | list[str]) -> list[float | int | None]:
    """A row with no events: counts and seconds are 0, rates 0.0."""
    return [0 if m in ("visitors", "visits", "pageviews", "events", "visit_duration") else 0.0
            for m in metrics]


def change(metric: str, new: Any, old: Any) -> float | int | None:
    """Percent change for counts; for rates, the difference in percentage points."""
    if new is None or old is None:
        return None
    if metric in ("bounce_rate", "conversion_rate", "percentage"):
        return round(new - old, 2)
    if not old:
        return 100 if new else 0
    return round((new - old) / old * 100)


def display(dimension: str, value: str) -> str:
    if value == "" or value is None:
        return EMPTY.get(dimension, NOT_SET)
    if dimension == "visit:device":
        return value.capitalize()
    return value


__all__ = ["Answer", "Engine", "Plan", "QueryError", "Row", "open_store"]
