"""The postgres plugin against a real PostgreSQL (the throwaway cluster of scripts/test.sh)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ferrite import load_config
from ferrite.core.delivery import RetryableSinkError
from ferrite.core.pipeline import Pipeline
from ferrite.plugins.postgres import PostgresSink, Settings, masked

from .postgres_helpers import fresh_database
from .stats_helpers import event


@pytest.fixture
def url():
    with fresh_database() as url:
        yield url


def rows(url: str, sql: str = "SELECT id, site, path, props FROM events ORDER BY ts, id"):
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def partitions(url: str) -> list[str]:
    return [r[0] for r in rows(url, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON "
                                    "c.oid = i.inhrelid WHERE c.relkind = 'r' ORDER BY 1")]


def sink(url: str, **settings) -> PostgresSink:
    s = PostgresSink(Settings(url=url, **settings))
    s.ferrite_startup()
    return s


def test_batches_are_stored_once_whatever_is_replayed(url):
    s = sink(url)
    try:
        batch = [event("2026-03-01T10:00:00Z", "s1", "/a", props={"plan": "pro", "n": 3}),
                 event("2026-03-01T10:01:00Z", "s1", "/b"),
                 event("2026-03-02T09:00:00Z", "s2", "/c", site="other.example")]
        assert s.ferrite_write(batch) == 3
        assert s.ferrite_write(batch) == 0  # a replay: nothing new
        assert s.ferrite_write([batch[0], event("2026-03-02T09:01:00Z", "s2", "/d")]) == 1
        assert s.ferrite_write([batch[1], batch[1]]) == 0  # a duplicate within one batch
        stored = rows(url)
        assert [(r[1], r[2]) for r in stored] == [("ex.com", "/a"), ("ex.com", "/b"),
                                                  ("other.example", "/c"), ("ex.com", "/d")]
        assert stored[0][3] == {"plan": "pro", "n": 3}  # props are jsonb
    finally:
        s.ferrite_shutdown()


def test_partitions_by_day_made_ahead_on_demand_and_dropped(url):
    today = datetime.now(UTC).date()
    s = sink(url, partitions_ahead_days=3, keep_days=30)
    try:
        made = partitions(url)
        assert made == [f"events_{today + timedelta(days=n):%Y%m%d}" for n in range(-1, 3)]
        old = datetime.now(UTC) - timedelta(days=40)  # `ferrite ingest` of an old log
        assert s.ferrite_write([event(old.isoformat(), "s1", "/old")]) == 1
        assert f"events_{old:%Y%m%d}" in partitions(url)
        assert rows(url, "SELECT count(*) FROM events")[0][0] == 1
    finally:
        s.ferrite_shutdown()
    again = sink(url, partitions_ahead_days=3, keep_days=30)  # the next start drops it
    again.ferrite_shutdown()
    assert f"events_{old:%Y%m%d}" not in partitions(url)
    assert rows(url, "SELECT count(*) FROM events")[0][0] == 0


def test_enricher_columns_are_added(url):
    s = sink(url)
    try:
        assert s.ferrite_write([event("2026-03-01T10:00:00Z", "s1", "/",
                                      extra={"country": "DE"})]) == 1
        assert rows(url, "SELECT country FROM events") == [("DE",)]
        from ferrite.core.delivery import FatalSinkError
        with pytest.raises(FatalSinkError, match="cannot be a column name"):
            s.ferrite_write([event("2026-03-01T10:00:00Z", "s2", "/",
                                   extra={"bad name; drop": "x"})])
    finally:
        s.ferrite_shutdown()


def test_nodes_starting_at_once_make_one_schema(url):
    errors, sinks = [], []

    def start() -> None:
        try:
            sinks.append(sink(url, partitions_ahead_days=5))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(partitions(url)) == 6
    assert rows(url, "SELECT component, version FROM ferrite_schema ORDER BY 1") == [
        ("events:events", 1), ("stats", 1)]
    for s in sinks:
        s.ferrite_shutdown()


def test_a_node_older_than_its_database_refuses_to_start(url):
    """A rolling upgrade half done: the database was migrated further than this node knows;
    it must not write into a schema it does not know."""
    from ferrite.plugins.postgres_schema import SchemaTooNew

    sink(url).ferrite_shutdown()
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE ferrite_schema SET version = 7 WHERE component = 'stats'")
    with pytest.raises(SchemaTooNew, match="stats is at version 7, newer than this Ferrite "
                                           "knows \\(1\\): upgrade this node"):
        sink(url)
    started_again = PostgresSink(Settings(url=url, table="other"))
    with pytest.raises(SchemaTooNew):
        started_again.ferrite_startup()


def test_credentials_never_show(url):
    assert masked("postgresql://ferrite:s3cret@db.example:5432/ferrite") == \
        "postgresql://ferrite:***@db.example:5432/ferrite"
    assert masked("postgresql://db.example/ferrite") == "postgresql://db.example/ferrite"
    dead = "postgresql://ferrite:s3cret@127.0.0.1:1/ferrite"
    with pytest.raises(RetryableSinkError) as info:
        sink(dead, connect_timeout_seconds=1)
    assert "s3cret" not in str(info.value) and "***" in str(info.value)
    with pytest.raises(Exception, match="must start with postgresql://"):
        Settings(url="mysql://root:s3cret@db/x")


def test_through_the_chain_with_the_example_config(url, tmp_path):
    from .conftest import ROOT

    config = load_config(ROOT / "examples" / "ferrite-postgres.toml",
                         environ={"DATABASE_URL": url})
    from ferrite.testing import make_hit

    with Pipeline(config) as pipeline:
        pipeline.write(pipeline.process([make_hit(url="https://ex.com/x"),
                                         make_hit(url="https://ex.com/y")]))
    stored = rows(url, "SELECT path, session FROM events ORDER BY path")
    assert [r[0] for r in stored] == ["/x", "/y"] and all(r[1] for r in stored)


def test_a_node_on_postgres_serves_and_never_shows_the_password(url, tmp_path):
    import httpx

    from ferrite.testing import DESKTOP_CHROME

    from .edge_helpers import ferrite_serve

    secret_url = url.replace("postgres@", "postgres:hunter2@")  # trust auth ignores it
    config = (f'[pipeline]\nplugins = ["client_ip", "useragent", "bots", "session", '
              f'"referrer", "postgres"]\n[plugins.postgres]\nurl = "{secret_url}"\n')
    with ferrite_serve(tmp_path, config=config) as server:
        banner = "".join(server.process.stdout.readline() for _ in range(4))
        assert "postgres -> postgresql://postgres:***@" in banner
        assert "hunter2" not in banner
        response = httpx.post(server.url + "/api/event", headers={
            "User-Agent": DESKTOP_CHROME, "Content-Type": "text/plain"},
            content='{"n": "pageview", "u": "https://ex.com/served"}')
        assert response.status_code == 202
        ready = httpx.get(server.url + "/readyz").text
        assert "hunter2" not in ready
        assert server.stop() == 0
    assert rows(url, "SELECT path FROM events") == [("/served",)]
    assert not (tmp_path / "ferrite.db").exists()  # salts and events in PostgreSQL only


def test_a_node_whose_database_never_comes_gives_up_with_one_clear_error():
    from ferrite import Pipeline
    from ferrite.core.errors import FerriteError

    config = load_config(data={
        "pipeline": {"plugins": ["session", "postgres"], "startup_wait_seconds": 1},
        "plugins": {"postgres": {"url": "postgresql://u:hunter2@127.0.0.1:1/x",
                                 "connect_timeout_seconds": 1}}})
    pipeline = Pipeline(config)
    with pytest.raises(FerriteError) as info:
        pipeline.start()
    message = str(info.value)
    assert "startup_wait_seconds" in message and "u:***@127.0.0.1:1" in message
    assert "hunter2" not in message


def test_hook_ferrite_account_store_on_postgres(url):
    """The postgres plugin keeps accounts in the shared database (docs/plugins.md)."""
    from ferrite.accounts import service
    from ferrite.core.manager import Plugins
    from ferrite.plugins.postgres_accounts import PostgresAccounts

    config = load_config(data={"pipeline": {"plugins": ["postgres"]},
                               "plugins": {"postgres": {"url": url}}})
    store = Plugins(config).hook.ferrite_account_store()
    try:
        assert isinstance(store, PostgresAccounts)
        service.add_user(store, "a@b.example", "a-long-password", "admin")
        assert store.count_users() == 1
    finally:
        store.close()


def test_serve_without_its_database_exits_with_one_line_not_a_traceback(tmp_path):
    import subprocess
    import sys

    (tmp_path / "ferrite.toml").write_text(
        '[pipeline]\nplugins = ["session", "postgres"]\nstartup_wait_seconds = 1\n'
        '[plugins.postgres]\nurl = "postgresql://u:hunter2@127.0.0.1:1/x"\n'
        'connect_timeout_seconds = 1\n')
    out = subprocess.run([sys.executable, "-m", "ferrite", "serve", "--bind", "127.0.0.1:0"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert out.returncode == 1
    assert "Traceback" not in text and "hunter2" not in text
    assert "the node could not start: cannot connect to PostgreSQL at " \
           "postgresql://u:***@127.0.0.1:1/x" in text


def test_nodes_building_rollups_at_once_count_each_day_once(url):
    """Every node runs a rollup builder; on one database one builds, the others skip."""
    from ferrite.plugins.postgres_stats import PostgresStats

    from .stats_helpers import PgDatabase, event, write

    write(PgDatabase(url), [event(f"2026-03-{d:02d}T10:00:00Z", f"s{d}", "/")
                            for d in range(1, 21)])
    stores = [PostgresStats(url) for _ in range(3)]
    built, errors = [], []
    barrier = threading.Barrier(3)

    def build(store: PostgresStats) -> None:
        barrier.wait()
        try:
            built.append(store.build(now=datetime(2026, 4, 1, tzinfo=UTC)))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(built) == 20 and sorted(built)[-1] == 20
    assert stores[0].build(now=datetime(2026, 4, 1, tzinfo=UTC)) == 0  # all current
    for store in stores:
        store.close()
