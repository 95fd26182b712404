"""`postgres`: events into PostgreSQL, the store several nodes share.

Batches are copied (COPY, the fastest bulk path) straight into the table; when some of a
batch is stored already (a replay, a retry after a lost acknowledgement, a log ingested
twice), that COPY fails on the key and the batch goes through a temporary table and
INSERT ... ON CONFLICT DO NOTHING instead, which skips what is there and counts what is
new. The events
table is partitioned by UTC day (a partitioned table's unique key must hold the time
column: the key is (id, ts), and an event's id fixes its time); partitions are made ahead,
and on demand for older days (`ferrite ingest` of old logs), and dropped after `keep_days`.
Schema changes run under one advisory lock, so nodes starting at once make one schema.

The edge is trio: psycopg's synchronous API runs in the pipeline's worker threads.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import Field, field_validator

from ferrite.core.config import Config, Table
from ferrite.core.delivery import FatalSinkError, RetryableSinkError
from ferrite.core.event import STORED_FIELDS, Event
from ferrite.core.hookspecs import hookimpl
from ferrite.plugins.postgres_accounts import PostgresAccounts
from ferrite.plugins.postgres_schema import lock, migrate, statements
from ferrite.plugins.postgres_stats import PostgresStats, create_schema, mark_changed
from ferrite.plugins.sql_stats import hour_labels

EPOCH = date(1970, 1, 1)
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,40}$"
#: How long a health answer is kept (ferrite_health).
HEALTH_SECONDS = 2.0
_IDENTIFIER = re.compile(IDENTIFIER)
COLUMN_TYPES = {"ts": "timestamptz NOT NULL", "props": "jsonb", "id": "text NOT NULL",
                "site": "text NOT NULL", "name": "text NOT NULL"}


def masked(url: str) -> str:
    """The URL with its password replaced, for banners, logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Settings(Table):
    url: str = Field(description="postgresql://USER:PASSWORD@HOST:PORT/DATABASE; use "
                     "\"${DATABASE_URL}\" to keep the password out of the file.")
    table: str = Field("events", pattern=IDENTIFIER, description="Table for events.")
    pool_size: int = Field(4, ge=1, le=100, description="Connections per node (writes and "
                           "queries).")
    partitions_ahead_days: int = Field(7, ge=1, le=366, description="Daily partitions made "
                                       "ahead of today.")
    keep_days: int | None = Field(None, ge=2, le=100_000, description="Drop partitions older "
                                  "than this many days; unset keeps everything.")
    connect_timeout_seconds: float = Field(10, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"url must start with postgresql:// (got {masked(value)!r})")
        return value


