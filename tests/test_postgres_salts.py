"""Session salts shared through PostgreSQL: every node, one salt per UTC day."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import psycopg
import pytest

from ferrite import load_config
from ferrite.core.manager import Plugins
from ferrite.plugins.salts_postgres import PostgresSaltStore

from .postgres_helpers import fresh_database


@pytest.fixture
def url():
    with fresh_database() as url:
        yield url


class Clock:
    def __init__(self, day: date) -> None:
        self.day = day

    def __call__(self) -> date:
        return self.day


def test_nodes_share_one_salt_per_day_made_race_free(url):
    day = date(2026, 3, 10)
    clocks = [Clock(day) for _ in range(4)]
    stores = [PostgresSaltStore(url, clock) for clock in clocks]
    salts: list[bytes] = []
    barrier = threading.Barrier(4)

    def start(store: PostgresSaltStore) -> None:
        barrier.wait()
        store.open()
        salts.append(store.salt_for(day))

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(salts) == 4 and len(set(salts)) == 1 and len(salts[0]) == 32
    assert stores[0].stored_days() == [day, day + timedelta(days=1)]  # tomorrow made ahead
    # imported history (before yesterday) never gets a stored, shared salt
    old = stores[0].salt_for(day - timedelta(days=5))
    assert old != stores[1].salt_for(day - timedelta(days=5))
    for s in stores:
        s.close()


def test_every_node_picks_up_the_new_day_and_the_old_salt_goes(url):
    day = date(2026, 3, 10)
    a_clock, b_clock = Clock(day), Clock(day)
    a, b = PostgresSaltStore(url, a_clock), PostgresSaltStore(url, b_clock)
    a.open()
    b.open()
    first = a.salt_for(day)
    assert b.salt_for(day) == first
    # node a's clock passes midnight a few seconds before node b's
    a_clock.day = day + timedelta(days=1)
    new = a.salt_for(day + timedelta(days=1))
    assert b.salt_for(day + timedelta(days=1)) == new != first  # b is still on the old day
    b_clock.day = day + timedelta(days=1)
    assert b.salt_for(day + timedelta(days=1)) == new  # and b re-read, not a stale salt
    assert b.salt_for(day) == first  # yesterday stays for hits across midnight
    a_clock.day = b_clock.day = day + timedelta(days=2)
    a.rotate()
    with psycopg.connect(url) as conn:
        days = [r[0] for r in conn.execute("SELECT day FROM ferrite_salts ORDER BY day")]
    assert day not in days and days == [day + timedelta(days=n) for n in (1, 2, 3)]
    assert b.salt_for(day) != first  # gone everywhere: a fresh, unshared salt now
    a.close()
    b.close()


def test_the_session_plugin_uses_the_postgres_plugins_url(url):
    config = load_config(data={"pipeline": {"plugins": ["session", "postgres"]},
                               "plugins": {"postgres": {"url": url}}})
    plugins = Plugins(config)
    store = plugins.loaded["session"].obj.salts
    assert isinstance(store, PostgresSaltStore) and store.url == url
    config = load_config(data={"pipeline": {"plugins": ["session", "postgres"]},
                               "plugins": {"postgres": {"url": url},
                                           "session": {"path": "salts.db"}}})
    assert not isinstance(Plugins(config).loaded["session"].obj.salts, PostgresSaltStore)


def test_one_visitor_across_two_nodes_is_one_session(url, tmp_path):
    from ferrite import Pipeline
    from ferrite.testing import make_hit

    sessions = []
    for node in ("a", "b"):  # separate working directories, as on two machines
        folder = tmp_path / node
        folder.mkdir()
        config = load_config(data={
            "pipeline": {"plugins": ["client_ip", "useragent", "bots", "session", "postgres"],
                         "spool_dir": str(folder / "spool")},
            "plugins": {"postgres": {"url": url}}})
        with Pipeline(config) as pipeline:
            pipeline.write(pipeline.process([make_hit(url=f"https://ex.com/{node}")]))
    with psycopg.connect(url) as conn:
        sessions = conn.execute("SELECT path, session FROM events ORDER BY path").fetchall()
    assert [p for p, _ in sessions] == ["/a", "/b"]
    assert sessions[0][1] == sessions[1][1]
    assert not (tmp_path / "a" / "ferrite.db").exists()  # nothing local was needed


def test_a_midnight_while_the_database_is_away_keeps_sessions_whole(url, monkeypatch):
    """The salts a node read ahead carry it over a midnight in an outage; once the database
    is back the rotation it missed runs, and the old salt goes."""
    import ferrite.plugins.salts_postgres as module
    from ferrite.core.delivery import RetryableSinkError

    from .test_postgres_outage import pg_ctl

    monkeypatch.setattr(module, "RETRY_SECONDS", 0.0)
    day = date(2026, 3, 10)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE ferrite_salts (day date PRIMARY KEY, salt bytea NOT NULL)")
        conn.execute("INSERT INTO ferrite_salts VALUES (%s, %s)", (day - timedelta(1), b"y" * 16))
    clock = Clock(day)
    store = PostgresSaltStore(url, clock)
    store.open()
    try:
        before = {d: store.salt_for(d) for d in (day - timedelta(1), day, day + timedelta(1))}
        pg_ctl("stop")
        try:
            clock.day = day + timedelta(1)  # midnight, with the database away
            assert store.salt_for(day + timedelta(1)) == before[day + timedelta(1)]
            assert store.salt_for(day) == before[day]
            with pytest.raises(RetryableSinkError, match="unavailable"):
                store.rotate()
        finally:
            pg_ctl("start")
        assert store.salt_for(day + timedelta(1)) == before[day + timedelta(1)]  # rotates now
        assert date(2026, 3, 9) not in store.stored_days()
    finally:
        store.close()
