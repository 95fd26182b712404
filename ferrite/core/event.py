"""The two records that cross the chain: a raw `Hit` in, a privacy-safe `Event` out.

A `Hit` carries what only the early stages may see (socket peer, every header, the full
page URL). The pipeline builds the `Event` after the session stage from an explicit list
of fields, so the client IP and the raw user agent cannot leak into it by accident.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PropValue = str | int | float | bool

#: Headers that identify the visitor or the network path; enrichers never see them.
PRIVATE_HEADERS = frozenset(
    {
        "user-agent",
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "cf-connecting-ip",
        "true-client-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "fastly-client-ip",
        "cookie",
        "authorization",
        "proxy-authorization",
        "sec-ch-ua",
        "sec-ch-ua-full-version-list",
        "sec-ch-ua-platform-version",
        "sec-ch-ua-model",
    }
)


_sequence = itertools.count(int.from_bytes(os.urandom(2)))


def new_event_id(ts: float | None = None) -> str:
    """A 128-bit hex id: 48 bits of millisecond time, a 16-bit sequence, 64 random bits.

    Ids sort by time (SQLite's primary-key index stays append-mostly, as with UUIDv7), and
    events made in the same millisecond, such as one request's batch, keep their order.
    """
    ms = int((time.time() if ts is None else ts) * 1000)
    return f"{ms:012x}{next(_sequence) & 0xFFFF:04x}{os.urandom(8).hex()}"


@dataclass(slots=True)
class Agent:
    """The user-agent summary: all that survives of the raw string."""

    browser: str = "Other"
    os: str = "Other"
    device: str = "other"  # desktop, mobile, tablet, tv, bot or other
    is_spider: bool = False


@dataclass(slots=True)
class Hit:
    """One raw tracking hit, as the edge or an access-log line saw it.

    `headers` has lower-case names. `peer` is the socket peer address (for a log line,
    the logged client address). Nothing in a `Hit` is ever written by a sink.
    """

    site: str
    url: str = ""
    name: str = "pageview"
    referrer: str = ""
    props: dict[str, PropValue] = field(default_factory=dict)
    peer: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str | None = None

    @property
    def user_agent(self) -> str:
        return self.headers.get("user-agent", "")


#: The fields every event is stored with, in order: the SQLite columns, the CSV header,
#: `Event.stored()` and `Event.record()`. Never the full URL, the IP or the user agent.
STORED_FIELDS: tuple[str, ...] = (
    "id", "ts", "site", "name", "path", "referrer", "source", "utm_source", "utm_medium",
    "utm_campaign", "session", "browser", "os", "device", "props",
)


@dataclass(slots=True)
class Event:
    """A processed event, as sinks receive it. Holds no IP address and no user agent.

    `url` is the full page URL for enrichers; built-in sinks store `path` instead.
    `extra` holds fields added by enrichers (the SQLite sink makes them columns).
    `bot` is the reason a hit was classified as a bot, or None.
    """

    id: str
    ts: datetime
    site: str
    name: str
    url: str = ""
    path: str = "/"
    referrer: str = ""
    source: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    session: str = ""
    browser: str = ""
    os: str = ""
    device: str = ""
    props: dict[str, PropValue] = field(default_factory=dict)
    extra: dict[str, PropValue] = field(default_factory=dict)
    bot: str | None = None

    def stored(self) -> tuple[Any, ...]:
        """The values of STORED_FIELDS, in order (`ts` as ISO text); never `url`."""
        return (self.id, iso_utc(self.ts), self.site, self.name, self.path, self.referrer,
                self.source, self.utm_source, self.utm_medium, self.utm_campaign,
                self.session, self.browser, self.os, self.device, self.props)

    def record(self) -> dict[str, object]:
        """The flat row sinks write: the stored fields, then `extra`; never `url`."""
        row: dict[str, object] = dict(zip(STORED_FIELDS, self.stored(), strict=True))
        if self.bot is not None:
            row["bot"] = self.bot
        for key, value in self.extra.items():
            row.setdefault(key, value)
        return row


def iso_utc(ts: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, the one text form of time we store."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
