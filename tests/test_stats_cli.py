"""`ferrite stats`, `ferrite keys` and `ferrite build-stats` as an operator runs them."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from .stats_helpers import event, write
from .test_stats_engine import fixture_events

HOSTILE = "/x\x1b[2J\u202eevil\r"


def ferrite(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferrite", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def setup(tmp_path: Path, events=None) -> Path:
    write(tmp_path / "ferrite.db", events if events is not None else fixture_events())
    (tmp_path / "ferrite.toml").write_text('[plugins.sqlite]\npath = "ferrite.db"\n')
    return tmp_path


def test_totals_with_change_then_the_breakdown(tmp_path):
    cwd = setup(tmp_path)
    out = ferrite(cwd, "stats", "--site", "ex.com", "--period", "2026-03-02,2026-03-02",
                  "--by", "event:page", "--compare")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "ex.com  2026-03-02 00:00 - 2026-03-02 23:59 (UTC), compared with 2026-03-01" in text
    assert "visitors" in text and "(was 2)" in text
    lines = [line.split() for line in text.splitlines()]
    assert ["event:page", "visitors", "visits", "pageviews", "bounce_rate", "visit_duration",
            "visitors", "change"] in lines
    assert ["/", "2", "2", "2", "50%", "25m", "00s", "+100%"] in lines


def test_json_and_csv(tmp_path):
    cwd = setup(tmp_path)
    out = ferrite(cwd, "stats", "--site", "ex.com", "--period", "2026-03-01,2026-03-02",
                  "--metrics", "visitors,pageviews", "--by", "visit:browser", "--json")
    data = json.loads(out.stdout)
    assert data["totals"]["results"] == [{"metrics": [4, 8], "dimensions": [],
                                          "comparison": {"dimensions": [], "metrics": [0, 0],
                                                         "change": [100, 100]}}]
    assert data["breakdown"]["results"][0] == {"metrics": [2, 4], "dimensions": ["Firefox"]}
    out = ferrite(cwd, "stats", "--site", "ex.com", "--period", "2026-03-01,2026-03-02",
                  "--metrics", "visitors", "--by", "time:day", "--csv")
    assert list(csv.reader(io.StringIO(out.stdout))) == [
        ["time:day", "visitors"], ["2026-03-01", "2"], ["2026-03-02", "2"]]


def test_strangers_text_is_escaped_for_terminals_and_spreadsheets(tmp_path):
    cwd = setup(tmp_path, [event("2026-03-01T10:00:00Z", "A", HOSTILE),
                           event("2026-03-01T10:00:00Z", "B", "=HYPERLINK(\"x\")")])
    out = ferrite(cwd, "stats", "--period", "2026-03-01,2026-03-01", "--by", "event:page")
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\u202e" not in out.stdout and "\r" not in out.stdout
    assert "\\x1b[2J\\u202eevil\\r" in out.stdout
    out = ferrite(cwd, "stats", "--period", "2026-03-01,2026-03-01", "--by", "event:page",
                  "--csv")
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert ["'=HYPERLINK(\"x\")", "1", "1", "1", "100.0", "0"] in rows


def test_mistakes_say_what_to_fix(tmp_path):
    cwd = setup(tmp_path)
    cases = [
        (["stats"], "several sites; choose one with --site: ex.com, other.org"),
        (["stats", "--site", "ex.com", "--period", "fortnight"], "--period: date_range"),
        (["stats", "--site", "ex.com", "--by", "visit:colour"], "--by: 'visit:colour'"),
        (["stats", "--site", "ex.com", "--filter", "event:page"], "--filter 'event:page'"),
        (["stats", "--site", "ex.com", "--metrics", "visitors,hits"], "--metrics: unknown"),
        (["keys", "create"], "needs --site"),
        (["keys", "revoke", "nope"], "no active key has id 'nope'"),
    ]
    for args, words in cases:
        out = ferrite(cwd, *args)
        assert out.returncode == 1, args
        assert words in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_missing_database_is_a_clear_error(tmp_path):
    (tmp_path / "ferrite.toml").write_text('[plugins.sqlite]\npath = "nowhere.db"\n')
    out = ferrite(tmp_path, "stats")
    assert out.returncode == 1
    assert "database nowhere.db does not exist yet" in out.stderr


def test_keys_lifecycle(tmp_path):
    cwd = setup(tmp_path)
    created = ferrite(cwd, "keys", "create", "--site", "www.Ex.com", "--name", "cron")
    key = created.stdout.strip()
    assert key.startswith("fer_") and len(key) > 40
    assert "shown only once" in created.stderr
    listed = json.loads(ferrite(cwd, "keys", "list", "--json").stdout)
    assert listed[0]["sites"] == ["ex.com"] and listed[0]["revoked"] is None
    assert key not in (cwd / "ferrite.db").read_bytes().decode("latin-1")
    assert ferrite(cwd, "keys", "revoke", listed[0]["id"]).returncode == 0
    assert "revoked" in ferrite(cwd, "keys", "list").stdout


def test_build_stats_counts_closed_days_once(tmp_path):
    cwd = setup(tmp_path)
    first = ferrite(cwd, "build-stats")
    assert first.returncode == 0
    assert "built the rollups of 4 day(s)" in first.stderr  # ex.com x3, other.org x1
    again = ferrite(cwd, "build-stats")
    assert "built the rollups of 0 day(s)" in again.stderr


def test_a_database_written_before_the_read_side_is_migrated_and_built(tmp_path):
    import sqlite3

    cwd = setup(tmp_path)
    conn = sqlite3.connect(cwd / "ferrite.db")
    for table in ("stats_rollup", "stats_days", "stats_hours", "stats_keys"):
        conn.execute(f"DROP TABLE {table}")  # as an older Ferrite left it
    conn.commit()
    conn.close()
    out = ferrite(cwd, "stats", "--site", "ex.com", "--period", "2026-03-01,2026-03-02",
                  "--metrics", "visitors", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["totals"]["results"][0]["metrics"] == [4]
    assert "built the rollups of 4 day(s)" in ferrite(cwd, "build-stats").stderr
    out = ferrite(cwd, "stats", "--site", "ex.com", "--period", "2026-03-01,2026-03-02",
                  "--metrics", "visitors", "--json")
    assert json.loads(out.stdout)["totals"]["results"][0]["metrics"] == [4]


def test_stats_settings_are_checked_with_suggestions(tmp_path):
    (tmp_path / "ferrite.toml").write_text(
        '[stats]\ntimezone = "Europe/Berln"\nratelimit = 5\n')
    out = ferrite(tmp_path, "check")
    assert out.returncode == 1
    assert "unknown time zone 'Europe/Berln'; did you mean Europe/Berlin" in out.stderr
    assert "unknown key 'ratelimit' in [stats]" in out.stderr
    assert "valid keys: enabled, timezones, timezone" in out.stderr
