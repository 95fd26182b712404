"""The SQLite sink's answers to stats queries (`ferrite.stats.store.StatsStore`).

Raw path: visits are rebuilt from the events of the range with window functions (a visit is
one session's events of one UTC day, and one local day of the site, with no gap over 30
minutes), then filtered and counted per visit, per session and per group: exact.

Rollups: a session id lives one UTC day and visits end at local midnight, so each day's
visitors and visits add up to a range's. Each closed local day is counted once per
dimension into `stats_rollup` (`build`); a query without filters reads whole valid days
from there and only the rest (today, partial days, days not built) from the events. Every
write moves on the generation of the (site, UTC hour)s it touched in `stats_hours`, in its
own transaction; a day is valid while its hours' generations add up to what its count saw
(`stats_days`), so a stale rollup is never read and a build that raced a write is simply
ignored until rebuilt. Queries run on their own WAL connections and never take the write
lock.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import re2

from ferrite.core.errors import FerriteError
from ferrite.core.event import STORED_FIELDS
from ferrite.plugins.referrer_sources import source_name
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
    QueryTimeout,
    StatsRequest,
    TimeBuckets,
    dimensions_of,
)

DAY = timedelta(days=1)
GAP_MS = 30 * 60 * 1000
#: julianday() of 1970-01-01 in milliseconds. SQLite keeps a julian day as whole
#: milliseconds, so julianday(ts) * 86400000 rounds back to it exactly (8x cheaper than
#: strftime('%s')).
UNIX_EPOCH_MS = 210_866_760_000_000
#: Grouped by in each closed day's rollup ("" is the day's totals).
ROLLUP_DIMENSIONS = (
    "", "event:page", "event:name", "visit:entry_page", "visit:exit_page", "visit:source",
    "visit:channel", "visit:referrer", "visit:utm_source", "visit:utm_medium",
    "visit:utm_campaign", "visit:browser", "visit:os", "visit:device",
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS stats_rollup (
    site TEXT NOT NULL, dim TEXT NOT NULL, day TEXT NOT NULL, value TEXT NOT NULL,
    visitors INTEGER NOT NULL, visits INTEGER NOT NULL, pageviews INTEGER NOT NULL,
    events INTEGER NOT NULL, bounces INTEGER NOT NULL, duration REAL NOT NULL,
    PRIMARY KEY (site, dim, day, value)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats_days (
    site TEXT NOT NULL, day TEXT NOT NULL, zone TEXT NOT NULL, hour_from TEXT NOT NULL,
    hour_to TEXT NOT NULL, gen INTEGER NOT NULL, built TEXT NOT NULL,
    PRIMARY KEY (site, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats_hours (
    site TEXT NOT NULL, hour TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (site, hour)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
    sites TEXT NOT NULL, created TEXT NOT NULL, revoked TEXT);
"""

#: The page without its query string (UTM keys stay in the stored path), fragment kept.
PAGE = ("CASE WHEN instr(e.path, '?') = 0 THEN e.path ELSE substr(e.path, 1, "
        "instr(e.path, '?') - 1) || CASE WHEN instr(e.path, '#') > 0 THEN "
        "substr(e.path, instr(e.path, '#')) ELSE '' END END")
_NO_SCHEME = ("CASE WHEN e.referrer LIKE 'https://%' THEN substr(e.referrer, 9) "
              "WHEN e.referrer LIKE 'http://%' THEN substr(e.referrer, 8) "
              "ELSE coalesce(e.referrer, '') END")
#: The referrer as Plausible shows it: no scheme, no "www.".
REFERRER = f"(CASE WHEN ({_NO_SCHEME}) LIKE 'www.%' THEN substr({_NO_SCHEME}, 5) " \
           f"ELSE {_NO_SCHEME} END)"
_HOST = f"(CASE WHEN instr({REFERRER}, '/') > 0 THEN substr({REFERRER}, 1, " \
        f"instr({REFERRER}, '/') - 1) ELSE {REFERRER} END)"
