"""Turning request data into hits, and refusing bad input with a message naming the field.

Accepts a superset of Plausible's event API: `n`/`name`, `u`/`url`, `d`/`domain`,
`r`/`referrer`, `p`/`props` (an object, or a JSON string holding one), `h` (hash routing:
keep the URL's fragment as part of the path), and a comma-separated domain list meaning one
event per site. Unknown fields are ignored so
other trackers' extra fields do not break ingestion.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ferrite.core.event import PropValue
from ferrite.core.urls import site_name, url_host
from ferrite.edge.settings import EdgeTable

SITE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME = 120


class BadInput(Exception):
    """Input the edge refuses: `field` names what to fix, `reason` labels the metric."""

    def __init__(self, field: str, message: str, *, status: int = 400,
                 reason: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status
        self.reason = reason

    def body(self) -> dict[str, str]:
        return {"error": self.message, "field": self.field}


@dataclass(frozen=True, slots=True)
class EventInput:
    """One validated event, before it becomes a `Hit` per site."""

    name: str
    url: str
    sites: tuple[str, ...]
    referrer: str
    props: dict[str, PropValue]
    #: Plausible's tracker reports scroll depth and time on page as an "engagement" event
    #: (fields sd and e); Ferrite keeps no such figures, so the edge counts and drops it.
    engagement: bool = False


def check_url(value: Any, field: str, limits: EdgeTable, *, required: bool,
              web_only: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise BadInput(field, f"{field} is required: the page's full URL (http or https)",
                           reason="missing_url")
        return ""
    if not isinstance(value, str):
        raise BadInput(field, f"{field} must be a string, got {type(value).__name__}")
    if len(value) > limits.max_url:
        raise BadInput(field, f"{field} is longer than {limits.max_url} characters",
                       reason="too_long")
    if CONTROL.search(value):
        raise BadInput(field, f"{field} contains control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise BadInput(field, f"{field} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        if not web_only:
            return value  # android-app://, about:blank ...: kept, the referrer stage copes
        raise BadInput(field, f"{field} must be an http or https URL with a host")
    return value


def check_sites(value: Any, field: str, url: str) -> tuple[str, ...]:
    if value is None or value == "":
        sites: list[str] = [site_name(url_host(url))]
    elif isinstance(value, str):
        sites = [site_name(part) for part in value.split(",") if part.strip()]
    else:
        raise BadInput(field, f"{field} must be a string such as \"example.com\"")
    if not sites or len(sites) > 10:
        raise BadInput(field, f"{field} must name 1 to 10 comma-separated sites")
    for site in sites:
        if len(site) > 253 or not SITE.match(site):
            raise BadInput(field, f"{field} has an invalid site name {site[:80]!r}")
    return tuple(dict.fromkeys(sites))


def check_name(value: Any, field: str) -> str:
    if value is None:
        return "pageview"
    if not isinstance(value, str) or not value.strip():
        raise BadInput(field, f"{field} must be a non-empty string")
    if len(value) > MAX_NAME:
        raise BadInput(field, f"{field} is longer than {MAX_NAME} characters", reason="too_long")
    if CONTROL.search(value):
        raise BadInput(field, f"{field} contains control characters")
    return value.strip()


def check_props(value: Any, field: str, limits: EdgeTable) -> dict[str, PropValue]:
    if value is None:
        return {}
    if isinstance(value, str):  # Plausible's tracker may send props JSON-encoded
        try:
            value = json.loads(value, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise BadInput(field, f"{field} is a string but not a JSON object") from None
    if not isinstance(value, dict):
        raise BadInput(field, f"{field} must be an object of flat values")
    if len(value) > limits.max_props:
        raise BadInput(field, f"{field} has {len(value)} keys; at most {limits.max_props}",
                       reason="too_many_props")
    props: dict[str, PropValue] = {}
    for key, item in value.items():
        where = f"{field}.{key[:40]}"
        if not key or len(key) > limits.max_prop_key or CONTROL.search(key):
            raise BadInput(where, f"{field} key {key[:40]!r} must be 1 to "
                                  f"{limits.max_prop_key} printable characters",
                           reason="bad_prop")
        if (isinstance(item, bool) or (isinstance(item, int) and abs(item) < 2**53)
                or (isinstance(item, float) and math.isfinite(item))):
            props[key] = item
        elif isinstance(item, str):
            if len(item) > limits.max_prop_value:
                raise BadInput(where, f"{where} is longer than {limits.max_prop_value} "
                                      "characters", reason="bad_prop")
            props[key] = item
        else:
            raise BadInput(where, f"{where} must be a string, number or boolean "
                                  f"(got {type(item).__name__})", reason="bad_prop")
    return props


def event_from_mapping(data: Mapping[str, Any], prefix: str, limits: EdgeTable) -> EventInput:
    def pick(short: str, long: str) -> tuple[str, Any]:
        if long in data:
            return prefix + long, data[long]
        return prefix + short, data.get(short)

    url_field, url_value = pick("u", "url")
    url = check_url(url_value, url_field, limits, required=True)
    if not data.get("h"):  # Plausible's flag: the fragment is a route only in hash mode
        url = url.partition("#")[0]
    name_field, name_value = pick("n", "name")
    ref_field, ref_value = pick("r", "referrer")
    site_field, site_value = pick("d", "domain")
    props_field, props_value = pick("p", "props")
    return EventInput(
        name=check_name(name_value, name_field),
        url=url,
        sites=check_sites(site_value, site_field, url),
        referrer=check_url(ref_value, ref_field, limits, required=False, web_only=False),
        props=check_props(props_value, props_field, limits),
        engagement=name_value == "engagement" and "sd" in data,
    )


def events_from_body(body: bytes, limits: EdgeTable) -> list[EventInput]:
    """Parse a POST body of any content type as JSON: one event object or an array."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput("body", f"body is not valid UTF-8 (byte {exc.start})",
                       reason="bad_encoding") from None
    if not text.strip():
        raise BadInput("body", "body is empty; send a JSON event object or an array of them",
                       reason="bad_json")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadInput("body", f"body is not valid JSON: {str(exc)[:120]}",
                       reason="bad_json") from None
    if isinstance(data, dict):
        return [event_from_mapping(data, "", limits)]
    if isinstance(data, list):
        if not data:
            raise BadInput("body", "the event array is empty", reason="bad_json")
        if len(data) > limits.max_events:
            raise BadInput("body", f"{len(data)} events in one request; at most "
                                   f"{limits.max_events}", status=413, reason="too_many_events")
        events = []
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise BadInput(f"[{i}]", f"event [{i}] must be an object")
            events.append(event_from_mapping(item, f"[{i}].", limits))
        return events
    raise BadInput("body", "body must be a JSON object or an array of objects",
                   reason="bad_json")


