"""The postgres sink's account records (`ferrite.accounts.store.AccountStore`): users,
login sessions, shared links, the setup token and the signing secret, in one database
every node shares, so any node serves the dashboard and a login on one is a login on all.

Emails are unique whatever their case (an index on lower(email)); the first admin is
created under an advisory lock, so two nodes answering two browsers make one.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from ferrite.accounts.store import Session, Share, User
from ferrite.plugins.postgres_pool import LazyPool
from ferrite.plugins.postgres_schema import migrate, statements

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts_users (
    id text PRIMARY KEY, email text NOT NULL, password_hash text NOT NULL,
    role text NOT NULL, sites jsonb NOT NULL, created timestamptz NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS accounts_users_email ON accounts_users (lower(email));
CREATE TABLE IF NOT EXISTS accounts_sessions (
    id_hash text PRIMARY KEY, user_id text NOT NULL, created timestamptz NOT NULL,
    expires timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS accounts_sessions_user ON accounts_sessions (user_id);
CREATE TABLE IF NOT EXISTS accounts_setup (
    token_hash text PRIMARY KEY, expires timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS accounts_shares (
    id text PRIMARY KEY, site text NOT NULL, token_hash text NOT NULL UNIQUE,
    password_hash text, name text NOT NULL, created timestamptz NOT NULL,
    revoked timestamptz);
CREATE TABLE IF NOT EXISTS accounts_secrets (name text PRIMARY KEY, value bytea NOT NULL);
"""
#: The accounts' schema changes, in order (postgres_schema.migrate).
STEPS = [statements(SCHEMA)]
#: pg_advisory_xact_lock key of the first admin's creation.
FIRST_ADMIN_LOCK = 0x61646D696E  # "admin"


def _user(row: tuple[Any, ...]) -> User:
    return User(id=row[0], email=row[1], password_hash=row[2], role=row[3],
                sites=tuple(row[4]), created=row[5])


def _share(row: tuple[Any, ...]) -> Share:
    return Share(id=row[0], site=row[1], token_hash=row[2], password_hash=row[3],
                 name=row[4], created=row[5], revoked=row[6])


