"""Plausible's Stats API v1 (GET /api/v1/stats/...) on top of the v2 engine.

Parameters and answers follow Plausible's v1 reference, so a v1 client works by changing
its base URL. v1's relative periods end on `date` (default today), as they did there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ferrite.stats import periods
from ferrite.stats.engine import Engine, zeros
from ferrite.stats.model import QueryError, wildcard
from ferrite.stats.periods import Period, PeriodError

PARAMS = {
    "realtime": ("site_id",),
    "aggregate": ("site_id", "period", "date", "metrics", "filters", "compare",
                  "with_imported"),
    "timeseries": ("site_id", "period", "date", "metrics", "filters", "interval",
                   "with_imported", "compare"),
    "breakdown": ("site_id", "period", "date", "metrics", "filters", "property", "limit",
                  "page", "with_imported", "compare"),
}
PERIODS = ("day", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all",
           "realtime", "custom")
_FILTER = re.compile(r"^(?P<dim>[a-z_]+:[^=!~]+?)\s*(?P<op>==|!=|!~|~)\s*(?P<value>.*)$", re.S)


def check_params(endpoint: str, params: Mapping[str, str]) -> None:
    valid = PARAMS[endpoint]
    for name in params:
        if name not in valid:
            raise QueryError(name, f"unknown parameter; {endpoint} takes {', '.join(valid)}")
    if not params.get("site_id"):
        raise QueryError("site_id", "is required: the site's domain, such as example.com")
    if params.get("with_imported", "false") not in ("false", "true"):
        raise QueryError("with_imported", "must be true or false")
    if params.get("with_imported") == "true":
        raise QueryError("with_imported", "Ferrite has no imported stats; leave it out")


def split_values(text: str) -> list[str]:
    """`a|b` with `\\|` for a literal bar."""
    return [v.replace("\\|", "|") for v in re.split(r"(?<!\\)\|", text)]


def parse_filters(text: str) -> list[Any]:
    """v1's `visit:source==Google|Twitter;event:page==/blog/*` as v2 filters."""
    out: list[Any] = []
    for i, part in enumerate(p for p in re.split(r"(?<!\\);", text) if p.strip()):
        match = _FILTER.match(part.strip())
        if match is None:
            raise QueryError(f"filters[{i}]", f"{part!r} is not DIMENSION==VALUE, !=, ~ or !~ "
                             f"(such as visit:source==Google|Twitter)")
        dim, op, values = match["dim"].strip(), match["op"], split_values(match["value"])
        negate = op.startswith("!")
        if op in ("~", "!~"):
            out.append(["contains_not" if negate else "contains", dim, values])
        elif any("*" in v for v in values) and dim != "event:goal":
            out.append(["matches_not" if negate else "matches", dim,
                        [wildcard(v) for v in values]])
        else:
            out.append(["is_not" if negate else "is", dim, values])
    return out


def _period(engine: Engine, params: Mapping[str, str], now: datetime) -> Period:
    site = params["site_id"].strip().lower().removeprefix("www.")
    zone = engine.sites.zone(site)
    name = params.get("period", "30d")
    if name not in PERIODS:
        raise QueryError("period", f"unknown period {name!r}; valid: {', '.join(PERIODS)}")
    raw_date = params.get("date")
    try:
        if name == "custom":
            if not raw_date or "," not in raw_date:
                raise QueryError("date", "period=custom needs date=YYYY-MM-DD,YYYY-MM-DD")
            return periods.custom(raw_date.split(",", 1), zone)
        day = date.fromisoformat(raw_date) if raw_date else now.astimezone(zone).date()
        first = engine.store.first_day(site) if name == "all" else None
        return periods.resolve(name, zone, now, first, relative_to=day, include_today=True)
    except ValueError as exc:  # PeriodError and bad dates
        field = "date" if not isinstance(exc, PeriodError) or raw_date else "period"
        raise QueryError(field, f"{exc}; dates are YYYY-MM-DD") from None


def _metrics(params: Mapping[str, str]) -> list[str]:
    return [m.strip() for m in params.get("metrics", "visitors").split(",") if m.strip()] \
        or ["visitors"]


