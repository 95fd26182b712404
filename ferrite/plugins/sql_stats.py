"""The query model in SQL, shared by the SQLite and PostgreSQL stores (`StatsStore`).

Raw path: visits are rebuilt from the events of the range with window functions (a visit is
one session's events of one UTC day, and one local day of the site, with no gap over 30
minutes), then filtered and counted per visit, per session and per group: exact.

Rollups: a session id lives one UTC day and visits end at local midnight, so each day's
visitors and visits add up to a range's. Each closed local day is counted once per
dimension into `stats_rollup` (`build`); a query without filters reads whole valid days
from there and only the rest (today, partial days, days not built) from the events. Every
write moves on the generation of the (site, UTC hour)s it really inserted into, in
`stats_hours` and in its own transaction; a day is valid while its hours' generations add
up to what its count saw (`stats_days`), so a stale rollup is never read and a build that
raced a write is simply ignored until rebuilt.

A subclass gives its dialect (placeholders, text and time expressions, regular
expressions) and its connections; the SQL of visits, filters and groupings is written once,
so both stores give the same answers on the same events.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ferrite.stats.periods import local_midnight, offsets
from ferrite.stats.store import (
    PROPS,
    TIME_DIMENSIONS,
    Condition,
    Filter,
    KeyRecord,
    Logic,
    Measures,
    Not,
    StatsRequest,
    TimeBuckets,
    dimensions_of,
)

DAY = timedelta(days=1)
GAP_MS = 30 * 60 * 1000
#: Grouped by in each closed day's rollup ("" is the day's totals).
ROLLUP_DIMENSIONS = (
    "", "event:page", "event:name", "visit:entry_page", "visit:exit_page", "visit:source",
    "visit:channel", "visit:referrer", "visit:utm_source", "visit:utm_medium",
    "visit:utm_campaign", "visit:browser", "visit:os", "visit:device",
)
#: Visit dimensions and the event column each is taken from (the visit's first event).
VISIT_COLUMNS = {
    "visit:source": "src", "visit:channel": "channel", "visit:referrer": "ref",
    "visit:utm_source": "utm_source", "visit:utm_medium": "utm_medium",
    "visit:utm_campaign": "utm_campaign", "visit:browser": "browser", "visit:os": "os",
    "visit:device": "device",
}
#: The rows and the (site, day) bookkeeping of one day's rollup.
RollupRows = list[tuple[Any, ...]]


class SqlStats:
    """The shared query logic; see the module docstring. `table` is the events table and
    `_extra` its enrichers' columns (set by the subclass's preparation)."""

    name = "sql"
    table: str
    _extra: list[str] | None = None

    # --- the dialect, given by a subclass -----------------------------------------------

    def ph(self, n: int) -> str:
        """The placeholder of the n-th parameter (1-based, reusable)."""
        raise NotImplementedError

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def time_param(self, ts: datetime) -> Any:
        """A UTC instant as a parameter compared with `ts`."""
        raise NotImplementedError

    #: Expressions over the events table `e`: the page without its query string (UTM keys
    #: stay in the stored path, the fragment is kept), the referrer as Plausible shows it
    #: (no scheme, no "www."), and the visit's source (utm_source when tagged, else the
    #: referring host's name: Google, Twitter, ... see referrer_sources.source_name).
    page_sql: str
    referrer_sql: str
    source_sql: str
    #: Milliseconds since 1970 of `e.ts`, as an integer.
    ms_sql: str

    def utc_day_sql(self) -> str:
        raise NotImplementedError

    def local_day_key_sql(self, local: str) -> str:
        """The visits' day key when the site is not on UTC: the UTC day and the local
        day (`local` is the local wall time expression)."""
        raise NotImplementedError

    def local_time_sql(self, buckets: TimeBuckets | None, params: list[Any]) -> str:
        """Local wall time of `ts`, from the offsets' segments."""
        raise NotImplementedError

    def offset_sql(self, buckets: TimeBuckets, params: list[Any],
                   literal: Callable[[int], str]) -> str:
        """The zone's offset at `ts` (as `literal(seconds)`), from the offsets' segments."""
        cases = []
        for at, seconds in reversed(buckets.offsets[1:]):
            params.append(self.time_param(at))
            cases.append(f"WHEN ts >= {self.ph(len(params))} THEN {literal(seconds)}")
        first = literal(buckets.offsets[0][1])
        return f"CASE {' '.join(cases)} ELSE {first} END" if cases else first

    def time_label_sql(self, dim: str, local: str) -> str:
        raise NotImplementedError

    def prop_sql(self, key: str, params: list[Any]) -> str:
        raise NotImplementedError

    def contains_sql(self, target: str, placeholder: str) -> str:
        raise NotImplementedError

    def lower_sql(self, expr: str) -> str:
        """Lower case as Python's str.lower, which lowers the filter's values: every
        letter, not only ASCII."""
        return f"lower({expr})"

    def matches_sql(self, col: str, pattern: str, case_sensitive: bool,
                    params: list[Any]) -> str:
        raise NotImplementedError

    #: How a temporary table is named where it is read (its schema).
    temp_schema: str

    def temp_table_sql(self, name: str, select: str) -> list[str]:
        """Statements that make a temporary table from `select` (the last one takes its
        parameters)."""
        raise NotImplementedError

    def _reader(self, deadline: float | None = None) -> AbstractContextManager[Any]:
        """A connection inside one read transaction (one snapshot), with `execute(sql,
        params)` returning rows."""
        raise NotImplementedError

    def _events_exist(self) -> bool:
        raise NotImplementedError

    def _store_rollup(self, site: str, day: str, zone: str, hours: tuple[str, str],
                      generation: int, rows: RollupRows) -> None:
        """Replace the day's rollup and record the generation its count saw, atomically."""
        raise NotImplementedError

    def _first_ts(self, site: str) -> datetime | None:
        """The time of the site's oldest event."""
        raise NotImplementedError

    def first_day(self, site: str) -> date | None:
        """The UTC day of the site's oldest event, for the `all` range."""
        if not self._events_exist():
            return None
        first = self._first_ts(site)
        return first.astimezone(UTC).date() if first else None

    #: Appended to `site` and prop keys where they are sorted: byte-wise, in both stores.
    collate = ""
    #: The FROM item that lists an event's prop keys, and the key's expression in it.
    prop_keys_from: str
    prop_key: str

    def sites(self) -> list[str]:
        """Every site with events, sorted byte-wise."""
        if not self._events_exist():
            return []
        sites: list[str] = []
        site_col = f"site{self.collate}"
        with self._reader() as conn:
            last = ""
            while True:  # index hops instead of a DISTINCT scan of every event
                (site,) = next(iter(conn.execute(
                    f"SELECT min({site_col}) FROM {self.quote(self.table)} WHERE "
                    f"{site_col} > {self.ph(1)}", [last])))
                if site is None:
                    return sites
                sites.append(site)
                last = site

    def prop_keys(self, site: str, start: datetime, end: datetime,
                  limit: int = 20) -> list[str]:
        """The prop keys of the range's events, most used first (the dashboard's props
        panels)."""
        if not self._events_exist():
            return []
        p, k = self.ph, self.prop_key
        with self._reader() as conn:
            rows = conn.execute(
                f"SELECT {k}, count(*) AS n FROM {self.quote(self.table)} AS e, "
                f"{self.prop_keys_from} WHERE e.site = {p(1)} AND e.ts >= {p(2)} AND "
                f"e.ts < {p(3)} AND e.props IS NOT NULL GROUP BY {k} "
                f"ORDER BY n DESC, {k}{self.collate} LIMIT {p(4)}",
                [site, self.time_param(start), self.time_param(end), limit])
            return [r[0] for r in rows]

    # --- queries ----------------------------------------------------------------------

    def query(self, request: StatsRequest) -> dict[tuple[str, ...], Measures]:
        if not self._events_exist():
            return {}
        zone = request.buckets.zone if request.buckets is not None else "UTC"
        out: dict[tuple[str, ...], Measures] = {}
        with self._reader(request.deadline) as conn:
            raw = [(request.start, request.end)]
            if self._rollup_fits(request):
                days = whole_days(request.start, request.end, ZoneInfo(zone))
                valid = self._valid_days(conn, request.site, zone, days)
                if valid:
                    self._from_rollup(conn, request, [d for d, _, _ in valid], out)
                    raw = _outside(request.start, request.end, [(a, b) for _, a, b in valid])
            for start, end in raw:
                for key, m in self._raw(conn, request, start, end).items():
                    out.setdefault(key, Measures()).add(m)
        return out

    def _rollup_fits(self, request: StatsRequest) -> bool:
        if request.filter is not None or len(request.dimensions) > 1:
            return False
        if not request.dimensions:
            return True
        dim = request.dimensions[0]
        if dim in TIME_DIMENSIONS:
            return dim != "time:hour"
        return dim in ROLLUP_DIMENSIONS or dim.removeprefix("visit:") in (self._extra or ())

    def _valid_days(self, conn: Any, site: str, zone: str,
                    days: list[tuple[date, datetime, datetime]]
                    ) -> list[tuple[date, datetime, datetime]]:
        """The days whose rollup was counted in this zone and whose hours no write has
        touched since (their generations still add up to what the count saw)."""
        if not days:
            return []
        p = self.ph
        rows = conn.execute(
            f"SELECT day FROM stats_days d WHERE site = {p(1)} AND zone = {p(2)} AND "
            f"day >= {p(3)} AND day <= {p(4)} AND gen = (SELECT coalesce(sum(n), 0) FROM "
            f"stats_hours h WHERE h.site = d.site AND h.hour BETWEEN d.hour_from AND "
            f"d.hour_to)",
            [site, zone, days[0][0].isoformat(), days[-1][0].isoformat()])
        valid = {r[0] for r in rows}
        return [d for d in days if d[0].isoformat() in valid]

    def _from_rollup(self, conn: Any, request: StatsRequest, days: list[date],
                     out: dict[tuple[str, ...], Measures]) -> None:
        dim = request.dimensions[0] if request.dimensions else ""
        time_dim = dim in TIME_DIMENSIONS
        params: list[Any] = [request.site, "" if time_dim else dim]
        listed = []
        for d in days:
            params.append(d.isoformat())
            listed.append(self.ph(len(params)))
        sql = (f"SELECT {'day' if time_dim else 'value'}, sum(visitors), sum(visits), "
               f"sum(pageviews), sum(events), sum(bounces), sum(duration) FROM stats_rollup "
               f"WHERE site = {self.ph(1)} AND dim = {self.ph(2)} AND day IN "
               f"({', '.join(listed)}) GROUP BY 1")
        for value, *counts in conn.execute(sql, params):
            if time_dim:
                key: tuple[str, ...] = (_day_bucket(value, dim),)
            else:
                key = (value,) if request.dimensions else ()
            out.setdefault(key, Measures()).add(_measures(counts))

    def _raw(self, conn: Any, request: StatsRequest, start: datetime,
             end: datetime) -> dict[tuple[str, ...], Measures]:
        params: list[Any] = [request.site, self.time_param(start), self.time_param(end)]
        keys = [self._dimension_sql(d, request.buckets, params) for d in request.dimensions]
        where = self._filter_sql(request.filter, params) if request.filter else "TRUE"
        need = self._needs(request.dimensions, request.filter)
        day = self._day_key(request.buckets, params)
        keep = self._necessary_sql(request.filter, params, day) if request.filter else None
        sql = self._visits_cte(need, day, keep) + self._grouping_sql(keys, where)
        # the site and the range are the first three placeholders (in the CTE)
        return {tuple(str(v) if v is not None else "" for v in row[:len(keys)]):
                _measures(row[len(keys):])
                for row in conn.execute(sql, params) if row[len(keys)]}

    def _day_key(self, buckets: TimeBuckets | None, params: list[Any]) -> str:
        if buckets is None or all(seconds == 0 for _, seconds in buckets.offsets):
            return self.utc_day_sql()
        return self.local_day_key_sql(self.local_time_sql(buckets, params))

    def _needs(self, dims: tuple[str, ...], flt: Filter | None) -> set[str]:
        """The event columns a query reads: the fewer, the cheaper each window pass."""
        names = set(dims) | dimensions_of(flt)
        need: set[str] = set()
        for dim in names:
            if dim in ("event:page", "visit:entry_page", "visit:exit_page"):
                need |= {"page", dim.removeprefix("visit:")}
            elif dim.startswith(PROPS):
                need.add("props")
            elif dim in VISIT_COLUMNS:
                need.add(VISIT_COLUMNS[dim])
            elif dim.startswith("visit:"):
                need.add("x_" + dim.removeprefix("visit:"))
        return need

    def _visits_cte(self, need: set[str] | None, day: str, keep: str | None = None) -> str:
        """Events of the range with their visit number and their visit's attributes;
        `need` limits the columns carried (None: all of them). `day` is the key a visit
        and a visitor never cross: the UTC day, and the site's local day if not UTC.
        `keep` (an event-level condition, see `_necessary_sql`) limits the window passes
        to the (day, session)s where some event meets it: whole partitions are kept or
        left out, so every kept visit is rebuilt exactly as without it."""
        q = self.quote
        columns = self._event_expressions()
        visit = [*VISIT_COLUMNS.values(), *(c for c in columns if c.startswith("x_"))]
        if need is None:
            need = {*columns, "entry_page", "exit_page"}
        event_cols = "".join(f", {expr} AS {q(name)}" for name, expr in columns.items()
                             if name in need)
        window = [f"first_value({q(c)}) OVER vw AS {q('v_' + c)}" for c in visit if c in need]
        if "entry_page" in need:
            window.append("first_value(page) OVER vw AS entry_page")
        if "exit_page" in need:
            window.append("last_value(page) OVER vw AS exit_page")
        window_cols = "".join(f"{w}, " for w in window)
        # the day key is kept as `day`: the key a kept (day, session) is matched on
        kept = "" if keep is None else f"\n    AND ({day}, e.session) IN ({keep})"
        p = self.ph
        return f"""
WITH ev AS (
  SELECT e.id, e.ts, {day} AS day, e.session, e.name, {self.ms_sql} AS ms
    {event_cols}
  FROM {q(self.table)} e WHERE e.site = {p(1)} AND e.ts >= {p(2)} AND e.ts < {p(3)}{kept}
),
mk AS (
  SELECT *, CASE WHEN ms - lag(ms) OVER w <= {GAP_MS} THEN 0 ELSE 1 END AS brk
  FROM ev WINDOW w AS (PARTITION BY day, session ORDER BY ms, id)
),
vn AS (
  SELECT *, sum(brk) OVER (PARTITION BY day, session ORDER BY ms, id
                           ROWS UNBOUNDED PRECEDING) AS vno FROM mk
),
x AS (
  SELECT *, {window_cols}
    count(*) OVER vw AS v_events,
    sum(CASE WHEN name = 'pageview' THEN 1 ELSE 0 END) OVER vw AS v_pageviews,
    (max(ms) OVER vw - min(ms) OVER vw) / 1000.0 AS v_duration
  FROM vn WINDOW vw AS (PARTITION BY day, session, vno ORDER BY ms, id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)"""

    def _event_expressions(self) -> dict[str, str]:
        """Each event column the visits CTE can carry, as an expression over the events
        table `e`."""
        extras = {f"x_{c}": f"e.{self.quote(c)}" for c in self._extra or ()}
        return {"page": self.page_sql, "props": "e.props", "src": self.source_sql,
                "channel": "coalesce(e.source, '')", "ref": self.referrer_sql,
                **{c: f"coalesce(e.{c}, '')" for c in
                   ("utm_source", "utm_medium", "utm_campaign", "browser", "os", "device")},
                **extras}

    @staticmethod
    def _grouping_sql(keys: list[str], where: str, source: str = "x") -> str:
        """Counts per visit, then per session, then per group (continues a WITH when the
        events come from the CTE `x`)."""
        ks = [f"k{i}" for i in range(len(keys))]
        sel = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
        kl = "".join(f"{k}, " for k in ks)
        return f"""{"," if source == "x" else "WITH"}
sel AS (SELECT {sel}day, session, vno, name, v_events, v_pageviews, v_duration
        FROM {source} WHERE {where}),
per_visit AS (
  SELECT {kl}day, session, sum(CASE WHEN name = 'pageview' THEN 1 ELSE 0 END) AS pv,
    count(*) AS n,
    max(CASE WHEN v_events = 1 AND v_pageviews = 1 THEN 1 ELSE 0 END) AS bounce,
    max(v_duration) AS dur
  FROM sel GROUP BY {kl}day, session, vno
),
per_session AS (
  SELECT {kl}count(*) AS visits, sum(pv) AS pv, sum(n) AS n, sum(bounce) AS b,
    sum(dur) AS d FROM per_visit GROUP BY {kl}day, session
)
SELECT {kl}count(*), sum(visits), sum(pv), sum(n), sum(b), sum(d)
FROM per_session {'GROUP BY ' + ', '.join(ks) if ks else ''}"""

    def _dimension_sql(self, dim: str, buckets: TimeBuckets | None, params: list[Any]) -> str:
        if dim in TIME_DIMENSIONS:
            return self.time_label_sql(dim, self.local_time_sql(buckets, params))
        return self._column(dim, params)

    def _column(self, dim: str, params: list[Any], event_level: bool = False) -> str:
        """The column of `dim` in the visits CTE; `event_level`: in its events, where a
        visit attribute is still each event's own value."""
        if event_level and not dim.startswith(PROPS):
            if dim in ("event:page", "visit:entry_page", "visit:exit_page"):
                return self.page_sql
            if dim == "event:name":
                return "e.name"
            name = VISIT_COLUMNS.get(dim) or "x_" + dim.removeprefix("visit:")
            expressions = self._event_expressions()
            if name not in expressions:
                raise ValueError(f"the {self.name} store cannot filter on {dim!r}")
            return expressions[name]
        if dim == "event:page":
            return "page"
        if dim == "event:name":
            return "name"
        if dim in ("visit:entry_page", "visit:exit_page"):
            return dim.removeprefix("visit:")
        if dim.startswith(PROPS):
            return self.prop_sql(dim[len(PROPS):], params)
        if dim in VISIT_COLUMNS:
            return self.quote("v_" + VISIT_COLUMNS[dim])
        column = dim.removeprefix("visit:")
        if column in (self._extra or ()):
            return f"coalesce({self.quote('v_x_' + column)}, '')"
        raise ValueError(f"the {self.name} store cannot group by {dim!r}")

    def _necessary_sql(self, flt: Filter, params: list[Any], day: str) -> str | None:
        """A query of the (day, session)s that hold every event passing `flt` (read from
        the events table, with `day` the visits' day key), or None when it cannot narrow
        them. A visit attribute is its first event's value, so `visit:X is V` needs an
        event with X = V in the partition; an event-level condition needs that event
        itself; `and` intersects (each condition may be met by another event), `or`
        unites. Negations narrow nothing."""
        if isinstance(flt, Logic):
            parts = [self._necessary_sql(c, params, day) for c in flt.children]
            if flt.op == "and":
                known = [p for p in parts if p is not None]
                joiner = " INTERSECT "
            elif None in parts:
                return None
            else:
                known = [p for p in parts if p is not None]
                joiner = " UNION "
            if not known:
                return None
            return joiner.join(f"SELECT * FROM ({p}) AS n{len(params)}_{i}"
                               for i, p in enumerate(known))
        if isinstance(flt, Not) or flt.negated:
            return None
        p = self.ph
        return (f"SELECT {day}, e.session FROM {self.quote(self.table)} e WHERE "
                f"e.site = {p(1)} AND e.ts >= {p(2)} AND e.ts < {p(3)} AND "
                f"{self._condition_sql(flt, params, event_level=True)}")

    def _filter_sql(self, flt: Filter, params: list[Any]) -> str:
        if isinstance(flt, Logic):
            joiner = " AND " if flt.op == "and" else " OR "
            return "(" + joiner.join(self._filter_sql(c, params) for c in flt.children) + ")"
        if isinstance(flt, Not):
            return f"NOT ({self._filter_sql(flt.child, params)})"
        return self._condition_sql(flt, params)

    def _condition_sql(self, c: Condition, params: list[Any], event_level: bool = False) -> str:
        col = f"coalesce({self._column(c.dimension, params, event_level)}, '')"

        def p(value: str) -> str:
            params.append(value)
            return self.ph(len(params))

        op = c.op.removesuffix("_not")
        if op == "is":
            if c.case_sensitive:
                sql = f"{col} IN ({', '.join(p(v) for v in c.values)})"
            else:
                sql = (f"{self.lower_sql(col)} IN "
                       f"({', '.join(p(v.lower()) for v in c.values)})")
        elif op == "contains":
            target = col if c.case_sensitive else self.lower_sql(col)
            sql = " OR ".join(self.contains_sql(target, p(v if c.case_sensitive else v.lower()))
                              for v in c.values)
        else:
            sql = " OR ".join(self.matches_sql(col, v, c.case_sensitive, params)
                              for v in c.values)
        return f"NOT ({sql})" if c.negated else f"({sql})"

    # --- rollups ----------------------------------------------------------------------

    def build(self, *, now: datetime | None = None, site: str | None = None,
              zone: Callable[[str], ZoneInfo] | None = None,
              progress: Callable[[str, date], None] | None = None,
              stop: Callable[[], bool] | None = None) -> int:
        """Count every closed local day (in `zone(site)`, default UTC) that has events and
        no current rollup. A day is closed an hour after it ended; a hit later than that
        only makes the day's rollup stale until the next build. Returns the days built."""
        if not self._events_exist():
            return 0
        now = now or datetime.now(UTC)
        built = 0
        for s in [site] if site else self.sites():
            tz = zone(s) if zone is not None else ZoneInfo("UTC")
            for day in self._days_to_build(s, tz, now - timedelta(hours=1)):
                if stop is not None and stop():
                    return built
                self.build_day(s, day, tz)
                built += 1
                if progress is not None:
                    progress(s, day)
        return built

    def _days_to_build(self, site: str, tz: ZoneInfo, closed_before: datetime) -> list[date]:
        first = self._first_ts(site)
        if first is None:
            return []
        t, p = self.quote(self.table), self.ph
        days = whole_days(local_midnight(first.astimezone(tz).date(), tz), closed_before, tz)
        with self._reader() as conn:
            valid = {d for d, _, _ in self._valid_days(conn, site, str(tz), days)}
            out = []
            for day, start, end in days:
                if day in valid:
                    continue
                (has,) = next(iter(conn.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {t} WHERE site = {p(1)} AND "
                    f"ts >= {p(2)} AND ts < {p(3)})",
                    [site, self.time_param(start), self.time_param(end)])))
                if has:
                    out.append(day)
            return out

    def build_day(self, site: str, day: date, tz: ZoneInfo | None = None) -> None:
        """Count one local day into the rollup, with the generation of its hours as the
        count saw them (in the same snapshot): a write after that makes the count stale,
        never wrong."""
        tz = tz or ZoneInfo("UTC")
        start, end = local_midnight(day, tz), local_midnight(day + DAY, tz)
        hours = (_iso(start)[:13], _iso(end - timedelta(milliseconds=1))[:13])
        buckets = TimeBuckets(str(tz), offsets(start, end, tz))
        rows: RollupRows = []
        key = day.isoformat()
        p = self.ph
        with self._reader() as conn:
            (generation,) = next(iter(conn.execute(
                f"SELECT coalesce(sum(n), 0) FROM stats_hours WHERE site = {p(1)} AND hour "
                f"BETWEEN {p(2)} AND {p(3)}", [site, *hours])))
            # the day's events with their visits, once; then one grouping per dimension
            params: list[Any] = [site, self.time_param(start), self.time_param(end)]
            cte = self._visits_cte(None, self._day_key(buckets, params))
            *before, create = self.temp_table_sql("day_events", f"{cte} SELECT * FROM x")
            for statement in before:
                conn.execute(statement, [])
            conn.execute(create, params)
            table = f"{self.temp_schema}.day_events"
            for dim in [*ROLLUP_DIMENSIONS, *(f"visit:{c}" for c in self._extra or ())]:
                params = []
                keys = [self._column(dim, params)] if dim else []
                sql = self._grouping_sql(keys, "TRUE", table)
                for row in conn.execute(sql, params):
                    if row[len(keys)]:
                        m = _measures(row[len(keys):])
                        rows.append((site, dim, key, str(row[0] or "") if keys else "",
                                     m.visitors, m.visits, m.pageviews, m.events, m.bounces,
                                     m.duration))
            conn.execute(f"DROP TABLE {table}", [])
        self._store_rollup(site, key, str(tz), hours, int(generation), rows)


