"""Cookie-free sessions: a keyed hash of (daily salt, site, client IP, user agent).

This is the last stage that sees the IP and the raw user agent. The hash is BLAKE2b keyed
with the salt of the hit's UTC day, so it cannot be reversed or linked across days once
the salt is destroyed.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from hashlib import blake2b

from pydantic import Field

from ferrite.core.config import DEFAULT_DATABASE, Config, Table
from ferrite.core.delivery import RetryableSinkError
from ferrite.core.event import Hit
from ferrite.core.hookspecs import hookimpl
from ferrite.plugins.salts import SaltStore


class Settings(Table):
    path: str | None = Field(
        None,
        description="SQLite file holding the daily salts; defaults to the sqlite sink's "
        "database (or ferrite.db), so every worker shares them.",
    )
    url: str | None = Field(
        None,
        description="PostgreSQL URL holding the daily salts instead, shared by every node; "
        "defaults to [plugins.postgres] url when the postgres plugin runs.",
    )


def session_id(salt: bytes, site: str, client_ip: str, user_agent: str) -> str:
    digest = blake2b(key=salt, digest_size=16)
    digest.update(f"{site}\x00{client_ip}\x00{user_agent}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class Sessions:
    def __init__(self, path: str | None = None, url: str | None = None) -> None:
        if url is not None:
            from ferrite.plugins.salts_postgres import PostgresSaltStore

            self.salts: SaltStore = PostgresSaltStore(url)
        else:
            self.salts = SaltStore(path or DEFAULT_DATABASE)
        self._timer: threading.Timer | None = None

    @hookimpl
    def ferrite_startup(self) -> None:
        self.salts.open()
        self._arm_midnight_rotation()

    @hookimpl
    def ferrite_shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.salts.close()

    def _arm_midnight_rotation(self) -> None:
        """Destroy yesterday's salt's predecessor at the day boundary even with no traffic."""
        now = datetime.now(UTC)
        midnight = datetime.combine(now.date(), datetime.min.time(), UTC).timestamp() + 86400
        self._timer = threading.Timer(midnight - now.timestamp() + 1, self._rotate_and_rearm)
        self._timer.daemon = True
        self._timer.start()

    def _rotate_and_rearm(self) -> None:
        try:
            self.salts.rotate()
        except RetryableSinkError:  # a shared store's database is away: try again soon
            self._timer = threading.Timer(30, self._rotate_and_rearm)
            self._timer.daemon = True
            self._timer.start()
            return
        except Exception:  # a closed store at shutdown; the next startup rotates anyway
            return
        self._arm_midnight_rotation()

    @hookimpl
    def ferrite_session(self, hit: Hit, client_ip: str) -> str:
        ts = hit.ts if hit.ts.tzinfo is not None else hit.ts.replace(tzinfo=UTC)
        salt = self.salts.salt_for(ts.astimezone(UTC).date())
        return session_id(salt, hit.site, client_ip, hit.user_agent)


@hookimpl
def ferrite_settings() -> type[Settings]:
    return Settings


@hookimpl
def ferrite_plugin(settings: Settings, config: Config) -> Sessions:
    url = settings.url
    if url is None and settings.path is None and "postgres" in config.plugins:
        url = config.plugin_table("postgres").get("url")  # nodes share the salts with events
    if isinstance(url, str):
        return Sessions(url=url)
    path = settings.path
    if path is None:  # beside the events, when the sqlite sink runs; else the default file
        sink = config.plugin_table("sqlite") if "sqlite" in config.plugins else {}
        path = sink.get("path", DEFAULT_DATABASE)
        if not isinstance(path, str):  # the sink's own validation names the problem
            path = DEFAULT_DATABASE
    return Sessions(path)
