"""Layered bot detection: each layer that fires gives its name as the reason.

Layers, cheapest and most certain first: prefetch/preview headers, referrer spam, then the
user-agent layers, whose verdict is cached per user agent. Two maintained lists do most of
the work (crawler-user-agents and CrawlerDetect); the heuristics around them catch what the
lists have not met yet and are written to fail towards "person": a real visitor filtered as
a bot is a lost visitor, a robot let through is one row a site owner can still see.

Before the lists and the keyword layer read a user agent, the tokens that name a person's
device or app are cut out of it (``human_view``): phone models ("CUBOT", "B BOT 550",
"HTC Butterfly"), in-app and Electron clients ("Viber/", "Slack/", "Code/") and app HTTP
stacks behind an app name ("... OkHttp/4.9"). Without this the lists' short patterns
match real people.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import Field, field_validator

from ferrite.core.config import Config, Table
from ferrite.core.event import Agent, Hit
from ferrite.core.hookspecs import hookimpl
from ferrite.core.urls import url_host
from ferrite.plugins.crawler_lists import CrawlerDetect, CrawlerUserAgents, PatternList

Layer = Literal["prefetch", "referrer_spam", "implausible", "injection", "spider",
                "crawler_list", "crawler_detect", "automation", "service", "keyword",
                "contact", "unrecognized", "custom"]
ALL_LAYERS: tuple[Layer, ...] = ("prefetch", "referrer_spam", "implausible", "injection",
                                 "spider", "crawler_list", "crawler_detect", "automation",
                                 "service", "keyword", "contact", "unrecognized",
                                 "custom")

#: Headless browsers, test drivers and page-speed tools that run a real engine.
AUTOMATION = PatternList([
    r"headless|phantomjs|slimerjs|selenium|webdriver|puppeteer|playwright|cypress|jsdom"
    r"|nightmare|zombie\.js|htmlunit|lighthouse|page ?speed|gtmetrix|\bptst\b|dareboost",
], ignore_case=True)
#: Robots that borrow a browser's user agent and add their product's name: special-purpose
#: fetchers, uptime and synthetic monitors, previewers, thumbnailers, transcoders, proxies.
SERVICE = PatternList([
    r"\bgoogle-[a-z]|duplexweb-google|googleweblight|google ?(?:search console|pp default"
    r"|keyword|web preview|favicon|adsense|producer|read-aloud|structured|inspection|site)"
    r"|mediapartners|feedfetcher|transcoder|yandex\.translate|translat(?:e|or) proxy"
    r"|thumb|snapr|web-?capture|screenshot|snapshot|\bwpm\b|uptime|synthetic|pingdom"
    r"|statuscake|site24x7|catchpoint|dynatrace|gomez|keynote|newrelic|datadog|iplabel"
    r"|\Bagent\b|\bagent/|check(?:er|ing)?\b|diagnostic|proxy\b|inspector|verifier"
    r"|qualify|whatcms|patchwatch|reputation|morningscore|mixnode|\bhlb/|yunjiankong"
    r"|rival ?iq|kimonolabs|sparkler|cloudinary|najdi\.si|mail\.ru/|\bspeng\b"
    r"|searchbyimage|\bproject[ _]|pageburst|measurement|\btime/\d{10}|functionize|convertify"
    r"|assetnote|dummy connection|prospect|\badvisor\b",
], ignore_case=True)
#: Words that no browser puts in its user agent but most robots do.
KEYWORD = PatternList([
    r"bot\b|bot[/_ -]|crawl|spider|scraper|monitor|fetcher|scanner|validator"
    r"|sitemap|archiver|analy[sz]er|cloudview|preview|\bscan\b|\bprobe\b",
], ignore_case=True)
#: Robots sign their user agent with a URL or an e-mail address; browsers never do.
CONTACT = re.compile(r"https?://|\bwww\.|[\w.+-]+@[\w-]+\.[a-z]{2,}", re.IGNORECASE)
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
#: SQL, script, template and shell payloads that scanners put in the User-Agent header.
INJECTION = PatternList([
    r"(?:'|%27)\s*(?:or|and|union|;|--|\))|\bunion\b.{0,20}\bselect\b"
    r"|\bselect\b.{1,60}\bfrom\b|\b(?:sleep|benchmark|pg_sleep|extractvalue|updatexml)\s*\("
    r"|waitfor\s+delay|<\s*/?\s*script|<\?|javascript:|\$\{|\{\{.*\}\}"
    r"|\b(?:and|or)\s+\d+\s*=\s*\d+|/etc/passwd|\.\./\.\./|\(\)\s*\{\s*:;\s*\}"
    r"|[;|&`]\s*(?:wget|curl|bash|sh|nc)\s",
], ignore_case=True)
#: Words that say a client is a person's program on a real platform, for user agents that
#: ua-parser does not know: an office app, a console, a TV, an old or niche browser.
PLATFORM_HINT = re.compile(
    r"browser|mac ?os|macintosh|windows|\bwin(?:7|8|10|11|32|64)\b|android|\bios\b|iphone"
    r"|ipad|darwin|cfnetwork|dalvik|linux|x11|playstation|\bps[345]\b|nintendo|xbox|amiga"
    r"|beos|haiku|os/2|openvms|harmony|tizen|webos|smart-?tv|hbbtv|roku|tvos|kaios|symbian"
    r"|midp|j2me|blackberry|desktop|mobile|phone|tablet|inferno|syllable|wtos|\btv\b|vizio"
    r"|amazon;aft|garmin|player|podcast|\bpod|radio|music|tunein",
    re.IGNORECASE,
)
#: Device and app tokens that are a person's, cut out before the lists and keywords run:
#: an Android comment's model and build segments; in-app, Electron and office clients;
#: an app's HTTP stack after the app's own name; WhatsApp's app (its link previewer ends
#: in a one-letter platform instead).
ANDROID_COMMENT = re.compile(r"\((?:Linux; )?(?:U; )?Android[^()]*\)")
HUMAN_TOKENS = re.compile(
    r"\b(?:Microsoft Office(?: \w+)?|Word|Excel|PowerPoint|Outlook|OneNote|Slack|Viber"
    r"|Podimo|Fluid|Code|Electron|Blackboard|PodcastAddict|Yandex\.Music|Teams|Discord"
    r"|Telegram|Skype|Spotify|AndroidDownloadManager|Slack_SSB)/\S*|\bSonic(?= Slack_SSB)"
    r"|Sogou\w*(?:/[\d.]+)?(?!\s+web)|\bmojeek-app\b|\bAmigaVoyager\b|\bQQDownload \d+"
    r"|WhatsApp/[\d.]+(?= (?:Android|iOS)/)|(?<=\S) (?:OkHttp|okhttp|libcurl|CFNetwork"
    r"|Dalvik|Alamofire)/[\w.-]+|libwww/\S*Mosaic|Mosaic.*libwww/\S*",
)


#: What ua-parser makes of a string it knows nothing about: no browser, no OS, no device.
UNRECOGNIZED = Agent()


def _android_comment(match: re.Match[str]) -> str:
    """Keep an Android comment's version and app tokens, drop the model and build."""
    parts = [p.strip() for p in match.group(0)[1:-1].split(";")]
    kept = [p for p in parts[:-1] if " Build/" not in p and not p.startswith("Build/")]
    last = parts[-1]
    if "/" in last and " Build/" not in last and not last.startswith("Build/"):
        kept.append(last)
    return "(" + "; ".join(kept) + ")"


