"""The SQLite sink's answers to stats queries: the SQLite dialect of `SqlStats` (see
sql_stats.py for the query model and the rollups). Queries run on their own WAL
connections and never take the write lock; RE2 and the referrer names are Python
functions registered on each connection.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import re2

from ferrite.core.errors import FerriteError
from ferrite.core.event import STORED_FIELDS
from ferrite.plugins.referrer_sources import source_name
from ferrite.plugins.sql_stats import SqlStats, _iso, key_record, whole_days
from ferrite.stats.store import KeyRecord, QueryTimeout, TimeBuckets

__all__ = ["SCHEMA", "SqliteStats", "mark_changed", "whole_days"]

#: julianday() of 1970-01-01 in milliseconds. SQLite keeps a julian day as whole
#: milliseconds, so julianday(ts) * 86400000 rounds back to it exactly (8x cheaper than
#: strftime('%s')).
UNIX_EPOCH_MS = 210_866_760_000_000
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


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _q(name: str) -> str:
    return "[" + name.replace("]", "]]") + "]"


class SqliteStats(SqlStats):
    name = "sqlite"

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
        conn.create_function("ferrite_lower", 1, _lower, deterministic=True)
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

    def _first_ts(self, site: str) -> datetime | None:
        with self._reader() as conn:
            (ts,) = conn.execute(f"SELECT min(ts) FROM {_q(self.table)} WHERE site = ?",
                                 (site,)).fetchone()
        return datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None

    def _events_exist(self) -> bool:
        self._prepare()
        if not self._has_events:  # a sink may have created it since
            self._ready = False
            self._prepare()
        return self._has_events

    # --- the SQLite dialect -------------------------------------------------------------

    page_sql = PAGE
    referrer_sql = REFERRER
    prop_keys_from = "json_each(e.props) AS j"
    prop_key = "j.key"
    source_sql = SOURCE
    ms_sql = f"CAST(round(julianday(e.ts) * 86400000.0) AS INTEGER) - {UNIX_EPOCH_MS}"

    def ph(self, n: int) -> str:
        return f"?{n}"

    def quote(self, name: str) -> str:
        return _q(name)

    def time_param(self, ts: datetime) -> str:
        return _iso(ts)

    def utc_day_sql(self) -> str:
        return "substr(e.ts, 1, 10)"

    def local_day_key_sql(self, local: str) -> str:
        return f"substr(e.ts, 1, 10) || substr({local}, 1, 10)"

    def local_time_sql(self, buckets: TimeBuckets | None, params: list[Any]) -> str:
        """'YYYY-MM-DD HH:MM:SS' text."""
        if buckets is None or all(s == 0 for _, s in buckets.offsets):
            return "replace(substr(ts, 1, 19), 'T', ' ')"
        return f"datetime(ts, {self.offset_sql(buckets, params, _seconds)})"

    def time_label_sql(self, dim: str, local: str) -> str:
        return {"time:hour": f"substr({local}, 1, 13) || ':00:00'",
                "time:day": f"substr({local}, 1, 10)",
                "time:week": f"date({local}, 'weekday 0', '-6 days')",
                "time:month": f"substr({local}, 1, 7) || '-01'"}[dim]

    def prop_sql(self, key: str, params: list[Any]) -> str:
        if '"' in key or "\\" in key:
            # SQLite's JSON paths cannot quote these characters: look the key up
            params.append(key)
            return f"coalesce((SELECT value FROM json_each(props) WHERE key = ?{len(params)}), '')"
        params.append("$." + json.dumps(key))
        return f"coalesce(json_extract(props, ?{len(params)}), '')"

    def contains_sql(self, target: str, placeholder: str) -> str:
        return f"instr({target}, {placeholder}) > 0"

    def lower_sql(self, expr: str) -> str:
        return f"ferrite_lower({expr})"  # SQLite's lower() leaves non-ASCII letters as they are

    def matches_sql(self, col: str, pattern: str, case_sensitive: bool,
                    params: list[Any]) -> str:
        params.append(pattern if case_sensitive else "(?i)" + pattern)
        return f"ferrite_re(?{len(params)}, {col})"

    temp_schema = "temp"

    def temp_table_sql(self, name: str, select: str) -> list[str]:
        return [f"DROP TABLE IF EXISTS temp.{name}", f"CREATE TEMP TABLE {name} AS {select}"]

    def _store_rollup(self, site: str, day: str, zone: str, hours: tuple[str, str],
                      generation: int, rows: list[tuple[Any, ...]]) -> None:
        writer = self._open()
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("DELETE FROM stats_rollup WHERE site = ? AND day = ?", (site, day))
            writer.executemany("INSERT INTO stats_rollup VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            writer.execute("INSERT OR REPLACE INTO stats_days VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (site, day, zone, *hours, generation,
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
        return key_record(row) if row else None

    def list_keys(self) -> list[KeyRecord]:
        with self._reader() as conn:
            rows = conn.execute("SELECT * FROM stats_keys ORDER BY created").fetchall()
        return [key_record(r) for r in rows]

    def revoke_key(self, key_id: str) -> bool:
        return self._write("UPDATE stats_keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                           (datetime.now(UTC).isoformat(timespec="seconds"), key_id)) > 0


def _seconds(offset: int) -> str:
    return f"'{offset:+d} seconds'"


def mark_changed(conn: sqlite3.Connection, hours: set[tuple[str, str]]) -> None:
    """The sink's side of the rollups, in its write transaction: each (site, UTC hour
    'YYYY-MM-DDTHH') written to moves on a generation, so a rollup counted before that
    write no longer adds up and is not read."""
    conn.executemany("INSERT INTO stats_hours VALUES (?, ?, 1) ON CONFLICT (site, hour) "
                     "DO UPDATE SET n = n + 1", sorted(hours))
