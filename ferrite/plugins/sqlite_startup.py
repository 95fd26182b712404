"""Opening one SQLite file from several worker processes at once.

Switching to WAL and creating tables take locks that SQLite's busy timeout does not always
wait for (a journal-mode change answers "database is locked" at once), so two workers
starting together could fail. Start-up steps are retried here for a while instead.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def retry_while_locked(step: Callable[[], T], *, seconds: float = 30.0) -> T:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            locked = "locked" in str(exc) or "busy" in str(exc)
            if not locked or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + 0.08 * random.random())


def ensure_wal(conn: sqlite3.Connection) -> None:
    """WAL mode, switched only when not already on (the switch needs an exclusive lock)."""
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    if str(mode).lower() != "wal":
        conn.execute("PRAGMA journal_mode=WAL")
