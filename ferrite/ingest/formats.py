"""Access-log formats: one line (or JSON object) in, one `LogRecord` out.

The common Apache/nginx layouts are parsed by compiled regular expressions and a cached
timestamp decoder: apachelogs handles any LogFormat string but parses about 35k lines/s
here, against over a million for a compiled expression, and `ferrite ingest` has to keep
up with GoAccess. Custom format strings do go through apachelogs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

import apachelogs


class Malformed(ValueError):
    """A line that does not fit the format; the message says what was wrong."""


@dataclass(slots=True)
class LogRecord:
    ip: str
    ts: datetime
    method: str
    target: str  # path and query as requested, or an absolute URL
    status: int
    referrer: str = ""
    user_agent: str = ""
    host: str = ""


MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


@lru_cache(maxsize=1024)
def _day_start(day: str, zone: str) -> float:
    """Epoch seconds at midnight of `10/Oct/2000` in zone `-0700`."""
    try:
        date = datetime(int(day[7:11]), MONTHS[day[3:6]], int(day[0:2]), tzinfo=UTC)
        offset = (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60) * (-1 if zone[0] == "-" else 1)
    except (KeyError, ValueError, IndexError):
        raise Malformed(f"bad timestamp [{day} {zone}]") from None
    return date.timestamp() - offset


def clf_time(text: str) -> datetime:
    """`10/Oct/2000:13:55:36 -0700` (Common Log Format) as an aware UTC datetime.

    Only the date and zone go through the calendar (cached: a log has few days); the time
    of day is arithmetic, which keeps this off the profile of a million-line import.
    """
    try:
        seconds = int(text[12:14]) * 3600 + int(text[15:17]) * 60 + int(text[18:20])
    except ValueError:
        raise Malformed(f"bad timestamp [{text[:40]}]") from None
    return datetime.fromtimestamp(_day_start(text[:11], text[21:26]) + seconds, UTC)


def _unquote(value: str) -> str:
    return "" if value in ("-", "") else value.replace('\\"', '"')


# Quoted fields as "unrolled loops" (runs of plain characters, then an escape): the same
# language as (?:[^"\\]|\\.)*, several times faster on long user agents.
QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'
CLF = (r'(?P<ip>\S+) \S+ \S+ \[(?P<ts>[^\]]+)\] "(?P<request>' + QUOTED +
       r')" (?P<status>\d{3}) \S+')
REFERRER_UA = r' "(?P<referrer>' + QUOTED + r')" "(?P<ua>' + QUOTED + r')"'
VHOST = r"(?P<host>\S+) "

APACHE = {
    "combined": re.compile(CLF + REFERRER_UA),
    "common": re.compile(CLF + r"\s*$"),
    "combined-vhost": re.compile(VHOST + CLF + REFERRER_UA),
    "common-vhost": re.compile(VHOST + CLF + r"\s*$"),
}


#: Method of a record whose request field is not an HTTP request line: TLS, SOCKS and RDP
#: probes written to port 80 (logged with status 400), or "-". The line fits the format,
#: so it is not malformed; the runner skips it as "not_http".
NOT_HTTP = ""


def _request(text: str) -> tuple[str, str]:
    parts = text.split(" ")
    if len(parts) < 2 or not parts[0].isalpha():
        return NOT_HTTP, ""
    return parts[0], parts[1]


def apache_parser(name: str) -> Callable[[str], LogRecord]:
    pattern = APACHE[name]
    before = () if "host" in pattern.groupindex else ("",)  # pad to all seven fields
    after = () if "ua" in pattern.groupindex else ("", "")

    def parse(line: str) -> LogRecord:
        match = pattern.match(line)
        if match is None:
            raise Malformed(f"does not match the {name} format")
        host, ip, ts, request, status, referrer, ua = before + match.groups() + after
        method, target = _request(request)
        return LogRecord(ip=ip, ts=clf_time(ts), method=method, target=target,
                         status=int(status), referrer=_unquote(referrer),
                         user_agent=_unquote(ua), host=host)

    return parse


def caddy_record(data: Any) -> LogRecord:
    """One Caddy JSON access-log object (its `http.log.access` logger)."""
    try:
        request = data["request"]
        headers = request.get("headers") or {}
        ip = request.get("client_ip") or request["remote_addr"].rpartition(":")[0]
        return LogRecord(
            ip=ip.strip("[]"),
            ts=datetime.fromtimestamp(float(data["ts"]), UTC),
            method=request["method"], target=request["uri"], status=int(data["status"]),
            referrer=(headers.get("Referer") or [""])[0],
            user_agent=(headers.get("User-Agent") or [""])[0],
            host=request.get("host", ""),
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise Malformed(f"not a Caddy access-log object ({type(exc).__name__}: {exc})") from None


def caddy_parser(line: str) -> LogRecord:
    try:
        data = json.loads(line)
    except ValueError:
        raise Malformed("not valid JSON") from None
    return caddy_record(data)


def bunny_parser(line: str) -> LogRecord:
    """bunny.net CDN logs: `Cache|Status|Timestamp ms|Bytes|Zone|IP|Referer|URL|Edge|UA|Id|
    Country[|...]` (the extended layout adds fields after these)."""
    fields = line.rstrip("\n").split("|")
    if len(fields) < 12:
        raise Malformed(f"{len(fields)} fields, bunny logs have at least 12")
    try:
        ts = datetime.fromtimestamp(int(fields[2]) / 1000, UTC)
        status = int(fields[1])
    except ValueError:
        raise Malformed("bad status or timestamp") from None
    url = fields[7]
    host = re.sub(r"^https?://", "", url).split("/", 1)[0]
    return LogRecord(ip=fields[5], ts=ts, method="GET", target=url, status=status,
                     referrer=_unquote(fields[6]), user_agent=_unquote(fields[9]), host=host)


def custom_parser(log_format: str) -> Callable[[str], LogRecord]:
    """Any Apache LogFormat string, through apachelogs; must log %h, %t, %r and %s/%>s."""
    try:
        parser = apachelogs.LogParser(log_format)
    except apachelogs.Error as exc:
        raise ValueError(f"invalid log format {log_format!r}: {exc}") from None

    def parse(line: str) -> LogRecord:
        try:
            entry = parser.parse(line)
        except apachelogs.InvalidEntryError as exc:
            raise Malformed(str(exc)[:120]) from None
        field = partial(getattr, entry)  # apachelogs has no attribute for unlogged fields
        method, target = _request(field("request_line", None) or "")
        status = field("final_status", None) or field("status", None)
        ts = field("request_time", None)
        if ts is None or status is None:
            raise Malformed("the format must log the time (%t) and the status (%s or %>s)")
        headers = field("headers_in", None) or {}
        return LogRecord(
            ip=field("remote_host", None) or field("remote_address", None) or "",
            ts=ts.astimezone(UTC), method=method, target=target, status=int(status),
            referrer=_unquote(headers.get("Referer") or ""),
            user_agent=_unquote(headers.get("User-Agent") or ""),
            host=field("virtual_host", None) or field("server_name", None) or "",
        )

    return parse


FORMATS = ("combined", "common", "combined-vhost", "common-vhost", "caddy", "bunny")


def parser_for(name: str) -> Callable[[str], LogRecord]:
    if name in APACHE:
        return apache_parser(name)
    if name == "caddy":
        return caddy_parser
    if name == "bunny":
        return bunny_parser
    if "%" in name:
        return custom_parser(name)
    raise ValueError(f"unknown format {name!r}; choose auto, {', '.join(FORMATS)}, or an "
                     f"Apache LogFormat string such as '%h %l %u %t \"%r\" %>s %b'")


def detect(sample: Iterable[str]) -> str:
    """The format that parses the most of the first lines (ties: the richer one)."""
    lines = [line for line in sample if line.strip()][:50]
    if lines and lines[0].lstrip().startswith("{"):
        return "caddy"
    best, best_score = "combined", -1
    for name in ("combined-vhost", "combined", "common-vhost", "common", "bunny"):
        parse = parser_for(name)
        score = 0
        for line in lines:
            try:
                parse(line)
                score += 1
            except Malformed:
                pass
        if score > best_score:
            best, best_score = name, score
    if best_score <= 0:
        raise ValueError("could not recognise the log format from the first lines; "
                         "pass --format")
    return best