#: utm_source when tagged, else the referring host's name (Google, Twitter, ...: see
#: referrer_sources.source_name) or the host; "" for direct and internal visits.
SOURCE = (f"CASE WHEN coalesce(e.utm_source, '') <> '' THEN e.utm_source "
          f"WHEN coalesce(e.source, '') IN ('', 'direct', 'internal') THEN '' "
          f"ELSE ferrite_source({_HOST}) END")
#: Visit dimensions and the event column each is taken from (the visit's first event).
VISIT_COLUMNS = {
    "visit:source": "src", "visit:channel": "channel", "visit:referrer": "ref",
    "visit:utm_source": "utm_source", "visit:utm_medium": "utm_medium",
    "visit:utm_campaign": "utm_campaign", "visit:browser": "browser", "visit:os": "os",
    "visit:device": "device",
}


class StoreMissing(FerriteError):
    """The database file does not exist (yet)."""


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern)


def _regexp(pattern: str, value: Any) -> int:
    """RE2: linear time in the value, so no pattern makes a query hang."""
    return 1 if value is not None and _compiled(pattern).search(str(value)) else 0


@lru_cache(maxsize=4096)
def _source(host: str | None) -> str:
    return source_name(host or "")


def _q(name: str) -> str:
    return "[" + name.replace("]", "]]") + "]"


