"""The example sink, tested the way a plugin author would test their own."""

import csv
import json
import subprocess
import sys

import pytest

import ferrite
from ferrite.testing import make_hit, run_chain


def chain(path, **csv_settings):
    return {
        "pipeline": {"plugins": ["client_ip", "useragent", "bots", "session", "referrer", "csv"]},
        "plugins": {"session": {"path": ":memory:"}, "csv": {"path": str(path), **csv_settings}},
    }


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_rows_land_with_a_header(tmp_path):
    out = tmp_path / "events.csv"
    run_chain([make_hit("https://example.com/a", props={"plan": "pro"}),
               make_hit("https://example.com/b")], chain(out))
    rows = read(out)
    assert [r["path"] for r in rows] == ["/a", "/b"]
    assert rows[0]["site"] == "example.com"
    assert rows[0]["props"] == '{"plan": "pro"}'
    assert rows[0]["session"] == rows[1]["session"] != ""


def test_appends_without_a_second_header(tmp_path):
    out = tmp_path / "events.csv"
    run_chain([make_hit("https://example.com/a")], chain(out))
    run_chain([make_hit("https://example.com/b")], chain(out))
    assert [r["path"] for r in read(out)] == ["/a", "/b"]


def test_chosen_columns(tmp_path):
    out = tmp_path / "events.csv"
    run_chain([make_hit("https://example.com/x")], chain(out, columns=["path", "browser"]))
    assert read(out) == [{"path": "/x", "browser": "Chrome"}]


def test_bad_column_is_a_config_error(tmp_path):
    with pytest.raises(ferrite.PluginError, match="unknown column.*nope.*choose from"):
        run_chain([], chain(tmp_path / "e.csv", columns=["nope"]))


def test_path_is_required(tmp_path):
    config = chain(tmp_path / "e.csv")
    del config["plugins"]["csv"]["path"]
    with pytest.raises(ferrite.PluginError,
                       match=r"missing required key .path. in \[plugins.csv\]"):
        run_chain([], config)


def test_found_through_its_entry_point(tmp_path):
    config = tmp_path / "ferrite.toml"
    config.write_text('[pipeline]\nplugins = ["csv"]\n[plugins.csv]\npath = "e.csv"\n')
    out = subprocess.run([sys.executable, "-m", "ferrite", "plugins", "--json",
                          "--config", str(config)], capture_output=True, text=True, check=True)
    (plugin,) = json.loads(out.stdout)["plugins"]
    assert plugin["source"]["kind"] == "entry point"
    assert plugin["source"]["distribution"] == "ferrite-csv-sink"
    assert plugin["hooks"] == ["ferrite_shutdown", "ferrite_startup", "ferrite_write"]