class PostgresAccounts:
    def __init__(self, url: str, shown_url: str = "PostgreSQL", timeout: float = 10) -> None:
        self.pool = LazyPool(url, shown_url, 2, timeout, "ferrite-accounts")
        self._ready = False

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        """One transaction (READ COMMITTED); the schema is made on first use."""
        with self.pool.connection() as conn:
            if not self._ready:
                with conn.transaction():
                    migrate(conn, "accounts", STEPS)
                self._ready = True
            with conn.transaction():
                yield conn

    def _one(self, statement: str, params: tuple[Any, ...]) -> Any:
        with self._tx() as conn:
            return conn.execute(statement, params).fetchone()

    def _count(self, statement: str, params: tuple[Any, ...]) -> int:
        with self._tx() as conn:
            return conn.execute(statement, params).rowcount

    # --- users -------------------------------------------------------------------------

    @staticmethod
    def _insert_user(conn: psycopg.Connection, user: User) -> None:
        try:
            with conn.transaction():
                conn.execute("INSERT INTO accounts_users VALUES (%s, %s, %s, %s, %s, %s)",
                             (user.id, user.email, user.password_hash, user.role,
                              json.dumps(list(user.sites)), user.created))
        except psycopg.errors.UniqueViolation:
            raise ValueError(f"a user with the email {user.email!r} exists") from None

    def add_user(self, user: User) -> None:
        with self._tx() as conn:
            self._insert_user(conn, user)

    def find_user(self, email: str) -> User | None:
        row = self._one("SELECT * FROM accounts_users WHERE lower(email) = lower(%s)",
                        (email.strip(),))
        return _user(row) if row else None

    def user_by_id(self, user_id: str) -> User | None:
        row = self._one("SELECT * FROM accounts_users WHERE id = %s", (user_id,))
        return _user(row) if row else None

    def list_users(self) -> list[User]:
        with self._tx() as conn:
            rows = conn.execute("SELECT * FROM accounts_users ORDER BY lower(email) "
                                "COLLATE \"C\", email COLLATE \"C\"")
            return [_user(r) for r in rows]

    def update_user(self, user: User) -> bool:
        try:
            return self._count(
                "UPDATE accounts_users SET email = %s, password_hash = %s, role = %s, "
                "sites = %s WHERE id = %s", (user.email, user.password_hash, user.role,
                                             json.dumps(list(user.sites)), user.id)) > 0
        except psycopg.errors.UniqueViolation:
            raise ValueError(f"a user with the email {user.email!r} exists") from None

    def remove_user(self, user_id: str) -> bool:
        with self._tx() as conn:
            conn.execute("DELETE FROM accounts_sessions WHERE user_id = %s", (user_id,))
            return conn.execute("DELETE FROM accounts_users WHERE id = %s",
                                (user_id,)).rowcount > 0

    def count_users(self) -> int:
        return int(self._one("SELECT count(*) FROM accounts_users", ())[0])

    # --- sessions ----------------------------------------------------------------------

    def add_session(self, session: Session) -> None:
        self._count("INSERT INTO accounts_sessions VALUES (%s, %s, %s, %s)",
                    (session.id_hash, session.user_id, session.created, session.expires))

    def find_session(self, id_hash: str) -> Session | None:
        row = self._one("SELECT * FROM accounts_sessions WHERE id_hash = %s", (id_hash,))
        return Session(*row) if row else None

    def remove_session(self, id_hash: str) -> None:
        self._count("DELETE FROM accounts_sessions WHERE id_hash = %s", (id_hash,))

    def remove_sessions(self, user_id: str) -> int:
        return self._count("DELETE FROM accounts_sessions WHERE user_id = %s", (user_id,))

    def purge_sessions(self, now: datetime) -> int:
        return self._count("DELETE FROM accounts_sessions WHERE expires <= %s", (now,))

    # --- setup -------------------------------------------------------------------------

    def add_setup_token(self, token_hash: str, expires: datetime) -> None:
        self._count("INSERT INTO accounts_setup VALUES (%s, %s)", (token_hash, expires))

    def setup_token_valid(self, token_hash: str, now: datetime) -> bool:
        row = self._one("SELECT (SELECT count(*) FROM accounts_users), expires FROM "
                        "accounts_setup WHERE token_hash = %s", (token_hash,))
        return bool(row) and row[0] == 0 and row[1] > now

    def create_first_admin(self, token_hash: str, user: User, now: datetime) -> bool:
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (FIRST_ADMIN_LOCK,))
            row = conn.execute("SELECT expires FROM accounts_setup WHERE token_hash = %s",
                               (token_hash,)).fetchone()
            (users,) = conn.execute("SELECT count(*) FROM accounts_users").fetchone()  # type: ignore[misc]
            if row is None or row[0] <= now or users:
                return False
            self._insert_user(conn, user)
            conn.execute("DELETE FROM accounts_setup")
            return True

    # --- shared links ------------------------------------------------------------------

    def add_share(self, share: Share) -> None:
        self._count("INSERT INTO accounts_shares VALUES (%s, %s, %s, %s, %s, %s, NULL)",
                    (share.id, share.site, share.token_hash, share.password_hash, share.name,
                     share.created))

    def find_share(self, token_hash: str) -> Share | None:
        row = self._one("SELECT * FROM accounts_shares WHERE token_hash = %s", (token_hash,))
        return _share(row) if row else None

    def list_shares(self, site: str | None = None) -> list[Share]:
        with self._tx() as conn:
            rows = conn.execute("SELECT * FROM accounts_shares WHERE %s::text IS NULL OR "
                                "site = %s ORDER BY created, id", (site, site))
            return [_share(r) for r in rows]

    def revoke_share(self, share_id: str, site: str) -> bool:
        return self._count("UPDATE accounts_shares SET revoked = %s WHERE id = %s AND "
                           "site = %s AND revoked IS NULL",
                           (datetime.now(UTC), share_id, site)) > 0

    # --- secrets -----------------------------------------------------------------------

    def secret(self, name: str) -> bytes:
        with self._tx() as conn:
            conn.execute("INSERT INTO accounts_secrets VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (name, secrets.token_bytes(32)))
            row = conn.execute("SELECT value FROM accounts_secrets WHERE name = %s",
                               (name,)).fetchone()
            return bytes(row[0])  # type: ignore[index]

    def close(self) -> None:
        self.pool.close()
