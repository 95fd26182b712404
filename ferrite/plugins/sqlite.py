"""The default sink: one SQLite file in WAL mode, one transaction per batch.

sqlite-utils owns the schema (create, add missing columns, indexes); the hot path uses the
connection's `executemany`, which is several times faster per row than `insert_all`.
Fields that enrichers add to `event.extra` become columns the first time they appear.
Rows are written with INSERT OR IGNORE on the event id, so replays never duplicate.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from typing import Any, Literal

import sqlite_utils
from pydantic import Field

from ferrite.core.config import DEFAULT_DATABASE, Config, Table
from ferrite.core.delivery import FatalSinkError
from ferrite.core.event import STORED_FIELDS, Event, iso_utc
from ferrite.core.hookspecs import hookimpl
from ferrite.core.urls import url_host
from ferrite.plugins.sqlite_accounts import SqliteAccounts
from ferrite.plugins.sqlite_startup import ensure_wal, retry_while_locked
from ferrite.plugins.sqlite_stats import SCHEMA as STATS_SCHEMA
from ferrite.plugins.sqlite_stats import SqliteStats, mark_changed

DEFAULT_PATH = DEFAULT_DATABASE
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
_IDENTIFIER = re.compile(IDENTIFIER)

EVENT_COLUMNS: dict[str, type] = dict.fromkeys(STORED_FIELDS, str)
#: Bot hits skip the enrichers, so their referrer is kept as a bare host.
BOT_COLUMNS: dict[str, type] = {
    "id": str, "ts": str, "site": str, "name": str, "path": str, "referrer": str,
    "browser": str, "os": str, "device": str, "reason": str,
}


class Settings(Table):
    path: str = Field(DEFAULT_PATH, description="Database file, created if missing.")
    table: str = Field("events", pattern=IDENTIFIER, description="Table for events.")
    keep_bots: bool = Field(False, description="Also store bot hits, in `bots_table`.")
    bots_table: str = Field("bots", pattern=IDENTIFIER, description="Table for bot hits.")
    synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        "NORMAL", description="SQLite's durability setting; NORMAL survives process crashes."
    )
    busy_timeout_ms: int = Field(30_000, ge=0, description="Wait this long for a locked file.")


def props_json(props: dict[str, Any]) -> str | None:
    return json.dumps(props, ensure_ascii=False, separators=(",", ":")) if props else None


class SqliteSink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.db: sqlite_utils.Database | None = None
        self._extra_columns: list[str] = []

    @hookimpl
    def ferrite_startup(self) -> None:
        s = self.settings
        conn = sqlite3.connect(s.path, timeout=s.busy_timeout_ms / 1000,
                               check_same_thread=False)
        self._conn = conn
        self.db = sqlite_utils.Database(conn)
        retry_while_locked(self._prepare)

    def _prepare(self) -> None:
        """WAL, tables, migrations and indexes; retried while another worker holds a lock."""
        s, db = self.settings, self.db
        assert db is not None and self._conn is not None
        ensure_wal(self._conn)
        self._conn.execute(f"PRAGMA synchronous={s.synchronous}")
        self._ensure_table(s.table, EVENT_COLUMNS, not_null={"id", "ts", "site", "name"})
        events = db.table(s.table)
        events.create_index(["site", "ts"], if_not_exists=True)
        events.create_index(["ts"], if_not_exists=True)
        self._extra_columns = [c for c in events.columns_dict if c not in EVENT_COLUMNS]
        self._conn.executescript(STATS_SCHEMA)
        if s.keep_bots:
            self._ensure_table(s.bots_table, BOT_COLUMNS, not_null={"id", "ts"})
            db.table(s.bots_table).create_index(["site", "ts"], if_not_exists=True)

    def _ensure_table(self, name: str, columns: dict[str, type], not_null: set[str]) -> None:
        """Create the table, or add the columns an older Ferrite did not have. Another
        worker may be doing the same at the same moment, so both steps tolerate that."""
        assert self.db is not None
        table = self.db.table(name)
        table.create(columns, pk="id", not_null=not_null, if_not_exists=True)
        existing = table.columns_dict
        for column, kind in columns.items():
            if column not in existing:
                try:
                    table.add_column(column, kind)
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):
                        raise

    @hookimpl
    def ferrite_shutdown(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.execute("PRAGMA optimize")
                self._conn.close()
                self._conn = None

    def _add_extra_columns(self, events: list[Event]) -> None:
        assert self.db is not None
        known = set(self._extra_columns) | set(EVENT_COLUMNS)
        for event in events:
            for key, value in event.extra.items():
                if key in known:
                    continue
                if not _IDENTIFIER.match(key):
                    raise FatalSinkError(f"an enricher set event.extra[{key!r}], which cannot "
                                         f"be a column name; use letters, digits and "
                                         f"underscores")
                try:
                    self.db.table(self.settings.table).add_column(key, type(value))
                except sqlite3.OperationalError as exc:  # another worker was first
                    if "duplicate column" not in str(exc):
                        raise
                self._extra_columns.append(key)
                known.add(key)

    @hookimpl
    def ferrite_write(self, events: list[Event]) -> int:
        """Returns how many events were new: ids already stored are ignored (replays)."""
        with self._lock:
            conn = self._connection()
            if any(e.extra for e in events):
                self._add_extra_columns(events)
            extras = self._extra_columns
            columns = [*EVENT_COLUMNS, *extras]
            sql = (f"INSERT OR IGNORE INTO [{self.settings.table}] "
                   f"({', '.join(f'[{c}]' for c in columns)}) "
                   f"VALUES ({', '.join('?' * len(columns))})")
            # the stored fields with props (last) as JSON text, then the enrichers' columns
            rows = [(*e.stored()[:-1], props_json(e.props), *[e.extra.get(c) for c in extras])
                    for e in events]
            with conn:
                new = conn.executemany(sql, rows).rowcount
                if new:  # rollups counted before this write must not be read any more
                    mark_changed(conn, {(row[2], row[1][:13]) for row in rows})
                return new

    @hookimpl
    def ferrite_stats_store(self) -> SqliteStats:
        """Queries open their own WAL reader connections; they never wait for this lock."""
        s = self.settings
        return SqliteStats(s.path, s.table, s.busy_timeout_ms)

    @hookimpl
    def ferrite_account_store(self) -> SqliteAccounts:
        """Users, sessions and shared links live in the events' file, in tables of their
        own, so one backup holds everything."""
        return SqliteAccounts(self.settings.path, self.settings.busy_timeout_ms)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the sqlite sink is not open: ferrite_startup has not run")
        return self._conn


class SqliteSinkKeepingBots(SqliteSink):
    """The sink with `keep_bots = true`: only then does it take bot batches at all."""

    @hookimpl
    def ferrite_write_bots(self, events: list[Event]) -> None:
        with self._lock:
            conn = self._connection()
            sql = (f"INSERT OR IGNORE INTO [{self.settings.bots_table}] "
                   f"({', '.join(BOT_COLUMNS)}) VALUES ({', '.join('?' * len(BOT_COLUMNS))})")
            rows = [(e.id, iso_utc(e.ts), e.site, e.name, e.path, url_host(e.referrer),
                     e.browser, e.os, e.device, e.bot) for e in events]
            with conn:
                conn.executemany(sql, rows)


@hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@hookimpl
def ferrite_plugin(settings: Settings, config: Config) -> SqliteSink:
    return SqliteSinkKeepingBots(settings) if settings.keep_bots else SqliteSink(settings)
