"""Events/s through the whole default chain into SQLite, against a bare loop doing the
same work (same parsers, same hash, same SQL) with no plugin machinery.

    .venv/bin/python bench/pipeline.py [--hits 200000] [--rounds 3]

Rounds alternate chain and bare loop in one process, each into a fresh database, and the
medians are compared, because this machine's timings drift from minute to minute.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ferrite import Hit, Pipeline, load_config  # noqa: E402
from ferrite.core.event import iso_utc, new_event_id  # noqa: E402
from ferrite.plugins import bots as bots_plugin  # noqa: E402
from ferrite.plugins import useragent  # noqa: E402
from ferrite.plugins.client_ip import parse_ip  # noqa: E402
from ferrite.plugins.sqlite import EVENT_COLUMNS  # noqa: E402

DATA = ROOT / "tests" / "data" / "bots"
PAGES = ["/", "/pricing", "/docs", "/docs/install", "/blog/ferrite-1-0", "/about", "/contact",
         "/blog", "/docs/plugins", "/signup"]
REFERRERS = ["", "", "", "https://www.google.com/search?q=ferrite+analytics",
             "https://duckduckgo.com/", "https://news.ycombinator.com/item?id=4242",
             "https://t.co/xyz", "https://example.com/", "https://blog.someone.net/post?id=3"]


def make_hits(n: int, seed: int = 7) -> list[Hit]:
    """Synthetic hits: Zipf-weighted real user agents (about 8% crawlers), 20k visitors."""
    rng = random.Random(seed)
    browsers = (DATA / "browsers.txt").read_text().splitlines()
    crawlers = (DATA / "crawlers.txt").read_text().splitlines()
    rng.shuffle(browsers)
    weights = [1 / (rank + 1) for rank in range(len(browsers))]
    visitors = [(str(ipaddress.IPv4Address(rng.randrange(0x01000000, 0xDF000000))),
                 rng.choices(browsers, weights)[0]) for _ in range(20_000)]
    start = datetime.now(UTC) - timedelta(hours=1)
    hits = []
    for i in range(n):
        ip, ua = rng.choice(visitors)
        if rng.random() < 0.08:
            ua = rng.choice(crawlers)
        page = rng.choice(PAGES)
        if rng.random() < 0.1:
            page += "?utm_source=newsletter&utm_medium=email&utm_campaign=nov&ref=abc"
        hits.append(Hit(site="example.com", url="https://example.com" + page,
                        referrer=rng.choice(REFERRERS), peer=ip,
                        headers={"user-agent": ua, "accept-language": "en"},
                        ts=start + timedelta(milliseconds=i * 10),
                        props={"plan": "pro"} if rng.random() < 0.05 else {}))
    return hits


def run_chain(hits: list[Hit], db: Path) -> float:
    config = load_config(data={
        "pipeline": {"plugins": ["client_ip", "useragent", "bots", "session", "referrer",
                                 "sqlite"]},
        "plugins": {"sqlite": {"path": str(db)}},
    })
    with Pipeline(config) as pipeline:
        t0 = time.perf_counter()
        pipeline.run(hits)
        return time.perf_counter() - t0


def run_bare(hits: list[Hit], db: Path, batch_size: int = 500) -> float:
    """The same work by hand: same parsers and caches, same hash, same table and SQL."""
    agents = useragent.UserAgents(useragent.Settings())
    bots = bots_plugin.Bots(bots_plugin.Settings())
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    columns = ", ".join(EVENT_COLUMNS)
    conn.execute(f"CREATE TABLE events ({', '.join(c + ' TEXT' for c in EVENT_COLUMNS)}, "
                 "PRIMARY KEY (id))")
    conn.execute("CREATE INDEX ix_site_ts ON events (site, ts)")
    conn.execute("CREATE INDEX ix_ts ON events (ts)")
    sql = f"INSERT OR IGNORE INTO events ({columns}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    salt = os.urandom(32)
    t0 = time.perf_counter()
    rows = []
    for hit in hits:
        ip = str(parse_ip(hit.peer))
        ua = hit.headers.get("user-agent", "")
        agent = agents.summarize(ua)
        if bots.is_spam_referrer(hit.referrer) or bots.ua_reason(
                ua, agent.is_spider, agent == bots_plugin.UNRECOGNIZED):
            continue
        digest = blake2b(key=salt, digest_size=16)
        digest.update(f"{hit.site}\x00{ip}\x00{ua}".encode())
        page = urlsplit(hit.url)
        utm = [(k, v) for k, v in parse_qsl(page.query) if k.startswith("utm_")]
        tags = dict(utm)
        path = page.path + ("?" + urlencode(utm) if utm else "")
        ref = urlsplit(hit.referrer) if hit.referrer else None
        referrer = f"{ref.scheme}://{ref.hostname}{ref.path}" if ref and ref.hostname else ""
        rows.append((new_event_id(hit.ts.timestamp()), iso_utc(hit.ts), hit.site, hit.name,
                     path, referrer, "referral" if referrer else "direct",
                     tags.get("utm_source", ""), tags.get("utm_medium", ""),
                     tags.get("utm_campaign", ""), digest.hexdigest(), agent.browser, agent.os,
                     agent.device, json.dumps(hit.props) if hit.props else None))
        if len(rows) >= batch_size:
            with conn:
                conn.executemany(sql, rows)
            rows = []
    if rows:
        with conn:
            conn.executemany(sql, rows)
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hits", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    hits = make_hits(args.hits)
    print(f"{len(hits):,} hits, {len({h.headers['user-agent'] for h in hits}):,} distinct "
          f"user agents, {len({h.peer for h in hits}):,} visitors")
    chain, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            chain.append(len(hits) / run_chain(hits, Path(tmp) / f"chain{r}.db"))
            bare.append(len(hits) / run_bare(hits, Path(tmp) / f"bare{r}.db"))
            print(f"round {r + 1}: chain {chain[-1]:>9,.0f} hits/s   bare {bare[-1]:>9,.0f} hits/s")
    c, b = statistics.median(chain), statistics.median(bare)
    print(f"median: chain {c:,.0f} hits/s, bare loop {b:,.0f} hits/s, ratio {c / b:.2f} "
          f"(target >= 0.5)")


if __name__ == "__main__":
    main()
