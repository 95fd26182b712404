"""A sink that prints one readable line per event, for demos and debugging a chain."""

from __future__ import annotations

import sys

from pydantic import Field

from ferrite.core.config import Config, Table
from ferrite.core.event import Event, iso_utc
from ferrite.core.hookspecs import hookimpl


class Settings(Table):
    bots: bool = Field(True, description="Also print bot hits, marked with their reason.")
    color: bool | None = Field(None, description="ANSI colours; default: when stdout is a TTY.")


def format_event(event: Event, color: bool = False) -> str:
    dim, bold, reset = ("\x1b[2m", "\x1b[1m", "\x1b[0m") if color else ("", "", "")
    parts = [f"{dim}{iso_utc(event.ts)}{reset}", event.site, f"{bold}{event.name}{reset}",
             event.path]
    if event.bot:
        parts.append(f"[bot: {event.bot}]")
    else:
        parts.append(f"{event.browser}/{event.os}/{event.device}")
        if event.source:
            parts.append(f"source={event.source}")
        if event.referrer:
            parts.append(f"from={event.referrer}")
        if event.session:
            parts.append(f"{dim}session={event.session[:8]}{reset}")
    parts += [f"{k}={v}" for k, v in {**event.props, **event.extra}.items()]
    return "  ".join(parts)


class ConsoleSink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _print(self, events: list[Event]) -> None:
        out = sys.stdout
        color = self.settings.color if self.settings.color is not None else out.isatty()
        out.write("".join(format_event(e, color) + "\n" for e in events))
        out.flush()

    @hookimpl
    def ferrite_write(self, events: list[Event]) -> None:
        self._print(events)


class ConsoleSinkWithBots(ConsoleSink):
    @hookimpl
    def ferrite_write_bots(self, events: list[Event]) -> None:
        self._print(events)


@hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@hookimpl
def ferrite_plugin(settings: Settings, config: Config) -> ConsoleSink:
    return ConsoleSinkWithBots(settings) if settings.bots else ConsoleSink(settings)
