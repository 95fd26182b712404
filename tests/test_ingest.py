"""`ferrite ingest`: real access logs through the same chain, idempotently and privately."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ferrite.ingest.formats import detect, parser_for

from .conftest import DATA
from .edge_helpers import stored

LOGS = DATA / "access-logs"
REAL = LOGS / "apache_combined_10k.log.gz"


def ingest(cwd: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferrite", "ingest", *args], cwd=cwd,
                          input=stdin, capture_output=True, timeout=120)


def test_the_real_10k_line_log(tmp_path):
    out = ingest(tmp_path, str(REAL), "--site", "semicomplete.com")
    text, err = out.stdout.decode(), out.stderr.decode()
    assert out.returncode == 0, err
    assert "format: combined (detected" in err
    assert text.startswith("10,000 lines read")
    assert "malformed 1" in text
    assert f"malformed {REAL}:8899: does not match the combined format" in text
    for reason in ("asset", "status", "method", "bot:spider", "bot:crawler_list"):
        assert re.search(rf"{re.escape(reason)} [\d,]+", text), reason
    rows = stored(tmp_path / "ferrite.db")
    assert len(rows) == int(re.search(r"([\d,]+) events", text)[1].replace(",", ""))
    assert all(r["site"] == "semicomplete.com" for r in rows)
    assert rows[0]["ts"].startswith("2015-05-17T10:05")  # each hit keeps its own time
    assert {r["device"] for r in rows} <= {"desktop", "mobile", "tablet", "tv", "other"}
    # Days long past get salts that exist only during the import: none is stored.
    assert stored(tmp_path / "ferrite.db", "SELECT * FROM ferrite_salts") == []


def test_no_ip_and_no_user_agent_in_the_database(tmp_path):
    ingest(tmp_path, str(REAL), "--site", "semicomplete.com")
    ips, agents = set(), set()
    with gzip.open(REAL, "rt", errors="replace") as log:
        for line in log:
            ips.add(line.split(" ", 1)[0])
            agents.update(a for a in re.findall(r'"([^"]{25,})"$', line.strip()))
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    # One pass over the blob: every dotted quad in it, checked against the log's addresses.
    quads = {m.decode() for m in re.findall(rb"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])",
                                            blob)}
    assert sorted(quads & ips) == []
    assert [ua for ua in agents if ua.encode() in blob] == []


def test_reimport_stores_nothing_twice(tmp_path):
    outputs = []
    for _ in range(2):
        out = ingest(tmp_path, str(REAL), "--site", "semicomplete.com")
        assert out.returncode == 0
        outputs.append(out.stdout.decode())
    assert "new: sqlite 1,659\n" in outputs[0]
    assert "new: sqlite 0 (1,659 were already stored)" in outputs[1]
    rows = stored(tmp_path / "ferrite.db", "SELECT id FROM events")
    assert len(rows) == len({r["id"] for r in rows}) == 1659


def test_stdin_and_plain_files_give_the_same_ids(tmp_path):
    plain = tmp_path / "plain"
    piped = tmp_path / "piped"
    plain.mkdir()
    piped.mkdir()
    raw = gzip.decompress(REAL.read_bytes())
    (plain / "access.log").write_bytes(raw)
    ingest(plain, "access.log", "--site", "semicomplete.com")
    assert ingest(piped, "-", "--site", "semicomplete.com", stdin=raw).returncode == 0
    ids = [{r["id"] for r in stored(d / "ferrite.db", "SELECT id FROM events")}
           for d in (plain, piped)]
    assert ids[0] == ids[1] and len(ids[0]) == 1659


EXPECTED = {
    "combined": ("127.0.0.1", "2000-10-10T20:55:36+00:00", "GET", "/", 200,
                 "http://www.example.com/start.html", "Mozilla/5.0", ""),
    "common": ("127.0.0.1", "2000-10-10T20:55:36+00:00", "GET", "/", 200, "", "", ""),
    "combined-vhost": ("127.0.0.1", "2000-10-10T20:55:36+00:00", "GET", "/", 200,
                       "http://www.example.com/start.html", "Mozilla/5.0", "example.com"),
    "common-vhost": ("127.0.0.1", "2000-10-10T20:55:36+00:00", "GET", "/", 200, "", "",
                     "example.com"),
    "bunny": ("127.0.0.1", "2000-10-10T20:55:36+00:00", "GET", "http://example.com/", 200,
              "http://www.example.com/start.html", "Mozilla/5.0", "example.com"),
    "bunny-extended": ("127.0.0.1", "2000-10-10T20:55:36+00:00", "GET",
                       "http://example.com/", 200, "http://www.example.com/start.html",
                       "Mozilla/5.0", "example.com"),
}


@pytest.mark.parametrize("name", EXPECTED)
def test_each_format_fixture_parses_to_the_expected_fields(name):
    lines = (LOGS / f"{name}.log").read_text().splitlines()
    parse = parser_for(name.removesuffix("-extended"))
    record = parse(lines[0])
    got = (record.ip, record.ts.isoformat(), record.method, record.target, record.status,
           record.referrer, record.user_agent, record.host)
    assert got == EXPECTED[name]
    for line in lines:
        parse(line)  # every fixture line parses
    assert detect(lines) == name.removesuffix("-extended")


def test_dash_size_and_empty_quotes_parse():
    parse = parser_for("combined")
    assert parse('127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/2.0" 200 - "-" "-"'
                 ).user_agent == ""
    assert parse('1.1.1.1 - - [15/May/2023:00:00:54 +0000] "GET /p HTTP/1.1" 200 133 "" ""'
                 ).ts == datetime(2023, 5, 15, 0, 0, 54, tzinfo=UTC)


def test_caddy_one_object_a_line_and_pretty_printed(tmp_path):
    outputs = {}
    for name in ("caddy-2.json", "caddy-1.json"):
        out = ingest(tmp_path, str(LOGS / name))
        assert out.returncode == 0, out.stderr
        assert "format: caddy" in out.stderr.decode()
        outputs[name] = out.stdout.decode()
        assert "malformed" not in outputs[name]
    # The pretty-printed object is one record; its user agent is a placeholder sentence.
    assert outputs["caddy-1.json"].splitlines()[1] == "skipped: bot:unrecognized 1"
    rows = stored(tmp_path / "ferrite.db")
    assert len(rows) == 4 and {r["site"] for r in rows} == {"host.example.com"}
    assert {r["browser"] for r in rows} == {"Chrome"}


def test_custom_log_format(tmp_path):
    log = tmp_path / "custom.log"
    log.write_text('203.0.113.9 [10/Oct/2025:13:55:36 +0000] "GET /pricing HTTP/1.1" 200 '
                   '"https://duckduckgo.com/" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) '
                   'Gecko/20100101 Firefox/128.0" 1234\n')
    out = ingest(tmp_path, str(log), "--site", "shop.example", "--format",
                 '%h %t "%r" %>s "%{Referer}i" "%{User-Agent}i" %D')
    assert out.returncode == 0, out.stderr
    (row,) = stored(tmp_path / "ferrite.db")
    assert (row["path"], row["source"], row["browser"]) == ("/pricing", "search", "Firefox")


def test_clear_errors(tmp_path):
    out = ingest(tmp_path, "nope.log")
    assert out.returncode == 1 and b"cannot read nope.log" in out.stderr
    out = ingest(tmp_path, str(LOGS / "combined.log"), "--format", "apache")
    assert out.returncode == 1 and b"unknown format 'apache'; choose auto, combined" in out.stderr
    out = ingest(tmp_path, str(LOGS / "combined.log"))
    assert out.returncode == 1 and b"logs no virtual host" in out.stderr and b"--site" in out.stderr
    garbage = tmp_path / "garbage.log"
    garbage.write_text("hello\nworld\n")
    out = ingest(tmp_path, str(garbage))
    assert out.returncode == 1 and b"could not recognise the log format" in out.stderr


def test_todays_lines_use_the_shared_daily_salt(tmp_path):
    now = datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    log = tmp_path / "today.log"
    log.write_text(f'203.0.113.9 - - [{now}] "GET / HTTP/1.1" 200 5 "-" '
                   f'"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"\n')
    assert ingest(tmp_path, str(log), "--site", "example.com").returncode == 0
    days = stored(tmp_path / "ferrite.db", "SELECT day FROM ferrite_salts")
    assert [d["day"] for d in days] == [datetime.now(UTC).date().isoformat()]


LINE = ('198.51.100.{n} - - [{ts}] "GET /page-{n} HTTP/1.1" 200 10 "-" '
        '"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) '
        'Chrome/131.0.0.0 Safari/537.36"\n')


def append(path: Path, numbers: range) -> None:
    ts = datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    with path.open("a") as f:
        f.writelines(LINE.format(n=n, ts=ts) for n in numbers)


def wait_rows(db: Path, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = stored(db)
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    return stored(db)


@pytest.mark.slow
def test_follow_picks_up_appended_lines_and_a_rotated_file(tmp_path):
    log = tmp_path / "access.log"
    append(log, range(1, 4))
    (tmp_path / "ferrite.toml").write_text(
        '[pipeline]\nplugins = ["client_ip", "useragent", "bots", "session", "referrer", '
        '"sqlite"]\n[ingest]\npoll_seconds = 0.1\n')
    # SIGINT as in a terminal: a test run started as a background job has it ignored, and
    # the child would inherit that (as a command under nohup rightly does)
    process = subprocess.Popen([sys.executable, "-m", "ferrite", "ingest", "--follow",
                                "access.log", "--site", "example.com"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert len(wait_rows(tmp_path / "ferrite.db", 3)) == 3
        append(log, range(4, 6))  # appended while followed
        assert len(wait_rows(tmp_path / "ferrite.db", 5)) == 5
        os.rename(log, tmp_path / "access.log.1")  # logrotate: rename, then a new file
        append(tmp_path / "access.log.1", range(6, 7))  # the server still had the old one
        append(log, range(7, 9))
        rows = wait_rows(tmp_path / "ferrite.db", 8)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert sorted(r["path"] for r in rows) == [f"/page-{n}" for n in range(1, 9)]
    assert b"8 lines read" in out and b"8 events passed" in out


def test_parallel_and_sequential_imports_store_the_same_events(tmp_path):
    results = []
    for parallel in ("true", "false"):
        work = tmp_path / parallel
        work.mkdir()
        (work / "ferrite.toml").write_text(
            '[pipeline]\nplugins = ["client_ip", "useragent", "bots", "session", "referrer", '
            f'"sqlite"]\n[ingest]\nparallel = {parallel}\n')
        out = ingest(work, str(REAL), "--site", "semicomplete.com")
        assert out.returncode == 0, out.stderr
        rows = stored(work / "ferrite.db", "SELECT id, path, browser FROM events ORDER BY id")
        results.append((out.stdout.decode().splitlines()[1:], rows))
    assert results[0] == results[1]


PROBE = '203.0.113.9 - - [10/Mar/2026:10:00:0{} +0000] "{}" 400 157 "-" "-"'
SCANNER_JUNK = [  # as nginx logs them: escaped bytes of TLS, SOCKS and RDP handshakes
    PROBE.format(0, r"\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03"),
    PROBE.format(1, r"\x04\x01\x00PPBS0\x00"),
    PROBE.format(2, r"\x03\x00\x00/*\xE0\x00\x00\x00\x00\x00Cookie: mstshash=Admin"),
    PROBE.format(3, "-"),
]


def test_scanner_junk_is_its_own_skip_reason_not_malformed(tmp_path):
    """TLS, SOCKS and RDP probes fit the log format: counted as not_http, so "malformed"
    still means the format is wrong."""
    page = ('198.51.100.7 - - [10/Mar/2026:10:00:04 +0000] "GET /pricing HTTP/1.1" 200 512 '
            '"-" "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"')
    log = tmp_path / "access.log"
    log.write_text("\n".join([*SCANNER_JUNK, page]) + "\n")
    out = ingest(tmp_path, str(log), "--site", "example.com", "--format", "combined")
    text = out.stdout.decode()
    assert out.returncode == 0, out.stderr.decode()
    assert "not_http 4" in text
    assert "malformed" not in text
    assert [r["path"] for r in stored(tmp_path / "ferrite.db")] == ["/pricing"]


def test_the_wrong_format_fails_loudly(tmp_path):
    """An Apache log read as Caddy's: every line malformed, nothing stored, exit 1."""
    out = ingest(tmp_path, str(LOGS / "combined.log"), "--format", "caddy",
                 "--site", "example.com")
    assert out.returncode == 1
    assert "do not match the caddy format; choose the log's format with --format" in \
        out.stderr.decode()


@pytest.mark.parametrize("site", ["http://x.com/", "x.com/blog", "bad site", ""])
def test_site_must_be_a_domain(tmp_path, site):
    out = ingest(tmp_path, str(LOGS / "combined.log"), "--site", site)
    assert out.returncode == 1
    assert "--site takes a domain such as example.com" in out.stderr.decode()
    assert not (tmp_path / "ferrite.db").exists()


def test_no_site_for_a_log_without_hosts_fails_before_any_database_exists(tmp_path):
    out = ingest(tmp_path, str(LOGS / "combined.log"), "--format", "combined")
    assert out.returncode == 1
    assert "logs no virtual host" in out.stderr.decode()
    assert not (tmp_path / "ferrite.db").exists()
