"""Daily session salts: 32 random bytes per UTC day, shared by every worker through SQLite.

Only today's and yesterday's salts exist (yesterday's for hits that straddle midnight).
Older ones are deleted with `secure_delete` on, so their bytes are overwritten rather than
left in free pages, and the WAL is checkpointed so the deleted pages do not linger there.
Days before yesterday (imported history) get a salt that lives only in this process's
memory, so imported sessions can never be linked to live traffic or to another import.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from ferrite.plugins.sqlite_startup import ensure_wal, retry_while_locked

SALT_BYTES = 32
ONE_DAY = timedelta(days=1)


def utc_today() -> date:
    return datetime.now(UTC).date()


class SaltStore:
    """The cache and the window; `PostgresSaltStore` shares them with its own table."""

    #: How far ahead of today a day's salt is kept in the table (made ahead or not).
    ahead = timedelta(0)

    def __init__(self, path: str, clock: Callable[[], date] = utc_today) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._salts: dict[date, bytes] = {}
        self._today: date | None = None

    def open(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                               check_same_thread=False)

        def prepare() -> None:
            ensure_wal(conn)
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("CREATE TABLE IF NOT EXISTS ferrite_salts "
                         "(day TEXT PRIMARY KEY, salt BLOB NOT NULL) WITHOUT ROWID")

        retry_while_locked(prepare)
        self._conn = conn
        retry_while_locked(self.rotate)

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
                self._try_rotate(today)
            salt = self._salts.get(day)
            if salt is None:
                salt = (self._read(day) if today - ONE_DAY <= day <= today + self.ahead
                        else os.urandom(SALT_BYTES))
                self._salts[day] = salt
            return salt

    def _try_rotate(self, today: date) -> None:
        self._rotate_locked(today)

    def _read(self, day: date) -> bytes:
        return self._stored(day)

    def rotate(self) -> None:
        """Destroy every salt older than yesterday, in memory and on disk."""
        with self._lock:
            self._rotate_locked(self.clock())

    def stored_days(self) -> list[date]:
        with self._lock:
            rows = self._db().execute("SELECT day FROM ferrite_salts ORDER BY day").fetchall()
        return [date.fromisoformat(day) for (day,) in rows]

    def _rotate_locked(self, today: date) -> None:
        yesterday = today - ONE_DAY
        self._salts = {d: s for d, s in self._salts.items() if yesterday <= d <= today}
        conn = self._db()
        deleted = conn.execute("DELETE FROM ferrite_salts WHERE day < ?",
                               (yesterday.isoformat(),)).rowcount
        if deleted:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._today = today

    def _stored(self, day: date) -> bytes:
        conn = self._db()
        conn.execute("INSERT OR IGNORE INTO ferrite_salts (day, salt) VALUES (?, ?)",
                     (day.isoformat(), os.urandom(SALT_BYTES)))
        (salt,) = conn.execute("SELECT salt FROM ferrite_salts WHERE day = ?",
                               (day.isoformat(),)).fetchone()
        return bytes(salt)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the salt store is not open: ferrite_startup has not run")
        return self._conn
