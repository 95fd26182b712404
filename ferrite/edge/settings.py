"""`[edge]`: the HTTP server's settings. Plain pydantic, no web stack: core validates the
table through the registry (ferrite.core.config.register_table) without importing the
edge, and `ferrite check` reports its problems with every other table's."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, IPvAnyNetwork, field_validator

from ferrite.core.config import Table, register_table
from ferrite.core.urls import site_name

BIND = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):(?P<port>\d{1,5})$")


class EdgeTable(Table):
    """`[edge]`: the HTTP server. Plain data here; ferrite.edge reads it."""

    bind: str = Field("127.0.0.1:8000",
                      description="HOST:PORT to listen on; port 0 picks a free one.")
    workers: int = Field(1, ge=1, le=64, description="Processes sharing the listening socket.")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Proxies whose forwarding headers are believed (default for "
        "[plugins.client_ip] trusted_proxies).",
    )
    sites: list[str] = Field(default_factory=list,
                             description="Site domains to accept; empty accepts any.")
    cors_origins: list[str] = Field(default_factory=list,
                                    description="Origins allowed to post events; empty allows any.")
    ack: Literal["stored", "queued"] = Field(
        "stored", description="Answer after every sink stored the events, or on enqueue.")
    queue_size: int = Field(1000, ge=1, le=1_000_000,
                            description="Requests waiting for the writer before 503s.")
    max_body_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)
    max_events: int = Field(100, ge=1, le=10_000, description="Events in one POST.")
    max_props: int = Field(30, ge=0, le=1000, description="Props on one event.")
    max_prop_key: int = Field(300, ge=1, le=10_000, description="Characters in a prop key.")
    max_prop_value: int = Field(2000, ge=1, le=100_000,
                                description="Characters in a prop value.")
    max_url: int = Field(2048, ge=64, le=65_536, description="Characters in a URL or referrer.")
    graceful_timeout: float = Field(10.0, ge=0, le=600,
                                    description="Seconds in-flight requests get at shutdown.")
    read_timeout: int = Field(10, ge=1, le=600,
                              description="Seconds a client may take to send its request.")
    keep_alive_timeout: float = Field(5.0, ge=0, le=600)
    retry_after: int = Field(1, ge=1, le=3600, description="Retry-After seconds on 503.")
    static_dir: str | None = Field(
        None, description="A folder of pages to serve at / (the demo site, or your own).")
    umami_websites: dict[str, str] = Field(
        default_factory=dict,
        description="Umami website ids and the site each one's hits belong to, so Umami's "
        "tracker can post to /api/send unchanged.")

    @field_validator("bind")
    @classmethod
    def _host_port(cls, value: str) -> str:
        match = BIND.match(value)
        if match is None:
            raise ValueError(f"bind must be HOST:PORT, such as 127.0.0.1:8000, 0.0.0.0:8000 or "
                             f"[::1]:8000 (got {value!r})")
        if int(match["port"]) > 65535:
            raise ValueError(f"port {match['port']} is out of range; use 1-65535, or 0 for "
                             f"any free port")
        return value

    @field_validator("umami_websites")
    @classmethod
    def _umami_sites(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for website, site in value.items():
            if not website.strip() or not site.strip() or "/" in site or " " in site.strip():
                raise ValueError(f"umami_websites maps {website!r} to {site!r}; map each "
                                 f"Umami website id to a site domain such as \"example.com\"")
            out[website.strip().lower()] = site_name(site)
        return out


register_table("edge", EdgeTable)
