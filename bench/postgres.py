"""Writing events into PostgreSQL: the postgres sink against a bare psycopg COPY loop
writing the same rows, and the whole chain into PostgreSQL.

    bash -c 'source scripts/postgres.sh; .venv/bin/python bench/postgres.py'
    .venv/bin/python bench/postgres.py --url postgresql://USER@HOST/DB   # a server of yours

scripts/postgres.sh starts a throwaway cluster (fsync off, as the tests run it: compare
ratios, not absolute figures, with a production server). Each round writes --events
events in batches of --batch into a fresh database: (1) bare: COPY straight into a table of
the same shape (partitioned by day, primary key (id, ts)), no conflict handling; (2) the
sink: `PostgresSink.ferrite_write` (COPY into a temporary table, INSERT ... ON CONFLICT DO
NOTHING RETURNING); (3) the chain: client IP, user agent, bots, session (salts in
PostgreSQL), referrer and the sink, from raw hits. Medians of --rounds.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get("FERRITE_TEST_POSTGRES"),
                        help="an admin URL that may create databases (default: the cluster "
                        "scripts/postgres.sh started)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.url:
        raise SystemExit("no server: run under scripts/postgres.sh (see the docstring), or "
                         "pass --url")
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
