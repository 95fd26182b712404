"""The engine against a naive recount in plain Python, over random events that arrive in a
random order, in several batches, with replays, before and after the rollups are built."""

from __future__ import annotations

import os
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrite.core.event import Event
from ferrite.plugins.referrer_sources import source_name

from .stats_helpers import engine, event, write

#: Two windows of 30 hours: an ordinary one, and one across New York's DST change.
STARTS = [datetime(2026, 3, 1, 22, tzinfo=UTC), datetime(2026, 3, 7, 22, tzinfo=UTC)]
PAGES = ["/", "/a", "/b?utm_source=x", "/c#h"]
REFERRERS = [("", "direct"), ("https://www.google.com/", "search"), ("https://t.co/x", "social")]
GAP = timedelta(minutes=30)


@st.composite
def events(draw) -> tuple[datetime, list[Event]]:
    start = draw(st.sampled_from(STARTS))
    count = draw(st.integers(1, 40))
    out = []
    for i in range(count):
        minutes = draw(st.integers(0, 60 * 30))  # 22:00 on the first day to 04:00 on the third
        ref, source = draw(st.sampled_from(REFERRERS))
        out.append(event(
            (start + timedelta(minutes=minutes, seconds=draw(st.integers(0, 59)))).isoformat(),
            draw(st.sampled_from(["s1", "s2", "s3"])), draw(st.sampled_from(PAGES)),
            draw(st.sampled_from(["pageview", "pageview", "click"])), referrer=ref,
            source=source, browser=draw(st.sampled_from(["Firefox", "Chrome"])),
            id=f"{i:032x}"))
    return start, out


def page(path: str) -> str:
    base, hash_, fragment = path.partition("#")
    return base.split("?")[0] + hash_ + fragment


def naive(evs: list[Event], start: datetime, end: datetime, key, keep, zone) -> dict:
    """Visits per (UTC day, local day, session), split at gaps over 30 minutes; counted
    per group."""
    unique = {e.id: e for e in evs if start <= e.ts < end}
    by_session = defaultdict(list)
    for e in unique.values():
        by_session[((e.ts.date(), e.ts.astimezone(zone).date()), e.session)].append(e)
    visits = []
    for (day, session), items in by_session.items():
        items.sort(key=lambda e: (e.ts, e.id))
        current = [items[0]]
        for e in items[1:]:
            if e.ts - current[-1].ts > GAP:
                visits.append((day, session, current))
                current = []
            current.append(e)
        visits.append((day, session, current))
    groups: dict = defaultdict(lambda: {"visitors": set(), "visits": set(), "pageviews": 0,
                                        "events": 0, "bounces": set(), "duration": {}})
    for n, (day, session, items) in enumerate(visits):
        bounce = len(items) == 1 and items[0].name == "pageview"
        host = items[0].referrer.split("/")[2].removeprefix("www.") \
            if items[0].referrer else ""
        attrs = {"entry": page(items[0].path), "browser": items[0].browser,
                 "source": source_name(host) if host else "Direct / None", "zone": zone}
        for e in items:
            if not keep(e, attrs):
                continue
            g = groups[key(e, attrs)]
            g["visitors"].add((day, session))
            g["visits"].add(n)
            g["pageviews"] += e.name == "pageview"
            g["events"] += 1
            if bounce:
                g["bounces"].add(n)
            g["duration"][n] = (items[-1].ts - items[0].ts).total_seconds()
    return {k: [len(g["visitors"]), len(g["visits"]), g["pageviews"], g["events"],
                round(len(g["bounces"]) / len(g["visits"]) * 100),
                round(sum(g["duration"].values()) / len(g["visits"]))]
            for k, g in groups.items()}


