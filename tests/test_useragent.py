"""User-agent summaries with ua-parser's native resolver."""

from __future__ import annotations

import pytest

from ferrite.plugins import useragent
from ferrite.plugins.useragent import Settings, UserAgents
from ferrite.testing import DESKTOP_CHROME, GOOGLEBOT, IPHONE_SAFARI

IPAD = ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Mobile/15E148 Safari/604.1")
ANDROID_PHONE = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/124.0.0.0 Mobile Safari/537.36")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like "
                  "Gecko) Chrome/124.0.0.0 Safari/537.36")
MAC_FIREFOX = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 "
               "Firefox/127.0")
SMART_TV = ("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36")


@pytest.fixture(scope="module")
def agents() -> UserAgents:
    return UserAgents(Settings())


@pytest.mark.parametrize(("ua", "browser", "os", "device"), [
    (DESKTOP_CHROME, "Chrome", "Windows", "desktop"),
    (MAC_FIREFOX, "Firefox", "Mac OS X", "desktop"),
    (IPHONE_SAFARI, "Mobile Safari", "iOS", "mobile"),
    (ANDROID_PHONE, "Chrome Mobile", "Android", "mobile"),
    (IPAD, "Mobile Safari", "iOS", "tablet"),
    (ANDROID_TABLET, "Chrome", "Android", "tablet"),
    (GOOGLEBOT, "Googlebot", "Other", "bot"),
    ("", "Other", "Other", "other"),
])
def test_summary(agents, ua, browser, os, device):
    agent = agents.ferrite_user_agent(user_agent=ua)
    assert (agent.browser, agent.os, agent.device) == (browser, os, device)


@pytest.mark.parametrize("ua", [
    SMART_TV,
    "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/87.0.4280.88 Safari/537.36 WebAppManager",
    "Mozilla/5.0 (Linux; Android 9; AFTKA Build/PS7633.3445N; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/114.0.5735.196 Mobile Safari/537.36",
    "Roku/DVP-9.10 (519.10E04111A)",
])
def test_smart_tvs_and_set_top_boxes_are_tvs_not_phones(agents, ua):
    assert agents.ferrite_user_agent(user_agent=ua).device == "tv"


def test_uses_the_native_resolver():
    assert useragent.NativeResolver is not None


def test_results_are_cached(agents):
    agents.summarize.cache_clear()
    for _ in range(3):
        agents.ferrite_user_agent(user_agent=DESKTOP_CHROME)
    info = agents.summarize.cache_info()
    assert (info.hits, info.misses) == (2, 1)


def test_cache_size_is_configurable():
    assert UserAgents(Settings(cache_size=7)).summarize.cache_info().maxsize == 7