class SqliteStats:
    def __init__(self, path: str, table: str = "events", busy_timeout_ms: int = 30_000) -> None:
        self.path = path
        self.table = table
        self.busy_timeout = busy_timeout_ms / 1000
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._extra: list[str] | None = None
        self._ready = False
        self._closed = False

    # --- connections ------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if not Path(self.path).exists():
            raise StoreMissing(f"database {self.path} does not exist yet; it is created when "
                               f"the first event is stored (check [plugins.sqlite] path)")
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        conn.create_function("ferrite_re", 2, _regexp, deterministic=True)
        conn.create_function("ferrite_source", 1, _source, deterministic=True)
        with self._lock:
            self._all.append(conn)
        return conn

    @contextmanager
    def _reader(self, deadline: float | None = None) -> Iterator[sqlite3.Connection]:
        """A pooled connection inside one read transaction (one WAL snapshot)."""
        self._prepare()
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._open()
        if deadline is not None:
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 20_000)
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT") if conn.in_transaction else None
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise QueryTimeout("the query ran past its time limit") from None
            raise
        finally:
            conn.set_progress_handler(None, 0)
            self._release(conn)

    def _release(self, conn: sqlite3.Connection) -> None:
        """Back to the pool, or closed by the thread that used it once the store closed
        (closing a connection another thread is using can crash SQLite)."""
        if self._closed:
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            conn.close()
        else:
            self._pool.put(conn)

    def _prepare(self) -> None:
        if self._ready:
            return
        conn = self._open()
        try:
            conn.executescript(SCHEMA)
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({_q(self.table)})")]
        self._extra = [c for c in cols if c not in STORED_FIELDS]
        self._has_events = bool(cols)
        self._ready = True
        self._release(conn)

    def close(self) -> None:
        """Close the idle connections; one in use is closed by its thread when done."""
        self._closed = True
        while True:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                break
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            conn.close()
        self._ready = False

    # --- metadata ---------------------------------------------------------------------

    def dimensions(self) -> list[str]:
        self._prepare()
        return list(self._extra or [])

    def first_day(self, site: str) -> date | None:
        if not self._events_exist():
            return None
        with self._reader() as conn:
            (ts,) = conn.execute(f"SELECT min(ts) FROM {_q(self.table)} WHERE site = ?",
                                 (site,)).fetchone()
        return date.fromisoformat(ts[:10]) if ts else None

    def _events_exist(self) -> bool:
        self._prepare()
        if not self._has_events:  # a sink may have created it since
            self._ready = False
            self._prepare()
        return self._has_events

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

    @staticmethod
    def _valid_days(conn: sqlite3.Connection, site: str, zone: str,
                    days: list[tuple[date, datetime, datetime]]
                    ) -> list[tuple[date, datetime, datetime]]:
        """The days whose rollup was counted in this zone and whose hours no write has
        touched since (their generations still add up to what the count saw)."""
        if not days:
            return []
        rows = conn.execute(
            "SELECT day FROM stats_days d WHERE site = ?1 AND zone = ?2 AND day >= ?3 AND "
            "day <= ?4 AND gen = (SELECT coalesce(sum(n), 0) FROM stats_hours h WHERE "
            "h.site = d.site AND h.hour BETWEEN d.hour_from AND d.hour_to)",
            (site, zone, days[0][0].isoformat(), days[-1][0].isoformat()))
        valid = {r[0] for r in rows}
        return [d for d in days if d[0].isoformat() in valid]

    def _from_rollup(self, conn: sqlite3.Connection, request: StatsRequest, days: list[date],
                     out: dict[tuple[str, ...], Measures]) -> None:
        dim = request.dimensions[0] if request.dimensions else ""
        time_dim = dim in TIME_DIMENSIONS
        sql = (f"SELECT {'day' if time_dim else 'value'}, sum(visitors), sum(visits), "
               f"sum(pageviews), sum(events), sum(bounces), sum(duration) FROM stats_rollup "
               f"WHERE site = ? AND dim = ? AND day >= ? AND day <= ? AND day IN "
               f"(SELECT value FROM json_each(?)) GROUP BY 1")
        rows = conn.execute(sql, (request.site, "" if time_dim else dim, days[0].isoformat(),
                                  days[-1].isoformat(),
                                  json.dumps([d.isoformat() for d in days])))
        for value, *counts in rows:
            if time_dim:
                key: tuple[str, ...] = (_day_bucket(value, dim),)
            else:
                key = (value,) if request.dimensions else ()
            out.setdefault(key, Measures()).add(Measures(*counts))

    def _raw(self, conn: sqlite3.Connection, request: StatsRequest, start: datetime,
             end: datetime) -> dict[tuple[str, ...], Measures]:
        params: list[Any] = [request.site, _iso(start), _iso(end)]
        keys = [self._dimension_sql(d, request.buckets, params) for d in request.dimensions]
        where = self._filter_sql(request.filter, params) if request.filter else "1"
        need = self._needs(request.dimensions, request.filter)
        day = _day_key(request.buckets, params)
        keep = self._necessary_sql(request.filter, params, day) if request.filter else None
        sql = self._visits_cte(need, day, keep) + \
            self._grouping_sql(keys, where)
        # the site and the range are the first three placeholders (in the CTE)
        return {tuple(str(v) if v is not None else "" for v in row[:len(keys)]):
                Measures(*(c or 0 for c in row[len(keys):]))
                for row in conn.execute(sql, params) if row[len(keys)]}

    def _needs(self, dims: tuple[str, ...], flt: Filter | None) -> set[str] | None:
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

    def _visits_cte(self, need: set[str] | None = None,
                    day: str = "substr(e.ts, 1, 10)", keep: str | None = None) -> str:
        """Events of the range with their visit number and their visit's attributes;
        `need` limits the columns carried (None: all of them). `day` is the key a visit
        and a visitor never cross: the UTC day, and the site's local day if not UTC.
        `keep` (an event-level condition, see `_necessary_sql`) limits the window passes
        to the (day, session)s where some event meets it: whole partitions are kept or
        left out, so every kept visit is rebuilt exactly as without it."""
        columns = self._event_expressions()
        visit = [*VISIT_COLUMNS.values(), *(c for c in columns if c.startswith("x_"))]
        if need is None:
            need = {*columns, "entry_page", "exit_page"}
        event_cols = "".join(f", {expr} AS {_q(name)}" for name, expr in columns.items()
                             if name in need)
        window = [f"first_value({_q(c)}) OVER vw AS {_q('v_' + c)}" for c in visit if c in need]
        if "entry_page" in need:
            window.append("first_value(page) OVER vw AS entry_page")
        if "exit_page" in need:
            window.append("last_value(page) OVER vw AS exit_page")
        window_cols = "".join(f"{w}, " for w in window)
        # the day key is kept as `day`: the key a kept (day, session) is matched on
        kept = "" if keep is None else f"\n    AND ({day}, e.session) IN ({keep})"
        return f"""
WITH ev AS (
  SELECT e.id, e.ts, {day} AS day, e.session, e.name,
    CAST(round(julianday(e.ts) * 86400000.0) AS INTEGER) - {UNIX_EPOCH_MS} AS ms
    {event_cols}
  FROM {_q(self.table)} e WHERE e.site = ?1 AND e.ts >= ?2 AND e.ts < ?3{kept}
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
    count(*) OVER vw AS v_events, sum(name = 'pageview') OVER vw AS v_pageviews,
    (max(ms) OVER vw - min(ms) OVER vw) / 1000.0 AS v_duration
  FROM vn WINDOW vw AS (PARTITION BY day, session, vno ORDER BY ms, id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)"""

    def _event_expressions(self) -> dict[str, str]:
        """Each event column the visits CTE can carry, as an expression over the events
        table `e`."""
        extras = {f"x_{c}": f"e.{_q(c)}" for c in self._extra or ()}
        return {"page": PAGE, "props": "e.props", "src": SOURCE,
                "channel": "coalesce(e.source, '')", "ref": REFERRER,
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
  SELECT {kl}day, session, sum(name = 'pageview') AS pv, count(*) AS n,
    max(v_events = 1 AND v_pageviews = 1) AS bounce, max(v_duration) AS dur
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
            local = _local_time(buckets, params)
            return {"time:hour": f"substr({local}, 1, 13) || ':00:00'",
                    "time:day": f"substr({local}, 1, 10)",
                    "time:week": f"date({local}, 'weekday 0', '-6 days')",
                    "time:month": f"substr({local}, 1, 7) || '-01'"}[dim]
        return self._column(dim, params)

    def _column(self, dim: str, params: list[Any], event_level: bool = False) -> str:
        """The column of `dim` in the visits CTE; `event_level`: in its events, where a
        visit attribute is still each event's own value."""
        if event_level and not dim.startswith(PROPS):
            if dim in ("event:page", "visit:entry_page", "visit:exit_page"):
                return PAGE
            if dim == "event:name":
                return "e.name"
            name = VISIT_COLUMNS.get(dim) or "x_" + dim.removeprefix("visit:")
            expressions = self._event_expressions()
            if name not in expressions:
                raise ValueError(f"the sqlite store cannot filter on {dim!r}")
            return expressions[name]
        if dim == "event:page":
            return "page"
        if dim == "event:name":
            return "name"
        if dim in ("visit:entry_page", "visit:exit_page"):
            return dim.removeprefix("visit:")
        if dim.startswith(PROPS):
            key = dim[len(PROPS):]
            if '"' in key or "\\" in key:
                # SQLite's JSON paths cannot quote these characters: look the key up
                params.append(key)
                return (f"coalesce((SELECT value FROM json_each(props) WHERE key = "
                        f"?{len(params)}), '')")
            params.append("$." + json.dumps(key))
            return f"coalesce(json_extract(props, ?{len(params)}), '')"
        if dim in VISIT_COLUMNS:
            return _q("v_" + VISIT_COLUMNS[dim])
        column = dim.removeprefix("visit:")
        if column in (self._extra or ()):
            return f"coalesce({_q('v_x_' + column)}, '')"
        raise ValueError(f"the sqlite store cannot group by {dim!r}")

    def _necessary_sql(self, flt: Filter, params: list[Any], day: str) -> str | None:
        """A query of the (day, session)s that hold every event passing `flt` (read from
        the events table, with `day` the visits' day key), or None when it cannot narrow
        them. A visit attribute is its first
        event's value, so `visit:X is V` needs an event with X = V in the partition; an
        event-level condition needs that event itself; `and` intersects (each condition
        may be met by another event), `or` unites. Negations narrow nothing."""
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
            return joiner.join(f"SELECT * FROM ({p})" for p in known)
        if isinstance(flt, Not) or flt.negated:
            return None
        return (f"SELECT {day}, e.session FROM {_q(self.table)} e WHERE e.site = ?1 AND "
                f"e.ts >= ?2 AND e.ts < ?3 AND "
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
            return f"?{len(params)}"

        op = c.op.removesuffix("_not")
        if op == "is":
            if c.case_sensitive:
                sql = f"{col} IN ({', '.join(p(v) for v in c.values)})"
            else:
                sql = f"lower({col}) IN ({', '.join(p(v.lower()) for v in c.values)})"
        elif op == "contains":
            target = col if c.case_sensitive else f"lower({col})"
            sql = " OR ".join(f"instr({target}, {p(v if c.case_sensitive else v.lower())}) > 0"
                              for v in c.values)
        else:
            prefix = "" if c.case_sensitive else "(?i)"
            sql = " OR ".join(f"ferrite_re({p(prefix + v)}, {col})" for v in c.values)
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

    def prop_keys(self, site: str, start: datetime, end: datetime,
                  limit: int = 20) -> list[str]:
        if not self._events_exist():
            return []
        with self._reader() as conn:
            rows = conn.execute(
                f"SELECT j.key, count(*) AS n FROM {_q(self.table)} AS e, json_each(e.props) "
                f"AS j WHERE e.site = ? AND e.ts >= ? AND e.ts < ? AND e.props IS NOT NULL "
                f"GROUP BY j.key ORDER BY n DESC, j.key LIMIT ?",
                (site, _iso(start), _iso(end), limit)).fetchall()
        return [r[0] for r in rows]

    def sites(self) -> list[str]:
        if not self._events_exist():
            return []
        sites, last = [], ""
        with self._reader() as conn:
            while True:  # index hops instead of a DISTINCT scan of every event
                (site,) = conn.execute(f"SELECT min(site) FROM {_q(self.table)} WHERE site > ?",
                                       (last,)).fetchone()
                if site is None:
                    return sites
                sites.append(site)
                last = site

    def _days_to_build(self, site: str, tz: ZoneInfo, closed_before: datetime) -> list[date]:
        t = _q(self.table)
        with self._reader() as conn:
            (lo,) = conn.execute(f"SELECT min(ts) FROM {t} WHERE site = ?", (site,)).fetchone()
            if lo is None:
                return []
            first = datetime.fromisoformat(lo.replace("Z", "+00:00")).astimezone(tz).date()
            days = whole_days(local_midnight(first, tz), closed_before, tz)
            valid = {d for d, _, _ in self._valid_days(conn, site, str(tz), days)}
            out = []
            for day, start, end in days:
                if day in valid:
                    continue
                (has,) = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {t} WHERE site = ? AND "
                                      f"ts >= ? AND ts < ?)",
                                      (site, _iso(start), _iso(end))).fetchone()
                if has:
                    out.append(day)
            return out

    def build_day(self, site: str, day: date, tz: ZoneInfo | None = None) -> None:
        """Count one local day into the rollup, with the generation of its hours as the
        count saw them: a write after that makes the count stale, never wrong."""
        tz = tz or ZoneInfo("UTC")
        start, end = local_midnight(day, tz), local_midnight(day + DAY, tz)
        hours = (_iso(start)[:13], _iso(end - timedelta(milliseconds=1))[:13])
        buckets = TimeBuckets(str(tz), offsets(start, end, tz))
        rows: list[tuple[Any, ...]] = []
        key = day.isoformat()
        with self._reader() as conn:
            (generation,) = conn.execute(
                "SELECT coalesce(sum(n), 0) FROM stats_hours WHERE site = ? AND hour "
                "BETWEEN ? AND ?", (site, *hours)).fetchone()
            # the day's events with their visits, once; then one grouping per dimension
            conn.execute("DROP TABLE IF EXISTS temp.day_events")
            params: list[Any] = [site, _iso(start), _iso(end)]
            cte = self._visits_cte(None, _day_key(buckets, params))
            conn.execute(f"CREATE TEMP TABLE day_events AS {cte} SELECT * FROM x", params)
            for dim in [*ROLLUP_DIMENSIONS, *(f"visit:{c}" for c in self._extra or ())]:
                params = []
                keys = [self._column(dim, params)] if dim else []
                sql = self._grouping_sql(keys, "1", "temp.day_events")
                for row in conn.execute(sql, params):
                    if row[len(keys)]:
                        counts = [c or 0 for c in row[len(keys):]]
                        rows.append((site, dim, key, str(row[0] or "") if keys else "",
                                     *counts))
            conn.execute("DROP TABLE temp.day_events")
        writer = self._open()
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("DELETE FROM stats_rollup WHERE site = ? AND day = ?", (site, key))
            writer.executemany("INSERT INTO stats_rollup VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            writer.execute("INSERT OR REPLACE INTO stats_days VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (site, key, str(tz), *hours, generation,
                            datetime.now(UTC).isoformat(timespec="seconds")))
            writer.execute("COMMIT")
        finally:
            with self._lock:
                self._all.remove(writer)
            writer.close()

    # --- keys -------------------------------------------------------------------------

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        conn = self._open()
        try:
            conn.executescript(SCHEMA)
            return conn.execute(sql, params).rowcount
        finally:
            with self._lock:
                self._all.remove(conn)
            conn.close()

    def add_key(self, record: KeyRecord) -> None:
        self._write("INSERT INTO stats_keys VALUES (?, ?, ?, ?, ?, NULL)",
                    (record.id, record.name, record.key_hash, json.dumps(list(record.sites)),
                     record.created.isoformat(timespec="seconds")))

    def find_key(self, key_hash: str) -> KeyRecord | None:
        with self._reader() as conn:
            row = conn.execute("SELECT * FROM stats_keys WHERE key_hash = ?",
                               (key_hash,)).fetchone()
        return _key(row) if row else None

    def list_keys(self) -> list[KeyRecord]:
        with self._reader() as conn:
            return [_key(r) for r in conn.execute("SELECT * FROM stats_keys ORDER BY created")]

    def revoke_key(self, key_id: str) -> bool:
        return self._write("UPDATE stats_keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                           (datetime.now(UTC).isoformat(timespec="seconds"), key_id)) > 0


def mark_changed(conn: sqlite3.Connection, hours: set[tuple[str, str]]) -> None:
    """The sink's side of the rollups, in its write transaction: each (site, UTC hour
    'YYYY-MM-DDTHH') written to moves on a generation, so a rollup counted before that
    write no longer adds up and is not read."""
    conn.executemany("INSERT INTO stats_hours VALUES (?, ?, 1) ON CONFLICT (site, hour) "
                     "DO UPDATE SET n = n + 1", sorted(hours))


def _key(row: tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(row[0], row[1], row[2], tuple(json.loads(row[3])),
                     datetime.fromisoformat(row[4]),
                     datetime.fromisoformat(row[5]) if row[5] else None)


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


def _day_key(buckets: TimeBuckets | None, params: list[Any]) -> str:
    if buckets is None or all(seconds == 0 for _, seconds in buckets.offsets):
        return "substr(e.ts, 1, 10)"
    return f"substr(e.ts, 1, 10) || substr({_local_time(buckets, params)}, 1, 10)"


def _local_time(buckets: TimeBuckets | None, params: list[Any]) -> str:
    """Local wall time as 'YYYY-MM-DD HH:MM:SS' text, from the offsets' segments."""
    if buckets is None or all(s == 0 for _, s in buckets.offsets):
        return "replace(substr(ts, 1, 19), 'T', ' ')"
    cases = []
    for at, seconds in reversed(buckets.offsets[1:]):
        params.append(_iso(at))
        cases.append(f"WHEN ts >= ?{len(params)} THEN '{seconds:+d} seconds'")
    first = buckets.offsets[0][1]
    return f"datetime(ts, CASE {' '.join(cases)} ELSE '{first:+d} seconds' END)" if cases \
        else f"datetime(ts, '{first:+d} seconds')"


def _day_bucket(day: str, dim: str) -> str:
    d = date.fromisoformat(day)
    if dim == "time:week":
        return (d - timedelta(days=d.weekday())).isoformat()
    if dim == "time:month":
        return d.replace(day=1).isoformat()
    return day
