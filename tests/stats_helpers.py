"""Events for the read side's tests, written through a real sink: SQLite (a file's Path)
or PostgreSQL (a `PgDatabase` in the throwaway cluster), so each test runs on both."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PgDatabase:
    url: str

    def reset(self) -> None:
        """Empty, as a new database (much faster than making one per example)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS events, stats_rollup, stats_days, stats_hours, "
                         "stats_keys, ferrite_schema CASCADE")


Target = Path | PgDatabase


def write(db: Target, events: list[Event], batch: int = 500) -> None:
    if isinstance(db, PgDatabase):
        from ferrite.plugins.postgres import PostgresSink
        from ferrite.plugins.postgres import Settings as PgSettings

        sink: SqliteSink | PostgresSink = PostgresSink(PgSettings(url=db.url))
    else:
        sink = SqliteSink(Settings(path=str(db)))
    sink.ferrite_startup()
    try:
        for i in range(0, len(events), batch):
            sink.ferrite_write(events[i:i + batch])
    finally:
        sink.ferrite_shutdown()


def config(db: Target, **stats: Any) -> Config:
    if isinstance(db, PgDatabase):
        return load_config(data={"pipeline": {"plugins": ["postgres"]},
                                 "plugins": {"postgres": {"url": db.url}}, "stats": stats})
    return load_config(data={"plugins": {"sqlite": {"path": str(db)}}, "stats": stats})


def engine(db: Target, **stats: Any) -> Engine:
    return Engine(config(db, **stats))


def run(eng: Engine, now: datetime | None = None, **body: Any) -> list[tuple[list, list]]:
    """(dimensions, metrics) of each result row."""
    body.setdefault("site_id", "ex.com")
    body.setdefault("date_range", ["2026-03-01", "2026-03-02"])
    answer = eng.answer(body, now=now)
    return [(r.dimensions, r.metrics) for r in answer.rows]