def human_view(ua: str) -> str:
    """The user agent without the tokens that name a person's device or app."""
    return HUMAN_TOKENS.sub("", ANDROID_COMMENT.sub(_android_comment, ua))


class Settings(Table):
    layers: list[Layer] = Field(default_factory=lambda: list(ALL_LAYERS),
                                description="Detection layers to run.")
    extra_patterns: list[str] = Field(
        default_factory=list,
        description="Regular expressions (case-insensitive) for user agents to treat as bots "
        "(the 'custom' layer).",
    )
    extra_spam_domains: list[str] = Field(default_factory=list,
                                          description="Referrer domains to treat as spam.")
    cache_size: int = Field(20_000, ge=0, le=10_000_000)

    @field_validator("extra_patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
        return patterns


def load_spam_domains() -> frozenset[str]:
    text = resources.files("ferrite.plugins").joinpath("data/referrer-spam-domains.txt")
    lines = text.read_text("utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip())


def is_prefetch(headers: Mapping[str, str]) -> bool:
    purpose = (headers.get("sec-purpose") or headers.get("purpose") or "").lower()
    return ("prefetch" in purpose or "prerender" in purpose
            or headers.get("x-moz", "").lower() == "prefetch"
            or headers.get("x-purpose", "").lower() in ("preview", "prefetch"))


class Bots:
    def __init__(self, settings: Settings) -> None:
        self.layers = frozenset(settings.layers)
        self.spam = load_spam_domains() | {d.lower() for d in settings.extra_spam_domains}
        self.custom = (re.compile("|".join(f"(?:{p})" for p in settings.extra_patterns),
                                  re.IGNORECASE) if settings.extra_patterns else None)
        self.crawler_list = CrawlerUserAgents()
        self.crawler_detect = CrawlerDetect()
        self.ua_reason = lru_cache(maxsize=settings.cache_size)(self._ua_reason)
        self.is_spam_referrer = lru_cache(maxsize=settings.cache_size)(self._is_spam_referrer)

    def _is_spam_referrer(self, referrer: str) -> bool:
        host = url_host(referrer)
        while "." in host:  # the host, then each parent domain above the TLD
            if host in self.spam:
                return True
            host = host.partition(".")[2]
        return False

    def _ua_reason(self, ua: str, is_spider: bool, unrecognized: bool) -> str | None:
        layers = self.layers
        stripped = ua.strip()
        if "implausible" in layers and (
            len(stripped) < 5 or not any(c.isalpha() for c in stripped)
            or CONTROL_CHARS.search(ua) or len(ua) > 1024
        ):
            return "implausible"
        if "injection" in layers and INJECTION.search(ua):
            return "injection"
        if "spider" in layers and is_spider:
            return "spider"
        if "automation" in layers and AUTOMATION.search(ua):
            return "automation"
        if "service" in layers and SERVICE.search(ua):
            return "service"
        view = human_view(ua)
        if "crawler_list" in layers and self.crawler_list.is_crawler(view):
            return "crawler_list"
        if "crawler_detect" in layers and self.crawler_detect.is_crawler(view):
            return "crawler_detect"
        if "keyword" in layers and KEYWORD.search(view):
            return "keyword"
        if "contact" in layers and CONTACT.search(view):
            return "contact"
        if "custom" in layers and self.custom is not None and self.custom.search(ua):
            return "custom"
        if "unrecognized" in layers and unrecognized and not PLATFORM_HINT.search(ua):
            return "unrecognized"
        return None

    @hookimpl
    def ferrite_bot_reason(self, hit: Hit, agent: Agent) -> str | None:
        if "prefetch" in self.layers and is_prefetch(hit.headers):
            return "prefetch"
        if "referrer_spam" in self.layers and hit.referrer and self.is_spam_referrer(hit.referrer):
            return "referrer_spam"
        if "automation" in self.layers and "headless" in hit.headers.get("sec-ch-ua", "").lower():
            return "automation"
        return self.ua_reason(hit.user_agent, agent.is_spider, agent == UNRECOGNIZED)


@hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@hookimpl
def ferrite_plugin(settings: Settings, config: Config) -> Bots:
    return Bots(settings)
