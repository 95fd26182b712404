"""The jsonl and console sinks, and several sinks at once."""

from __future__ import annotations

import json
import sqlite3
import types

import pytest

from ferrite import SinkError, hookimpl
from ferrite.testing import GOOGLEBOT, make_hit, run_chain

CHAIN = ["client_ip", "useragent", "bots", "session", "referrer"]


def test_jsonl_appends_one_line_per_event(tmp_path):
    out = tmp_path / "e.jsonl"
    config = {"pipeline": {"plugins": [*CHAIN, "jsonl"]},
              "plugins": {"jsonl": {"path": str(out)}}}
    run_chain([make_hit("https://example.com/a", props={"k": "v"})], config)
    run_chain([make_hit("https://example.com/b"), make_hit(user_agent=GOOGLEBOT)], config)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"] for r in records] == ["/a", "/b"]
    assert records[0]["props"] == {"k": "v"} and "url" not in records[0]


def test_jsonl_can_include_bots(tmp_path):
    out = tmp_path / "e.jsonl"
    config = {"pipeline": {"plugins": [*CHAIN, "jsonl"]},
              "plugins": {"jsonl": {"path": str(out), "include_bots": True, "fsync": True}}}
    run_chain([make_hit(user_agent=GOOGLEBOT)], config)
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["bot"] == "spider"


def test_console_prints_readable_lines(capsys):
    config = {"pipeline": {"plugins": [*CHAIN, "console"]},
              "plugins": {"console": {"color": False}}}
    run_chain([make_hit("https://example.com/docs", referrer="https://duckduckgo.com/"),
               make_hit(user_agent=GOOGLEBOT)], config)
    lines = capsys.readouterr().out.splitlines()
    assert "example.com  pageview  /docs  Chrome/Windows/desktop  source=search" in lines[0]
    assert "[bot: spider]" in lines[1]


def test_several_sinks_get_the_same_events(tmp_path, capsys):
    db, out = tmp_path / "e.db", tmp_path / "e.jsonl"
    config = {"pipeline": {"plugins": [*CHAIN, "sqlite", "jsonl", "console"]},
              "plugins": {"sqlite": {"path": str(db)}, "jsonl": {"path": str(out)}}}
    run_chain([make_hit(id="a"), make_hit(id="b")], config)
    assert [r[0] for r in sqlite3.connect(db).execute("SELECT id FROM events ORDER BY id")] == [
        "a", "b"]
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["a", "b"]
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_a_failing_sink_is_named_and_the_others_still_store(tmp_path):
    broken = types.ModuleType("broken")

    def fail(events):
        raise OSError("disk full")

    broken.ferrite_write = hookimpl(fail)
    db = tmp_path / "e.db"
    config = {"pipeline": {"plugins": [*CHAIN, "sqlite"]}, "plugins": {"sqlite": {"path": str(db)}}}
    with pytest.raises(SinkError) as info:
        run_chain([make_hit(id="kept")], config, plugins=[("broken", broken)])
    assert list(info.value.failures) == ["broken"]
    assert sqlite3.connect(db).execute("SELECT id FROM events").fetchall() == [("kept",)]
