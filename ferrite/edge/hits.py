"""The hit endpoints (`/p.gif`, `/api/event`) as plain ASGI, in front of the Quart app.

A pixel hit is the one request an analytics server answers thousands of times a second, and
Quart's request and response objects, routing and context variables cost more than the
work itself. These three routes are answered here from the ASGI scope; every other path
goes on to Quart unchanged. Validation, metrics and acknowledgements are the same as
everywhere else: the handlers call the same input checks and the same stream.

Any answer sent before a request body has been read asks the server to close the
connection (``Connection: close``): the unread body would otherwise be parsed as the next
request on a kept-alive connection, and the client (or a proxy's pooled upstream
connection) would hang.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import trio

from ferrite.core.event import Hit
from ferrite.core.pipeline import DISCARDS, Metrics
from ferrite.core.sites import Sites
from ferrite.edge.input import (
    BadInput,
    EventInput,
    events_from_body,
    pixel_event,
    umami_event,
)
from ferrite.edge.settings import EdgeTable
from ferrite.edge.stream import HitStream, QueueFull, StreamClosed

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

LOG = logging.getLogger("ferrite.edge")
HEADER_LIMIT = 16 * 1024  # bytes of request headers; more is an attack or a bug
FILTERED_HEADER = "X-Ferrite-Filtered"
NO_STORE = b"no-store, no-cache, must-revalidate, max-age=0"
CLOSE: Headers = [(b"connection", b"close")]
JSON = (b"content-type", b"application/json")


def header_dict(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ", " as RFC 9110 allows."""
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def headers_too_large(raw: Iterable[tuple[bytes, bytes]]) -> bool:
    return sum(len(k) + len(v) + 4 for k, v in raw) > HEADER_LIMIT


def too_large_headers_error() -> BadInput:
    return BadInput("headers", f"request headers exceed {HEADER_LIMIT} bytes", status=431,
                    reason="headers_too_large")


class Disconnected(Exception):
    """The client went away before its body arrived."""


