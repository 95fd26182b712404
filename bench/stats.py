"""The dashboard's standard query set against the SQLite read side, with DuckDB over a
Parquet copy of the same events beside it.

    .venv/bin/python bench/stats.py [--events 1000000 10000000] [--rounds 5]

The set, for the last 30 days: an aggregate with comparison, a daily time series and six
top-10 breakdowns (page, source, entry page, browser, OS, device); plus realtime visitors.
Each set runs with the per-day rollups (as `ferrite serve` keeps them) and on the raw
events (no rollups), and DuckDB answers the same definitions (visits rebuilt with window
functions) over Parquet. Medians of --rounds runs. Needs `pip install -e .[bench]`.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ferrite import load_config  # noqa: E402
from ferrite.core.event import Event  # noqa: E402
from ferrite.plugins.sqlite import Settings, SqliteSink  # noqa: E402
from ferrite.stats.engine import Engine  # noqa: E402

SITE = "bench.example"
BROWSERS = [("Chrome", "Windows", "desktop", 30), ("Chrome", "Mac OS X", "desktop", 10),
            ("Safari", "iOS", "mobile", 18), ("Chrome Mobile", "Android", "mobile", 20),
            ("Firefox", "Windows", "desktop", 5), ("Firefox", "Linux", "desktop", 2),
            ("Edge", "Windows", "desktop", 6), ("Safari", "Mac OS X", "desktop", 5),
            ("Samsung Internet", "Android", "mobile", 2), ("Safari", "iOS", "tablet", 2)]
SET = {
    "aggregate+compare": {"metrics": ["visitors", "visits", "pageviews", "bounce_rate",
                                      "visit_duration"],
                          "include": {"comparisons": {"mode": "previous_period"}}},
    "timeseries/day": {"metrics": ["visitors", "pageviews"], "dimensions": ["time:day"]},
    **{f"top {d.split(':')[1]}": {"metrics": ["visitors"], "dimensions": [d],
                                  "pagination": {"limit": 10}}
       for d in ("event:page", "visit:source", "visit:entry_page", "visit:browser",
                 "visit:os", "visit:device")},
}


def generate(db: Path, events: int, days: int, seed: int = 7, sink=None) -> None:
    """The same events for a seed; into the SQLite file `db`, or into `sink`."""
    rng = random.Random(seed)
    pages = [f"/{rng.choice(['blog', 'docs', 'p', 'shop'])}/{i}" for i in range(2000)]
    page_w = [1 / (i + 1) for i in range(len(pages))]
    refs = [f"https://{w}.example{i}.com/" for i, w in
            enumerate(rng.choice(["news", "www", "blog", "forum"]) for _ in range(300))]
    refs += ["https://www.google.com/", "https://duckduckgo.com/", "https://t.co/x"] * 40
    browsers = [b[:3] for b in BROWSERS]
    browser_w = [b[3] for b in BROWSERS]
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    sink = sink or SqliteSink(Settings(path=str(db), synchronous="OFF"))
    sink.ferrite_startup()
    made, n, batch = 0, 0, []
    span = (end - start).total_seconds()
    gap = span / (events / 3.4)  # sessions start in time order, as live traffic arrives
    begin = start
    while made < events:
        n += 1
        begin += timedelta(seconds=rng.expovariate(1 / gap))
        ts = begin
        browser, os_, device = rng.choices(browsers, browser_w)[0]
        ref = rng.choice(refs) if rng.random() < 0.6 else ""
        source = "search" if "google" in ref or "duck" in ref else "referral" if ref else "direct"
        utm = rng.choice(["newsletter", "spring", "ads"]) if rng.random() < 0.05 else ""
        for _ in range(min(rng.choice([1, 1, 2, 3, 4, 5, 8]), events - made)):
            path = rng.choices(pages, page_w)[0]
            if utm:
                path += f"?utm_source={utm}"
            batch.append(Event(id=f"{int(ts.timestamp() * 1000):012x}{made:020x}", ts=ts,
                               site=SITE, name="pageview" if rng.random() < 0.93 else "Signup",
                               path=path, referrer=ref, source=source, utm_source=utm,
                               session=f"{n:032x}", browser=browser, os=os_, device=device))
            made += 1
            ts += timedelta(seconds=rng.expovariate(1 / 90))
        if len(batch) >= 20_000:
            sink.ferrite_write(batch)
            batch = []
    sink.ferrite_write(batch)
    sink.ferrite_shutdown()


def fresh_realtime(db: Path, seed: int = 7) -> None:
    """A few hundred hits in the last half hour, written just before the sets run."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    sink = SqliteSink(Settings(path=str(db)))
    sink.ferrite_startup()
    sink.ferrite_write([Event(id=f"rt{int(now.timestamp())}{i:020x}",
                              ts=now - timedelta(seconds=rng.random() * 1800), site=SITE,
                              name="pageview", path=f"/p/{rng.randrange(2000)}",
                              session=f"rt{i % 150}", browser="Chrome", os="Windows",
                              device="desktop") for i in range(300)])
    sink.ferrite_shutdown()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def run_set(engine: Engine, rounds: int) -> dict[str, float]:
    per: dict[str, list[float]] = {name: [] for name in SET}
    whole: list[float] = []
    for _ in range(rounds):
        total = 0.0
        for name, body in SET.items():
            ms = timed(lambda b=body: engine.answer({"site_id": SITE, "date_range": "30d",
                                                     **b}))
            per[name].append(ms)
            total += ms
        whole.append(total)
    out = {name: statistics.median(v) for name, v in per.items()}
    out["whole set"] = statistics.median(whole)
    out["realtime"] = statistics.median(
        timed(lambda: engine.answer({"site_id": SITE, "metrics": ["visitors"],
                                     "date_range": "realtime"})) for _ in range(rounds * 3))
    return out


