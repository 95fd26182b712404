"""The postgres sink's answers to stats queries: the PostgreSQL dialect of `SqlStats` (the
query model and the rollups are in sql_stats.py, so on the same events both stores give the
same answers).

Every query runs in one REPEATABLE READ transaction (one snapshot, like SQLite's WAL
read), with `statement_timeout` set from the request's deadline. Text is compared and
sorted byte-wise (COLLATE "C"), as SQLite does. Patterns use PostgreSQL's regular
expressions (the engine has checked them with RE2 first; PostgreSQL's engine is not
backtracking-free, so the statement timeout is what bounds a hostile pattern).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from ferrite.core.event import STORED_FIELDS
from ferrite.plugins.postgres_pool import LazyPool
from ferrite.plugins.postgres_schema import migrate, statements
from ferrite.plugins.referrer_sources import NAMES
from ferrite.plugins.sql_stats import SqlStats, key_record
from ferrite.stats.model import QueryError
from ferrite.stats.store import KeyRecord, QueryTimeout, TimeBuckets

LOG = logging.getLogger("ferrite")
#: pg_try_advisory_lock key of rollup builds ("rollups").
BUILD_LOCK = 0x726F6C6C757073
#: The read side's tables; made by whichever of the sink and the store starts first,
#: under the sink's schema lock.
SCHEMA = """
CREATE TABLE IF NOT EXISTS stats_rollup (
    site text NOT NULL, dim text NOT NULL, day text NOT NULL, value text NOT NULL,
    visitors bigint NOT NULL, visits bigint NOT NULL, pageviews bigint NOT NULL,
    events bigint NOT NULL, bounces bigint NOT NULL, duration double precision NOT NULL,
    PRIMARY KEY (site, dim, day, value));
CREATE TABLE IF NOT EXISTS stats_days (
    site text NOT NULL, day text NOT NULL, zone text NOT NULL, hour_from text NOT NULL,
    hour_to text NOT NULL, gen bigint NOT NULL, built text NOT NULL,
    PRIMARY KEY (site, day));
CREATE TABLE IF NOT EXISTS stats_hours (
    site text NOT NULL, hour text NOT NULL, n bigint NOT NULL, PRIMARY KEY (site, hour));
CREATE TABLE IF NOT EXISTS stats_keys (
    id text PRIMARY KEY, name text NOT NULL, key_hash text NOT NULL UNIQUE,
    sites text NOT NULL, created text NOT NULL, revoked text);
"""

PAGE = ("CASE WHEN strpos(e.path, '?') = 0 THEN e.path ELSE substr(e.path, 1, "
        "strpos(e.path, '?') - 1) || CASE WHEN strpos(e.path, '#') > 0 THEN "
        "substr(e.path, strpos(e.path, '#')) ELSE '' END END")
# what SQLite's nested CASEs compute (scheme, then "www.", cut case-insensitively), as
# one regular expression each (a breakdown by source over 200,000 events: 2.9 s -> 1.7 s)
REFERRER = r"regexp_replace(coalesce(e.referrer, ''), '^(https?://)?(www\.)?', '', 'i')"
_HOST = r"substring(coalesce(e.referrer, '') from '(?i)^(?:https?://)?(?:www\.)?([^/]*)')"
SOURCE = (f"CASE WHEN coalesce(e.utm_source, '') <> '' THEN e.utm_source "
          f"WHEN coalesce(e.source, '') IN ('', 'direct', 'internal') THEN '' "
          f"ELSE ferrite_source({_HOST}) END")


def source_function() -> sql.Composed:
    """referrer_sources.source_name in SQL: the known hosts' names (a jsonb lookup, not
    a CASE of a hundred comparisons per event), then google.* by rule."""
    names = json.dumps(dict(sorted(NAMES.items())), ensure_ascii=False)
    return sql.SQL(
        "CREATE OR REPLACE FUNCTION ferrite_source(host text) RETURNS text LANGUAGE sql "
        "IMMUTABLE PARALLEL SAFE AS $fn$ SELECT coalesce({}::jsonb ->> host, CASE WHEN "
        "position('.google.' in '.' || host) > 0 THEN 'Google' ELSE host END) $fn$"
    ).format(sql.Literal(names))


#: The read side's schema changes, in order (postgres_schema.migrate).
STEPS = [statements(SCHEMA)]


def create_schema(conn: psycopg.Connection) -> None:
    """The read side's tables, then its function (every start: the names follow the
    code). Call inside a transaction."""
    migrate(conn, "stats", STEPS)
    conn.execute(source_function())


def mark_changed(conn: psycopg.Connection, hours: set[tuple[str, str]]) -> None:
    """The sink's side of the rollups, in its write transaction, for the rows it really
    inserted: each (site, UTC hour) moves on a generation (in sorted order, so two nodes
    never deadlock on the same rows)."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO stats_hours (site, hour, n) VALUES (%s, %s, 1) "
                        "ON CONFLICT (site, hour) DO UPDATE SET n = stats_hours.n + 1",
                        sorted(hours))


