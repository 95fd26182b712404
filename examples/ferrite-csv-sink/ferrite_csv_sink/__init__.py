"""Append Ferrite events to a CSV file, one row per event (an example sink plugin)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO

from pydantic import Field, field_validator

import ferrite
from ferrite.core.event import STORED_FIELDS, Event

STORED_COLUMNS = list(STORED_FIELDS)


class Settings(ferrite.Table):
    path: str = Field(description="CSV file to append to; a header row is written when new.")
    columns: list[str] = Field(default_factory=lambda: list(STORED_COLUMNS),
                               description="Columns to write, in order.")

    @field_validator("columns")
    @classmethod
    def _known(cls, columns: list[str]) -> list[str]:
        unknown = [c for c in columns if c not in STORED_COLUMNS]
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(STORED_COLUMNS)}")
        return columns


class CsvSink:
    def __init__(self, settings: Settings) -> None:
        self.path = Path(settings.path)
        self.columns = settings.columns
        self._file: IO[str] | None = None

    @ferrite.hookimpl
    def ferrite_startup(self) -> None:
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = self.path.open("a", newline="", encoding="utf-8")
        if is_new:
            csv.writer(self._file).writerow(self.columns)

    @ferrite.hookimpl
    def ferrite_write(self, events: list[Event]) -> None:
        assert self._file is not None, "ferrite_startup has not run"
        writer = csv.writer(self._file)
        for event in events:
            record = event.record()
            record["props"] = json.dumps(record["props"]) if record["props"] else ""
            writer.writerow([record.get(c, "") for c in self.columns])
        self._file.flush()

    @ferrite.hookimpl
    def ferrite_shutdown(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@ferrite.hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@ferrite.hookimpl
def ferrite_plugin(settings: Settings, config: ferrite.Config) -> CsvSink:
    return CsvSink(settings)