DUCK_VISITS = """
CREATE OR REPLACE TEMP VIEW x AS
WITH ev AS (
  SELECT *, epoch_ms(ts) AS ms, CAST(ts AS DATE) AS day,
    regexp_replace(path, '\\?[^#]*', '') AS page,
    CASE WHEN utm_source <> '' THEN utm_source WHEN source IN ('direct', 'internal', '')
         THEN '' ELSE regexp_extract(referrer, '^https?://(?:www\\.)?([^/]+)', 1) END AS src
  FROM read_parquet('{parquet}') WHERE ts >= TIMESTAMPTZ '{start}' AND ts < TIMESTAMPTZ '{end}'
), mk AS (
  SELECT *, CASE WHEN ms - lag(ms) OVER w <= 1800000 THEN 0 ELSE 1 END AS brk FROM ev
  WINDOW w AS (PARTITION BY day, session ORDER BY ms, id)
), vn AS (
  SELECT *, sum(brk) OVER (PARTITION BY day, session ORDER BY ms, id
                           ROWS UNBOUNDED PRECEDING) AS vno FROM mk
)
SELECT *, first_value(page) OVER vw AS entry_page, first_value(src) OVER vw AS v_source,
  first_value(browser) OVER vw AS v_browser, first_value(os) OVER vw AS v_os,
  first_value(device) OVER vw AS v_device, count(*) OVER vw AS v_events,
  count(*) FILTER (WHERE name = 'pageview') OVER vw AS v_pageviews,
  (max(ms) OVER vw - min(ms) OVER vw) / 1000.0 AS v_duration
FROM vn WINDOW vw AS (PARTITION BY day, session, vno ORDER BY ms, id
                      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
"""


def duck_group(key: str) -> str:
    k = f"{key} AS k, " if key else ""
    g = "k, " if key else ""
    return f"""
WITH v AS (SELECT {k}day, session, vno, count(*) FILTER (WHERE name = 'pageview') AS pv,
             count(*) AS n, max(CASE WHEN v_events = 1 AND v_pageviews = 1 THEN 1 ELSE 0 END)
             AS b, max(v_duration) AS d FROM x GROUP BY ALL),
     s AS (SELECT {g}day, session, count(*) AS visits, sum(pv) AS pv, sum(b) AS b,
             sum(d) AS d FROM v GROUP BY ALL)
SELECT {g}count(*) AS visitors, sum(visits), sum(pv), sum(b), sum(d) FROM s
{"GROUP BY k ORDER BY visitors DESC LIMIT 10" if key else ""}"""


