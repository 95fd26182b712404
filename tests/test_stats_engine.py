"""The engine against hand-computed answers on a small fixture (a UTC site, and a New York
site across the March 2026 DST change), through each real store (SQLite, PostgreSQL), with
and without the per-day rollups."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ferrite.core.event import Event
from ferrite.stats.engine import Engine
from ferrite.stats.model import QueryError
from ferrite.stats.store import KeyRecord, Measures, StatsRequest

from .stats_helpers import config, engine, event, run, write

GOOGLE = {"referrer": "https://www.google.com/search", "source": "search"}
TWITTER = {"referrer": "https://t.co/abc", "source": "social", "utm_source": "twitter",
           "utm_medium": "social", "browser": "Chrome", "os": "Android", "device": "mobile"}
SAFARI = {"browser": "Safari", "os": "iOS", "device": "mobile"}


def fixture_events() -> list[Event]:
    return [
        # A, 1 March: a visit of three events (12 minutes), then after 48 minutes another
        event("2026-03-01T10:00:00Z", "A", "/", **GOOGLE),
        event("2026-03-01T10:10:00Z", "A", "/pricing?utm_source=news", **GOOGLE),
        event("2026-03-01T10:12:00Z", "A", "/pricing", "signup", props={"plan": "pro"},
              **GOOGLE),
        event("2026-03-01T11:00:00Z", "A", "/blog"),
        # B, 1 March: one pageview from Twitter (a bounce)
        event("2026-03-01T12:00:00Z", "B", "/blog", **TWITTER),
        # C, 2 March: three pageviews; the last exactly 30 minutes after the one before
        event("2026-03-02T09:00:00Z", "C", "/", **SAFARI),
        event("2026-03-02T09:20:00Z", "C", "/blog#comments", **SAFARI),
        event("2026-03-02T09:50:00Z", "C", "/pricing", **SAFARI),
        # the same session id on 2 March is another day's visitor (salts rotate daily)
        event("2026-03-02T23:50:00Z", "A", "/"),
        # outside the range, and another site
        event("2026-03-03T00:00:00Z", "D", "/"),
        event("2026-03-01T10:00:00Z", "A", "/", site="other.org"),
    ]


NY = [  # America/New_York: DST starts 2026-03-08 at 07:00 UTC
    event("2026-03-08T04:30:00Z", "S1", "/", site="ny.example"),  # 7 March 23:30 EST
    event("2026-03-08T05:30:00Z", "N", "/", site="ny.example"),   # 8 March 00:30 EST
    event("2026-03-09T03:30:00Z", "N", "/", site="ny.example"),   # 8 March 23:30 EDT
    event("2026-03-09T04:30:00Z", "S4", "/", site="ny.example"),  # 9 March 00:30 EDT
]


@pytest.fixture(params=["raw", "rollup"])
def eng(request, db) -> Engine:
    write(db, fixture_events() + NY)
    e = engine(db, timezones={"ny.example": "America/New_York"})
    if request.param == "rollup":
        assert e.build(now=datetime(2026, 3, 20, tzinfo=UTC)) > 0
    yield e
    e.close()


ALL = ["visitors", "visits", "pageviews", "events", "views_per_visit", "bounce_rate",
       "visit_duration"]


def test_every_aggregate_metric(eng):
    # 4 visitors (A and B on 1 March, C and A on 2 March), 5 visits, 8 pageviews, 9 events,
    # bounces: A's second visit, B, A on 2 March = 3/5; durations 720 + 3000 s over 5 visits
    assert run(eng, metrics=ALL) == [([], [4, 5, 8, 9, 1.6, 60.0, 744])]


def test_breakdown_by_page_strips_the_query_but_keeps_the_fragment(eng):
    rows = run(eng, metrics=["visitors", "pageviews", "events", "percentage"],
               dimensions=["event:page"])
    assert rows == [(["/"], [3, 3, 3, 75.0]), (["/blog"], [2, 2, 2, 50.0]),
                    (["/pricing"], [2, 2, 3, 50.0]), (["/blog#comments"], [1, 1, 1, 25.0])]


@pytest.mark.parametrize(("dimension", "expected"), [
    ("visit:entry_page", [(["/"], [3, 3]), (["/blog"], [2, 2])]),
    ("visit:exit_page", [(["/blog"], [2, 2]), (["/pricing"], [2, 2]), (["/"], [1, 1])]),
    ("visit:source", [(["Direct / None"], [3, 3]), (["Google"], [1, 1]),
                      (["twitter"], [1, 1])]),
    ("visit:referrer", [(["(not set)"], [3, 3]), (["google.com/search"], [1, 1]),
                        (["t.co/abc"], [1, 1])]),
    ("visit:channel", [(["direct"], [3, 3]), (["search"], [1, 1]), (["social"], [1, 1])]),
    ("visit:utm_source", [(["(not set)"], [3, 4]), (["twitter"], [1, 1])]),
    ("visit:utm_medium", [(["(not set)"], [3, 4]), (["social"], [1, 1])]),
    ("visit:utm_campaign", [(["(not set)"], [4, 5])]),
    ("visit:browser", [(["Firefox"], [2, 3]), (["Chrome"], [1, 1]), (["Safari"], [1, 1])]),
    ("visit:os", [(["Linux"], [2, 3]), (["Android"], [1, 1]), (["iOS"], [1, 1])]),
    ("visit:device", [(["Desktop"], [2, 3]), (["Mobile"], [2, 2])]),
    ("event:name", [(["pageview"], [4, 5]), (["signup"], [1, 1])]),
    ("event:props:plan", [(["(not set)"], [4, 5]), (["pro"], [1, 1])]),
    ("time:day", [(["2026-03-01"], [2, 3]), (["2026-03-02"], [2, 2])]),
    ("time:week", [(["2026-02-23"], [2, 3]), (["2026-03-02"], [2, 2])]),
    ("time:month", [(["2026-03-01"], [4, 5])]),
])
def test_every_dimension(eng, dimension, expected):
    assert run(eng, metrics=["visitors", "visits"], dimensions=[dimension]) == expected


def test_time_hour_and_time_labels(eng):
    answer = eng.answer({"site_id": "ex.com", "metrics": ["visitors"],
                         "date_range": ["2026-03-01", "2026-03-01"], "dimensions": ["time"],
                         "include": {"time_labels": True}})
    assert [(r.dimensions, r.metrics) for r in answer.rows] == [
        (["2026-03-01 10:00:00"], [1]), (["2026-03-01 11:00:00"], [1]),
        (["2026-03-01 12:00:00"], [1])]
    assert len(answer.meta["time_labels"]) == 24
    assert answer.meta["time_labels"][0] == "2026-03-01 00:00:00"


@pytest.mark.parametrize(("filters", "expected"), [
    ([["is", "visit:browser", ["Firefox"]]], [2, 4, 5]),
    ([["is_not", "visit:browser", ["Firefox"]]], [2, 4, 4]),
    ([["contains", "event:page", ["pric"]]], [2, 2, 3]),
    ([["contains_not", "event:page", ["pric"]]], [4, 6, 6]),
    ([["matches", "event:page", ["^/b"]]], [3, 3, 3]),
    ([["matches_not", "event:page", ["^/(blog.*|pricing)$"]]], [3, 3, 3]),
    ([["contains", "visit:browser", ["FIRE"], {"case_sensitive": False}]], [2, 4, 5]),
    ([["is", "visit:browser", ["firefox"], {"case_sensitive": False}]], [2, 4, 5]),
    ([["is", "visit:browser", ["firefox"]]], [0, 0, 0]),
    ([["is", "visit:device", ["Mobile"]]], [2, 4, 4]),
    ([["is", "visit:utm_source", ["(not set)"]]], [3, 7, 8]),
    ([["or", [["is", "visit:source", ["twitter"]], ["is", "event:name", ["signup"]]]]],
     [2, 1, 2]),
    ([["not", ["is", "visit:device", ["mobile"]]]], [2, 4, 5]),
    ([["is", "visit:entry_page", ["/"]], ["is", "event:page", ["/pricing"]]], [2, 2, 3]),
    ([["and", [["is", "event:props:plan", ["pro"]], ["is", "visit:os", ["Linux"]]]]],
     [1, 0, 1]),
    ([["is", "event:goal", ["Visit /pricing"]]], [2, 2, 2]),
    ([["is", "event:goal", ["signup"]]], [1, 0, 1]),
])
def test_every_filter_operator(eng, filters, expected):
    assert run(eng, metrics=["visitors", "pageviews", "events"], filters=filters) == \
        [([], expected)]


def test_conversion_rate(eng):
    body = {"metrics": ["visitors", "conversion_rate"],
            "filters": [["is", "event:name", ["signup"]]]}
    assert run(eng, **body) == [([], [1, 25.0])]
    assert run(eng, **body, dimensions=["visit:source"]) == [(["Google"], [1, 25.0])]
    assert run(eng, metrics=["visitors", "conversion_rate"], dimensions=["event:name"]) == [
        (["pageview"], [4, 100.0]), (["signup"], [1, 25.0])]


def test_comparison_with_the_previous_period(eng):
    answer = eng.answer({"site_id": "ex.com", "metrics": ["visitors", "bounce_rate"],
                         "date_range": ["2026-03-02", "2026-03-02"],
                         "include": {"comparisons": {"mode": "previous_period"}}})
    row = answer.rows[0]
    # 2 March: C (no bounce) and A (bounce); 1 March: A (2 visits, 1 bounce) and B (bounce)
    assert row.metrics == [2, 50.0]
    assert row.comparison == {"dimensions": [], "metrics": [2, 67.0], "change": [0, -17.0]}
    assert answer.meta["comparison_date_range"][0].startswith("2026-03-01T00:00:00")


def test_time_series_comparison_matches_buckets_by_position(eng):
    answer = eng.answer({"site_id": "ex.com", "metrics": ["visitors"], "dimensions":
                         ["time:day"], "date_range": ["2026-03-02", "2026-03-03"],
                         "include": {"comparisons": {"mode": "previous_period"}}})
    first = answer.rows[0]
    assert first.dimensions == ["2026-03-02"]
    assert first.comparison["dimensions"] == ["2026-02-28"]


def test_order_by_and_pagination_with_total_rows(eng):
    answer = eng.answer({"site_id": "ex.com", "metrics": ["visitors"],
                         "date_range": ["2026-03-01", "2026-03-02"],
                         "dimensions": ["event:page"], "order_by": [["event:page", "asc"]],
                         "pagination": {"limit": 2, "offset": 1},
                         "include": {"total_rows": True}})
    assert [r.dimensions[0] for r in answer.rows] == ["/blog", "/blog#comments"]
    assert answer.meta["total_rows"] == 4


def test_a_new_york_site_counts_its_own_days_across_the_dst_change(eng):
    rows = run(eng, site_id="ny.example", metrics=["visitors"], dimensions=["time:day"],
               date_range=["2026-03-07", "2026-03-09"])
    # N on local 8 March is two UTC days, hence two visitors (docs/stats.md says why)
    assert rows == [(["2026-03-07"], [1]), (["2026-03-08"], [2]), (["2026-03-09"], [1])]
    hours = run(eng, site_id="ny.example", metrics=["visitors"], dimensions=["time:hour"],
                date_range=["2026-03-08", "2026-03-08"])
    assert hours == [(["2026-03-08 00:00:00"], [1]), (["2026-03-08 23:00:00"], [1])]
    answer = eng.answer({"site_id": "ny.example", "metrics": ["visitors"],
                         "date_range": ["2026-03-08", "2026-03-08"]})
    assert answer.v2()["query"]["date_range"] == ["2026-03-08T00:00:00-05:00",
                                                  "2026-03-08T23:59:59-04:00"]
    assert answer.plan.period.end - answer.plan.period.start == \
        datetime(2026, 1, 1, 23) - datetime(2026, 1, 1)


@pytest.mark.parametrize(("date_range", "visitors"), [
    ("day", 1), ("7d", 4), ("28d", 4), ("30d", 4), ("91d", 4), ("month", 5), ("6mo", 5),
    ("12mo", 5), ("year", 5), ("all", 5), ("realtime", 2), ("24h", 3),
    (["2026-03-02T09:00:00+00:00", "2026-03-02T09:30:00+00:00"], 1),
])
def test_every_date_range(eng, date_range, visitors):
    now = datetime(2026, 3, 3, 0, 10, tzinfo=UTC)  # D's hit is ten minutes old
    assert run(eng, now=now, metrics=["visitors"], date_range=date_range) == \
        [([], [visitors])]


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"metrics": ["visitorz"]}, "metrics[0]", "unknown metric 'visitorz'; valid: visitors"),
    ({"metrics": ["scroll_depth"]}, "metrics[0]", "does not support"),
    ({"metrics": []}, "metrics", "at least 1"),
    ({"date_range": "8d"}, "date_range", "use one of day, 24h, 7d"),
    ({"date_range": ["2026-03-02", "2026-03-01"]}, "date_range", "before it starts"),
    ({"date_range": ["2026-03-01T00:00:00", "2026-03-02T00:00:00"]}, "date_range", "offset"),
    ({"dimensions": ["visit:planet"]}, "dimensions[0]", "valid: event:page"),
    ({"dimensions": ["event:hostname"]}, "dimensions[0]", "not a dimension Ferrite keeps"),
    ({"filters": [["equals", "event:page", ["/"]]]}, "filters[0][0]", "valid: is, is_not"),
    ({"filters": [["has_done", "event:name", ["x"]]]}, "filters[0][0]", "does not support"),
    ({"filters": [["is", "event:page", "/"]]}, "filters[0][2]", "non-empty list"),
    ({"filters": [["is", "time:day", ["x"]]]}, "filters[0][1]", "set date_range"),
    ({"filters": [["matches", "event:page", ["a" * 300]]]}, "filters[0][2][0]", "at most 256"),
    ({"filters": [["matches", "event:page", ["(unclosed"]]]}, "filters[0][2][0]", "RE2"),
    ({"filters": [["or", []]]}, "filters[0]", "non-empty list"),
    ({"metrics": ["conversion_rate"]}, "metrics", "filter on event:name"),
    ({"metrics": ["percentage"]}, "metrics", "needs at least one dimension"),
    ({"metrics": ["bounce_rate"], "dimensions": ["event:name"]}, "metrics", "whole visits"),
    ({"order_by": [["pageviews", "desc"]]}, "order_by[0]", "not among"),
    ({"include": {"time_labels": True}}, "include.time_labels", "time dimension"),
    ({"include": {"imports": True}}, "include.imports", "no imported stats"),
    ({"include": {"bogus": 1}}, "include.bogus", "valid keys: time_labels"),
    ({"pagination": {"limit": 0}}, "pagination.limit", "greater than or equal to 1"),
    ({"colour": "red"}, "colour", "valid keys: site_id"),
])
def test_every_bad_query_names_its_field(eng, body, field, words):
    full = {"site_id": "ex.com", "metrics": ["visitors"], "date_range": "7d", **body}
    with pytest.raises(QueryError) as info:
        eng.answer(full)
    assert info.value.field == field
    assert words in str(info.value)


def test_a_pathological_pattern_runs_in_linear_time(eng):
    # (a+)+$ makes a backtracking engine take exponential time on "aaaa...b"; RE2 does not
    rows = run(eng, metrics=["visitors"], filters=[["matches", "event:page", ["(a+)+$"]]])
    assert rows == [([], [0])]


def test_enricher_columns_are_visit_dimensions(db):
    write(db, [event("2026-03-01T10:00:00Z", "A", extra={"country": "EE"}),
               event("2026-03-01T10:01:00Z", "A", "/b", extra={"country": "EE"}),
               event("2026-03-01T10:00:00Z", "B", extra={"country": "US"})])
    eng = engine(db)
    try:
        assert "country" in eng.store.dimensions()
        assert run(eng, metrics=["visitors", "pageviews"], dimensions=["visit:country"]) == \
            [(["EE"], [1, 2]), (["US"], [1, 1])]
        assert run(eng, metrics=["visitors"],
                   filters=[["is", "visit:country", ["US"]]]) == [([], [1])]
    finally:
        eng.close()


def test_a_query_past_its_deadline_is_stopped(db):
    from ferrite.stats.store import QueryTimeout

    write(db, [event(f"2026-03-01T{h:02d}:{m:02d}:00Z", f"s{m}", f"/{h}")
               for h in range(24) for m in range(60)] * 1)
    eng = engine(db)
    try:
        request = StatsRequest("ex.com", datetime(2026, 3, 1, tzinfo=UTC),
                               datetime(2026, 3, 2, tzinfo=UTC), ("event:page",),
                               deadline=0)  # long past
        with pytest.raises(QueryTimeout):
            eng.store.query(request)
    finally:
        eng.close()


def test_hook_ferrite_stats_store(db):
    """Each storage plugin answers the hook with a store that meets the documented
    contract."""
    from ferrite.core.manager import Plugins
    from ferrite.stats.store import StatsStore

    write(db, fixture_events())
    store = Plugins(config(db)).hook.ferrite_stats_store()
    try:
        assert isinstance(store, StatsStore)
        groups = store.query(StatsRequest("ex.com", datetime(2026, 3, 1, tzinfo=UTC),
                                          datetime(2026, 3, 3, tzinfo=UTC)))
        assert groups == {(): Measures(visitors=4, visits=5, pageviews=8, events=9,
                                       bounces=3, duration=3720.0)}
        assert store.sites() == ["ex.com", "other.org"]
        assert str(store.first_day("ex.com")) == "2026-03-01"
        record = KeyRecord("k1", "n", "h" * 64, ("ex.com",), datetime.now(UTC))
        store.add_key(record)
        assert store.find_key("h" * 64).sites == ("ex.com",)
        assert store.revoke_key("k1") and not store.revoke_key("k1")
        assert store.list_keys()[0].revoked is not None
    finally:
        store.close()


def current_days(eng, site: str = "ex.com", zone: str = "UTC") -> list[str]:
    """The days whose rollup the store would read now."""
    from zoneinfo import ZoneInfo

    from ferrite.plugins.sqlite_stats import whole_days

    days = whole_days(datetime(2026, 2, 20, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC),
                      ZoneInfo(zone))
    with eng.store._reader() as conn:
        return [d.isoformat() for d, _, _ in eng.store._valid_days(conn, site, zone, days)]


def test_a_late_write_to_a_built_day_is_counted_at_once(db):
    """Old logs imported after the rollups were built: the write moves its hours'
    generation on in the sink's own transaction, so the next answer counts that day from
    the events, exactly, until it is built again."""
    stored = fixture_events()
    write(db, stored)
    eng = engine(db)
    try:
        assert eng.build(now=datetime(2026, 3, 20, tzinfo=UTC)) == 4
        assert current_days(eng) == ["2026-03-01", "2026-03-02", "2026-03-03"]
        assert run(eng, metrics=["visitors", "pageviews"]) == [([], [4, 8])]
        write(db, [event("2026-03-01T15:00:00Z", "late", "/old-log"),
                   stored[0]])  # and a replay of an event it already has
        assert current_days(eng) == ["2026-03-02", "2026-03-03"]
        assert run(eng, metrics=["visitors", "pageviews"]) == [([], [5, 9])]
        assert eng.build(now=datetime(2026, 3, 20, tzinfo=UTC)) == 1
        assert current_days(eng) == ["2026-03-01", "2026-03-02", "2026-03-03"]
        assert run(eng, metrics=["visitors", "pageviews"]) == [([], [5, 9])]
        write(db, [stored[1]])  # a replay alone changes nothing, not even the rollups
        assert current_days(eng) == ["2026-03-01", "2026-03-02", "2026-03-03"]
    finally:
        eng.close()


def test_a_build_that_raced_a_write_is_not_read(db):
    write(db, fixture_events())
    eng = engine(db)
    store = eng.store
    try:
        original = store._reader

        def reader_then_write(*args, **kwargs):
            ctx = original(*args, **kwargs)

            class Wrapped:
                def __enter__(self):
                    return ctx.__enter__()

                def __exit__(self, *exc):
                    out = ctx.__exit__(*exc)
                    # a write to the same day lands between the count and its commit
                    write(db, [event("2026-03-01T16:00:00Z", "racer", "/r")])
                    return out
            return Wrapped()

        store._reader = reader_then_write
        from datetime import date
        store.build_day("ex.com", date(2026, 3, 1))
        store._reader = original
        assert current_days(eng) == []
        assert run(eng, metrics=["visitors"], date_range=["2026-03-01", "2026-03-01"]) == \
            [([], [3])]
        assert eng.build(now=datetime(2026, 3, 20, tzinfo=UTC)) == 4
        assert "2026-03-01" in current_days(eng)
        assert run(eng, metrics=["visitors"], date_range=["2026-03-01", "2026-03-01"]) == \
            [([], [3])]
    finally:
        eng.close()


def test_a_new_york_site_is_rolled_up_in_its_own_days(db):
    write(db, NY)
    eng = engine(db, timezones={"ny.example": "America/New_York"})
    try:
        assert eng.build(now=datetime(2026, 3, 20, tzinfo=UTC)) == 3
        assert current_days(eng, "ny.example", "America/New_York") == \
            ["2026-03-07", "2026-03-08", "2026-03-09"]
        assert current_days(eng, "ny.example", "UTC") == []
    finally:
        eng.close()


def test_prop_keys_with_quotes_and_backslashes(db):
    """Strangers name props too: a key SQLite's JSON paths cannot quote still counts."""
    odd = '<img src=x onerror="a\\b">'
    write(db, [event("2026-03-01T10:00:00Z", "s1", "/", name="E", props={odd: "v1"}),
               event("2026-03-01T10:05:00Z", "s2", "/", name="E", props={odd: "v2"}),
               event("2026-03-01T11:00:00Z", "s3", "/")])
    eng = engine(db)
    assert run(eng, metrics=["visitors"], dimensions=[f"event:props:{odd}"],
               date_range=["2026-03-01", "2026-03-01"]) == [
        (["(not set)"], [1]), (["v1"], [1]), (["v2"], [1])]
    assert run(eng, metrics=["visitors"], date_range=["2026-03-01", "2026-03-01"],
               filters=[["is", f"event:props:{odd}", ["v2"]]]) == [([], [1])]
    assert eng.prop_keys("ex.com", eng.plan({"site_id": "ex.com", "metrics": ["visitors"],
                                              "date_range": "all"}).period) == [odd]


