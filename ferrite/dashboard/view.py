"""A dashboard view as URL query parameters, and the Stats API queries it stands for.

Every state of a site page (period, comparison, chart metric and interval, filters) lives
in the URL, so a link reproduces the view; the page's numbers are the answers to the v2
queries built here, the same the Stats API gives for the same body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

PERIODS = {"day": "Today", "7d": "Last 7 days", "28d": "Last 28 days",
           "30d": "Last 30 days", "91d": "Last 91 days", "month": "This month",
           "6mo": "Last 6 months", "12mo": "Last 12 months", "year": "This year",
           "all": "All time", "custom": "Custom range"}
METRICS = {"visitors": "Unique visitors", "visits": "Total visits",
           "pageviews": "Total pageviews", "views_per_visit": "Views per visit",
           "bounce_rate": "Bounce rate", "visit_duration": "Visit duration"}
INTERVALS = ("hour", "day", "week", "month")
COMPARISONS = {"off": "No comparison", "previous_period": "Previous period",
               "year_over_year": "Year over year"}
#: Filter names people read on a chip.
FILTER_LABELS = {"event:page": "Page", "visit:entry_page": "Entry page",
                 "visit:exit_page": "Exit page", "visit:source": "Source",
                 "visit:referrer": "Referrer", "visit:utm_source": "UTM source",
                 "visit:utm_medium": "UTM medium", "visit:utm_campaign": "UTM campaign",
                 "visit:utm_content": "UTM content", "visit:utm_term": "UTM term",
                 "visit:browser": "Browser", "visit:os": "Operating system",
                 "visit:device": "Device", "event:goal": "Goal"}
MAX_FILTERS = 20
MAX_FILTER_LENGTH = 2000


class ViewError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def filter_label(dimension: str) -> str:
    if dimension.startswith("event:props:"):
        return f"Prop {dimension.removeprefix('event:props:')}"
    if dimension in FILTER_LABELS:
        return FILTER_LABELS[dimension]
    return dimension.split(":", 1)[-1].replace("_", " ").capitalize()


def default_interval(period: str, days: int) -> str:
    if period in ("day", "realtime") or days <= 1:
        return "hour"
    if days <= 62:
        return "day"
    if days <= 400:
        return "week" if period == "custom" else "month"
    return "month"


@dataclass(frozen=True)
class View:
    period: str = "28d"
    start: date | None = None
    end: date | None = None
    compare: str = "off"
    metric: str = "visitors"
    interval: str | None = None
    filters: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    #: The custom-event prop key whose values the props panel shows.
    prop: str | None = None

    # --- as a URL ----------------------------------------------------------------------

    def params(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = [("period", self.period)]
        if self.period == "custom" and self.start and self.end:
            out += [("from", self.start.isoformat()), ("to", self.end.isoformat())]
        if self.compare != "off":
            out.append(("compare", self.compare))
        if self.metric != "visitors":
            out.append(("metric", self.metric))
        if self.interval:
            out.append(("interval", self.interval))
        out += [("f", f"{dim}=={value}") for dim, value in self.filters]
        if self.prop:
            out.append(("prop", self.prop))
        return out

    def url(self, **changes: Any) -> str:
        """`?query` of this view with `changes` applied (a link's href)."""
        return "?" + urlencode((replace(self, **changes) if changes else self).params())

    def with_filter(self, dimension: str, value: str) -> str:
        kept = tuple(f for f in self.filters if f[0] != dimension)
        return self.url(filters=(*kept, (dimension, value)))

    def without_filter(self, index: int) -> str:
        return self.url(filters=tuple(f for i, f in enumerate(self.filters) if i != index))

    def filtered_on(self, dimension: str) -> bool:
        return any(d == dimension for d, _ in self.filters)

    # --- as Stats API queries ----------------------------------------------------------

    def date_range(self) -> str | list[str]:
        if self.period == "custom" and self.start and self.end:
            return [self.start.isoformat(), self.end.isoformat()]
        return self.period

    def v2_filters(self) -> list[list[Any]]:
        return [["is", dim, [value]] for dim, value in self.filters]

    def body(self, site: str, metrics: list[str], dimensions: list[str] | None = None,
             *, limit: int | None = None, comparisons: bool = False,
             extra_filters: list[list[Any]] | None = None,
             date_range: str | list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"site_id": site, "metrics": metrics,
                                "date_range": date_range or self.date_range(),
                                "filters": [*self.v2_filters(), *(extra_filters or [])]}
        if dimensions:
            body["dimensions"] = dimensions
        if limit is not None:
            body["pagination"] = {"limit": limit, "offset": 0}
        if comparisons:
            mode = self.compare if self.compare != "off" else "previous_period"
            body["include"] = {"comparisons": {"mode": mode}}
        return body

    def chosen_interval(self, days: int) -> str:
        return self.interval or default_interval(self.period, days)


def parse_view(args: Mapping[str, str] | Any, default_period: str = "28d",
               today: date | None = None) -> View:
    """A View from query parameters; a ViewError names the parameter to fix."""
    get = args.get
    period = get("period") or default_period
    if period not in PERIODS:
        raise ViewError("period", f"period must be one of {', '.join(PERIODS)}")
    start = end = None
    if period == "custom":
        try:
            start = date.fromisoformat(get("from") or "")
            end = date.fromisoformat(get("to") or "")
        except ValueError:
            raise ViewError("from", "a custom range needs from and to dates as YYYY-MM-DD") \
                from None
        if end < start:
            raise ViewError("to", f"the range ends ({end}) before it starts ({start})")
        if (end - start) > timedelta(days=3660):
            raise ViewError("from", "a custom range may cover at most ten years")
    compare = get("compare") or "off"
    if compare not in COMPARISONS:
        raise ViewError("compare", f"compare must be one of {', '.join(COMPARISONS)}")
    metric = get("metric") or "visitors"
    if metric not in METRICS:
        raise ViewError("metric", f"metric must be one of {', '.join(METRICS)}")
    interval = get("interval") or None
    if interval is not None and interval not in INTERVALS:
        raise ViewError("interval", f"interval must be one of {', '.join(INTERVALS)}")
    raw = args.getlist("f") if hasattr(args, "getlist") else \
        ([get("f")] if get("f") else [])
    if len(raw) > MAX_FILTERS:
        raise ViewError("f", f"at most {MAX_FILTERS} filters")
    filters = []
    for i, text in enumerate(raw):
        dim, sep, value = text.partition("==")
        if not sep or not dim or len(text) > MAX_FILTER_LENGTH:
            raise ViewError(f"f[{i}]", "a filter is DIMENSION==VALUE, such as "
                            "event:page==/blog")
        filters.append((dim, value))
    prop = get("prop") or None
    if prop is not None and len(prop) > 300:
        raise ViewError("prop", "a prop key has at most 300 characters")
    return View(period, start, end, compare, metric, interval, tuple(filters), prop)
