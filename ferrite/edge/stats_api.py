"""The Stats API on the edge's port: Plausible's v2 query endpoint and v1 endpoints.

Queries run in worker threads (at most `[stats] query_threads` at once), on the store's own
WAL reader connections, so they never block the event loop that acknowledges hits and
never hold the write lock. Every refusal is JSON that names the field, and is counted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import trio
from quart import Response, request
from quart_trio import QuartTrio

from ferrite.core.config import Config
from ferrite.core.metrics import Metrics
from ferrite.stats import keys, v1
from ferrite.stats.engine import Engine
from ferrite.stats.model import QueryError
from ferrite.stats.ratelimit import KeyLimiter
from ferrite.stats.store import KeyRecord, QueryTimeout, StatsStore, StoreUnavailable

LOG = logging.getLogger("ferrite.stats")


class Refused(Exception):
    def __init__(self, status: int, message: str, field: str = "", reason: str = "",
                 **headers: str) -> None:
        super().__init__(message)
        self.status, self.field, self.reason, self.headers = status, field, reason, headers


def _json(body: Any, status: int = 200, **headers: str) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers.update(headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def register(app: QuartTrio, config: Config, store: StatsStore, metrics: Metrics) -> None:
    settings = config.stats
    engine = Engine(config, store)
    limiter = KeyLimiter(settings.rate_limit_per_hour)
    threads = trio.CapacityLimiter(settings.query_threads)

    async def in_thread(fn: Callable[[], Any]) -> Any:
        return await trio.to_thread.run_sync(fn, limiter=threads, abandon_on_cancel=True)

    async def authorize(site: str | None) -> KeyRecord:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Refused(401, "missing API key: send Authorization: Bearer KEY (create one "
                          "with `ferrite keys create --site DOMAIN`)", "Authorization",
                          "stats_unauthorized")
        record = await in_thread(lambda: keys.lookup(store, key.strip()))
        if record is None:
            raise Refused(401, "invalid API key: it is unknown or was revoked",
                          "Authorization", "stats_unauthorized")
        wait = limiter.take(record.id)
        if wait:
            raise Refused(429, f"too many requests for this key ({settings.rate_limit_per_hour}"
                          f" per hour); retry in {wait} s", "Authorization",
                          "stats_rate_limited", **{"Retry-After": str(wait)})
        if site is not None:
            site = site.strip().lower().removeprefix("www.")
            if site not in record.sites:
                raise Refused(403, f"this API key cannot read {site!r}; it reads "
                              f"{', '.join(record.sites)}", "site_id", "stats_forbidden")
        return record

    # hypercorn drops a connection that stays silent for [edge] read_timeout, even while
    # the app is still counting: answer 503 before that rather than an empty response.
    budget = min(settings.query_timeout_seconds, max(0.5, config.edge.read_timeout - 1.0))

    async def answer(endpoint: str, work: Callable[[], Any]) -> Response:
        try:
            with trio.fail_after(budget):
                result = await work()
        except Refused as refused:
            metrics.inc("rejected", reason=refused.reason)
            metrics.inc("stats_requests", endpoint=endpoint, status=str(refused.status))
            return _json({"error": str(refused), "field": refused.field}, refused.status,
                         **refused.headers)
        except QueryError as exc:
            metrics.inc("rejected", reason="stats_bad_query")
            metrics.inc("stats_requests", endpoint=endpoint, status="400")
            return _json({"error": str(exc), "field": exc.field}, 400)
        except (QueryTimeout, trio.TooSlowError):
            metrics.inc("rejected", reason="stats_timeout")
            metrics.inc("stats_requests", endpoint=endpoint, status="503")
            return _json({"error": f"the query took longer than {budget:g} s ([stats] "
                          f"query_timeout_seconds, and under [edge] read_timeout); narrow "
                          f"its date range or filters",
                          "field": "date_range"}, 503, **{"Retry-After": "5"})
        except StoreUnavailable as exc:
            metrics.inc("rejected", reason="stats_store_unavailable")
            metrics.inc("stats_requests", endpoint=endpoint, status="503")
            return _json({"error": f"{exc}; retry shortly", "field": None}, 503,
                         **{"Retry-After": "5"})
        metrics.inc("stats_requests", endpoint=endpoint, status="200")
        return _json(result)

    @app.post("/api/v2/query")
    async def query_v2() -> Response:
        async def work() -> Any:
            raw = await request.get_data()
            try:
                body = json.loads(raw or b"null")
            except (ValueError, UnicodeDecodeError) as exc:
                raise Refused(400, f"the body is not valid JSON: {exc}", "body",
                              "stats_bad_query") from None
            site = body.get("site_id") if isinstance(body, dict) else None
            await authorize(site if isinstance(site, str) else None)
            if not isinstance(site, str):
                raise QueryError("site_id", "is required: the site's domain, such as "
                                 "example.com")
            return await in_thread(lambda: engine.answer(body).v2())
        return await answer("v2/query", work)

    def v1_route(name: str, fn: Callable[..., Any]) -> None:
        async def view() -> Response:
            async def work() -> Any:
                params = {k: v for k, v in request.args.items()}
                await authorize(params.get("site_id") or None)
                return await in_thread(lambda: fn(engine, params))
            return await answer(f"v1/{name}", work)
        view.__name__ = f"stats_v1_{name.replace('/', '_')}"
        app.get(f"/api/v1/stats/{name}")(view)

    v1_route("realtime/visitors", v1.realtime)
    v1_route("aggregate", v1.aggregate)
    v1_route("timeseries", v1.timeseries)
    v1_route("breakdown", v1.breakdown)


class RollupBuilder:
    """Counts closed days into the store's rollups now and then, in a worker thread.

    Shutdown does not wait for it: the thread is abandoned and told to stop after the day
    it is counting (each day is one transaction, so an exit mid-way loses nothing), and the
    store closes only the connections no thread is using."""

    def __init__(self, store: Any, every: float, zone: Callable[[str], Any]) -> None:
        self.store = store
        self.zone = zone
        self.every = every
        self.stopping = False
        self._wake = trio.Event()

    def stop(self) -> None:
        self.stopping = True
        self._wake.set()

    async def run(self) -> None:
        try:
            while not self.stopping:
                try:
                    await trio.to_thread.run_sync(
                        lambda: self.store.build(zone=self.zone,
                                                 stop=lambda: self.stopping),
                        abandon_on_cancel=True)
                except Exception as exc:  # a locked file: the next round tries again
                    LOG.warning("building the stats rollups failed: %s", exc)
                with trio.move_on_after(self.every):
                    await self._wake.wait()
        finally:
            self.stopping = True
