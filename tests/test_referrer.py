"""Referrer and page URL: reduced, classified, UTM tags lifted."""

from __future__ import annotations

import pytest

from ferrite.testing import make_hit, run_chain


def one(url="https://example.com/", referrer="", config=None):
    (event,) = run_chain([make_hit(url, referrer=referrer, site="example.com")], config).events
    return event


@pytest.mark.parametrize(("referrer", "source"), [
    ("", "direct"),
    ("https://www.google.com/search?q=ferrite", "search"),
    ("https://www.google.co.uk/", "search"),
    ("https://duckduckgo.com/", "search"),
    ("https://t.co/abc", "social"),
    ("https://old.reddit.com/r/selfhosted/", "social"),
    ("https://news.ycombinator.com/item?id=1", "social"),
    ("https://mail.google.com/mail/u/0/", "email"),
    ("https://example.com/previous", "internal"),
    ("https://www.example.com/previous", "internal"),
    ("https://blog.someone.net/post", "referral"),
    ("https://docs.google.com/document/d/1", "referral"),
    ("android-app://com.slack/", "referral"),
    ("not a url", "direct"),
])
def test_source_classification(referrer, source):
    assert one(referrer=referrer).source == source


def test_referrer_loses_query_and_fragment():
    event = one(referrer="https://www.google.com/search?q=secret+stuff#frag")
    assert event.referrer == "https://www.google.com/search"


def test_page_path_drops_query_but_keeps_utm():
    event = one("https://example.com/pricing?utm_source=news&utm_medium=email&utm_campaign=nov"
                "&email=a@b.c&token=123")
    assert event.path == "/pricing?utm_source=news&utm_medium=email&utm_campaign=nov"
    assert (event.utm_source, event.utm_medium, event.utm_campaign) == ("news", "email", "nov")
    assert event.source == "email"


def test_utm_can_be_kept_out_of_the_path():
    config = {"pipeline": {"plugins": ["referrer"]},
              "plugins": {"referrer": {"keep_utm_in_path": False}}}
    event = one("https://example.com/p?utm_source=x&q=1", config=config)
    assert event.path == "/p" and event.utm_source == "x"


@pytest.mark.parametrize(("medium", "source"), [
    ("cpc", "paid"), ("social", "social"), ("newsletter", "email"), ("print", "campaign"),
])
def test_campaign_without_referrer_uses_the_medium(medium, source):
    assert one(f"https://example.com/?utm_medium={medium}").source == source


def test_extra_hosts_from_settings():
    config = {"pipeline": {"plugins": ["referrer"]},
              "plugins": {"referrer": {"search": ["search.internal.example"]}}}
    assert one(referrer="https://search.internal.example/?q=x", config=config).source == "search"


def test_absurd_urls_do_not_break_the_chain():
    event = one("http://[::1/broken?utm_source=x", referrer="http://[bad")
    assert event.path == "/" and event.referrer == "" and event.source == "direct"


def test_fragment_kept_in_the_path_when_the_front_end_kept_it():
    event = one("https://example.com/app?utm_source=x#/settings")
    assert event.path == "/app?utm_source=x#/settings"


def test_source_names_group_well_known_hosts():
    from ferrite.plugins.referrer_sources import source_name

    assert [source_name(h) for h in ("google.com", "google.co.uk", "news.google.de",
                                     "mail.google.com", "t.co", "x.com", "l.facebook.com",
                                     "news.ycombinator.com", "blog.example.org",
                                     "googleblog.com")] == [
        "Google", "Google", "Google", "Gmail", "Twitter", "Twitter", "Facebook",
        "Hacker News", "blog.example.org", "googleblog.com"]