def test_referrers_and_sources_from_odd_but_real_referrers(db):
    """Scheme and "www." are cut whatever their case, hosts are named (Gmail before Google's
    rule), a referrer without a scheme still has a host: the same on every store."""
    odd = ["HTTPS://WWW.Example.com/x", "http://www.t.co/abc", "www.news.google.de/q",
           "https://mail.google.com/x", "ftp://files.example/"]
    write(db, [event(f"2026-03-01T1{i}:00:00Z", f"s{i}", "/", referrer=ref, source="referral")
               for i, ref in enumerate(odd)])
    eng = engine(db)
    try:
        referrers = run(eng, metrics=["visitors"], dimensions=["visit:referrer"],
                        date_range=["2026-03-01", "2026-03-01"])
        assert sorted(r[0][0] for r in referrers) == [
            "Example.com/x", "ftp://files.example/", "mail.google.com/x", "news.google.de/q",
            "t.co/abc"]
        sources = run(eng, metrics=["visitors"], dimensions=["visit:source"],
                      date_range=["2026-03-01", "2026-03-01"])
        assert sorted(r[0][0] for r in sources) == [
            "Example.com", "Gmail", "Google", "Twitter", "ftp:"]
    finally:
        eng.close()


def test_times_count_in_whole_milliseconds_on_every_store(db):
    """SQLite keeps milliseconds; PostgreSQL keeps microseconds and counts them cut to
    milliseconds, so a gap of 30 minutes and 0.5 ms is one visit on both."""
    write(db, [event("2026-03-01T10:00:00.000400Z", "A", "/a"),
               event("2026-03-01T10:30:00.000900Z", "A", "/b")])
    eng = engine(db)
    try:
        assert run(eng, metrics=["visits", "visit_duration"],
                   date_range=["2026-03-01", "2026-03-01"]) == [([], [1, 1800])]
    finally:
        eng.close()


def test_case_insensitive_filters_fold_every_letter_not_only_ascii(db):
    """Visitors' paths are in every script: ÜBER and über are one page when the query asks
    for no case, on every store."""
    write(db, [event("2026-03-01T10:00:00Z", "A", "/ÜBER-uns"),
               event("2026-03-01T10:05:00Z", "B", "/über-uns"),
               event("2026-03-01T10:10:00Z", "C", "/ΣΟΦΙΑ")])
    eng = engine(db)
    try:
        for flt in (["is", "event:page", ["/über-uns"], {"case_sensitive": False}],
                    ["contains", "event:page", ["ÜBER"], {"case_sensitive": False}]):
            assert run(eng, metrics=["visitors"], filters=[flt],
                       date_range=["2026-03-01", "2026-03-01"]) == [([], [2])], flt
        assert run(eng, metrics=["visitors"], date_range=["2026-03-01", "2026-03-01"],
                   filters=[["contains", "event:page", ["σοφ"], {"case_sensitive": False}]]
                   ) == [([], [1])]
    finally:
        eng.close()