def _measures(counts: Any) -> Measures:
    """Counts as the stores return them (PostgreSQL sums are decimals) as Measures."""
    v, vi, pv, ev, b, d = (c or 0 for c in counts)
    return Measures(int(v), int(vi), int(pv), int(ev), int(b), float(d))


def key_record(row: tuple[Any, ...]) -> KeyRecord:
    """A stats_keys row (sites as a JSON list, times as ISO text) as a KeyRecord."""
    return KeyRecord(row[0], row[1], row[2], tuple(json.loads(row[3])),
                     datetime.fromisoformat(row[4]),
                     datetime.fromisoformat(row[5]) if row[5] else None)


def hour_labels(hours: set[tuple[str, int]]) -> set[tuple[str, str]]:
    """(site, hours since 1970) as (site, 'YYYY-MM-DDTHH'): formatted once per hour, not
    per event (this runs on every batch)."""
    return {(site, datetime.fromtimestamp(h * 3600, UTC).strftime("%Y-%m-%dT%H"))
            for site, h in hours}


def _iso(ts: datetime) -> str:
    """The stored text form (sorts as time): ISO 8601 UTC with milliseconds and a Z."""
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _outside(start: datetime, end: datetime,
             covered: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) outside the covered, ordered, disjoint intervals."""
    out, at = [], start
    for lo, hi in covered:
        if lo > at:
            out.append((at, lo))
        at = max(at, hi)
    if at < end:
        out.append((at, end))
    return out


def whole_days(start: datetime, end: datetime, tz: ZoneInfo
               ) -> list[tuple[date, datetime, datetime]]:
    """The local days lying wholly inside [start, end), with their UTC bounds."""
    out = []
    day = start.astimezone(tz).date()
    while True:
        lo, hi = local_midnight(day, tz), local_midnight(day + DAY, tz)
        if lo >= end:
            return out
        if lo >= start and hi <= end:
            out.append((day, lo, hi))
        day += DAY


def _day_bucket(day: str, dim: str) -> str:
    d = date.fromisoformat(day)
    if dim == "time:week":
        return (d - timedelta(days=d.weekday())).isoformat()
    if dim == "time:month":
        return d.replace(day=1).isoformat()
    return day

