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


def failing_sink(name: str = "broken", *, times: int | None = None, fatal: bool = False):
    """A sink module that fails `times` times (None: always), then stores in `.stored`."""
    from ferrite import FatalSinkError

    module = types.ModuleType(name)
    module.calls = 0
    module.stored = []

    def write(events):
        module.calls += 1
        if times is None or module.calls <= times:
            raise (FatalSinkError if fatal else OSError)("disk full")
        module.stored.extend(events)

    module.ferrite_write = hookimpl(write)
    return module


def spool_config(tmp_path, spool=True, **pipeline):
    return {"pipeline": {"plugins": [*CHAIN, "sqlite"], "retry_initial_seconds": 0.001,
                         "spool_dir": str(tmp_path / "spool") if spool else "", **pipeline},
            "plugins": {"sqlite": {"path": str(tmp_path / "e.db")}}}


def sqlite_ids(tmp_path):
    return [r[0] for r in sqlite3.connect(tmp_path / "e.db").execute(
        "SELECT id FROM events ORDER BY id")]


def test_a_transient_failure_is_retried_with_backoff(tmp_path):
    sink = failing_sink(times=2)
    result = run_chain([make_hit(id="x")], spool_config(tmp_path), plugins=[("broken", sink)])
    assert sink.calls == 3 and [e.id for e in sink.stored] == ["x"]
    assert result.metrics.get("retries", component="broken", stage="write") == 2
    assert not (tmp_path / "spool").exists()


def test_backoff_grows_with_jitter_and_a_cap():
    import random

    from ferrite.core.delivery import RetryPolicy

    policy = RetryPolicy(attempts=6, initial=0.1, maximum=0.5, jitter=0.5)
    waits = list(policy.delays(random.Random(1)))
    assert len(waits) == 5
    for wait, ceiling in zip(waits, [0.1, 0.2, 0.4, 0.5, 0.5], strict=True):
        assert ceiling * 0.5 <= wait <= ceiling


def test_a_sink_failing_past_its_budget_is_spooled_and_the_others_still_store(tmp_path):
    sink = failing_sink()
    result = run_chain([make_hit(id="kept")], spool_config(tmp_path, retry_attempts=3),
                       plugins=[("broken", sink)])
    assert sink.calls == 3
    assert sqlite_ids(tmp_path) == ["kept"]
    (entry,) = [json.loads(line) for line in (tmp_path / "spool" / "broken.jsonl").open()]
    assert (entry["sink"], entry["attempts"], entry["error"]) == ("broken", 3, "OSError: disk full")
    assert [e["id"] for e in entry["events"]] == ["kept"] and entry["events"][0]["url"] == ""
    assert result.metrics.get("dead_lettered", component="broken", stage="write") == 1


def test_a_fatal_failure_is_spooled_without_retries(tmp_path):
    sink = failing_sink(fatal=True)
    run_chain([make_hit()], spool_config(tmp_path), plugins=[("broken", sink)])
    assert sink.calls == 1 and (tmp_path / "spool" / "broken.jsonl").exists()


def test_without_a_spool_the_failure_is_named_and_the_others_still_store(tmp_path):
    sink = failing_sink()
    with pytest.raises(SinkError) as info:
        run_chain([make_hit(id="kept")], spool_config(tmp_path, spool=False),
                  plugins=[("broken", sink)])
    assert list(info.value.failures) == ["broken"]
    assert sqlite_ids(tmp_path) == ["kept"]


def test_replay_sends_spooled_batches_once_the_sink_works(tmp_path):
    from ferrite import Pipeline, load_config

    sink = failing_sink(times=4)  # fails the first batch for good, then works
    run_chain([make_hit(id="a"), make_hit(id="b")], spool_config(tmp_path, retry_attempts=4),
              plugins=[("broken", sink)])
    assert sink.stored == []
    with Pipeline(load_config(data=spool_config(tmp_path)),
                  extra_plugins=[("broken", sink)]) as pipeline:
        assert pipeline.replay() == {"broken": (2, 0)}
        assert pipeline.replay() == {}
    assert [e.id for e in sink.stored] == ["a", "b"]
    assert (tmp_path / "spool" / "broken.jsonl").read_text() == ""
