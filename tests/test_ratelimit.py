"""Per-visitor rate limiting by session hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ferrite.testing import IPHONE_SAFARI, TEST_CONFIG, make_hit, run_chain

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def config(**settings):
    return {"pipeline": {**TEST_CONFIG["pipeline"],
                         "plugins": [*TEST_CONFIG["pipeline"]["plugins"], "ratelimit"]},
            "plugins": {**TEST_CONFIG["plugins"], "ratelimit": settings}}


def test_a_burst_beyond_the_limit_is_discarded_and_counted():
    hits = [make_hit(ts=START) for _ in range(8)]
    result = run_chain(hits, config(burst=5, events_per_minute=60))
    assert len(result.events) == 5
    assert result.discarded == {"rate_limited": 3}
    assert result.metrics.get("discarded", reason="rate_limited") == 3


def test_tokens_refill_with_the_hits_own_time():
    hits = [make_hit(ts=START + timedelta(seconds=s)) for s in (0, 0, 0, 1, 2, 10)]
    result = run_chain(hits, config(burst=2, events_per_minute=60))
    # two at once, the third refused, then one a second comes back
    assert len(result.events) == 5 and result.discarded == {"rate_limited": 1}


def test_visitors_and_sites_have_their_own_buckets():
    hits = [make_hit(ts=START), make_hit(ts=START),
            make_hit(ts=START, user_agent=IPHONE_SAFARI),
            make_hit("https://other.example/", ts=START)]
    result = run_chain(hits, config(burst=1))
    assert len(result.events) == 3


def test_memory_is_bounded():
    from ferrite.core.event import Event
    from ferrite.plugins.ratelimit import RateLimit, Settings

    limit = RateLimit(Settings(max_visitors=100))
    for i in range(500):
        limit.ferrite_enrich(event=Event(id=str(i), ts=START, site="x", name="pageview",
                                         session=f"visitor-{i}"))
    assert len(limit._buckets) == 100
