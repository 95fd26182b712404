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
import threading
from collections.abc import Callable
from datetime import date

import psycopg

from ferrite.core.delivery import RetryableSinkError
from ferrite.plugins.postgres import masked
from ferrite.plugins.salts import ONE_DAY, SALT_BYTES, utc_today

SCHEMA_LOCK = 0x73616C7473  # "salts"


class PostgresSaltStore:
    def __init__(self, url: str, clock: Callable[[], date] = utc_today) -> None:
        self.url = url
        self.clock = clock
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._salts: dict[date, bytes] = {}
        self._today: date | None = None

    def open(self) -> None:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise RetryableSinkError(f"cannot connect to PostgreSQL at {masked(self.url)} "
                                     f"for the session salts: {type(exc).__name__}") from None
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS ferrite_salts "
                         "(day date PRIMARY KEY, salt bytea NOT NULL)")
        self._conn = conn
        self.rotate()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._salts.clear()

    def salt_for(self, day: date) -> bytes:
        salt = self._salts.get(day)
        if salt is not None and self._today == self.clock():
            return salt
        with self._lock:
            today = self.clock()
            if today != self._today:
                self._rotate_locked(today)
            salt = self._salts.get(day)
            if salt is None:
                salt = (self._stored(day) if today - ONE_DAY <= day <= today + ONE_DAY
                        else os.urandom(SALT_BYTES))
                self._salts[day] = salt
            return salt

    def rotate(self) -> None:
        with self._lock:
            self._rotate_locked(self.clock())

    def stored_days(self) -> list[date]:
        with self._lock:
            rows = self._db().execute("SELECT day FROM ferrite_salts ORDER BY day").fetchall()
        return [r[0] for r in rows]

    def _rotate_locked(self, today: date) -> None:
        yesterday = today - ONE_DAY
        # what this node cached is dropped: the new day's salt is re-read from the table
        self._salts = {d: s for d, s in self._salts.items() if yesterday <= d < today}
        conn = self._db()
        deleted = conn.execute("DELETE FROM ferrite_salts WHERE day < %s",
                               (yesterday,)).rowcount
        if deleted:
            conn.execute("VACUUM ferrite_salts")  # no dead tuple keeps an old salt's bytes
        self._stored(today + ONE_DAY)  # made ahead: midnight finds it there
        self._today = today

    def _stored(self, day: date) -> bytes:
        conn = self._db()
        conn.execute("INSERT INTO ferrite_salts (day, salt) VALUES (%s, %s) "
                     "ON CONFLICT (day) DO NOTHING", (day, os.urandom(SALT_BYTES)))
        (salt,) = conn.execute("SELECT salt FROM ferrite_salts WHERE day = %s",
                               (day,)).fetchone()
        return bytes(salt)

    def _db(self) -> psycopg.Connection:
        if self._conn is None:
            raise RuntimeError("the salt store is not open: ferrite_startup has not run")
        return self._conn