def _hour(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H")


class PostgresSink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: ConnectionPool | None = None
        self._partitions: set[date] = set()
        self._extra: list[str] = []
        self._lock = threading.Lock()
        self._maintained: date | None = None
        self._health: tuple[float, str | None] = (-HEALTH_SECONDS, None)

    # --- lifecycle ------------------------------------------------------------------------

    @hookimpl
    def ferrite_startup(self) -> None:
        s = self.settings
        # connections are checked before use: after a server restart the idle ones are
        # dead, and a batch should not spend its retries finding that out
        self.pool = ConnectionPool(s.url, min_size=1, max_size=s.pool_size, open=False,
                                   kwargs={"connect_timeout": int(s.connect_timeout_seconds),
                                           "autocommit": False},
                                   name="ferrite", check=ConnectionPool.check_connection)
        try:
            self.pool.open(wait=True, timeout=s.connect_timeout_seconds)
        except Exception as exc:
            self.pool.close()
            self.pool = None
            raise RetryableSinkError(f"cannot connect to PostgreSQL at {masked(s.url)}: "
                                     f"{type(exc).__name__}") from None
        self._migrate()

    @hookimpl
    def ferrite_shutdown(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    # --- schema -----------------------------------------------------------------------------

    def _table(self, suffix: str = "") -> sql.Identifier:
        return sql.Identifier(self.settings.table + suffix)

    def _migrate(self) -> None:
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(COLUMN_TYPES.get(c, "text")))
            for c in STORED_FIELDS)
        steps = [statements(  # 1: the partitioned table and its index
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY (id, ts)) "
                    "PARTITION BY RANGE (ts)").format(self._table(), columns),
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (site, ts)").format(
                self._table("_site_ts"), self._table()))]
        with self._conn() as conn, conn.transaction():
            migrate(conn, f"events:{self.settings.table}", steps)
            create_schema(conn)
            self._extra = self._extra_columns(conn)
        self._maintain(datetime.now(UTC).date())

    def _extra_columns(self, conn: psycopg.Connection) -> list[str]:
        rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE "
                            "table_name = %s ORDER BY ordinal_position",
                            (self.settings.table,)).fetchall()
        return [r[0] for r in rows if r[0] not in STORED_FIELDS]

    def _maintain(self, today: date) -> None:
        """Partitions from yesterday to `partitions_ahead_days` ahead; old ones dropped."""
        days = [today + timedelta(days=n) for n in range(-1, self.settings.partitions_ahead_days)]
        self._ensure_partitions(days)
        keep = self.settings.keep_days
        if keep is not None:
            self._drop_before(today - timedelta(days=keep))
        self._maintained = today

    def _partition_name(self, day: date) -> str:
        return f"{self.settings.table}_{day:%Y%m%d}"

    def _ensure_partitions(self, days: list[date]) -> None:
        missing = sorted(set(days) - self._partitions)
        if not missing:
            return
        with self._conn() as conn, conn.transaction():
            lock(conn)
            existing = {r[0] for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s AND c.relkind = 'r'",
                (self.settings.table,))}
            for day in missing:
                name = self._partition_name(day)
                if name not in existing:
                    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                    conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM "
                                         "({}) TO ({})").format(
                        sql.Identifier(name), self._table(), sql.Literal(start),
                        sql.Literal(start + timedelta(days=1))))
        self._partitions.update(missing)

    def _drop_before(self, first_kept: date) -> int:
        dropped = 0
        with self._conn() as conn, conn.transaction():
            lock(conn)
            names = [r[0] for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s AND c.relkind = 'r'",
                (self.settings.table,))]
            for name in names:
                match = re.fullmatch(re.escape(self.settings.table) + r"_(\d{8})", name)
                if match and datetime.strptime(match[1], "%Y%m%d").date() < first_kept:
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                    self._partitions.discard(datetime.strptime(match[1], "%Y%m%d").date())
                    dropped += 1
        return dropped

    def _add_extra_columns(self, events: list[Event]) -> None:
        wanted = {k for e in events for k in e.extra} - set(self._extra) - set(STORED_FIELDS)
        if not wanted:
            return
        for key in wanted:
            if not _IDENTIFIER.match(key):
                raise FatalSinkError(f"an enricher set event.extra[{key!r}], which cannot be "
                                     f"a column name; use letters, digits and underscores")
        with self._conn() as conn, conn.transaction():
            lock(conn)
            for key in sorted(wanted):
                conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} text").format(
                    self._table(), sql.Identifier(key)))
            self._extra = self._extra_columns(conn)

    # --- writing ----------------------------------------------------------------------------

    def _conn(self) -> Any:
        if self.pool is None:
            raise RuntimeError("the postgres sink is not open: ferrite_startup has not run")
        return self.pool.connection(timeout=self.settings.connect_timeout_seconds)

    @hookimpl
    def ferrite_write(self, events: list[Event]) -> int:
        """Returns how many events were new: ids already stored are skipped."""
        try:
            return self._write(events)
        except (PoolTimeout, psycopg.OperationalError, TimeoutError) as exc:
            # down, restarting, or a connection cut: retried, then spooled by the pipeline
            raise RetryableSinkError(f"PostgreSQL at {masked(self.settings.url)} is "
                                     f"unavailable: {type(exc).__name__}") from None

    def _write(self, events: list[Event]) -> int:
        with self._lock:
            today = datetime.now(UTC).date()
            if self._maintained != today:
                self._maintain(today)
            hours = {(e.site, int(e.ts.timestamp()) // 3600) for e in events}
            self._ensure_partitions([EPOCH + timedelta(days=d)
                                     for d in {h // 24 for _, h in hours}])
            if any(e.extra for e in events):
                self._add_extra_columns(events)
            extras = list(self._extra)
            columns = [*STORED_FIELDS, *extras]
            ident = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            rows = [self._row(e, extras) for e in events]
            with self._conn() as conn:
                try:
                    # the common case, new events: straight in, in one transaction (no
                    # savepoint, no second copy of the rows)
                    with conn.transaction(), conn.cursor() as cur:
                        self._copy(cur, sql.SQL("COPY {} ({}) FROM STDIN").format(
                            self._table(), ident), rows)
                        # rollups counted before this write must not be read any more
                        mark_changed(conn, hour_labels(hours))
                    return len(rows)
                except psycopg.errors.UniqueViolation:
                    pass  # some are stored already (a replay, a retry): skip those
                return self._insert_new(conn, ident, rows)

    def _insert_new(self, conn: psycopg.Connection, ident: sql.Composable,
                    rows: list[tuple[Any, ...]]) -> int:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS ferrite_batch "
                                 "(LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
                         .format(self._table()))
            with conn.cursor() as cur:
                self._copy(cur, sql.SQL("COPY ferrite_batch ({}) FROM STDIN").format(
                    ident), rows)
                # DO NOTHING also skips a duplicate within the batch itself; RETURNING
                # gives the rows really inserted, whose hours alone move on
                cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM ferrite_batch "
                                    "ON CONFLICT DO NOTHING RETURNING site, ts").format(
                    self._table(), ident, ident))
                inserted = cur.fetchall()
            if inserted:
                mark_changed(conn, {(site, _hour(ts)) for site, ts in inserted})
            return len(inserted)

    @staticmethod
    def _row(e: Event, extras: list[str]) -> tuple[Any, ...]:
        # the full microseconds: the stats count in whole milliseconds (floor), as SQLite
        # stores them, so both split visits the same
        return (e.id, e.ts, e.site, e.name, e.path, e.referrer, e.source, e.utm_source,
                e.utm_medium, e.utm_campaign, e.session, e.browser, e.os, e.device,
                json.dumps(e.props, ensure_ascii=False) if e.props else None,
                *[None if e.extra.get(c) is None else str(e.extra[c]) for c in extras])

    @staticmethod
    def _copy(cur: psycopg.Cursor, statement: sql.Composed, rows: list[tuple[Any, ...]]
              ) -> None:
        with cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)


    @hookimpl
    def ferrite_health(self) -> str | None:
        """A ping at most every HEALTH_SECONDS (load balancers poll /readyz often)."""
        now = time.monotonic()
        if now - self._health[0] < HEALTH_SECONDS:
            return self._health[1]
        problem = None
        if self.pool is None:
            problem = "the postgres sink is not open"
        else:
            try:
                with self.pool.connection(timeout=1) as conn:
                    conn.execute("SELECT 1")
                    conn.rollback()
            except (PoolTimeout, psycopg.Error) as exc:
                problem = (f"PostgreSQL at {masked(self.settings.url)} cannot be reached: "
                           f"{type(exc).__name__}")
        self._health = (time.monotonic(), problem)
        return problem

    @hookimpl
    def ferrite_stats_store(self) -> PostgresStats:
        """Queries use their own small pool, so a slow report never holds a writer's
        connection."""
        s = self.settings
        return PostgresStats(s.url, s.table, pool_size=max(2, s.pool_size // 2),
                             connect_timeout=s.connect_timeout_seconds, shown_url=masked(s.url))

    @hookimpl
    def ferrite_account_store(self) -> PostgresAccounts:
        return PostgresAccounts(self.settings.url, masked(self.settings.url),
                                self.settings.connect_timeout_seconds)


@hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@hookimpl
def ferrite_plugin(settings: Settings, config: Config) -> PostgresSink:
    return PostgresSink(settings)