class HitEndpoints:
    """ASGI middleware: answers the hit routes, hands everything else to `inner`."""

    def __init__(self, inner: ASGIApp, *, edge: EdgeTable, sites: Sites, stream: HitStream,
                 metrics: Metrics, pixel: bytes) -> None:
        self.inner = inner
        self.edge = edge
        self.stream = stream
        self.metrics = metrics
        self.pixel = pixel
        self.sites = sites
        self.cors_origins = frozenset(o.rstrip("/") for o in edge.cors_origins)
        self.retry_after = str(edge.retry_after).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/p.gif":
                return await self.guarded(self.pixel_hit, scope, receive, send)
            if path == "/api/event":
                return await self.guarded(self.event_hit, scope, receive, send)
            if path == "/api/send":
                return await self.guarded(self.umami_hit, scope, receive, send)
        await self.inner(scope, receive, send)

    async def guarded(self, handler: Callable[[Scope, Receive, Send], Awaitable[None]],
                      scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await handler(scope, receive, send)
        except Disconnected:
            self.metrics.inc("rejected", reason="disconnected")
        except Exception as exc:  # never crash the server on one request: count, log, 500
            self.metrics.inc("errors", component="edge", stage=scope["path"])
            LOG.error("unexpected %s on %s", type(exc).__name__, scope["path"],
                      exc_info=exc)  # the path only: never the client's address or agent
            await respond(send, 500, json_body("internal error; it was logged", ""),
                          [JSON, *CLOSE])

    # -- answers -----------------------------------------------------------------------

    def cors_headers(self, origin: str) -> Headers:
        if not self.cors_origins:
            return [(b"access-control-allow-origin", b"*")]
        if origin.rstrip("/") in self.cors_origins:
            return [(b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"vary", b"Origin")]
        return []

    async def reject(self, send: Send, error: BadInput, extra: Headers | None = None,
                     *, close: bool) -> None:
        self.metrics.inc("rejected", reason=error.reason)
        headers = [JSON, *(extra or ()), *(CLOSE if close else ())]
        await respond(send, error.status, json.dumps(error.body()).encode(), headers)

    async def overloaded(self, send: Send, message: str, extra: Headers) -> None:
        self.metrics.inc("overloaded")
        await respond(send, 503, json_body(message, ""),
                      [JSON, (b"retry-after", self.retry_after), *extra])

    # -- the routes --------------------------------------------------------------------

    async def pixel_hit(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope["headers"]
        if scope["method"] not in ("GET", "HEAD"):
            return await self.reject(send, method_error(scope["method"], "GET"), close=True)
        if headers_too_large(raw):
            return await self.reject(send, too_large_headers_error(), close=True)
        headers = decode_headers(raw)
        query = scope.get("query_string", b"").decode("latin-1")
        args: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
            args.setdefault(key, value)
        try:
            event = pixel_event(args, headers.get("referer", ""), self.edge)
        except BadInput as error:
            return await self.reject(send, error, close=False)
        failure, _ = await self.accept(scope, headers, [event])
        if failure is not None:
            return await self.overloaded(send, failure, [])
        body = b"" if scope["method"] == "HEAD" else self.pixel
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"image/gif"), (b"cache-control", NO_STORE),
            (b"content-length", str(len(self.pixel)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def event_hit(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.posted(scope, receive, send, lambda body: events_from_body(body, self.edge),
                          202)

    async def umami_hit(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Umami's tracker, unchanged: its body, its cache header in the preflight."""
        def parse(body: bytes) -> list[EventInput]:
            event = umami_event(body, self.edge.umami_websites, self.edge)
            return [] if event is None else [event]
        await self.posted(scope, receive, send, parse, 200)

    async def posted(self, scope: Scope, receive: Receive, send: Send,
                     parse: Callable[[bytes], list[EventInput]], ok_status: int) -> None:
        raw = scope["headers"]
        headers = decode_headers(raw)
        origin = headers.get("origin", "")
        cors = self.cors_headers(origin)
        method = scope["method"]
        if method == "OPTIONS":
            return await respond(send, 204, b"", [
                *cors, (b"access-control-allow-methods", b"POST, OPTIONS"),
                (b"access-control-allow-headers", b"Content-Type, X-Umami-Cache"),
                (b"access-control-max-age", b"86400")])
        if method != "POST":
            return await self.reject(send, method_error(method, "POST, OPTIONS"), close=True)
        if headers_too_large(raw):
            return await self.reject(send, too_large_headers_error(), cors, close=True)
        if self.cors_origins and origin and origin.rstrip("/") not in self.cors_origins:
            error = BadInput("Origin", f"origin {origin[:100]!r} may not post events here",
                             status=403, reason="origin")
            return await self.reject(send, error, cors, close=True)
        try:
            body = await self.read_body(headers, receive)
        except BadInput as error:
            return await self.reject(send, error, cors, close=True)
        try:
            inputs = parse(body)
        except BadInput as error:
            return await self.reject(send, error, cors, close=False)
        failure, filtered = await self.accept(scope, headers, inputs)
        if failure is not None:
            return await self.overloaded(send, failure, cors)
        await respond(send, ok_status, b"ok", [
            (b"content-type", b"text/plain; charset=utf-8"), *cors,
            (FILTERED_HEADER.lower().encode(), str(filtered).encode()),
            (b"access-control-expose-headers", FILTERED_HEADER.encode())])

    async def read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.edge.max_body_bytes
        too_large = BadInput("body", f"body is larger than {limit} bytes", status=413,
                             reason="too_large")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        with trio.move_on_after(self.edge.read_timeout) as timer:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Disconnected
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        if timer.cancelled_caught:
            raise BadInput("body", f"the body did not arrive within {self.edge.read_timeout} s",
                           status=408, reason="body_timeout")
        return b"".join(chunks)

    async def accept(self, scope: Scope, headers: dict[str, str],
                     inputs: list[EventInput]) -> tuple[str | None, int]:
        """Submit the hits; return why they could not be taken (or None) and how many
        were filtered."""
        client = scope.get("client")
        peer = client[0] if client else ""
        now = datetime.now(UTC)
        hits: list[Hit] = []
        filtered = 0
        for event in inputs:
            if event.engagement:
                self.metrics.inc("discarded", reason="engagement")
                continue
            for site in event.sites:
                if not self.sites.accepts(site):
                    filtered += 1
                    self.metrics.inc("discarded", reason="unknown_site")
                    if DISCARDS.isEnabledFor(logging.DEBUG):
                        DISCARDS.debug("discarded %r: unknown_site (not in [sites])", site)
                    continue
                hits.append(Hit(site=site, url=event.url, name=event.name,
                                referrer=event.referrer, props=event.props, peer=peer,
                                headers=headers, ts=now))
        if not hits:
            return None, filtered
        try:
            submission = self.stream.submit_nowait(hits)
        except QueueFull:
            return "too many requests are waiting to be stored; retry later", 0
        except StreamClosed:
            return "the server is shutting down; retry later", 0
        if self.edge.ack == "stored":
            await submission.wait()
            if submission.error is not None:
                return "storage is failing; retry later", 0
            filtered += submission.filtered
        return None, filtered


def decode_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return header_dict((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)


def method_error(method: str, allowed: str) -> BadInput:
    return BadInput("method", f"{method[:20]} is not allowed here; use {allowed}",
                    status=405, reason="http_405")


def json_body(message: str, field: str) -> bytes:
    return json.dumps({"error": message, "field": field}).encode()


async def respond(send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]]
                  ) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
