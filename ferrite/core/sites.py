"""`[sites]`: the one list of sites a node accepts, with each site's time zone.

The edge accepts hits for these sites only (any site when the list is empty), the stats
engine counts their days in their zones, and the dashboard lists them. `[edge] sites` and
`[stats] timezones`, the older spellings, are folded in here and nowhere else.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ferrite.core.config import Config, ConfigError, Table, register_table
from ferrite.core.urls import site_name


def check_zone(name: str) -> str:
    """An IANA zone name, or a ValueError that suggests the nearest ones."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        near = difflib.get_close_matches(name, sorted(available_timezones()), n=3,
                                         cutoff=0.7)
        hint = f"; did you mean {', '.join(near)}?" if near else \
            "; use an IANA name such as UTC, Europe/Berlin or America/New_York"
        raise ValueError(f"unknown time zone {name!r}{hint}") from None
    return name


class SiteEntry(BaseModel):
    """One `[sites."example.com"]` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str | None = Field(None, description="IANA zone where the site's days begin; "
                                 "default: [stats] timezone.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)


class SitesTable(Table):
    """`[sites]`: one sub-table per site domain, `[sites."example.com"]`."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, SiteEntry]

    @model_validator(mode="after")
    def _domains(self) -> SitesTable:
        for domain in self.__pydantic_extra__ or {}:
            name = site_name(domain)
            if not name or "/" in name or " " in name or ":" in name:
                raise ValueError(f"[sites] key {domain!r} is not a site domain; write "
                                 f"[sites.\"example.com\"] (a host name, no scheme or path)")
        return self

    def entries(self) -> dict[str, SiteEntry]:
        return {site_name(k): v for k, v in (self.__pydantic_extra__ or {}).items()}


register_table("sites", SitesTable)


@dataclass(frozen=True)
class Sites:
    """The sites a node serves, each with its zone name. `limited` is False when any site
    is accepted (no list given); `zones` then holds only the sites given a zone."""

    zones: dict[str, str]
    default_zone: str = "UTC"
    limited: bool = True

    def names(self) -> list[str]:
        return list(self.zones)

    def accepts(self, site: str) -> bool:
        return not self.limited or site in self.zones or site_name(site) in self.zones

    def zone_name(self, site: str) -> str:
        return self.zones.get(site_name(site), self.default_zone)

    def zone(self, site: str) -> ZoneInfo:
        return ZoneInfo(self.zone_name(site))


def sites_of(config: Config) -> Sites:
    """The effective site list: `[sites]`, or the older `[edge] sites` with `[stats]
    timezones`. Giving both spellings is an error, so there is one source of truth."""
    cached = config.__dict__.get("_sites")
    if cached is not None:
        return cached
    default = _attr(config, "stats", "timezone", "UTC")
    entries = config.sites.entries()
    legacy_sites = [site_name(s) for s in _attr(config, "edge", "sites", [])]
    legacy_zones = {site_name(k): v for k, v in _attr(config, "stats", "timezones", {}).items()}
    if entries and (legacy_sites or legacy_zones):
        raise ConfigError(f"{config.source} lists sites both in [sites] and in "
                          f"{'[edge] sites' if legacy_sites else '[stats] timezones'}; "
                          f"keep only [sites] (one [sites.\"DOMAIN\"] table per site, with "
                          f"its timezone)")
    if entries:
        result = Sites({name: e.timezone or default for name, e in entries.items()}, default)
    elif legacy_sites:
        result = Sites({name: legacy_zones.get(name, default) for name in legacy_sites},
                       default)
    else:
        result = Sites(legacy_zones, default, limited=False)
    config.__dict__["_sites"] = result
    return result


def _attr(config: Config, table: str, key: str, default: Any) -> Any:
    try:
        return getattr(getattr(config, table), key, default)
    except AttributeError:
        return default
