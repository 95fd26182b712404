"""A database of its own per test, in the throwaway cluster scripts/postgres.sh starts."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

ADMIN_URL = os.environ.get("FERRITE_TEST_POSTGRES", "")


def require_postgres() -> str:
    if not ADMIN_URL:
        message = ("FERRITE_TEST_POSTGRES is not set: run the suite with bash scripts/test.sh, "
                   "which starts a throwaway PostgreSQL cluster")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return ADMIN_URL


@contextmanager
def fresh_database() -> Iterator[str]:
    import psycopg

    admin = require_postgres()
    name = f"ferrite_test_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(admin)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
