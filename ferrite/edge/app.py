"""The edge app: the hit endpoints (ferrite.edge.hits) in front of a Quart app that serves
the script, static pages, health, readiness and metrics.

Hit handlers do little: validate, build `Hit`s, submit them without blocking. With
`ack = "stored"` they then wait until the writer has run the chain and every sink on
their batch; a full queue is a 503 with Retry-After, never an unbounded buffer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import trio
from quart import Response, request, send_from_directory
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ferrite.core.config import Config
from ferrite.core.errors import FerriteError
from ferrite.core.pipeline import Pipeline
from ferrite.core.sites import sites_of
from ferrite.edge import stats_api
from ferrite.edge.hits import (
    HitEndpoints,
    headers_too_large,
    too_large_headers_error,
)
from ferrite.edge.input import BadInput
from ferrite.edge.metrics import CONTENT_TYPE, SYNC_SECONDS, EdgeMetrics
from ferrite.edge.snippet import snippet_lines
from ferrite.edge.stream import HitStream

#: The 43-byte transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


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
    script = resources.files("ferrite.edge").joinpath("static/script.js").read_bytes()
    script_etag = hashlib.sha256(script).hexdigest()[:20]

    app = QuartTrio("ferrite", static_folder=None)
    # quart-trio cancels its nursery, after_serving included, when shutdown starts, unless
    # given a deadline; the writer needs time to drain, and stop() shields itself anyway.
    app.config.update(MAX_CONTENT_LENGTH=edge.max_body_bytes, BODY_TIMEOUT=edge.read_timeout,
                      BACKGROUND_TASK_SHUTDOWN_TIMEOUT=max(edge.graceful_timeout, 5.0))
    app.extensions["ferrite"] = {"pipeline": pipeline, "stream": stream, "metrics": edge_metrics}

    stats_store = pipeline.plugins.hook.ferrite_stats_store() if config.stats.enabled \
        else None
    if stats_store is not None:
        stats_api.register(app, config, stats_store, metrics)
    accounts = pipeline.plugins.hook.ferrite_account_store() \
        if stats_store is not None and config.dashboard.enabled else None
    if accounts is not None:
        from ferrite.dashboard import web

        web.register(app, config, stats_store, accounts, metrics,
                     pipeline.plugins.hook.ferrite_client_ip)
    builder = stats_api.RollupBuilder(stats_store, config.stats.rollup_interval_seconds,
                                      sites_of(config).zone) \
        if stats_store is not None and config.stats.rollup_interval_seconds > 0 else None

    quart_log_exception = app.log_exception

    def log_exception(info: Any) -> None:
        """A start that fails for a reason the operator can fix (a database that never
        came) is one line, not a traceback; the CLI says it again as it exits."""
        if isinstance(info[1], FerriteError):
            logging.getLogger("ferrite").error("cannot start: %s", info[1])
        else:
            quart_log_exception(info)

    app.log_exception = log_exception  # type: ignore[method-assign]

    @app.before_serving
    async def start() -> None:
        await trio.to_thread.run_sync(pipeline.start)
        await app.nursery.start(stream.run)
        if builder is not None:
            app.nursery.start_soon(builder.run)
        if edge_metrics.shared:
            app.nursery.start_soon(publish_metrics)

    async def publish_metrics() -> None:
        while True:
            await trio.sleep(SYNC_SECONDS)
            edge_metrics.sync()

    @app.after_serving
    async def stop() -> None:
        if builder is not None:
            builder.stop()
        with trio.CancelScope(shield=True):  # nothing accepted may be lost to a cancel
            await stream.close()
            await trio.to_thread.run_sync(pipeline.close)
            if stats_store is not None:
                stats_store.close()

    def reject(error: BadInput) -> Response:
        metrics.inc("rejected", reason=error.reason)
        return json_response(error.body(), error.status)

    def closing(response: Response) -> Response:
        """An answer sent before the body was read: the connection must not be reused."""
        response.headers["Connection"] = "close"
        return response

    @app.before_request
    async def limit_headers() -> Response | None:
        # hypercorn's h11 limit only bites when headers arrive in pieces; enforce ours here.
        if headers_too_large((k.encode("latin-1"), v.encode("latin-1"))
                             for k, v in request.headers.items()):
            return closing(reject(too_large_headers_error()))
        return None

    @app.get("/script.js")
    async def tracker_script() -> Response:
        response = Response(script, mimetype="application/javascript")
        response.set_etag(script_etag)
        response.headers["Cache-Control"] = "public, max-age=3600"
        response.headers["Access-Control-Allow-Origin"] = "*"
        return await response.make_conditional(request)

    if edge.static_dir is None and accounts is not None:
        @app.get("/")
        async def root_page() -> Response:
            return Response("", status=302, headers={"Location": "/dashboard/"})
    elif edge.static_dir is None:
        @app.get("/")
        async def root_page() -> Response:
            """Someone opened the server's address in a browser: say what answers here."""
            base = request.host_url.rstrip("/")
            text = "\n".join([
                "Ferrite is running: it collects page views for the sites that embed it.",
                "", "Embed in your pages:", *snippet_lines(base, sites_of(config).names()), "",
                f"Health: {base}/healthz  {base}/readyz  {base}/metrics", ""])
            return Response(text, mimetype="text/plain")
    else:
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
        if pipeline.started:  # the plugins' own checks (a database away with no hit yet)
            health = await trio.to_thread.run_sync(pipeline.plugins.hook.ferrite_health)
            problems.extend(p for p in health if p)
        spooled = await trio.to_thread.run_sync(pipeline.spool.counts) if pipeline.spool else {}
        body = {"ready": not problems, "problems": problems, "queue_depth": stream.depth(),
                "dead_letters": spooled}
        return json_response(body, 503 if problems else 200)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(edge_metrics.render(), content_type=CONTENT_TYPE)

    @app.errorhandler(RequestEntityTooLarge)
    async def too_large(error: RequestEntityTooLarge) -> Response:
        return closing(reject(BadInput("body", f"body is larger than {edge.max_body_bytes} "
                                               f"bytes", status=413, reason="too_large")))

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

    # Who may call each route (the dashboard's own routes add theirs when registered);
    # tests/test_dashboard_auth.py fails for a route without a decision.
    app.extensions.setdefault("ferrite_access", {}).update(
        {"tracker_script": "public", "root_page": "public", "static_page": "public",
         "healthz": "public", "readyz": "public", "prometheus": "public",
         **{name: "api-key" for name in ("query_v2", "stats_v1_realtime_visitors",
                                         "stats_v1_aggregate", "stats_v1_timeseries",
                                         "stats_v1_breakdown")}})
    # The hit routes skip Quart's request machinery: see ferrite.edge.hits.
    app.asgi_app = HitEndpoints(app.asgi_app, edge=edge, sites=sites_of(config), stream=stream,  # type: ignore[method-assign]
                                metrics=metrics, pixel=PIXEL)
    return app
