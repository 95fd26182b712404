"""Several real `ferrite serve` nodes on one PostgreSQL, each with its own config and
working directory (no shared files, as on several machines): one schema when they start at
once, one session per visitor across nodes, the same answers and logins on every node,
nothing acknowledged lost when a node is killed and the database restarts under load, and
the salt switching on every node at a real (faked) midnight."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import psycopg
import pytest

from ferrite.testing import DESKTOP_CHROME, IPHONE_SAFARI

from .edge_helpers import Server, ferrite_serve
from .postgres_helpers import fresh_database
from .test_postgres_outage import pg_ctl

pytestmark = pytest.mark.slow
PAGE = "https://ex.com/"


def node_config(url: str) -> str:
    """Retries give up after about two seconds here, so an outage of a few seconds
    reaches the spool."""
    return (f'[pipeline]\nplugins = ["client_ip", "useragent", "bots", "session", "referrer", '
            f'"postgres"]\nretry_attempts = 2\nretry_initial_seconds = 0.2\n\n'
            f'[plugins.postgres]\nurl = "{url}"\nconnect_timeout_seconds = 1\n\n'
            f'[sites."ex.com"]\ntimezone = "UTC"\n')


@contextlib.contextmanager
def nodes(root: Path, url: str, count: int = 3, fake_time: str | None = None):
    """`count` nodes started at the same moment, each in a folder of its own."""
    folders = []
    for n in range(count):
        folder = root / f"node{n}"
        folder.mkdir(exist_ok=True)
        # trust auth ignores the password: it is there to be seen nowhere
        (folder / "ferrite.toml").write_text(node_config(url.replace("postgres@",
                                                                     "postgres:hunter2@")))
        folders.append(folder)
    managers = [ferrite_serve(f, fake_time=fake_time) for f in folders]
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(count) as pool:
        started = list(pool.map(lambda m: m.__enter__(), managers))
        for manager in managers:
            stack.push(manager.__exit__)
        yield started, folders
    for server in started:
        assert not [line for line in server.output if "hunter2" in line]


def hit(server: Server, name: str = "pageview", path: str = "/", ua: str = DESKTOP_CHROME
        ) -> int:
    return httpx.post(server.url + "/api/event", timeout=30, headers={
        "User-Agent": ua, "Content-Type": "text/plain"},
        content=json.dumps({"n": name, "u": PAGE.rstrip("/") + path})).status_code


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def wait_for_events(url: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while query(url, "SELECT count(*) FROM events")[0][0] < count:
        assert time.monotonic() < deadline, f"fewer than {count} events stored"
        time.sleep(0.1)


def ferrite(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferrite", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_three_nodes_start_at_once_and_answer_as_one(tmp_path):
    with fresh_database() as url, nodes(tmp_path, url) as (servers, folders):
        # one schema: one events table, one salt per day, each partition once
        assert query(url, "SELECT count(*) FROM pg_class WHERE relname = 'events'") == [(1,)]
        migrated = dict(query(url, "SELECT component, version FROM ferrite_schema"))
        assert {"events:events": 1, "stats": 1, "salts": 1}.items() <= migrated.items()
        days = [d for (d,) in query(url, "SELECT day FROM ferrite_salts ORDER BY day")]
        assert len(days) == len(set(days)) == 2  # today's, and tomorrow's made ahead
        for server in servers:
            assert not [line for line in server.output if "Error" in line], server.output

        # one visitor's hits spread over the three nodes: one session
        for n, server in enumerate(servers):
            assert hit(server, path=f"/n{n}") == 202
        assert hit(servers[1], path="/other", ua=IPHONE_SAFARI) == 202  # another visitor
        wait_for_events(url, 4)
        sessions = dict(query(url, "SELECT path, session FROM events"))
        assert sessions["/n0"] == sessions["/n1"] == sessions["/n2"] != sessions["/other"]

        # a key made on one node reads on every node, with the same answer
        out = ferrite(folders[0], "keys", "create", "--site", "ex.com", "--name", "ops")
        assert out.returncode == 0, out.stderr
        key = out.stdout.strip()
        body = {"site_id": "ex.com", "metrics": ["visitors", "visits", "pageviews"],
                "date_range": "day", "dimensions": ["event:page"]}
        answers = [httpx.post(s.url + "/api/v2/query", json=body, timeout=30,
                              headers={"Authorization": f"Bearer {key}"}) for s in servers]
        assert [a.status_code for a in answers] == [200, 200, 200], answers[0].text
        results = [a.json()["results"] for a in answers]
        assert results[0] == results[1] == results[2]
        assert sorted(r["dimensions"][0] for r in results[0]) == ["/n0", "/n1", "/n2", "/other"]
        aggregate = httpx.get(servers[2].url + "/api/v1/stats/aggregate", timeout=30,
                              params={"site_id": "ex.com", "period": "day",
                                      "metrics": "visitors,pageviews"},
                              headers={"Authorization": f"Bearer {key}"}).json()
        assert aggregate["results"]["visitors"]["value"] == 2
        assert aggregate["results"]["pageviews"]["value"] == 4

        # a login on one node is a login on all (users, sessions and the secret shared)
        out = ferrite(folders[1], "users", "add", "ann@example.com", "--role", "admin",
                      "--password-stdin", stdin="a-long-password\n")
        assert out.returncode == 0, out.stderr
        with httpx.Client(timeout=30) as browser:  # one cookie jar, as behind one domain
            page = browser.get(servers[0].url + "/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]
            login = browser.post(servers[0].url + "/login", data={
                "email": "ann@example.com", "password": "a-long-password", "csrf": csrf})
            assert login.status_code in (302, 303), login.text
            for server in servers:
                site = browser.get(server.url + "/dashboard/ex.com/?period=day")
                assert site.status_code == 200 and "/n1" in site.text


def test_a_killed_node_and_a_database_restart_under_load_lose_nothing(tmp_path):
    """Six clients post uniquely named events across three nodes; one node is killed with
    SIGKILL, then PostgreSQL restarts, while they run. Afterwards (the spools replayed)
    every event a node acknowledged is stored exactly once."""
    with fresh_database() as url:
        acknowledged: set[str] = set()
        lock = threading.Lock()
        stop = threading.Event()
        with nodes(tmp_path, url) as (servers, folders):
            alive = list(servers)

            def client(worker: int) -> None:
                with httpx.Client(timeout=60) as http:
                    for i in range(100_000):
                        if stop.is_set() or not alive:
                            return
                        server = alive[(worker + i) % len(alive)]
                        name = f"w{worker}-{i}"
                        try:
                            response = http.post(server.url + "/api/event", content=json.dumps(
                                {"n": name, "u": PAGE}), headers={"User-Agent": DESKTOP_CHROME})
                        except httpx.HTTPError:
                            with contextlib.suppress(ValueError):
                                alive.remove(server)  # the load balancer drops it
                            continue
                        if response.status_code == 202:
                            with lock:
                                acknowledged.add(name)

            def acked_at_least(n: int, timeout: float = 60) -> None:
                deadline = time.monotonic() + timeout
                while len(acknowledged) < n:
                    assert time.monotonic() < deadline, f"only {len(acknowledged)} acknowledged"
                    time.sleep(0.01)

            with ThreadPoolExecutor(6) as pool:
                for worker in range(6):
                    pool.submit(client, worker)
                acked_at_least(300)
                servers[2].process.kill()  # SIGKILL, mid-stream
                acked_at_least(len(acknowledged) + 300)
                pg_ctl("stop")
                during = len(acknowledged)
                # hits keep coming: retried, then spooled and acknowledged; the nodes say
                # they are not ready (naming the sink, never the password)
                not_ready = []
                until = time.monotonic() + 5
                while time.monotonic() < until:
                    ready = httpx.get(servers[0].url + "/readyz", timeout=10)
                    if ready.status_code == 503:
                        not_ready.append(ready.json()["problems"])
                    time.sleep(0.2)
                during = len(acknowledged) - during
                pg_ctl("start")
                acked_at_least(len(acknowledged) + 300)
                stop.set()
            assert not_ready and "sink postgres is failing" in not_ready[-1][0]
            assert "postgres:***@" in not_ready[-1][0] and "hunter2" not in str(not_ready)
            deadline = time.monotonic() + 30  # ready again once its pool reconnected
            while (ready := httpx.get(servers[0].url + "/readyz", timeout=10)).status_code \
                    != 200:
                assert time.monotonic() < deadline, ready.text
                time.sleep(0.5)
            assert servers[0].stop() == 0 and servers[1].stop() == 0
        # each node replays its own spool (a killed node's was on its own disk)
        replayed = []
        for folder in folders:
            out = ferrite(folder, "replay")
            assert out.returncode == 0, out.stdout + out.stderr
            replayed.append(out.stdout + out.stderr)
        print(f"acknowledged while the database was down: {during}; replay: {replayed}")
        assert during > 0
        names = Counter(n for (n,) in query(url, "SELECT name FROM events"))
        twice = [n for n, c in names.items() if c > 1]
        assert not twice, f"stored more than once: {twice[:5]}"
        missing = acknowledged - set(names)
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
        assert len(acknowledged) >= 900


def test_two_nodes_switch_salts_at_a_real_midnight(tmp_path):
    """Both nodes start 8 s before midnight (libfaketime); the same visitor before and after
    gets one session per day on both nodes, and the salt older than yesterday is gone."""
    with fresh_database() as url:
        with psycopg.connect(url) as conn:  # a salt left from the day before yesterday's eve
            conn.execute("CREATE TABLE ferrite_salts (day date PRIMARY KEY, salt bytea NOT NULL)")
            conn.execute("INSERT INTO ferrite_salts VALUES ('2026-03-09', '\\x00')")
        started = time.monotonic()
        with nodes(tmp_path, url, 2, fake_time="2026-03-10 23:59:52") as (servers, _):
            for n, server in enumerate(servers):
                assert hit(server, path=f"/before{n}") == 202
            wait_for_events(url, 2)
            assert query(url, "SELECT count(*) FROM ferrite_salts WHERE day = '2026-03-09'") \
                == [(1,)]  # still yesterday's
            time.sleep(max(0.0, started + 10 - time.monotonic()))  # past midnight
            for n, server in enumerate(servers):
                assert hit(server, path=f"/after{n}") == 202
            wait_for_events(url, 4)
        rows = dict(query(url, "SELECT path, session FROM events"))
        assert rows["/before0"] == rows["/before1"]
        assert rows["/after0"] == rows["/after1"]
        assert rows["/before0"] != rows["/after0"]
        days = {d for (d,) in query(url, "SELECT day FROM ferrite_salts")}
        assert date(2026, 3, 9) not in days
        assert {date(2026, 3, 10), date(2026, 3, 11)} <= days
        stamps = dict(query(url, "SELECT path, ts::date FROM events"))
        assert stamps["/before0"] == date(2026, 3, 10) and stamps["/after1"] == date(2026, 3, 11)


def test_a_node_started_before_its_database_waits_for_it(tmp_path):
    """Boot order is free: a node whose PostgreSQL is still down retries (a warning per
    attempt, the password masked) and serves once the database is up."""
    with fresh_database() as url:
        node = nodes(tmp_path, url, 1)
        pool = ThreadPoolExecutor(1)
        pg_ctl("stop")
        try:
            starting = pool.submit(node.__enter__)
            time.sleep(4)
            assert not starting.done()
        finally:
            pg_ctl("start")
        (server,), _ = starting.result(timeout=90)
        pool.shutdown()
        try:
            assert hit(server, path="/late") == 202
            wait_for_events(url, 1)
        finally:
            node.__exit__(None, None, None)
        waiting = [line for line in server.output if "retrying in" in line]
        assert waiting and "postgres:***@" in waiting[0]


def test_a_node_is_not_ready_while_its_database_is_away_even_without_hits(tmp_path):
    """No hit has to fail first: /readyz pings the database. Reads answer 503 naming it,
    the password masked, and everything is back once the database is."""
    with fresh_database() as url, nodes(tmp_path, url, 1) as ((server,), (folder,)):
        out = ferrite(folder, "keys", "create", "--site", "ex.com")
        assert out.returncode == 0, out.stderr
        api = {"Authorization": f"Bearer {out.stdout.strip()}"}
        body = {"site_id": "ex.com", "metrics": ["visitors"], "date_range": "day"}
        assert ferrite(folder, "users", "add", "ann@example.com", "--role", "admin",
                       "--password-stdin", stdin="a-long-password\n").returncode == 0
        browser = httpx.Client(base_url=server.url, timeout=30)
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text)[1]
        browser.post("/login", data={"email": "ann@example.com",
                                     "password": "a-long-password", "csrf": csrf})
        assert browser.get("/dashboard/ex.com/?period=day").status_code == 200
        ready = httpx.get(server.url + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        pg_ctl("stop")
        try:
            time.sleep(2.5)  # past the cached answer
            ready = httpx.get(server.url + "/readyz", timeout=10)
            assert ready.status_code == 503
            (problem,) = ready.json()["problems"]
            assert "cannot be reached" in problem and "postgres:***@" in problem
            answer = httpx.post(server.url + "/api/v2/query", json=body, headers=api,
                                timeout=30)
            assert answer.status_code == 503 and answer.headers["Retry-After"]
            assert "postgres:***@" in answer.json()["error"]
            page = browser.get("/dashboard/ex.com/?period=day")
            assert page.status_code == 503 and "cannot be reached" in page.text
            assert "hunter2" not in answer.text + page.text + ready.text
        finally:
            pg_ctl("start")
        # all back once each pool has reconnected (psycopg_pool backs off, from 1 s
        # doubling, while the database is away)
        checks = {"readyz": lambda: httpx.get(server.url + "/readyz", timeout=10),
                  "api": lambda: httpx.post(server.url + "/api/v2/query", json=body,
                                            headers=api, timeout=30),
                  "dashboard": lambda: browser.get("/dashboard/ex.com/?period=day")}
        deadline = time.monotonic() + 40
        for name, check in checks.items():
            while (answer := check()).status_code != 200:
                assert time.monotonic() < deadline, (name, answer.text[:300])
                time.sleep(0.5)
        browser.close()
