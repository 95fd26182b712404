"""The numbers on a site page: the Stats API queries a View stands for, run through the
engine (never SQL of our own), shaped for the templates and for CSV export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ferrite.dashboard.view import METRICS, View, ViewError
from ferrite.stats.engine import Answer, Engine, display
from ferrite.stats.periods import Period

TOP_METRICS = list(METRICS)
MAX_HOURLY_DAYS = 31
PANEL_ROWS = 9
EXPORT_ROWS = 10_000


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    dimension: str
    column: str
    metrics: tuple[str, ...] = ("visitors",)
    #: Clicking a row filters on this dimension (the events panel filters on goals).
    filter_dimension: str | None = None
    #: Rows left out of the panel (pageviews among events, events without a prop). Dropped
    #: after the query rather than filtered in it, so the query can use the rollups.
    hidden: tuple[str, ...] = ()


BASE_PANELS = (
    PanelSpec("pages", "Top pages", "event:page", "Page", ("visitors", "pageviews")),
    PanelSpec("entry_pages", "Entry pages", "visit:entry_page", "Entry page",
              ("visitors", "visits")),
    PanelSpec("exit_pages", "Exit pages", "visit:exit_page", "Exit page",
              ("visitors", "visits")),
    PanelSpec("sources", "Sources", "visit:source", "Source", ("visitors", "bounce_rate")),
    PanelSpec("referrers", "Referrers", "visit:referrer", "Referrer", ("visitors",)),
    PanelSpec("utm_sources", "UTM sources", "visit:utm_source", "UTM source"),
    PanelSpec("utm_mediums", "UTM mediums", "visit:utm_medium", "UTM medium"),
    PanelSpec("utm_campaigns", "UTM campaigns", "visit:utm_campaign", "UTM campaign"),
    PanelSpec("browsers", "Browsers", "visit:browser", "Browser"),
    PanelSpec("os", "Operating systems", "visit:os", "Operating system"),
    PanelSpec("devices", "Devices", "visit:device", "Device"),
)
EVENTS_PANEL = PanelSpec("events", "Custom events", "event:name", "Event",
                         ("visitors", "events", "conversion_rate"), "event:goal",
                         ("pageview",))
PANEL_NAMES = "pages, entry_pages, exit_pages, sources, referrers, utm_sources, " \
    "utm_mediums, utm_campaigns, browsers, os, devices, events, countries, props:KEY"


def panels(engine: Engine, site: str, prop: str | None = None) -> list[PanelSpec]:
    """Every panel the store can fill: enricher columns (country, ...) join the fixed ones,
    and the chosen prop key's values (no rollup holds props: it is counted on demand)."""
    out = list(BASE_PANELS)
    for column in engine.store.dimensions():
        key = "countries" if column == "country" else column
        name = column.replace("_", " ").capitalize()
        out.append(PanelSpec(key, "Countries" if column == "country" else name,
                             f"visit:{column}", name))
    out.append(EVENTS_PANEL)
    if prop:
        out.append(props_panel(prop))
    return out


def props_panel(prop: str) -> PanelSpec:
    """A custom-event prop's values (pageviews, which rarely carry it, left out)."""
    return PanelSpec(f"props:{prop}", f"Prop: {prop}", f"event:props:{prop}", prop,
                     ("visitors", "events"), hidden=("", "(not set)", "(none)"))


def find_panel(engine: Engine, site: str, key: str) -> PanelSpec:
    if key.startswith("props:"):
        prop = key.removeprefix("props:")
        if not prop or len(prop) > 300:
            raise ViewError("panel", "props:KEY needs a prop key")
        return props_panel(prop)
    for spec in panels(engine, site):
        if spec.key == key:
            return spec
    raise ViewError("panel", f"unknown panel {key!r}; panels: {PANEL_NAMES}")


# --- formatting ---------------------------------------------------------------------------

def short_number(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.2f}".rstrip("0").rstrip(".")
    n = int(value)
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(n)


def duration(seconds: float | int | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m}m" if h else f"{m}m {s}s"


def formatted(metric: str, value: Any) -> str:
    if metric == "visit_duration":
        return duration(value)
    if metric in ("bounce_rate", "conversion_rate", "percentage"):
        return "-" if value is None else f"{short_number(value)}%"
    return short_number(value)


METRIC_HEADERS = {"visitors": "Visitors", "visits": "Visits", "pageviews": "Pageviews",
                  "events": "Events", "bounce_rate": "Bounce rate",
                  "conversion_rate": "CR", "views_per_visit": "Views per visit",
                  "visit_duration": "Visit duration"}


# --- the page -------------------------------------------------------------------------------

@dataclass
class Report:
    site: str
    view: View
    period: Period
    interval: str
    top: list[dict[str, Any]] = field(default_factory=list)
    chart: dict[str, Any] = field(default_factory=dict)
    panels: list[dict[str, Any]] = field(default_factory=list)
    prop_keys: list[str] = field(default_factory=list)
    #: Parts not counted within the page's time budget.
    slow: list[str] = field(default_factory=list)


Job = Callable[[], Any]


