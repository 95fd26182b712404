"""PostgreSQL stopping and coming back under a running pipeline: retries, the dead-letter
spool, recovery, replay; every event stored exactly once, the password never shown."""

from __future__ import annotations

import os
import subprocess

import psycopg

from ferrite import Pipeline, load_config
from ferrite.testing import make_hit

from .postgres_helpers import fresh_database, require_postgres


def pg_ctl(action: str) -> None:
    """Stop or start the throwaway cluster (as its owner, like scripts/postgres.sh)."""
    binary = os.path.join(os.environ["FERRITE_TEST_PG_BIN"], "pg_ctl")
    command = [binary, "-D", os.environ["FERRITE_TEST_PG_DATA"], "-w", "-m", "fast",
               "-l", os.environ["FERRITE_TEST_PG_LOG"], "-o", os.environ["FERRITE_TEST_PG_OPTS"],
               action]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_an_outage_spools_then_replay_stores_everything_once(tmp_path):
    require_postgres()
    with fresh_database() as url:
        password_url = url.replace("postgres@", "postgres:hunter2@")  # trust auth ignores it
        config = load_config(data={
            "pipeline": {"plugins": ["session", "postgres"], "retry_attempts": 2,
                         "retry_initial_seconds": 0.05, "spool_dir": str(tmp_path / "spool")},
            "plugins": {"postgres": {"url": password_url, "connect_timeout_seconds": 2}}})
        hits = [make_hit(url=f"https://ex.com/{n}") for n in range(30)]
        with Pipeline(config) as pipeline:
            first = pipeline.process(hits[:10])
            pipeline.write(first)
            assert count(url) == 10
            pg_ctl("stop")
            try:
                pipeline.write(pipeline.process(hits[10:20]))  # retried, then spooled
                failing = pipeline.failing_sinks["postgres"]
                assert "unavailable" in failing and "hunter2" not in failing
                assert "***" in failing
                assert sum(pipeline.spool.counts().values()) == 10
            finally:
                pg_ctl("start")
            last = pipeline.process(hits[20:])
            pipeline.write(last)  # the pool reconnects by itself
            assert "postgres" not in pipeline.failing_sinks
            assert count(url) == 20
            assert pipeline.replay("postgres") == {"postgres": (10, 0)}
            assert count(url) == 30
            pipeline.write(first)  # the same events again (a retry after a lost answer)
            pipeline.write(last)
            assert count(url) == 30
            assert pipeline.replay("postgres") == {"postgres": (0, 0)}  # the spool is empty
        with psycopg.connect(url) as conn:
            paths = [r[0] for r in conn.execute("SELECT path FROM events ORDER BY path")]
        assert sorted(paths) == sorted(f"/{n}" for n in range(30))
