"""Visitor country from a CDN header: an example enricher that is a single module.

Only the two-letter code the CDN computed is kept; nothing here sees the IP address,
because enrichers run after the session stage.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

import ferrite

DEFAULT_HEADERS = ["cf-ipcountry", "cloudfront-viewer-country", "x-country-code",
                   "x-vercel-ip-country", "fastly-geo-country-code"]


class Settings(ferrite.Table):
    headers: list[str] = Field(default_factory=lambda: list(DEFAULT_HEADERS),
                               description="Headers to read the country from, in order.")


class Country:
    def __init__(self, settings: Settings) -> None:
        self.headers = [h.lower() for h in settings.headers]

    @ferrite.hookimpl
    def ferrite_enrich(self, event: ferrite.Event, headers: Mapping[str, str]) -> None:
        for name in self.headers:
            code = headers.get(name, "").strip().upper()
            if len(code) == 2 and code.isalpha() and code != "XX":
                event.extra["country"] = code
                return
        event.extra["country"] = ""


@ferrite.hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@ferrite.hookimpl
def ferrite_plugin(settings: Settings, config: ferrite.Config) -> Country:
    return Country(settings)
