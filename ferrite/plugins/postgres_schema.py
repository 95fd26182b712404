"""Versioned schema changes in PostgreSQL, safe when several nodes start at once.

Each component (a events table, the read side, accounts, salts) has an ordered list of
steps; `ferrite_schema` records how many of them a database has had. A starting node takes
one advisory lock (every component the same, so two components never race on creating the
bookkeeping table), runs the steps it has and the database has not, and records them, in
one transaction: a second node waiting on the lock then finds nothing left to do. A node
older than its database (a rolling upgrade half done) refuses to start rather than write
into a schema it does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg
from psycopg import sql

from ferrite.core.errors import FerriteError

#: pg_advisory_xact_lock key of every schema change ("ferrite" in ASCII).
SCHEMA_LOCK = 0x66657272697465
Step = Callable[[psycopg.Connection], None]


class SchemaTooNew(FerriteError):
    """The database was migrated by a newer Ferrite than this node."""


def lock(conn: psycopg.Connection) -> None:
    """Hold the schema lock until the current transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))


def migrate(conn: psycopg.Connection, component: str, steps: Sequence[Step]) -> int:
    """Bring `component` to `len(steps)`; returns the steps run. Call inside a
    transaction (the lock is released at its end)."""
    lock(conn)
    conn.execute("CREATE TABLE IF NOT EXISTS ferrite_schema (component text PRIMARY KEY, "
                 "version integer NOT NULL, migrated timestamptz NOT NULL DEFAULT now())")
    row = conn.execute("SELECT version FROM ferrite_schema WHERE component = %s",
                       (component,)).fetchone()
    version = row[0] if row else 0
    if version > len(steps):
        raise SchemaTooNew(f"the database's schema of {component} is at version {version}, "
                           f"newer than this Ferrite knows ({len(steps)}): upgrade this node "
                           f"to the version the other nodes run")
    for step in steps[version:]:
        step(conn)
    if version < len(steps):
        conn.execute("INSERT INTO ferrite_schema (component, version) VALUES (%s, %s) "
                     "ON CONFLICT (component) DO UPDATE SET version = excluded.version, "
                     "migrated = now()", (component, len(steps)))
    return len(steps) - version


def statements(*statements_: str | sql.Composable) -> Step:
    """A step of plain statements."""
    def run(conn: psycopg.Connection) -> None:
        for statement in statements_:
            conn.execute(statement)  # type: ignore[arg-type]
    return run