def _body(params: Mapping[str, str], metrics: list[str], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"site_id": params["site_id"], "metrics": metrics,
                            "date_range": "day", **extra}
    if params.get("filters"):
        body["filters"] = parse_filters(params["filters"])
    return body


def _compare(params: Mapping[str, str]) -> dict[str, Any]:
    mode = params.get("compare")
    if mode is None:
        return {}
    if mode != "previous_period":
        raise QueryError("compare", "only compare=previous_period is supported")
    return {"include": {"comparisons": {"mode": "previous_period"}}}


def realtime(engine: Engine, params: Mapping[str, str], now: datetime | None = None) -> int:
    """Visitors in the last 5 minutes (v1's definition of current visitors)."""
    check_params("realtime", params)
    now = now or datetime.now(UTC)
    site = params["site_id"].strip().lower().removeprefix("www.")
    period = Period(now - timedelta(minutes=5), now, engine.sites.zone(site))
    plan = engine.plan(_body(params, ["visitors"]), now=now, period=period)
    return int(engine.execute(plan).rows[0].metrics[0] or 0)


def aggregate(engine: Engine, params: Mapping[str, str],
              now: datetime | None = None) -> dict[str, Any]:
    check_params("aggregate", params)
    now = now or datetime.now(UTC)
    metrics = _metrics(params)
    plan = engine.plan(_body(params, metrics, **_compare(params)), now=now,
                       period=_period(engine, params, now))
    row = engine.execute(plan).rows[0]
    results: dict[str, Any] = {}
    for i, metric in enumerate(metrics):
        results[metric] = {"value": row.metrics[i]}
        if row.comparison is not None:
            results[metric]["change"] = row.comparison["change"][i]
    return {"results": results}


def timeseries(engine: Engine, params: Mapping[str, str],
               now: datetime | None = None) -> dict[str, Any]:
    check_params("timeseries", params)
    now = now or datetime.now(UTC)
    period = _period(engine, params, now)
    interval = params.get("interval")
    if interval is None:
        interval = "hour" if period.days == 1 or not period.whole_days else \
            "month" if params.get("period") in ("6mo", "12mo") else "day"
    if interval not in ("hour", "day", "week", "month"):
        raise QueryError("interval", "valid intervals: hour, day, week, month")
    dim = f"time:{interval}"
    metrics = _metrics(params)
    plan = engine.plan(_body(params, metrics, dimensions=[dim]), now=now, period=period)
    rows = {r.dimensions[0]: r.metrics for r in engine.execute(plan).rows}
    zero = zeros(metrics)
    return {"results": [{"date": label, **dict(zip(metrics, rows.get(label, zero),
                                                   strict=True))}
                        for label in periods.labels(period, dim)]}


def breakdown(engine: Engine, params: Mapping[str, str],
              now: datetime | None = None) -> dict[str, Any]:
    check_params("breakdown", params)
    now = now or datetime.now(UTC)
    prop = params.get("property")
    if not prop:
        raise QueryError("property", "is required, such as visit:source or event:page")
    try:
        limit = int(params.get("limit", "100"))
        page = int(params.get("page", "1"))
    except ValueError:
        raise QueryError("limit", "limit and page must be whole numbers") from None
    if not 1 <= limit <= 1000:
        raise QueryError("limit", "must be between 1 and 1000")
    if page < 1:
        raise QueryError("page", "pages start at 1")
    metrics = _metrics(params)
    plan = engine.plan(_body(params, metrics, dimensions=[prop],
                             pagination={"limit": limit, "offset": (page - 1) * limit},
                             **_compare(params)),
                       now=now, period=_period(engine, params, now))
    name = prop.rsplit(":", 1)[-1]
    results = []
    for row in engine.execute(plan).rows:
        item: dict[str, Any] = {name: row.dimensions[0], **dict(zip(metrics, row.metrics,
                                                                     strict=True))}
        if row.comparison is not None:
            item["comparison"] = dict(zip(metrics, row.comparison["change"], strict=True))
        results.append(item)
    return {"results": results}