class _Reader:
    """A connection in a read transaction, taking the shared code's numbered parameters."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, statement: str, params: list[Any] | tuple[Any, ...] = ()
                ) -> psycopg.Cursor[Any]:
        return self.conn.execute(statement,  # type: ignore[call-overload]
                                 {f"p{i}": v for i, v in enumerate(params, 1)})


class PostgresStats(SqlStats):
    name = "postgres"
    page_sql = PAGE
    referrer_sql = REFERRER
    source_sql = SOURCE
    # whole milliseconds, cut as SQLite stores them
    ms_sql = "floor(extract(epoch FROM e.ts) * 1000)::bigint"
    temp_schema = "pg_temp"
    collate = ' COLLATE "C"'
    # only objects have keys (a stranger's props could be any JSON)
    prop_keys_from = ("jsonb_object_keys(CASE WHEN jsonb_typeof(e.props) = 'object' "
                      "THEN e.props END) AS k")
    prop_key = "k"

    def __init__(self, url: str, table: str = "events", pool_size: int = 4,
                 connect_timeout: float = 10, shown_url: str = "") -> None:
        self.url = url
        self.table = table
        self.pool = LazyPool(url, shown_url or "PostgreSQL", pool_size, connect_timeout,
                             "ferrite-stats")
        self._extra: list[str] | None = None
        self._ready = False

    # --- connections ------------------------------------------------------------------

    @contextmanager
    def _reader(self, deadline: float | None = None) -> Iterator[_Reader]:
        self._prepare()
        with self.pool.connection() as conn:
            try:
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise QueryTimeout("the query ran past its time limit")
                        conn.execute(f"SET LOCAL statement_timeout = {max(1, int(left * 1000))}")
                    yield _Reader(conn)
            except psycopg.errors.QueryCanceled:
                raise QueryTimeout("the query ran past its time limit") from None
            except psycopg.errors.InvalidRegularExpression as exc:
                raise QueryError("filters", f"PostgreSQL cannot use this pattern: "
                                 f"{exc.diag.message_primary}") from None

    def _prepare(self) -> None:
        if self._ready:
            return
        with self.pool.connection() as conn:
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                                  (self.table,)).fetchone()
            stats = conn.execute("SELECT to_regclass('stats_keys') IS NOT NULL").fetchone()
            if not (stats and stats[0]):
                with conn.transaction():
                    create_schema(conn)
            conn.commit()
            if exists and exists[0]:
                self._extra = self._extra_columns(conn)
                self._ready = True
                (folds,) = conn.execute("SELECT lower('ÄΣ') = 'äσ'").fetchone()  # type: ignore[misc]
                conn.rollback()
                if not folds:
                    LOG.warning("this database's LC_CTYPE lowers ASCII letters only, so "
                                "case-insensitive filters miss other letters; create it "
                                "with a UTF-8 ctype (C.UTF-8, en_US.UTF-8)")

    def _extra_columns(self, conn: psycopg.Connection) -> list[str]:
        rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                            "table_name = %s AND table_schema = current_schema() "
                            "ORDER BY ordinal_position", (self.table,)).fetchall()
        return [r[0] for r in rows if r[0] not in STORED_FIELDS]

    def _events_exist(self) -> bool:
        self._prepare()
        return self._ready

    def close(self) -> None:
        self.pool.close()
        self._ready = False

    # --- metadata ---------------------------------------------------------------------

    def dimensions(self) -> list[str]:
        self._prepare()
        if self._ready:  # a sink may have added a column since
            with self.pool.connection() as conn:
                self._extra = self._extra_columns(conn)
        return list(self._extra or [])

    def _first_ts(self, site: str) -> datetime | None:
        with self._reader() as conn:
            (ts,) = conn.execute(f"SELECT min(ts) FROM {self.quote(self.table)} WHERE "
                                 f"site = %(p1)s", [site]).fetchone()
        return ts

    def build(self, **kwargs: Any) -> int:
        """One node builds at a time (every node runs a builder): the others skip the
        round rather than count the same days twice and collide on their rows."""
        if not self._events_exist():
            return 0
        with self.pool.connection() as conn:
            conn.autocommit = True  # a session lock, held while this build runs
            try:
                (mine,) = conn.execute("SELECT pg_try_advisory_lock(%s)",
                                       (BUILD_LOCK,)).fetchone()  # type: ignore[misc]
                if not mine:
                    return 0
                try:
                    return super().build(**kwargs)
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (BUILD_LOCK,))
            finally:
                conn.autocommit = False

    # --- the PostgreSQL dialect -------------------------------------------------------

    def ph(self, n: int) -> str:
        return f"%(p{n})s"

    def time_param(self, ts: datetime) -> datetime:
        return ts.astimezone(UTC)

    def utc_day_sql(self) -> str:
        return "(e.ts AT TIME ZONE 'UTC')::date"

    def local_day_key_sql(self, local: str) -> str:
        # local days differ from UTC days by at most one: one integer per pair
        utc = "(e.ts AT TIME ZONE 'UTC')::date"
        return f"(({utc} - DATE '1970-01-01') * 4 + ({local}::date - {utc}) + 1)"

    def local_time_sql(self, buckets: TimeBuckets | None, params: list[Any]) -> str:
        if buckets is None or all(s == 0 for _, s in buckets.offsets):
            return "(ts AT TIME ZONE 'UTC')"
        shift = self.offset_sql(buckets, params, str)
        return f"((ts AT TIME ZONE 'UTC') + ({shift}) * interval '1 second')"

    def time_label_sql(self, dim: str, local: str) -> str:
        return {"time:hour": f"to_char(date_trunc('hour', {local}), 'YYYY-MM-DD HH24:MI:SS')",
                "time:day": f"to_char({local}, 'YYYY-MM-DD')",
                "time:week": f"to_char(date_trunc('week', {local}), 'YYYY-MM-DD')",
                "time:month": f"to_char(date_trunc('month', {local}), 'YYYY-MM-DD')"}[dim]

    def prop_sql(self, key: str, params: list[Any]) -> str:
        params.append(key)
        return f"coalesce(props ->> {self.ph(len(params))}, '')"

    def contains_sql(self, target: str, placeholder: str) -> str:
        return f"strpos({target}, {placeholder}) > 0"

    def matches_sql(self, col: str, pattern: str, case_sensitive: bool,
                    params: list[Any]) -> str:
        params.append(pattern)
        return f"({col} {'~' if case_sensitive else '~*'} {self.ph(len(params))})"

    def temp_table_sql(self, name: str, select: str) -> list[str]:
        return [f"CREATE TEMP TABLE {name} ON COMMIT DROP AS {select}"]

    def _store_rollup(self, site: str, day: str, zone: str, hours: tuple[str, str],
                      generation: int, rows: list[tuple[Any, ...]]) -> None:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("DELETE FROM stats_rollup WHERE site = %s AND day = %s", (site, day))
            with cur.copy("COPY stats_rollup FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute("INSERT INTO stats_days VALUES (%s, %s, %s, %s, %s, %s, %s) "
                        "ON CONFLICT (site, day) DO UPDATE SET zone = excluded.zone, "
                        "hour_from = excluded.hour_from, hour_to = excluded.hour_to, "
                        "gen = excluded.gen, built = excluded.built",
                        (site, day, zone, *hours, generation,
                         datetime.now(UTC).isoformat(timespec="seconds")))

    # --- keys -------------------------------------------------------------------------

    def _key_write(self, statement: str, params: tuple[Any, ...]) -> int:
        self._prepare()
        with self.pool.connection() as conn, conn.transaction():
            return conn.execute(statement, params).rowcount

    def add_key(self, record: KeyRecord) -> None:
        self._key_write("INSERT INTO stats_keys VALUES (%s, %s, %s, %s, %s, NULL)",
                        (record.id, record.name, record.key_hash,
                         json.dumps(list(record.sites)),
                         record.created.isoformat(timespec="seconds")))

    def find_key(self, key_hash: str) -> KeyRecord | None:
        self._prepare()
        with self.pool.connection() as conn:
            row = conn.execute("SELECT * FROM stats_keys WHERE key_hash = %s",
                               (key_hash,)).fetchone()
            conn.rollback()
        return key_record(row) if row else None

    def list_keys(self) -> list[KeyRecord]:
        self._prepare()
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT * FROM stats_keys ORDER BY created, id").fetchall()
            conn.rollback()
        return [key_record(r) for r in rows]

    def revoke_key(self, key_id: str) -> bool:
        return self._key_write("UPDATE stats_keys SET revoked = %s WHERE id = %s AND "
                               "revoked IS NULL",
                               (datetime.now(UTC).isoformat(timespec="seconds"), key_id)) > 0


__all__ = ["SCHEMA", "PostgresStats", "create_schema", "mark_changed"]
