"""Events for the read side's tests, written through the real SQLite sink."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferrite import load_config
from ferrite.core.config import Config
from ferrite.core.event import Event
from ferrite.plugins.sqlite import Settings, SqliteSink
from ferrite.stats.engine import Engine

_ids = itertools.count(1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def event(ts: str, session: str, path: str = "/", name: str = "pageview", *,
          site: str = "ex.com", referrer: str = "", source: str = "direct",
          utm_source: str = "", utm_medium: str = "", utm_campaign: str = "",
          browser: str = "Firefox", os: str = "Linux", device: str = "desktop",
          props: dict[str, Any] | None = None, id: str | None = None,
          extra: dict[str, Any] | None = None) -> Event:
    return Event(id=id or f"{next(_ids):032x}", ts=at(ts), site=site, name=name, path=path,
                 referrer=referrer, source=source, utm_source=utm_source,
                 utm_medium=utm_medium, utm_campaign=utm_campaign, session=session,
                 browser=browser, os=os, device=device, props=props or {},
                 extra=extra or {})


def write(db: Path, events: list[Event], batch: int = 500) -> None:
    sink = SqliteSink(Settings(path=str(db)))
    sink.ferrite_startup()
    try:
        for i in range(0, len(events), batch):
            sink.ferrite_write(events[i:i + batch])
    finally:
        sink.ferrite_shutdown()


def config(db: Path, **stats: Any) -> Config:
    return load_config(data={"plugins": {"sqlite": {"path": str(db)}}, "stats": stats})


def engine(db: Path, **stats: Any) -> Engine:
    return Engine(config(db, **stats))


def run(eng: Engine, now: datetime | None = None, **body: Any) -> list[tuple[list, list]]:
    """(dimensions, metrics) of each result row."""
    body.setdefault("site_id", "ex.com")
    body.setdefault("date_range", ["2026-03-01", "2026-03-02"])
    answer = eng.answer(body, now=now)
    return [(r.dimensions, r.metrics) for r in answer.rows]
