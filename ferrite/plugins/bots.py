"""Layered bot detection: each layer that fires gives its name as the reason.

Layers, cheapest and most certain first: prefetch/preview headers, referrer spam, then the
user-agent layers (ua-parser's Spider device, the crawler-user-agents pattern list,
automation markers, implausible strings), whose verdict is cached per user agent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Literal
from urllib.parse import urlsplit

import crawleruseragents
from pydantic import Field, field_validator

from ferrite.core.config import Config, Table
from ferrite.core.event import Agent, Hit
from ferrite.core.hookspecs import hookimpl

Layer = Literal["prefetch", "referrer_spam", "spider", "crawler_list", "automation",
                "keyword", "contact", "implausible", "custom"]
ALL_LAYERS: tuple[Layer, ...] = ("prefetch", "referrer_spam", "spider", "crawler_list",
                                 "automation", "keyword", "contact", "implausible", "custom")

#: Headless browsers, test drivers and page-speed tools that run a real engine.
AUTOMATION = re.compile(
    r"headless|phantomjs|slimerjs|selenium|webdriver|puppeteer|playwright|cypress|jsdom"
    r"|nightmare|zombie\.js|htmlunit|lighthouse|page ?speed|gtmetrix|\bptst\b|dareboost"
    r"|google[- ](?:adwords|publisher|structured|read-aloud|inspection|site)",
    re.IGNORECASE,
)
#: Words that no browser puts in its user agent but most robots do ("Cubot" is a phone).
KEYWORD = re.compile(
    r"(?<!cu)bot\b|bot[/_ -]|crawl|spider|scraper|monitor|checker|fetcher|scanner|validator"
    r"|sitemap|archiver|analy[sz]er|cloudview|preview",
    re.IGNORECASE,
)
#: Robots sign their user agent with a URL or an e-mail address; browsers never do.
CONTACT = re.compile(r"https?://|\bwww\.|[\w.+-]+@[\w-]+\.[a-z]{2,}", re.IGNORECASE)
#: Every browser since the 1990s opens with one of these product tokens.
BROWSER_PREFIX = re.compile(r"^\"?(Mozilla|Opera)/\d")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


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


def referrer_host(referrer: str) -> str:
    try:
        return (urlsplit(referrer).hostname or "").rstrip(".")
    except ValueError:
        return ""


class Bots:
    def __init__(self, settings: Settings) -> None:
        self.layers = frozenset(settings.layers)
        self.spam = load_spam_domains() | {d.lower() for d in settings.extra_spam_domains}
        self.custom = (re.compile("|".join(f"(?:{p})" for p in settings.extra_patterns),
                                  re.IGNORECASE) if settings.extra_patterns else None)
        self.ua_reason = lru_cache(maxsize=settings.cache_size)(self._ua_reason)
        self.is_spam_referrer = lru_cache(maxsize=settings.cache_size)(self._is_spam_referrer)

    def _is_spam_referrer(self, referrer: str) -> bool:
        host = referrer_host(referrer)
        while "." in host:  # the host, then each parent domain above the TLD
            if host in self.spam:
                return True
            host = host.partition(".")[2]
        return False

    def _ua_reason(self, ua: str, is_spider: bool) -> str | None:
        layers = self.layers
        if "implausible" in layers and (
            len(ua.strip()) < 12 or CONTROL_CHARS.search(ua) or len(ua) > 1024
        ):
            return "implausible"
        if "spider" in layers and is_spider:
            return "spider"
        if "crawler_list" in layers and crawleruseragents.is_crawler(ua):
            return "crawler_list"
        if "automation" in layers and AUTOMATION.search(ua):
            return "automation"
        if "keyword" in layers and KEYWORD.search(ua):
            return "keyword"
        if "contact" in layers and CONTACT.search(ua):
            return "contact"
        if "custom" in layers and self.custom is not None and self.custom.search(ua):
            return "custom"
        if "implausible" in layers and not BROWSER_PREFIX.match(ua):
            return "implausible"
        return None

    @hookimpl
    def ferrite_bot_reason(self, hit: Hit, agent: Agent) -> str | None:
        if "prefetch" in self.layers and is_prefetch(hit.headers):
            return "prefetch"
        if "referrer_spam" in self.layers and hit.referrer and self.is_spam_referrer(hit.referrer):
            return "referrer_spam"
        if "automation" in self.layers and "headless" in hit.headers.get("sec-ch-ua", "").lower():
            return "automation"
        return self.ua_reason(hit.user_agent, agent.is_spider)


@hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@hookimpl
def ferrite_plugin(settings: Settings, config: Config) -> Bots:
    return Bots(settings)