METRICS = ["visitors", "visits", "pageviews", "events", "bounce_rate", "visit_duration"]
CASES = [
    # (dimension, key function, filter, keep function)
    ("event:page", lambda e, a: page(e.path), [], lambda e, a: True),
    ("visit:entry_page", lambda e, a: a["entry"], [], lambda e, a: True),
    ("visit:source", lambda e, a: a["source"], [], lambda e, a: True),
    ("time:day", lambda e, a: e.ts.astimezone(a["zone"]).date().isoformat(), [],
     lambda e, a: True),
    (None, lambda e, a: (), [], lambda e, a: True),
    ("visit:browser", lambda e, a: a["browser"], [["contains", "event:page", ["/a", "/c"]]],
     lambda e, a: "/a" in e.path or "/c" in e.path),
    ("time:day", lambda e, a: e.ts.astimezone(a["zone"]).date().isoformat(),
     [["not", ["is", "visit:browser", ["Chrome"]]]], lambda e, a: a["browser"] != "Chrome"),
    (None, lambda e, a: (), [["or", [["is", "event:name", ["click"]],
                                     ["matches", "event:page", ["^/b"]]]]],
     lambda e, a: e.name == "click" or e.path.startswith("/b")),
    # visit attributes as filters: the store keeps only the (day, session)s where some
    # event could pass before rebuilding visits, which must change nothing
    ("event:page", lambda e, a: page(e.path), [["is", "visit:browser", ["Firefox"]]],
     lambda e, a: a["browser"] == "Firefox"),
    ("visit:browser", lambda e, a: a["browser"],
     [["is", "visit:entry_page", ["/a"]], ["contains", "event:page", ["/"]]],
     lambda e, a: a["entry"] == "/a"),
    ("visit:source", lambda e, a: a["source"],  # met by two different events of a visit
     [["is", "visit:entry_page", ["/"]], ["is", "event:page", ["/a"]]],
     lambda e, a: a["entry"] == "/" and page(e.path) == "/a"),
    (None, lambda e, a: (), [["or", [["is", "visit:source", ["Google"]],
                                     ["is", "event:name", ["click"]]]]],
     lambda e, a: a["source"] == "Google" or e.name == "click"),
    ("time:day", lambda e, a: e.ts.astimezone(a["zone"]).date().isoformat(),
     [["is", "visit:source", ["Twitter"]], ["not", ["is", "event:name", ["click"]]]],
     lambda e, a: a["source"] == "Twitter" and e.name != "click"),
]


@settings(max_examples=int(os.environ.get("FERRITE_PROPERTY_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=events(), seed=st.integers(0, 2**32), replays=st.integers(0, 10),
       zone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]))
def test_engine_matches_a_naive_recount(new_db, drawn, seed, replays, zone):
    first, evs = drawn
    db = new_db()
    rng = random.Random(seed)
    arrivals = evs + rng.sample(evs, min(replays, len(evs)))  # replays keep their ids
    rng.shuffle(arrivals)
    write(db, arrivals, batch=rng.randint(1, 10))
    eng = engine(db, timezone=zone)
    tz = ZoneInfo(zone)
    try:
        for built in (False, True):
            if built:
                eng.build(now=datetime(2026, 3, 20, tzinfo=UTC))
            local_first = datetime.combine(first.date(), datetime.min.time(), tz)
            # whole days (the rollups), part of a day (the events), whole days with partial
            # days at both ends (both, merged), and three days in the site's own time
            for start, end in [(first.replace(hour=0), first.replace(hour=0) + timedelta(3)),
                               (first + timedelta(hours=3), first + timedelta(hours=20)),
                               (first - timedelta(hours=2), first + timedelta(hours=28)),
                               (local_first.astimezone(UTC),
                                (local_first + timedelta(days=3)).astimezone(UTC))]:
                dr = [start.isoformat(), (end - timedelta(seconds=1)).isoformat()]
                for dim, key, filters, keep in CASES:
                    want = naive(evs, start, end, key if dim else (lambda e, a: ()), keep,
                                 tz)
                    answer = eng.answer({"site_id": "ex.com", "metrics": METRICS,
                                         "date_range": dr, "filters": filters,
                                         "dimensions": [dim] if dim else []})
                    got = {tuple(r.dimensions) if dim else (): r.metrics
                           for r in answer.rows if r.metrics[0]}
                    want = {(k,) if dim else (): v for k, v in want.items()}
                    assert got == want, (dim, filters, built, start)
    finally:
        eng.close()
