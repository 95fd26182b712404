"""The hook contract between Ferrite and its plugins, grouped by when each hook runs.

Argument names are the contract: an implementation may accept any subset of them.
docs/plugins.md documents each hook; tests/test_docs.py keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy

from ferrite.core.event import Agent, Event, Hit

PROJECT = "ferrite"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- Set-up: called by the host once per plugin, with that plugin's own settings ----------


@hookspec
def ferrite_settings() -> type | None:
    """Return the pydantic model that validates this plugin's ``[plugins.NAME]`` table."""


@hookspec
def ferrite_plugin(settings: Any, config: Any) -> object | None:
    """Return the stateful object whose hook implementations join the chain for this plugin.

    :param settings: this plugin's validated settings (an instance of its settings model,
        or None when the plugin declares none).
    :param config: the whole `ferrite.core.config.Config`, to read shared settings.
    """


# --- Lifecycle: once per pipeline ---------------------------------------------------------


@hookspec
def ferrite_startup() -> None:
    """Open connections, files and stores before the first hit."""


@hookspec
def ferrite_shutdown() -> None:
    """Flush and close what `ferrite_startup` opened; runs even after errors."""


@hookspec
def ferrite_health() -> str | None:
    """A problem that makes this node not ready (a server the plugin needs cannot be
    reached), with any credentials masked, or None. Called by `/readyz` in a worker thread,
    never by the chain; answer within a second or two and cache."""


# --- The chain: once per hit, in this order ------------------------------------------------


@hookspec(firstresult=True)
def ferrite_client_ip(peer: str, headers: Mapping[str, str]) -> str | None:
    """Return the visitor's IP address for a hit from socket peer `peer`."""


@hookspec(firstresult=True)
def ferrite_user_agent(user_agent: str) -> Agent | None:
    """Return the `Agent` summary (browser, OS, device type) of a raw user-agent string."""


@hookspec(firstresult=True)
def ferrite_bot_reason(hit: Hit, agent: Agent) -> str | None:
    """Return a short reason if the hit comes from a bot, or None for a person."""


@hookspec(firstresult=True)
def ferrite_session(hit: Hit, client_ip: str) -> str | None:
    """Return the session identifier: the last stage that sees the IP and the user agent."""


@hookspec
def ferrite_enrich(event: Event, headers: Mapping[str, str]) -> str | None:
    """Add to or rewrite `event` in place; return a reason string to discard it.

    :param headers: the hit's headers without the user agent, forwarding and cookie headers.
    """


# --- Sinks: once per batch, each sink called on its own --------------------------------------


@hookspec
def ferrite_write(events: list[Event]) -> int | None:
    """Store a batch of events durably before returning; raise to report failure. May
    return how many of the events were new to it (a sink that ignores ids it already has),
    which `ferrite ingest` reports."""


@hookspec
def ferrite_write_bots(events: list[Event]) -> None:
    """Store a batch of bot events (`event.bot` holds the reason); optional for sinks."""


# --- The read side: called by the stats engine, not by the chain ---------------------------


@hookspec(firstresult=True)
def ferrite_stats_store() -> object | None:
    """Return an object that answers stats queries for the events this plugin stores (the
    methods of `ferrite.stats.store.StatsStore`), or None. Called by `ferrite stats`, the
    Stats API and `ferrite build-stats`, never by the chain; the object opens its own
    connections and must not block this plugin's writes."""


@hookspec(firstresult=True)
def ferrite_account_store() -> object | None:
    """Return an object that keeps the dashboard's users, login sessions, shared links,
    setup token and secrets (the methods of `ferrite.accounts.store.AccountStore`), or
    None. Called by `ferrite users` and the dashboard, never by the chain."""
