"""PostgreSQL as the shared store: writes (the postgres sink against a bare psycopg COPY
loop writing the same rows, and the whole chain), one `ferrite serve` node against three
on one database, and the stats standard set on PostgreSQL next to SQLite's.

    bash -c 'source scripts/postgres.sh; .venv/bin/python bench/postgres.py'
    bash -c 'source scripts/postgres.sh; .venv/bin/python bench/postgres.py --nodes --stats'
    .venv/bin/python bench/postgres.py --url postgresql://USER@HOST/DB   # a server of yours

scripts/postgres.sh starts a throwaway cluster (fsync off, as the tests run it: compare
ratios, not absolute figures, with a production server). Each round writes --events
events in batches of --batch into a fresh database: (1) bare: COPY straight into a table of
the same shape (partitioned by day, primary key (id, ts)), no conflict handling; (2) the
sink: `PostgresSink.ferrite_write` (COPY into a temporary table, INSERT ... ON CONFLICT DO
NOTHING RETURNING); (3) the chain: client IP, user agent, bots, session (salts in
PostgreSQL), referrer and the sink, from raw hits. Medians of --rounds.

--nodes: pixel hits/s acknowledged (stored) by one node, then by three nodes (separate
working directories, one database), each driven by three wrk processes of --connections
connections for --seconds (with one node all three aim at it). On this 2-core machine the
nodes, wrk and PostgreSQL share the cores: the figure says what a node costs, not how
far separate machines scale.

--stats: bench/stats.py's standard set (last 30 days) over --stats-events events of 90
days, written once into SQLite and once into PostgreSQL, with rollups and raw.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from ferrite import Pipeline, load_config  # noqa: E402
from ferrite.core.event import Event  # noqa: E402
from ferrite.plugins.postgres import PostgresSink, Settings  # noqa: E402
from ferrite.testing import make_hit  # noqa: E402

UAS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Chrome/131.0.0.0 Safari/537.36",
       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
       "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
       "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"]


def events(n: int) -> list[Event]:
    start = datetime.now(UTC) - timedelta(hours=20)
    return [Event(id=secrets.token_hex(16), ts=start + timedelta(milliseconds=i * 50),
                  site="bench.example", name="pageview", path=f"/p/{i % 500}",
                  referrer="https://duckduckgo.com/" if i % 3 else "", source="search",
                  session=f"{i // 4:032x}", browser="Chrome", os="Windows", device="desktop",
                  props={"plan": "pro"} if i % 10 == 0 else {})
            for i in range(n)]


class Database:
    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.name = f"ferrite_bench_{secrets.token_hex(4)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.name}")
        self.url = urlunsplit(urlsplit(admin)._replace(path=f"/{self.name}"))

    def drop(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def bare(url: str, rows: list[Event], batch: int) -> float:
    sink = PostgresSink(Settings(url=url, table="shape"))  # only to make the same table
    sink.ferrite_startup()
    sink.ferrite_shutdown()
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            with conn.transaction(), conn.cursor() as cur, cur.copy(
                    "COPY shape (id, ts, site, name, path, referrer, source, utm_source, "
                    "utm_medium, utm_campaign, session, browser, os, device, props) "
                    "FROM STDIN") as copy:
                for e in rows[i:i + batch]:
                    copy.write_row((e.id, e.ts, e.site, e.name, e.path, e.referrer, e.source,
                                    e.utm_source, e.utm_medium, e.utm_campaign, e.session,
                                    e.browser, e.os, e.device,
                                    '{"plan":"pro"}' if e.props else None))
        return time.perf_counter() - started


def through_sink(url: str, rows: list[Event], batch: int) -> float:
    sink = PostgresSink(Settings(url=url))
    sink.ferrite_startup()
    try:
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            sink.ferrite_write(rows[i:i + batch])
        return time.perf_counter() - started
    finally:
        sink.ferrite_shutdown()


def through_chain(url: str, n: int, batch: int) -> float:
    hits = [make_hit(url=f"https://bench.example/p/{i % 500}", user_agent=UAS[i % 3],
                     ip=f"198.51.{(i // 250) % 250}.{i % 250 + 1}",
                     referrer="https://duckduckgo.com/" if i % 3 else "") for i in range(n)]
    config = load_config(data={
        "pipeline": {"plugins": ["client_ip", "useragent", "bots", "session", "referrer",
                                 "postgres"], "spool_dir": None},
        "plugins": {"postgres": {"url": url}}})
    with Pipeline(config) as pipeline:
        started = time.perf_counter()
        for i in range(0, n, batch):
            pipeline.write(pipeline.process(hits[i:i + batch]))
        return time.perf_counter() - started


def node_config(url: str) -> str:
    return (f'[pipeline]\nplugins = ["client_ip", "useragent", "bots", "session", "referrer", '
            f'"postgres"]\n[plugins.postgres]\nurl = "{url}"\n[stats]\n'
            f'rollup_interval_seconds = 0\n')


def nodes_run(admin: str, count: int, seconds: int, connections: int) -> tuple[float, int]:
    """Hits/s acknowledged by `count` nodes, and the events stored."""
    import tempfile

    from edge import start, stop, wrk  # bench/edge.py

    db = Database(admin)
    servers = []
    try:
        for n in range(count):
            folder = Path(tempfile.mkdtemp(prefix=f"ferrite-node{n}-"))
            (folder / "ferrite.toml").write_text(node_config(db.url))
            servers.append(start([sys.executable, "-m", "ferrite", "serve", "--bind",
                                  "127.0.0.1:0"], folder, r"listening on (http://\S+)"))
        from concurrent.futures import ThreadPoolExecutor

        targets = [servers[i % count][1] for i in range(3)]
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda u: wrk(u, seconds, connections), targets))
        for process, _ in servers:
            stop(process)
        with psycopg.connect(db.url) as conn:
            (stored,) = conn.execute("SELECT count(*) FROM events").fetchone()
        bad = sum(r["non2xx"] for r in results)
        if bad:
            print(f"  ({bad:.0f} answers were not 2xx)")
        return sum(r["rps"] for r in results), stored
    finally:
        for process, _ in servers:
            if process.poll() is None:
                process.kill()
        db.drop()


def nodes_bench(admin: str, rounds: int, seconds: int, connections: int) -> None:
    runs: dict[int, list[float]] = {1: [], 3: []}
    for _ in range(rounds):
        for count in (1, 3):
            rps, stored = nodes_run(admin, count, seconds, connections)
            runs[count].append(rps)
            print(f"  {count} node(s): {rps:8,.0f} hits/s acknowledged, {stored:,} stored",
                  flush=True)
    one, three = statistics.median(runs[1]), statistics.median(runs[3])
    print(f"one node {one:,.0f} hits/s, three nodes {three:,.0f} hits/s (x{three / one:.2f}), "
          f"medians of {rounds} rounds of {seconds} s, 3 wrk x {connections} connections")


def stats_bench(admin: str, events: int, rounds: int) -> None:
    """The standard set on SQLite and on PostgreSQL over the same generated events."""
    import tempfile

    import stats as sb  # bench/stats.py

    from ferrite.stats.engine import Engine

    folder = Path(tempfile.mkdtemp(prefix="ferrite-pgstats-"))
    sqlite_db = folder / "events.db"
    db = Database(admin)
    try:
        t = time.perf_counter()
        sb.generate(sqlite_db, events, 90)
        print(f"  {events:,} events into SQLite in {time.perf_counter() - t:.0f} s", flush=True)
        pg_sink = PostgresSink(Settings(url=db.url))
        t = time.perf_counter()
        sb.generate(sqlite_db, events, 90, sink=pg_sink)
        print(f"  the same into PostgreSQL in {time.perf_counter() - t:.0f} s", flush=True)
        with psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        engines = {
            "sqlite": Engine(load_config(data={"plugins": {"sqlite": {"path": str(sqlite_db)}}})),
            "postgres": Engine(load_config(data={"pipeline": {"plugins": ["postgres"]},
                                                 "plugins": {"postgres": {"url": db.url}}})),
        }
        table: dict[str, dict[str, float]] = {}
        for name, engine in engines.items():
            sb.fresh_realtime(sqlite_db) if name == "sqlite" else pg_realtime(db.url)
            t = time.perf_counter()
            days = engine.build()
            print(f"  {name}: rollups of {days} days built in {time.perf_counter() - t:.1f} s",
                  flush=True)
            table[f"{name} rollups"] = sb.run_set(engine, rounds)
            table[f"{name} raw"] = raw_set(engine, name, max(1, rounds // 2))
            engine.close()
        print(f"\n{events:,} events over 90 days; medians in ms")
        columns = list(table)
        print(f"{'query':<20}" + "".join(f"{c:>18}" for c in columns) + f"{'pg/sqlite raw':>15}")
        for q in [*sb.SET, "whole set", "realtime"]:
            ratio = table["postgres raw"][q] / table["sqlite raw"][q]
            print(f"{q:<20}" + "".join(f"{table[c][q]:>18.1f}" for c in columns) +
                  f"{ratio:>15.2f}")
    finally:
        db.drop()


def pg_realtime(url: str) -> None:
    now = datetime.now(UTC)
    sink = PostgresSink(Settings(url=url))
    sink.ferrite_startup()
    sink.ferrite_write([Event(id=f"rt{int(now.timestamp())}{i:020x}",
                              ts=now - timedelta(seconds=(i * 7919 % 1800)),
                              site="bench.example", name="pageview", path=f"/p/{i % 2000}",
                              session=f"rt{i % 150}", browser="Chrome", os="Windows",
                              device="desktop") for i in range(300)])
    sink.ferrite_shutdown()


def raw_set(engine, name: str, rounds: int) -> dict[str, float]:
    """The set with no rollup to read (every day's generation made not to add up)."""
    import stats as sb

    flip = "UPDATE stats_days SET gen = -1 - gen"
    if name == "sqlite":
        conn = engine.store._open()
        conn.execute(flip)
        try:
            return sb.run_set(engine, rounds)
        finally:
            conn.execute(flip)
            conn.close()
    with psycopg.connect(engine.store.url, autocommit=True) as conn:
        conn.execute(flip)
        try:
            return sb.run_set(engine, rounds)
        finally:
            conn.execute(flip)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get("FERRITE_TEST_POSTGRES"),
                        help="an admin URL that may create databases (default: the cluster "
                        "scripts/postgres.sh started)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nodes", action="store_true", help="one node against three")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--stats", action="store_true", help="the stats set, PG vs SQLite")
    parser.add_argument("--stats-events", type=int, default=1_000_000)
    parser.add_argument("--skip-writes", action="store_true")
    args = parser.parse_args()
    if not args.url:
        raise SystemExit("no server: run under scripts/postgres.sh (see the docstring), or "
                         "pass --url")
    sys.path.insert(0, str(ROOT / "bench"))
    if args.nodes:
        nodes_bench(args.url, args.rounds, args.seconds, args.connections)
    if args.stats:
        stats_bench(args.url, args.stats_events, args.rounds)
    if args.skip_writes:
        return
    rows = events(args.events)
    times: dict[str, list[float]] = {"bare COPY": [], "postgres sink": [], "whole chain": []}
    for _ in range(args.rounds):
        for name, run in (("bare COPY", lambda u: bare(u, rows, args.batch)),
                          ("postgres sink", lambda u: through_sink(u, rows, args.batch)),
                          ("whole chain", lambda u: through_chain(u, args.events,
                                                                  args.batch))):
            db = Database(args.url)
            try:
                times[name].append(run(db.url))
            finally:
                db.drop()
    base = args.events / statistics.median(times["bare COPY"])
    print(f"{args.events:,} events in batches of {args.batch}, medians of {args.rounds} "
          f"rounds:")
    for name, values in times.items():
        rate = args.events / statistics.median(values)
        print(f"  {name:14} {rate:10,.0f} events/s   {rate / base:5.2f}x of bare COPY   "
              f"rounds {[round(args.events / v) for v in values]}")


if __name__ == "__main__":
    main()
