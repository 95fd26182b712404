"""The ferrite command: plugins and check, as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys


def ferrite(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ferrite", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_plugins_lists_the_chain_in_stage_order(in_tmp):
    (in_tmp / "ferrite.toml").write_text(
        '[pipeline]\nplugins = ["sqlite", "referrer", "client_ip", "session"]\n')
    out = ferrite("plugins", cwd=in_tmp)
    assert out.returncode == 0, out.stderr
    names = [line.split()[1] for line in out.stdout.splitlines() if line[:3].strip().endswith(".")]
    assert names == ["client_ip", "session", "referrer", "sqlite"]
    assert "built-in (ferrite.plugins.sqlite)" in out.stdout
    assert ("hooks: ferrite_account_store, ferrite_shutdown, ferrite_startup, "
            "ferrite_stats_store, ferrite_write") in out.stdout


def test_plugins_json(in_tmp):
    out = ferrite("plugins", "--json", cwd=in_tmp)
    data = json.loads(out.stdout)
    assert data["config"] == "<embedded default>"
    assert [p["name"] for p in data["plugins"]] == ["client_ip", "useragent", "bots", "session",
                                                     "referrer", "sqlite"]
    assert data["plugins"][0] == {
        "name": "client_ip", "stage": "client_ip", "hooks": ["ferrite_client_ip"],
        "source": {"kind": "built-in", "module": "ferrite.plugins.client_ip",
                   "distribution": None, "version": None}}


def test_plugins_shows_module_path_plugins(in_tmp):
    (in_tmp / "my_enricher.py").write_text(
        "import ferrite\n@ferrite.hookimpl\ndef ferrite_enrich(event):\n    pass\n")
    (in_tmp / "ferrite.toml").write_text('[pipeline]\nplugins = ["my_enricher"]\n')
    out = ferrite("plugins", "--json", cwd=in_tmp)
    (plugin,) = json.loads(out.stdout)["plugins"]
    assert plugin["source"]["kind"] == "module" and plugin["stage"] == "enrich"


def test_check_ok(in_tmp):
    out = ferrite("check", cwd=in_tmp)
    assert out.returncode == 0
    assert out.stdout.startswith("<embedded default>: OK (6 plugins")
    assert not (in_tmp / "ferrite.db").exists(), "check must not touch storage"


def test_check_warns_without_a_sink(in_tmp):
    (in_tmp / "ferrite.toml").write_text('[pipeline]\nplugins = ["bots"]\n')
    out = ferrite("check", cwd=in_tmp)
    assert out.returncode == 0 and "no plugin stores events" in out.stderr


def test_check_fails_with_every_problem_listed(in_tmp):
    (in_tmp / "bad.toml").write_text(
        '[pipeline]\nplugins = ["client_ip", "sqlite"]\n'
        '[plugins.sqlite]\npth = "x.db"\n[plugins.client_ip]\ntrusted_proxies = ["nope"]\n')
    out = ferrite("check", "--config", "bad.toml", cwd=in_tmp)
    assert out.returncode == 1
    assert out.stderr.startswith("ferrite: error: ")
    assert "trusted_proxies" in out.stderr and "unknown key 'pth'" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_config_file(in_tmp):
    out = ferrite("check", "--config", "nope.toml", cwd=in_tmp)
    assert out.returncode == 1 and "config file nope.toml not found" in out.stderr


def test_replay_command(in_tmp):
    import json

    (in_tmp / "ferrite.toml").write_text(
        '[pipeline]\nplugins = ["sqlite"]\n[plugins.sqlite]\npath = "events.db"\n')
    out = ferrite("replay", cwd=in_tmp)
    assert out.returncode == 0 and "nothing spooled" in out.stdout
    event = {"id": "0190000000000000aaaaaaaaaaaaaaaa", "ts": "2026-11-28T10:00:00.000Z",
             "site": "example.com", "name": "pageview", "path": "/x"}
    (in_tmp / "ferrite-spool").mkdir()
    (in_tmp / "ferrite-spool" / "sqlite.jsonl").write_text(json.dumps(
        {"time": "2026-11-28T10:00:01.000Z", "sink": "sqlite", "attempts": 4,
         "error": "OSError: disk full", "events": [event]}) + "\n")
    out = ferrite("replay", cwd=in_tmp)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "sqlite: 1 events replayed, 0 still spooled"
    import sqlite3

    rows = sqlite3.connect(in_tmp / "events.db").execute("SELECT id, path FROM events").fetchall()
    assert rows == [("0190000000000000aaaaaaaaaaaaaaaa", "/x")]


def test_version(in_tmp):
    out = ferrite("--version", cwd=in_tmp)
    assert out.returncode == 0
    assert out.stdout.startswith("ferrite ") and out.stdout.strip() != "ferrite"


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr  # no traceback
    return lines[0]


def test_serve_bind_problems_are_one_line_each(in_tmp):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for workers in ("1", "2"):
            line = one_line_error(ferrite("serve", "--bind", f"127.0.0.1:{port}",
                                          "--workers", workers, cwd=in_tmp))
            assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "out of range; use 1-65535" in one_line_error(
        ferrite("serve", "--bind", "127.0.0.1:70000", cwd=in_tmp))
    assert "bind must be HOST:PORT, such as 127.0.0.1:8000" in one_line_error(
        ferrite("serve", "--bind", "localhost", cwd=in_tmp))
    # TEST-NET-3 (RFC 5737) is never an address of this machine; binding sends nothing
    assert "203.0.113.77 is not an address of this machine" in one_line_error(
        ferrite("serve", "--bind", "203.0.113.77:8000", cwd=in_tmp))


def test_serve_refuses_a_missing_static_folder(in_tmp):
    assert "static folder 'nope' does not exist" in one_line_error(
        ferrite("serve", "--bind", "127.0.0.1:0", "--static", "nope", cwd=in_tmp))


def test_replay_names_an_unknown_sink(in_tmp):
    line = one_line_error(ferrite("replay", "--sink", "nosuch", cwd=in_tmp))
    assert "--sink 'nosuch' is not a sink of this chain; sinks: sqlite" in line


def test_a_plugin_module_beside_the_config_is_found_without_pythonpath(in_tmp):
    site = in_tmp / "site"
    site.mkdir()
    (site / "my_enricher.py").write_text(
        "from ferrite import hookimpl\n\n"
        "@hookimpl\n"
        "def ferrite_enrich(event):\n"
        "    event.props['plan'] = 'pro'\n")
    (site / "ferrite.toml").write_text(
        '[pipeline]\nplugins = ["useragent", "my_enricher", "console"]\n')
    out = ferrite("check", "--config", str(site / "ferrite.toml"), cwd=in_tmp)
    assert out.returncode == 0, out.stderr
    assert "my_enricher" in out.stdout
    (site / "my_enricher.py").unlink()
    missing = ferrite("check", "--config", str(site / "ferrite.toml"), cwd=in_tmp)
    assert "put my_enricher.py next to ferrite.toml" in missing.stderr
