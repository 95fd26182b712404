"""`[stats]`: the read side's settings, registered with core like the edge's."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from ferrite.core.config import Table, register_table
from ferrite.core.sites import check_zone
from ferrite.core.urls import site_name


class StatsTable(Table):
    """`[stats]`: the Stats API, `ferrite stats` and the query engine."""

    enabled: bool = Field(True, description="Serve the Stats API from `ferrite serve`; false "
                          "on collection-only nodes.")
    timezones: dict[str, str] = Field(
        default_factory=dict,
        description="IANA time zone per site (\"example.com\" = \"Europe/Berlin\"): where "
        "its days, weeks and months begin. Sites not listed use `timezone`.")
    timezone: str = Field("UTC", description="Time zone of sites not in `timezones`.")
    query_timeout_seconds: float = Field(10.0, gt=0, le=600,
                                         description="A query running longer is stopped and "
                                         "answered with an error.")
    rate_limit_per_hour: int = Field(600, ge=1, le=1_000_000,
                                     description="Stats API requests per key per hour "
                                     "(per worker process).")
    query_threads: int = Field(2, ge=1, le=64, description="Queries run at once per worker, "
                               "each in its own thread with its own database connection.")
    max_pattern_length: int = Field(256, ge=1, le=10_000,
                                    description="Characters in a `matches` pattern.")
    rollup_interval_seconds: float = Field(
        300.0, ge=0, le=86_400, description="How often `ferrite serve` builds the per-day "
        "rollups of closed days; 0 turns the background builder off.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("timezones")
    @classmethod
    def _zones(cls, value: dict[str, str]) -> dict[str, str]:
        return {site_name(site): check_zone(zone) for site, zone in value.items()}

    def zone(self, site: str) -> ZoneInfo:
        return ZoneInfo(self.timezones.get(site, self.timezone))


register_table("stats", StatsTable)
