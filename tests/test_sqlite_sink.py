"""The SQLite sink: schema, WAL, batches, migrations, extras, bots, duplicates."""

from __future__ import annotations

import json
import sqlite3

import pytest

from ferrite import Pipeline, load_config
from ferrite.testing import GOOGLEBOT, make_hit, run_chain

from .conftest import sqlite_config


def rows(db, sql="SELECT * FROM events ORDER BY ts"):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute(sql)]


def test_events_table_has_every_documented_column(tmp_path):
    db = tmp_path / "f.db"
    hit = make_hit("https://example.com/a?utm_source=hn", name="Signup", props={"plan": "pro",
                   "seats": 3, "trial": True}, referrer="https://news.ycombinator.com/item?id=9")
    run_chain([hit], sqlite_config(db))
    (row,) = rows(db)
    assert set(row) == {"id", "ts", "site", "name", "path", "referrer", "source", "utm_source",
                        "utm_medium", "utm_campaign", "session", "browser", "os", "device",
                        "props"}
    assert row["ts"].endswith("Z") and row["ts"][10] == "T"
    assert (row["site"], row["name"], row["path"]) == ("example.com", "Signup",
                                                       "/a?utm_source=hn")
    assert (row["referrer"], row["source"]) == ("https://news.ycombinator.com/item", "social")
    assert (row["browser"], row["os"], row["device"]) == ("Chrome", "Windows", "desktop")
    assert json.loads(row["props"]) == {"plan": "pro", "seats": 3, "trial": True}
    assert len(row["session"]) == 32


def test_wal_mode_and_indexes(tmp_path):
    db = tmp_path / "f.db"
    run_chain([make_hit()], sqlite_config(db))
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {tuple(r[2] for r in conn.execute(f"PRAGMA index_info('{name}')"))
               for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index' "
                                           "AND tbl_name='events'")}
    assert ("site", "ts") in indexes and ("ts",) in indexes


def test_one_transaction_per_batch(tmp_path):
    db = tmp_path / "f.db"
    config = load_config(data=sqlite_config(db))
    with Pipeline(config) as pipeline:
        sink = pipeline.plugins.loaded["sqlite"].obj
        statements = []
        sink._conn.set_trace_callback(statements.append)
        pipeline.run([make_hit() for _ in range(50)])
    assert statements.count("BEGIN ") + statements.count("BEGIN") == 1
    assert sum(1 for s in statements if s.startswith("INSERT OR IGNORE INTO [events]")) \
        == 50  # one executemany
    # and, in the same transaction, one hour's generation for the stats rollups
    assert sum(1 for s in statements if s.startswith("INSERT INTO stats_hours")) == 1
    assert statements.count("COMMIT") == 1


def test_duplicate_ids_are_ignored(tmp_path):
    db = tmp_path / "f.db"
    hits = [make_hit(id="e1"), make_hit(id="e1"), make_hit(id="e2")]
    run_chain(hits, sqlite_config(db))
    run_chain([make_hit(id="e2")], sqlite_config(db))
    assert [r["id"] for r in rows(db, "SELECT id FROM events ORDER BY id")] == ["e1", "e2"]


def test_old_schema_is_migrated_on_start(tmp_path):
    db = tmp_path / "f.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE events (id TEXT PRIMARY KEY, ts TEXT, site TEXT, name TEXT, "
                 "path TEXT)")
    conn.execute("INSERT INTO events VALUES ('old', '2025-01-01T00:00:00.000Z', 'a.com', "
                 "'pageview', '/')")
    conn.commit()
    conn.close()
    run_chain([make_hit(id="new")], sqlite_config(db))
    data = {r["id"]: r for r in rows(db)}
    assert data["old"]["browser"] is None and data["new"]["browser"] == "Chrome"


def test_enricher_fields_become_columns(tmp_path):
    import types

    from ferrite import hookimpl

    enricher = types.ModuleType("country")
    enricher.ferrite_enrich = hookimpl(lambda event, headers: event.extra.update(
        country=headers.get("cf-ipcountry", "")))
    db = tmp_path / "f.db"
    run_chain([make_hit(headers={"cf-ipcountry": "NL"})], sqlite_config(db),
              plugins=[("country", enricher)])
    run_chain([make_hit(headers={"cf-ipcountry": "BE"})], sqlite_config(db))  # no enricher now
    assert [r["country"] for r in rows(db)] == ["NL", None]


def test_bad_extra_field_name_is_fatal_and_the_batch_is_spooled(tmp_path):
    import json
    import types

    from ferrite import hookimpl

    enricher = types.ModuleType("bad")
    enricher.ferrite_enrich = hookimpl(lambda event: event.extra.update({"no spaces": 1}))
    result = run_chain([make_hit()], sqlite_config(tmp_path / "f.db"),
                       plugins=[("bad", enricher)])
    assert result.metrics.total("retries") == 0  # fatal: no retry
    (entry,) = [json.loads(line) for line in (tmp_path / "spool" / "sqlite.jsonl").open()]
    assert entry["attempts"] == 1 and "cannot be a column name" in entry["error"]
    assert len(entry["events"]) == 1


def test_bots_kept_in_their_own_table_when_asked(tmp_path):
    db = tmp_path / "f.db"
    hit = make_hit(user_agent=GOOGLEBOT, referrer="https://x.example/?q=secret")
    run_chain([hit, make_hit()], sqlite_config(db, keep_bots=True))
    (bot,) = rows(db, "SELECT * FROM bots")
    assert (bot["reason"], bot["browser"], bot["referrer"]) == ("spider", "Googlebot",
                                                                "x.example")
    assert len(rows(db)) == 1


def test_bots_not_kept_by_default(tmp_path):
    db = tmp_path / "f.db"
    run_chain([make_hit(user_agent=GOOGLEBOT)], sqlite_config(db))
    tables = {r["name"] for r in rows(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert "bots" not in tables


def test_custom_table_name(tmp_path):
    db = tmp_path / "f.db"
    run_chain([make_hit()], sqlite_config(db, table="hits"))
    assert len(rows(db, "SELECT * FROM hits")) == 1


def test_table_name_must_be_an_identifier(tmp_path):
    from ferrite import PluginError

    with pytest.raises(PluginError, match="key 'table'.*should match pattern"):
        run_chain([], sqlite_config(tmp_path / "f.db", table="x; DROP TABLE y"))


def test_many_workers_starting_at_once_on_a_new_file(tmp_path):
    """Workers switching a new file to WAL and creating tables at the same moment used to
    see 'database is locked' (the journal-mode switch does not wait on the busy timeout)."""
    import threading

    from ferrite.plugins.salts import SaltStore
    from ferrite.plugins.sqlite import Settings, SqliteSink

    for round_ in range(5):
        path = str(tmp_path / f"f{round_}.db")
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def start(path=path, barrier=barrier, errors=errors) -> None:
            barrier.wait()
            try:
                sink = SqliteSink(Settings(path=path))
                sink.ferrite_startup()
                salts = SaltStore(path)
                salts.open()
                salts.close()
                sink.ferrite_shutdown()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
