"""Browser, OS and device type from the user agent, with ua-parser's native resolver.

Only this summary survives the chain; the raw string is never stored. Results are cached
because real traffic repeats a few thousand user agents over and over.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from ua_parser import BasicResolver, Domain, load_builtins, load_lazy_builtins

from ferrite.core.config import Config, Table
from ferrite.core.event import Agent
from ferrite.core.hookspecs import hookimpl

try:  # the Rust resolver from ua-parser[regex]; the pure-Python one is ~100x slower
    from ua_parser.regex import Resolver as NativeResolver
except ImportError:  # pragma: no cover - only without the native wheel
    NativeResolver = None

DESKTOP_OS = frozenset({
    "Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "Debian", "FreeBSD",
    "OpenBSD", "NetBSD", "Solaris", "Mint", "Arch Linux", "Gentoo", "SUSE", "Red Hat",
    "CentOS", "Kubuntu", "Mandriva", "Slackware", "Haiku", "ChromeOS",
})
MOBILE_OS = frozenset({
    "iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "Tizen",
    "Symbian OS", "Symbian^3", "webOS", "Sailfish", "HarmonyOS", "Windows Mobile",
})
#: Smart TVs, set-top boxes and streaming sticks; checked before the phone rules, since TV
#: platforms (Tizen, webOS, Android TV) are also phone platforms.
TV_MARKERS = ("smart-tv", "smarttv", "hbbtv", " tv safari", "tizen tv", "web0s", "netcast",
              "appletv", "apple tv", "googletv", "android tv", "bravia", "roku", "crkey",
              "aftb", "aftm", "afts", "aftt", "aftk", "aftn", "aftr", "aftss", "aftmm", "viera",
              "philipstv", "nettv", "vizio", "large screen", "; tv)", "dtv", "settopbox")
TABLET_MARKERS = ("ipad", "tablet", "kindle", "silk/", "playbook", "nexus 7", "nexus 9",
                  "nexus 10", "sm-t", "gt-p", "sm-x", "lenovo tab", "mi pad")


class Settings(Table):
    cache_size: int = Field(20_000, ge=0, le=10_000_000,
                            description="User agents whose summary is kept in memory.")


def device_type(ua: str, os_family: str, device_family: str) -> str:
    if device_family == "Spider":
        return "bot"
    lowered = ua.lower()
    if any(marker in lowered for marker in TV_MARKERS):
        return "tv"
    if any(marker in lowered for marker in TABLET_MARKERS):
        return "tablet"
    if os_family == "Android" and "mobile" not in lowered:
        return "tablet"  # Android tablets drop the "Mobile" token, phones keep it
    if os_family in MOBILE_OS or "mobi" in lowered:
        return "mobile"
    if os_family in DESKTOP_OS:
        return "desktop"
    return "other"


class UserAgents:
    def __init__(self, settings: Settings) -> None:
        if NativeResolver is not None:
            self._resolve = NativeResolver(load_lazy_builtins())
        else:  # pragma: no cover
            self._resolve = BasicResolver(load_builtins())
        self.summarize = lru_cache(maxsize=settings.cache_size)(self._summarize)

    def _summarize(self, ua: str) -> Agent:
        if not ua:
            return Agent()
        result = self._resolve(ua, Domain.ALL).complete()
        browser = result.user_agent.family if result.user_agent else "Other"
        os_family = result.os.family if result.os else "Other"
        device = result.device.family if result.device else "Other"
        return Agent(browser=browser, os=os_family, device=device_type(ua, os_family, device),
                     is_spider=device == "Spider")

    @hookimpl
    def ferrite_user_agent(self, user_agent: str) -> Agent:
        return self.summarize(user_agent)


@hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@hookimpl
def ferrite_plugin(settings: Settings, config: Config) -> UserAgents:
    return UserAgents(settings)
