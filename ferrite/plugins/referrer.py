"""Where visits come from: the referrer cut to scheme+host+path, a source class, UTM tags.

Query strings are dropped because they carry search terms, tokens and e-mail addresses;
only the UTM keys survive, because site owners put them there on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

from pydantic import Field

from ferrite.core.config import Config, Table
from ferrite.core.event import Event
from ferrite.core.hookspecs import hookimpl
from ferrite.core.urls import site_name
from ferrite.plugins.referrer_sources import EMAIL, SEARCH, SOCIAL

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
PAID_MEDIUMS = frozenset({"cpc", "ppc", "paid", "paidsearch", "paid_search", "cpm", "display"})


class Settings(Table):
    search: list[str] = Field(default_factory=list, description="More search-engine hosts.")
    social: list[str] = Field(default_factory=list, description="More social-network hosts.")
    email: list[str] = Field(default_factory=list, description="More webmail hosts.")
    keep_utm_in_path: bool = Field(
        True, description="Keep UTM keys in the stored path's query string (others are dropped)."
    )


def split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url.strip())
    except ValueError:
        return None


def bare_host(host: str) -> str:
    return site_name(host)


def host_in(host: str, table: Mapping[str, str] | frozenset[str]) -> str | None:
    """The entry of `table` matching `host` or one of its parent domains."""
    while host:
        if host in table:
            return host
        _, _, host = host.partition(".")
    return None


class Referrers:
    def __init__(self, settings: Settings) -> None:
        self.search = SEARCH | frozenset(h.lower() for h in settings.search)
        self.social = SOCIAL | frozenset(h.lower() for h in settings.social)
        self.email = EMAIL | frozenset(h.lower() for h in settings.email)
        self.keep_utm = settings.keep_utm_in_path

    def classify(self, ref_host: str, site: str, utm_medium: str) -> str:
        if not ref_host:
            medium = utm_medium.lower()
            if medium in PAID_MEDIUMS:
                return "paid"
            if medium in ("email", "e-mail", "newsletter"):
                return "email"
            if medium == "social":
                return "social"
            return "campaign" if medium else "direct"
        if ref_host == bare_host(site):
            return "internal"
        if host_in(ref_host, self.email) or ref_host.startswith(("mail.", "webmail.")):
            return "email"
        if host_in(ref_host, self.search) or _is_google(ref_host):
            return "search"
        if host_in(ref_host, self.social):
            return "social"
        return "referral"

    @hookimpl(tryfirst=True)
    def ferrite_enrich(self, event: Event) -> None:
        page = split(event.url)
        utm: list[tuple[str, str]] = []
        if page is not None:
            utm = [(k, v[:200]) for k, v in parse_qsl(page.query) if k in UTM_KEYS]
            tags = dict(utm)
            event.utm_source = tags.get("utm_source", "")
            event.utm_medium = tags.get("utm_medium", "")
            event.utm_campaign = tags.get("utm_campaign", "")
            event.path = page.path or "/"
            if utm and self.keep_utm:
                event.path += "?" + urlencode(utm)
            if page.fragment:  # present only for hash-routed pages
                event.path += "#" + page.fragment
        ref = split(event.referrer) if event.referrer else None
        ref_host = ""
        if ref is not None and ref.scheme in ("http", "https", "android-app") and ref.hostname:
            ref_host = bare_host(ref.hostname)
            event.referrer = f"{ref.scheme}://{ref.hostname}{ref.path}"
        else:
            event.referrer = ""
        event.source = self.classify(ref_host, event.site, event.utm_medium)


def _is_google(host: str) -> bool:
    """google.com, google.de, google.co.uk, ... without listing 190 country domains."""
    labels = host.split(".")
    return "google" in labels[:-1] and labels[0] in ("google", "www") and len(labels) <= 4


@hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@hookimpl
def ferrite_plugin(settings: Settings, config: Config) -> Referrers:
    return Referrers(settings)
