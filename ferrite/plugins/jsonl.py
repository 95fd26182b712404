"""Append-only JSON Lines sink: one event per line, easy to ship to anything else.

Each batch is one write() of whole lines, flushed before returning, so a crash leaves at
most a partial last line, never a torn event in the middle of the file.
"""

from __future__ import annotations

import json
import os
from typing import IO

from pydantic import Field

from ferrite.core.config import Config, Table
from ferrite.core.event import Event
from ferrite.core.hookspecs import hookimpl


class Settings(Table):
    path: str = Field("ferrite-events.jsonl", description="File to append events to.")
    fsync: bool = Field(False, description="fsync after every batch (survives power loss).")
    include_bots: bool = Field(False, description="Also append bot hits, with a 'bot' field.")


class JsonlSink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._file: IO[str] | None = None

    @hookimpl
    def ferrite_startup(self) -> None:
        self._file = open(self.settings.path, "a", encoding="utf-8")  # noqa: SIM115

    @hookimpl
    def ferrite_shutdown(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def append(self, events: list[Event]) -> None:
        if self._file is None:
            raise RuntimeError("the jsonl sink is not open: ferrite_startup has not run")
        lines = "".join(json.dumps(e.record(), ensure_ascii=False, separators=(",", ":")) + "\n"
                        for e in events)
        self._file.write(lines)
        self._file.flush()
        if self.settings.fsync:
            os.fsync(self._file.fileno())

    @hookimpl
    def ferrite_write(self, events: list[Event]) -> None:
        self.append(events)


class JsonlSinkWithBots(JsonlSink):
    @hookimpl
    def ferrite_write_bots(self, events: list[Event]) -> None:
        self.append(events)


@hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@hookimpl
def ferrite_plugin(settings: Settings, config: Config) -> JsonlSink:
    return JsonlSinkWithBots(settings) if settings.include_bots else JsonlSink(settings)
