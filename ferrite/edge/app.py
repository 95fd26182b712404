"""The edge app: endpoints that turn requests into hits and hand them to the stream.

Handlers do little: validate, build `Hit`s, submit them without blocking. With
`ack = "stored"` they then wait until the writer has run the chain and every sink on
their batch; a full queue is a 503 with Retry-After, never an unbounded buffer.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import trio
from quart import Response, request, send_from_directory
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ferrite.core.config import Config
from ferrite.core.event import Hit
from ferrite.core.pipeline import Pipeline
from ferrite.core.stream import HitStream, QueueFull, StreamClosed
from ferrite.edge.input import (
    BadInput,
    EventInput,
    events_from_body,
    normalize_site,
    pixel_event,
)
from ferrite.edge.metrics import CONTENT_TYPE, EdgeMetrics

#: The 43-byte transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
NO_STORE = "no-store, no-cache, must-revalidate, max-age=0"
FILTERED_HEADER = "X-Ferrite-Filtered"
HEADER_LIMIT = 16 * 1024  # bytes of request headers; more is an attack or a bug


def header_dict(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ", " as RFC 9110 allows."""
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def json_response(body: dict[str, Any], status: int, **headers: str) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers.update(headers)
    return response


def create_app(config: Config, *, pipeline: Pipeline | None = None) -> QuartTrio:
    edge = config.edge
    pipeline = pipeline or Pipeline(config)
    metrics = pipeline.metrics
    edge_metrics = EdgeMetrics(metrics)
    stream = HitStream(pipeline, queue_size=edge.queue_size, on_batch=edge_metrics.observe_batch)
    edge_metrics.watch(stream)
    allowed_sites = frozenset(normalize_site(s) for s in edge.sites)
    cors_origins = frozenset(o.rstrip("/") for o in edge.cors_origins)
    retry_after = str(edge.retry_after)
    script = resources.files("ferrite.edge").joinpath("static/script.js").read_bytes()
    script_etag = hashlib.sha256(script).hexdigest()[:20]

    app = QuartTrio("ferrite")
    # quart-trio cancels its nursery, after_serving included, when shutdown starts, unless
    # given a deadline; the writer needs time to drain, and stop() shields itself anyway.
    app.config.update(MAX_CONTENT_LENGTH=edge.max_body_bytes, BODY_TIMEOUT=edge.read_timeout,
                      BACKGROUND_TASK_SHUTDOWN_TIMEOUT=max(edge.graceful_timeout, 5.0))
    app.extensions["ferrite"] = {"pipeline": pipeline, "stream": stream, "metrics": edge_metrics}

    @app.before_serving
    async def start() -> None:
        await trio.to_thread.run_sync(pipeline.start)
        await app.nursery.start(stream.run)

    @app.after_serving
    async def stop() -> None:
        with trio.CancelScope(shield=True):  # nothing accepted may be lost to a cancel
            await stream.close()
            await trio.to_thread.run_sync(pipeline.close)

    def reject(error: BadInput) -> Response:
        metrics.inc("rejected", reason=error.reason)
        return json_response(error.body(), error.status)

    def overloaded(message: str) -> Response:
        metrics.inc("overloaded")
        return json_response({"error": message, "field": ""}, 503, **{"Retry-After": retry_after})

    def cors(response: Response) -> Response:
        origin = request.headers.get("Origin", "")
        if not cors_origins:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin.rstrip("/") in cors_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    async def accept(inputs: list[EventInput]) -> tuple[Response | None, int]:
        """Submit the hits; return an error response or None, and the filtered count."""
        client = request.scope.get("client")
        peer = client[0] if client else ""
        headers = header_dict(request.headers.items())
        now = datetime.now(UTC)
        hits: list[Hit] = []
        filtered = 0
        for event in inputs:
            for site in event.sites:
                if allowed_sites and site not in allowed_sites:
                    filtered += 1
                    metrics.inc("discarded", reason="unknown_site")
                    continue
                hits.append(Hit(site=site, url=event.url, name=event.name,
                                referrer=event.referrer, props=event.props, peer=peer,
                                headers=headers, ts=now))
        if not hits:
            return None, filtered
        try:
            submission = stream.submit_nowait(hits)
        except QueueFull:
            return overloaded("too many requests are waiting to be stored; retry later"), 0
        except StreamClosed:
            return overloaded("the server is shutting down; retry later"), 0
        if edge.ack == "stored":
            await submission.wait()
            if submission.error is not None:
                return overloaded("storage is failing; retry later"), 0
            filtered += submission.filtered
        return None, filtered

    @app.before_request
    async def limit_headers() -> Response | None:
        # hypercorn's h11 limit only bites when headers arrive in pieces; enforce ours here.
        size = sum(len(k) + len(v) + 4 for k, v in request.headers.items())
        if size > HEADER_LIMIT:
            return reject(BadInput("headers", f"request headers exceed {HEADER_LIMIT} bytes",
                                   status=431, reason="headers_too_large"))
        return None

    @app.get("/p.gif")
    async def pixel() -> Response:
        try:
            event = pixel_event(request.args, request.headers.get("Referer", ""), edge)
        except BadInput as error:
            return reject(error)
        failure, _ = await accept([event])
        if failure is not None:
            return failure
        response = Response(PIXEL, mimetype="image/gif")
        response.headers["Cache-Control"] = NO_STORE
        return response

    @app.route("/api/event", methods=["POST"], provide_automatic_options=False)
    async def post_event() -> Response:
        origin = request.headers.get("Origin", "")
        if cors_origins and origin and origin.rstrip("/") not in cors_origins:
            return cors(reject(BadInput("Origin", f"origin {origin[:100]!r} may not post "
                                                  f"events here", status=403,
                                        reason="origin")))
        try:
            body = await request.get_data(cache=False)
            inputs = events_from_body(body, edge)
        except BadInput as error:
            return cors(reject(error))
        failure, filtered = await accept(inputs)
        if failure is not None:
            return cors(failure)
        response = Response("ok", status=202, mimetype="text/plain")
        response.headers[FILTERED_HEADER] = str(filtered)
        response.headers["Access-Control-Expose-Headers"] = FILTERED_HEADER
        return cors(response)

    @app.route("/api/event", methods=["OPTIONS"], provide_automatic_options=False)
    async def preflight() -> Response:
        response = cors(Response("", status=204))
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "86400"
        return response

    @app.get("/script.js")
    async def tracker_script() -> Response:
        response = Response(script, mimetype="application/javascript")
        response.set_etag(script_etag)
        response.headers["Cache-Control"] = "public, max-age=3600"
        response.headers["Access-Control-Allow-Origin"] = "*"
        return await response.make_conditional(request)

    if edge.static_dir is not None:
        root = Path(edge.static_dir).resolve()

        @app.get("/")
        @app.get("/<path:path>")
        async def static_page(path: str = "") -> Response:
            """Pages from [edge] static_dir; index.html for folders. send_from_directory
            refuses paths that leave the folder."""
            if path == "" or path.endswith("/"):
                path += "index.html"
            response = await send_from_directory(root, path)
            response.headers["Cache-Control"] = "no-cache"
            return response

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response("ok", mimetype="text/plain")

    @app.get("/readyz")
    async def readyz() -> Response:
        problems = [f"sink {name} is failing: {error}"
                    for name, error in sorted(pipeline.failing_sinks.items())]
        if stream.failing is not None:
            problems.append(f"batches cannot be stored: {type(stream.failing).__name__}")
        if stream.is_full():
            problems.append("the queue is full")
        if stream.closed:
            problems.append("shutting down")
        spooled = await trio.to_thread.run_sync(pipeline.spool.counts) if pipeline.spool else {}
        body = {"ready": not problems, "problems": problems, "queue_depth": stream.depth(),
                "dead_letters": spooled}
        return json_response(body, 503 if problems else 200)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(edge_metrics.render(), content_type=CONTENT_TYPE)

    @app.errorhandler(RequestEntityTooLarge)
    async def too_large(error: RequestEntityTooLarge) -> Response:
        return cors(reject(BadInput("body", f"body is larger than {edge.max_body_bytes} bytes",
                                    status=413, reason="too_large")))

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        metrics.inc("rejected", reason=f"http_{status}")
        return json_response({"error": error.description or error.name, "field": ""}, status)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        metrics.inc("errors", component="edge", stage=request.endpoint or "request")
        app.logger.error("unexpected %s on %s", type(error).__name__, request.path)
        return json_response({"error": "internal error; it was logged", "field": ""}, 500)

    return app
