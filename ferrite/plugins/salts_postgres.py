"""Daily session salts in PostgreSQL: one salt per UTC day for every node on every machine.

The same contract as `ferrite.plugins.salts.SaltStore`. Creation is race-free (insert if
absent, then read what is there), tomorrow's salt is made ahead so no node meets an empty
day at midnight, and each node re-reads the day's salt when its own clock passes midnight
(nodes whose clocks differ by seconds agree, since the salt is chosen by the day, not by
who rotated). Salts older than yesterday are deleted and the table vacuumed, so their
bytes do not linger in dead tuples (docs/deploy.md says what WAL and backups keep).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import date

import psycopg

from ferrite.core.delivery import RetryableSinkError
from ferrite.plugins.postgres import masked
from ferrite.plugins.postgres_schema import migrate, statements
from ferrite.plugins.salts import ONE_DAY, SALT_BYTES, SaltStore, utc_today

#: The salts' schema changes, in order (postgres_schema.migrate).
STEPS = [statements("CREATE TABLE IF NOT EXISTS ferrite_salts "
                    "(day date PRIMARY KEY, salt bytea NOT NULL)")]
#: Seconds between attempts to reach the database for a rotation after a failed one.
RETRY_SECONDS = 5.0


class PostgresSaltStore(SaltStore):
    ahead = ONE_DAY

    def __init__(self, url: str, clock: Callable[[], date] = utc_today) -> None:
        super().__init__(url, clock)
        self.url = url
        self._conn: psycopg.Connection | None = None  # type: ignore[assignment]
        self._shared: set[date] = set()  # days whose cached salt came from the table
        self._next_try = 0.0

    def open(self) -> None:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise RetryableSinkError(f"cannot connect to PostgreSQL at {masked(self.url)} "
                                     f"for the session salts: {type(exc).__name__}") from None
        try:
            with conn.transaction():
                migrate(conn, "salts", STEPS)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self.rotate()

    def _try_rotate(self, today: date) -> None:
        if time.monotonic() < self._next_try:
            return
        try:
            self._rotate_locked(today)
        except psycopg.OperationalError:
            # the database is away: go on with the salts read ahead, retry soon
            self._next_try = time.monotonic() + RETRY_SECONDS
            self._drop_connection()

    def rotate(self) -> None:
        """Raises RetryableSinkError while the database cannot be reached."""
        with self._lock:
            try:
                self._rotate_locked(self.clock())
            except psycopg.OperationalError as exc:
                self._drop_connection()
                raise RetryableSinkError(f"PostgreSQL at {masked(self.url)} is unavailable "
                                         f"for the session salts: {type(exc).__name__}") from None

    def _read(self, day: date) -> bytes:
        try:
            return self._stored(day)
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise RetryableSinkError(f"PostgreSQL at {masked(self.url)} is unavailable "
                                     f"for the session salts: {type(exc).__name__}") from None

    def stored_days(self) -> list[date]:
        with self._lock:
            rows = self._db().execute("SELECT day FROM ferrite_salts ORDER BY day").fetchall()
        return [r[0] for r in rows]  # dates already (SQLite's are text)

    def _rotate_locked(self, today: date) -> None:
        yesterday = today - ONE_DAY
        # a day's row never changes once made (insert-if-absent), so the salts read from
        # it stay good; the ones made up locally for days outside the window are dropped
        self._salts = {d: s for d, s in self._salts.items()
                       if yesterday <= d <= today + ONE_DAY and d in self._shared}
        conn = self._db()
        deleted = conn.execute("DELETE FROM ferrite_salts WHERE day < %s",
                               (yesterday,)).rowcount
        if deleted:
            conn.execute("VACUUM ferrite_salts")  # no dead tuple keeps an old salt's bytes
        for day in (today, today + ONE_DAY):  # tomorrow's made ahead: midnight finds it
            self._salts[day] = self._stored(day)  # and so does a node cut off from it
        row = conn.execute("SELECT salt FROM ferrite_salts WHERE day = %s",
                           (yesterday,)).fetchone()
        if row is not None:  # late hits of yesterday keep their sessions in an outage too
            self._salts[yesterday] = bytes(row[0])
            self._shared.add(yesterday)
        self._today = today

    def _stored(self, day: date) -> bytes:
        self._shared.add(day)
        conn = self._db()
        conn.execute("INSERT INTO ferrite_salts (day, salt) VALUES (%s, %s) "
                     "ON CONFLICT (day) DO NOTHING", (day, os.urandom(SALT_BYTES)))
        (salt,) = conn.execute("SELECT salt FROM ferrite_salts WHERE day = %s",
                               (day,)).fetchone()
        return bytes(salt)

    def _db(self) -> psycopg.Connection:  # type: ignore[override]
        if self._conn is None:
            raise RuntimeError("the salt store is not open: ferrite_startup has not run")
        if self._conn.closed or self._conn.broken:  # the server restarted: connect again
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