def run_duckdb(parquet: Path, rounds: int) -> dict[str, float] | None:
    try:
        import duckdb
    except ImportError:
        return None
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    today = datetime.now(UTC).date()
    cur = (today - timedelta(days=30), today)
    prev = (today - timedelta(days=60), today - timedelta(days=30))

    def view(rng):
        con.execute(DUCK_VISITS.format(parquet=parquet, start=rng[0], end=rng[1]))

    def q(sql: str) -> None:
        con.execute(sql).fetchall()

    keys = {"top page": "page", "top source": "v_source", "top entry_page": "entry_page",
            "top browser": "v_browser", "top os": "v_os", "top device": "v_device"}
    per: dict[str, list[float]] = {name: [] for name in SET}
    whole = []
    for _ in range(rounds):
        total = 0.0

        def agg() -> None:
            view(cur)
            q(duck_group(""))
            view(prev)
            q(duck_group(""))
        total += (ms := timed(agg))
        per["aggregate+compare"].append(ms)
        view(cur)
        total += (ms := timed(lambda: q(duck_group("day").replace(" LIMIT 10", ""))))
        per["timeseries/day"].append(ms)
        for name, key in keys.items():
            total += (ms := timed(lambda k=key: q(duck_group(k))))
            per[name].append(ms)
        whole.append(total)
    out = {name: statistics.median(v) for name, v in per.items()}
    out["whole set"] = statistics.median(whole)
    now = datetime.now(UTC)
    out["realtime"] = statistics.median(timed(lambda: q(
        f"SELECT count(DISTINCT session) FROM read_parquet('{parquet}') WHERE ts >= "
        f"TIMESTAMPTZ '{(now - timedelta(minutes=30)).isoformat()}'")) for _ in range(rounds))
    return out


def to_parquet(db: Path, parquet: Path) -> None:
    import sqlite3

    import duckdb
    conn = sqlite3.connect(db)
    tmp = parquet.with_suffix(".csv")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "ts", "session", "name", "path", "referrer", "source", "utm_source",
                    "browser", "os", "device"])
        for row in conn.execute("SELECT id, ts, session, name, path, coalesce(referrer, ''), "
                                "source, coalesce(utm_source, ''), browser, os, device "
                                "FROM events"):
            w.writerow(row)
    conn.close()
    duckdb.execute(f"COPY (SELECT * REPLACE (CAST(ts AS TIMESTAMPTZ) AS ts) FROM "
                   f"read_csv('{tmp}', all_varchar = true)) TO '{parquet}' (FORMAT parquet)")
    tmp.unlink()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", metavar="DIR", help="keep the databases in DIR")
    parser.add_argument("--zone", default="UTC", help="the site's time zone (IANA name)")
    parser.add_argument("--raw-max", type=int, default=1_000_000, metavar="N",
                        help="time the no-rollup path only up to N events (it is slow)")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="ferrite-stats-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for n in args.events:
        db = folder / f"events-{n}.db"
        if not db.exists():
            t = time.perf_counter()
            generate(db, n, args.days)
            print(f"{n:,} events written in {time.perf_counter() - t:.0f} s", flush=True)
        fresh_realtime(db)
        engine = Engine(load_config(data={"plugins": {"sqlite": {"path": str(db)}},
                                          "stats": {"timezone": args.zone}}))
        t = time.perf_counter()
        days = engine.build()
        print(f"rollups of {days} days built in {time.perf_counter() - t:.1f} s", flush=True)
        rolled = run_set(engine, args.rounds)
        raw = dict.fromkeys([*SET, "whole set", "realtime"], float("nan"))
        if n <= args.raw_max:
            conn = engine.store._open()  # the same queries with no rollup to read
            conn.execute("UPDATE stats_days SET gen = -1 - gen")  # no day adds up
            raw = run_set(engine, max(1, args.rounds // 2))
            conn.execute("UPDATE stats_days SET gen = -1 - gen")
            conn.close()
        engine.close()
        parquet = folder / f"events-{n}.parquet"
        duck = None
        try:
            if not parquet.exists():
                to_parquet(db, parquet)
            duck = run_duckdb(parquet, args.rounds)
        except ImportError:
            pass
        results[n] = rolled
        print(f"\n{n:,} events over {args.days} days, site in {args.zone}; medians in ms")
        print(f"{'query':<20}{'rollups':>10}{'raw':>10}{'duckdb':>10}{'duck/rollups':>14}")
        for name in [*SET, "whole set", "realtime"]:
            d = duck[name] if duck else float("nan")
            print(f"{name:<20}{rolled[name]:>10.1f}{raw[name]:>10.1f}{d:>10.1f}"
                  f"{d / rolled[name]:>14.1f}")
    if len(results) > 1:
        small, big = sorted(results)[0], sorted(results)[-1]
        print(f"\n{big // small}x the events: whole set x"
              f"{results[big]['whole set'] / results[small]['whole set']:.2f}, realtime x"
              f"{results[big]['realtime'] / results[small]['realtime']:.2f}")


if __name__ == "__main__":
    main()
