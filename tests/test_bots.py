"""Bot detection: each layer, and the rates on labelled real-world user agents."""

from __future__ import annotations

from collections import Counter

import crawleruseragents
import pytest

from ferrite import PluginError
from ferrite.plugins.bots import Bots, Settings
from ferrite.plugins.useragent import Settings as UaSettings
from ferrite.plugins.useragent import UserAgents
from ferrite.testing import DESKTOP_CHROME, GOOGLEBOT, make_hit, run_chain

from .conftest import DATA

AGENTS = UserAgents(UaSettings())


def lines(name: str) -> list[str]:
    return [line for line in (DATA / "bots" / name).read_text().splitlines() if line]


def reason(bots: Bots, ua: str = DESKTOP_CHROME, **hit) -> str | None:
    return bots.ferrite_bot_reason(hit=make_hit(user_agent=ua, **hit), agent=AGENTS.summarize(ua))


@pytest.fixture(scope="module")
def bots() -> Bots:
    return Bots(Settings())


def rates(bots: Bots) -> tuple[float, float, float]:
    crawlers = lines("crawlers.txt")
    listed = sorted({i for d in crawleruseragents.CRAWLER_USER_AGENTS_DATA
                     for i in d.get("instances", [])})
    browsers = lines("browsers.txt")
    caught = sum(1 for ua in crawlers if reason(bots, ua)) / len(crawlers)
    caught_listed = sum(1 for ua in listed if reason(bots, ua)) / len(listed)
    flagged = sum(1 for ua in browsers if reason(bots, ua)) / len(browsers)
    return caught, caught_listed, flagged


def test_labelled_rates_meet_the_targets(bots, capsys):
    caught, caught_listed, flagged = rates(bots)
    with capsys.disabled():
        print(f"\nbots: crawlers caught {caught:.2%} (independent sample), "
              f"{caught_listed:.2%} (crawler-user-agents instances); "
              f"browsers flagged {flagged:.2%}")
    assert caught >= 0.99
    assert caught_listed >= 0.99
    assert flagged <= 0.005


def test_layers_other_than_the_list_still_catch_most_crawlers():
    """How well the heuristics generalise to robots the pattern list does not know."""
    without_list = Bots(Settings(layers=["spider", "automation", "keyword", "contact",
                                         "implausible"]))
    listed = sorted({i for d in crawleruseragents.CRAWLER_USER_AGENTS_DATA
                     for i in d.get("instances", [])})
    assert sum(1 for ua in listed if reason(without_list, ua)) / len(listed) >= 0.9


@pytest.mark.parametrize(("ua", "expected"), [
    (GOOGLEBOT, "spider"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Cypress/13.6.0 Chrome/118.0.5993.159 Electron/27.1.3 Safari/537.36", "automation"),
    ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120 Safari/537.36 "
     "Acme-Uptime-Monitor", "keyword"),
    ("Mozilla/5.0 (compatible; Acme/1.0; +https://acme.example/about)", "contact"),
    ("", "implausible"),
    ("-", "implausible"),
    ("Mozilla/5.0\x00\x01 (evil)", "implausible"),
    ("python-requests/2.31.0", "crawler_list"),
    ("SomeApp 1.0 for Windows", "implausible"),
])
def test_user_agent_layers(bots, ua, expected):
    assert reason(bots, ua) == expected


@pytest.mark.parametrize("headers", [
    {"sec-purpose": "prefetch;prerender"},
    {"purpose": "prefetch"},
    {"x-moz": "prefetch"},
    {"x-purpose": "preview"},
])
def test_prefetch_and_preview_headers(bots, headers):
    assert reason(bots, headers=headers) == "prefetch"


def test_headless_client_hint(bots):
    assert reason(bots, headers={"sec-ch-ua": '"HeadlessChrome";v="120"'}) == "automation"


def test_referrer_spam_matches_domain_and_subdomains(bots):
    spam = sorted(bots.spam)[0]
    assert reason(bots, referrer=f"https://{spam}/x?y=1") == "referrer_spam"
    assert reason(bots, referrer=f"http://www.sub.{spam}/") == "referrer_spam"
    assert reason(bots, referrer="https://news.ycombinator.com/") is None


def test_the_shipped_spam_list_is_complete(bots):
    assert len(bots.spam) >= 2300


def test_layers_can_be_switched_off():
    only_spider = Bots(Settings(layers=["spider"]))
    assert reason(only_spider, "python-requests/2.31.0") is None
    assert reason(only_spider, GOOGLEBOT) == "spider"


def test_custom_patterns():
    custom = Bots(Settings(extra_patterns=["InternalProbe/\\d"]))
    ua = DESKTOP_CHROME + " InternalProbe/2"
    assert reason(custom, ua) == "custom"


def test_invalid_custom_pattern_is_a_config_error():
    config = {"pipeline": {"plugins": ["bots"]}, "plugins": {"bots": {"extra_patterns": ["(("]}}}
    with pytest.raises(PluginError, match=r"extra_patterns.*'\(\(' is not a valid regular"):
        run_chain([], config)


def test_unknown_layer_is_a_config_error():
    config = {"pipeline": {"plugins": ["bots"]}, "plugins": {"bots": {"layers": ["vibes"]}}}
    with pytest.raises(PluginError, match="layers.0.*'prefetch', 'referrer_spam'"):
        run_chain([], config)


def test_bots_never_reach_sinks_and_are_counted_by_reason():
    hits = [make_hit(), make_hit(user_agent=GOOGLEBOT),
            make_hit(user_agent="python-requests/2.31.0"),
            make_hit(headers={"x-purpose": "preview"})]
    result = run_chain(hits)
    assert len(result.events) == 1
    assert Counter(e.bot for e in result.bots) == {"spider": 1, "crawler_list": 1, "prefetch": 1}
    assert result.metrics.by_label("discarded", "reason") == {
        "bot:spider": 1, "bot:crawler_list": 1, "bot:prefetch": 1}
