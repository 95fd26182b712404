"""Helpers for testing Ferrite plugins: make a hit, run the chain, see what a sink received.

    from ferrite.testing import make_hit, run_chain

    def test_my_enricher():
        result = run_chain([make_hit("https://example.com/", headers={"cf-ipcountry": "DE"})],
                           plugins=[("country", my_enricher_module)])
        assert result.events[0].extra["country"] == "DE"
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ferrite.core.config import Config, load_config
from ferrite.core.event import Event, Hit, PropValue
from ferrite.core.hookspecs import hookimpl
from ferrite.core.metrics import Metrics
from ferrite.core.pipeline import Pipeline
from ferrite.core.urls import site_name, url_host

DESKTOP_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

#: The built-in chain without a storage sink; salts live in memory; a failing sink is
#: retried without waiting and then fails the run (no spool), which is what a test wants.
TEST_CONFIG: dict[str, Any] = {
    "pipeline": {"plugins": ["client_ip", "useragent", "bots", "session", "referrer"],
                 "spool_dir": "", "retry_initial_seconds": 0},
    "plugins": {"session": {"path": ":memory:"}},
}


def make_hit(
    url: str = "https://example.com/",
    *,
    site: str | None = None,
    name: str = "pageview",
    referrer: str = "",
    props: Mapping[str, PropValue] | None = None,
    ip: str = "203.0.113.7",
    user_agent: str = DESKTOP_CHROME,
    headers: Mapping[str, str] | None = None,
    ts: datetime | None = None,
    id: str | None = None,
) -> Hit:
    """A hit as the edge would build it; `site` defaults to the URL's host without www."""
    if site is None:
        host = url_host(url) or "example.com"
        site = site_name(host)
    all_headers = {"user-agent": user_agent} if user_agent else {}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    return Hit(site=site, url=url, name=name, referrer=referrer, props=dict(props or {}),
               peer=ip, headers=all_headers, ts=ts or datetime.now(UTC), id=id)


class CaptureSink:
    """A sink that keeps every batch it receives, for assertions."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        self.bot_batches: list[list[Event]] = []
        self.started = False
        self.stopped = False

    @property
    def events(self) -> list[Event]:
        return [e for batch in self.batches for e in batch]

    @property
    def bots(self) -> list[Event]:
        return [e for batch in self.bot_batches for e in batch]

    @hookimpl
    def ferrite_startup(self) -> None:
        self.started = True

    @hookimpl
    def ferrite_shutdown(self) -> None:
        self.stopped = True

    @hookimpl
    def ferrite_write(self, events: list[Event]) -> None:
        self.batches.append(list(events))

    @hookimpl
    def ferrite_write_bots(self, events: list[Event]) -> None:
        self.bot_batches.append(list(events))


@dataclass
class ChainResult:
    events: list[Event]
    bots: list[Event]
    discarded: dict[str, int]
    metrics: Metrics
    capture: CaptureSink = field(repr=False)


def as_config(config: Config | Mapping[str, Any] | str | None) -> Config:
    """A `Config` from a Config, a dict shaped like ferrite.toml, TOML text, or None
    (the built-in chain with no storage sink and in-memory salts)."""
    if isinstance(config, Config):
        return config
    if isinstance(config, str):
        return load_config(data=tomllib.loads(config))
    return load_config(data=TEST_CONFIG if config is None else config)


def run_chain(
    hits: Iterable[Hit],
    config: Config | Mapping[str, Any] | str | None = None,
    *,
    plugins: Iterable[object | tuple[str, object]] = (),
) -> ChainResult:
    """Run `hits` through a chain (see `as_config`) plus `plugins`, then a capture sink.

    `plugins` are plugin objects or modules, or (name, object) pairs; they run after the
    configured plugins of each stage.
    """
    capture = CaptureSink()
    extra = [p if isinstance(p, tuple) else (_name_of(p), p) for p in plugins]
    pipeline = Pipeline(as_config(config), extra_plugins=[*extra, ("capture", capture)])
    with pipeline:
        totals = pipeline.run(hits)
    return ChainResult(capture.events, capture.bots, dict(totals.discarded), pipeline.metrics,
                       capture)


def _name_of(plugin: object) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__name__.lower()