def pixel_event(args: Mapping[str, str], referer: str, limits: EdgeTable) -> EventInput:
    """The pixel's query (`u`, `r`, `n`, `d`); the page defaults to the Referer header."""
    data = dict(args)
    if not data.get("u"):
        data["u"] = referer
    return event_from_mapping(data, "", limits)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_body(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput("body", f"body is not valid UTF-8 (byte {exc.start})",
                       reason="bad_encoding") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadInput("body", f"body is not valid JSON: {str(exc)[:120]}",
                       reason="bad_json") from None


def umami_event(body: bytes, websites: Mapping[str, str],
                limits: EdgeTable) -> EventInput | None:
    """Umami's `POST /api/send` body: {"type": "event", "payload": {"website", "hostname",
    "url" (path and query), "referrer", "title", "screen", "language", "name", "data"}}.

    The website id maps to a Ferrite site through [edge] umami_websites. `identify` calls
    carry data about a visitor, which Ferrite does not keep: None.
    """
    data = parse_json_body(body)
    if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
        raise BadInput("payload", "body must be an object with a payload object, as Umami's "
                                  "tracker sends", reason="bad_json")
    kind = data.get("type", "event")
    if kind == "identify":
        return None
    if kind != "event":
        raise BadInput("type", f"type must be 'event' or 'identify', got {str(kind)[:40]!r}")
    payload = data["payload"]
    website = payload.get("website")
    if not isinstance(website, str) or not website:
        raise BadInput("payload.website", "payload.website is required: the Umami website id")
    site = websites.get(website.lower())
    if site is None:
        raise BadInput("payload.website", f"website id {website[:60]!r} is not mapped to a "
                                          f"site; add it to [edge] umami_websites",
                       status=403, reason="unknown_website")
    hostname = payload.get("hostname") or site
    path = payload.get("url") or "/"
    if not isinstance(hostname, str) or not isinstance(path, str):
        raise BadInput("payload.url", "payload.hostname and payload.url must be strings")
    if "://" not in path:
        path = f"https://{hostname}{path if path.startswith('/') else '/' + path}"
    url = check_url(path, "payload.url", limits, required=True).partition("#")[0]
    referrer = payload.get("referrer") or ""
    return EventInput(
        name=check_name(payload.get("name"), "payload.name"),
        url=url,
        sites=(site,),
        referrer=check_url(referrer, "payload.referrer", limits, required=False,
                           web_only=False),
        props=check_props(payload.get("data"), "payload.data", limits),
    )