def plan_report(engine: Engine, site: str, view: View,
                now: datetime | None = None) -> tuple[Report, dict[str, Job]]:
    """The report's frame and the queries that fill it, as named jobs the caller may run
    concurrently (each is one engine.answer call)."""
    now = now or datetime.now(UTC)
    top_body = view.body(site, TOP_METRICS, comparisons=True)
    period = engine.plan(top_body, now=now).period
    days = max(1, round((period.end - period.start).total_seconds() / 86400))
    interval = view.chosen_interval(days)
    if interval == "hour" and days > MAX_HOURLY_DAYS:
        raise ViewError("interval", f"hourly charts cover at most {MAX_HOURLY_DAYS} days; "
                        f"choose day, week or month")
    report = Report(site, view, period, interval)
    report.prop_keys = engine.prop_keys(site, period)
    chart_body = view.body(site, [view.metric], [f"time:{interval}"],
                           comparisons=view.compare != "off")
    chart_body.setdefault("include", {})["time_labels"] = True
    jobs: dict[str, Job] = {
        "top": lambda: engine.answer(top_body, now=now),
        "chart": lambda: engine.answer(chart_body, now=now),
    }
    specs = panels(engine, site, view.prop)
    for spec in specs:
        body = panel_body(view, site, spec, PANEL_ROWS + 1 + len(spec.hidden))
        jobs[f"panel:{spec.key}"] = lambda body=body: engine.answer(body, now=now)
    report.panels = [{"spec": spec} for spec in specs]
    return report, jobs


def panel_body(view: View, site: str, spec: PanelSpec, limit: int) -> dict[str, Any]:
    return view.body(site, list(spec.metrics), [spec.dimension], limit=limit)


def visible(spec: PanelSpec, rows: list[Any]) -> list[Any]:
    return [r for r in rows if r.dimensions[0] not in spec.hidden]


def fill_report(report: Report, answers: dict[str, Answer]) -> Report:
    """Shape the answers; a part missing from `answers` took too long and shows so."""
    view = report.view
    top = answers.get("top")
    if top is None:
        report.slow.append("top")
    row = top.rows[0] if top is not None and top.rows else None
    for i, metric in enumerate(TOP_METRICS):
        value = row.metrics[i] if row else (0 if top is not None else None)
        comparison = row.comparison if row else None
        previous = comparison["metrics"][i] if comparison else None
        change = comparison["change"][i] if comparison else None
        report.top.append({
            "metric": metric, "label": METRICS[metric], "value": value,
            "text": formatted(metric, value), "previous": previous,
            "previous_text": formatted(metric, previous), "change": change,
            "change_text": _change_text(metric, change),
            "good": _good(metric, change), "href": view.url(metric=metric),
            "selected": metric == view.metric})
    chart = answers.get("chart")
    if chart is None:
        report.slow.append("chart")
        chart = Answer(None, [], {})  # type: ignore[arg-type]
    labels = chart.meta.get("time_labels", [])
    values = {r.dimensions[0]: r.metrics[0] for r in chart.rows}
    previous = {r.dimensions[0]: r.comparison["metrics"][0] for r in chart.rows
                if r.comparison}
    report.chart = {
        "metric": view.metric, "label": METRICS[view.metric], "interval": report.interval,
        "labels": labels, "values": [values.get(t, 0) for t in labels],
        "previous": [previous.get(t, 0) for t in labels] if view.compare != "off" else None,
    }
    for panel in report.panels:
        spec: PanelSpec = panel["spec"]
        answer = answers.get(f"panel:{spec.key}")
        if answer is None:
            report.slow.append(spec.key)
            panel.update(panel_rows(view, spec, []), slow=True, more=False)
            continue
        rows = visible(spec, answer.rows)
        panel.update(panel_rows(view, spec, rows[:PANEL_ROWS]), slow=False)
        panel["more"] = len(rows) > PANEL_ROWS
    return report


def panel_rows(view: View, spec: PanelSpec, rows: list[Any]) -> dict[str, Any]:
    top = max((r.metrics[0] or 0 for r in rows), default=0) or 1
    target = spec.filter_dimension or spec.dimension
    return {
        "headers": [METRIC_HEADERS.get(m, m) for m in spec.metrics],
        "metrics": list(spec.metrics),
        "active": view.filtered_on(target),
        "rows": [{"value": r.dimensions[0], "label": display(spec.dimension, r.dimensions[0]),
                  "cells": [formatted(m, v) for m, v in zip(spec.metrics, r.metrics,
                                                            strict=True)],
                  "numbers": r.metrics, "bar": round(100 * (r.metrics[0] or 0) / top, 1),
                  "href": view.with_filter(target, r.dimensions[0])} for r in rows],
    }


def _change_text(metric: str, change: float | int | None) -> str:
    if change is None:
        return ""
    unit = " pp" if metric == "bounce_rate" else "%"
    arrow = "↑" if change > 0 else "↓" if change < 0 else ""
    return f"{arrow}{short_number(abs(change))}{unit}"


def _good(metric: str, change: float | int | None) -> bool | None:
    if not change:
        return None
    return (change < 0) if metric == "bounce_rate" else (change > 0)


def realtime_body(site: str) -> dict[str, Any]:
    return {"site_id": site, "metrics": ["visitors"], "date_range": "realtime"}


def visitors_today_body(site: str) -> dict[str, Any]:
    return {"site_id": site, "metrics": ["visitors"], "date_range": "day",
            "dimensions": ["time:hour"], "include": {"time_labels": True}}
