from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path) -> Path:
    """Every test runs in a fresh working directory (no ferrite.toml there), so nothing a
    test writes by a relative path (ferrite.db, ferrite-spool/) lands in the checkout."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def sqlite_config(db: Path, *plugins: str, **sqlite: object) -> dict:
    names = list(plugins) or ["client_ip", "useragent", "bots", "session", "referrer"]
    return {"pipeline": {"plugins": [*names, "sqlite"], "spool_dir": str(db.parent / "spool"),
                         "retry_initial_seconds": 0},
            "plugins": {"sqlite": {"path": str(db), **sqlite}}}


@pytest.fixture(scope="session")
def stats_pg_url():
    """One PostgreSQL database for the stats tests, emptied before each use."""
    from .postgres_helpers import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def new_db(request, tmp_path_factory):
    """Makes an empty store to write events to and query: a SQLite file, or the stats
    database in the throwaway PostgreSQL cluster, emptied at each call."""
    if request.param == "sqlite":
        return lambda: tmp_path_factory.mktemp("db") / "stats.db"
    from .stats_helpers import PgDatabase

    url = request.getfixturevalue("stats_pg_url")

    def empty() -> PgDatabase:
        db = PgDatabase(url)
        db.reset()
        return db
    return empty


@pytest.fixture
def db(new_db):
    """An empty store of each backend."""
    return new_db()
