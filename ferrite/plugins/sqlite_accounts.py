"""The SQLite sink's account records (`ferrite.accounts.store.AccountStore`).

Each call opens a short connection to the sink's file: account traffic is a few requests
a minute, and a connection of its own never waits on the sink's write lock for long (WAL).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from ferrite.accounts.store import Session, Share, User

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts_users (
    id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE COLLATE NOCASE, password_hash TEXT NOT NULL,
    role TEXT NOT NULL, sites TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts_sessions (
    id_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, created TEXT NOT NULL,
    expires TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS accounts_sessions_user ON accounts_sessions (user_id);
CREATE TABLE IF NOT EXISTS accounts_setup (token_hash TEXT PRIMARY KEY, expires TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts_shares (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
    password_hash TEXT, name TEXT NOT NULL, created TEXT NOT NULL, revoked TEXT);
CREATE TABLE IF NOT EXISTS accounts_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _user(row: tuple[Any, ...]) -> User:
    return User(id=row[0], email=row[1], password_hash=row[2], role=row[3],
                sites=tuple(json.loads(row[4])), created=datetime.fromisoformat(row[5]))


def _share(row: tuple[Any, ...]) -> Share:
    return Share(id=row[0], site=row[1], token_hash=row[2], password_hash=row[3],
                 name=row[4], created=datetime.fromisoformat(row[5]), revoked=_dt(row[6]))


class SqliteAccounts:
    def __init__(self, path: str, busy_timeout_ms: int = 30_000) -> None:
        self.path = path
        self.timeout = busy_timeout_ms / 1000
        self._ready = False

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            if not self._ready:
                conn.executescript(SCHEMA)
                self._ready = True
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # --- users -------------------------------------------------------------------------

    def _insert_user(self, conn: sqlite3.Connection, user: User) -> None:
        try:
            conn.execute("INSERT INTO accounts_users VALUES (?, ?, ?, ?, ?, ?)",
                         (user.id, user.email, user.password_hash, user.role,
                          json.dumps(list(user.sites)), _ts(user.created)))
        except sqlite3.IntegrityError:
            raise ValueError(f"a user with the email {user.email!r} exists") from None

    def add_user(self, user: User) -> None:
        with self._tx() as conn:
            self._insert_user(conn, user)

    def find_user(self, email: str) -> User | None:
        with self._db() as conn:
            row = conn.execute("SELECT * FROM accounts_users WHERE email = ?",
                               (email.strip(),)).fetchone()
        return _user(row) if row else None

    def user_by_id(self, user_id: str) -> User | None:
        with self._db() as conn:
            row = conn.execute("SELECT * FROM accounts_users WHERE id = ?",
                               (user_id,)).fetchone()
        return _user(row) if row else None

    def list_users(self) -> list[User]:
        with self._db() as conn:
            return [_user(r) for r in conn.execute(
                "SELECT * FROM accounts_users ORDER BY email")]

    def update_user(self, user: User) -> bool:
        with self._tx() as conn:
            return conn.execute(
                "UPDATE accounts_users SET email = ?, password_hash = ?, role = ?, sites = ? "
                "WHERE id = ?", (user.email, user.password_hash, user.role,
                                 json.dumps(list(user.sites)), user.id)).rowcount > 0

    def remove_user(self, user_id: str) -> bool:
        with self._tx() as conn:
            conn.execute("DELETE FROM accounts_sessions WHERE user_id = ?", (user_id,))
            return conn.execute("DELETE FROM accounts_users WHERE id = ?",
                                (user_id,)).rowcount > 0

    def count_users(self) -> int:
        with self._db() as conn:
            return int(conn.execute("SELECT count(*) FROM accounts_users").fetchone()[0])

    # --- sessions ----------------------------------------------------------------------

    def add_session(self, session: Session) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO accounts_sessions VALUES (?, ?, ?, ?)",
                         (session.id_hash, session.user_id, _ts(session.created),
                          _ts(session.expires)))

    def find_session(self, id_hash: str) -> Session | None:
        with self._db() as conn:
            row = conn.execute("SELECT * FROM accounts_sessions WHERE id_hash = ?",
                               (id_hash,)).fetchone()
        return Session(row[0], row[1], datetime.fromisoformat(row[2]),
                       datetime.fromisoformat(row[3])) if row else None

    def remove_session(self, id_hash: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM accounts_sessions WHERE id_hash = ?", (id_hash,))

    def remove_sessions(self, user_id: str) -> int:
        with self._tx() as conn:
            return conn.execute("DELETE FROM accounts_sessions WHERE user_id = ?",
                                (user_id,)).rowcount

    def purge_sessions(self, now: datetime) -> int:
        with self._tx() as conn:
            return conn.execute("DELETE FROM accounts_sessions WHERE expires <= ?",
                                (_ts(now),)).rowcount

    # --- setup -------------------------------------------------------------------------

    def add_setup_token(self, token_hash: str, expires: datetime) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO accounts_setup VALUES (?, ?)", (token_hash, _ts(expires)))

    def setup_token_valid(self, token_hash: str, now: datetime) -> bool:
        with self._db() as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM accounts_users), expires FROM accounts_setup "
                "WHERE token_hash = ?", (token_hash,)).fetchone()
        return bool(row) and row[0] == 0 and row[1] > _ts(now)

    def create_first_admin(self, token_hash: str, user: User, now: datetime) -> bool:
        with self._tx() as conn:
            row = conn.execute("SELECT expires FROM accounts_setup WHERE token_hash = ?",
                               (token_hash,)).fetchone()
            users = conn.execute("SELECT count(*) FROM accounts_users").fetchone()[0]
            if row is None or row[0] <= _ts(now) or users:
                return False
            self._insert_user(conn, user)
            conn.execute("DELETE FROM accounts_setup")
            return True

    # --- shared links ------------------------------------------------------------------

    def add_share(self, share: Share) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO accounts_shares VALUES (?, ?, ?, ?, ?, ?, NULL)",
                         (share.id, share.site, share.token_hash, share.password_hash,
                          share.name, _ts(share.created)))

    def find_share(self, token_hash: str) -> Share | None:
        with self._db() as conn:
            row = conn.execute("SELECT * FROM accounts_shares WHERE token_hash = ?",
                               (token_hash,)).fetchone()
        return _share(row) if row else None

    def list_shares(self, site: str | None = None) -> list[Share]:
        with self._db() as conn:
            rows = conn.execute("SELECT * FROM accounts_shares WHERE ? IS NULL OR site = ? "
                                "ORDER BY created", (site, site)).fetchall()
        return [_share(r) for r in rows]

    def revoke_share(self, share_id: str, site: str) -> bool:
        with self._tx() as conn:
            return conn.execute("UPDATE accounts_shares SET revoked = ? WHERE id = ? AND "
                                "site = ? AND revoked IS NULL",
                                (_ts(datetime.now(UTC)), share_id, site)).rowcount > 0

    # --- secrets -----------------------------------------------------------------------

    def secret(self, name: str) -> bytes:
        with self._tx() as conn:
            conn.execute("INSERT OR IGNORE INTO accounts_secrets VALUES (?, ?)",
                         (name, secrets.token_bytes(32)))
            return bytes(conn.execute("SELECT value FROM accounts_secrets WHERE name = ?",
                                      (name,)).fetchone()[0])

    def close(self) -> None:
        """Nothing stays open between calls."""
