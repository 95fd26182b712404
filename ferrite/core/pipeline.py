"""Running hits through the hook chain and handing the results to the sinks.

The stage order is fixed here, not by the config list: client IP, user agent, bot check,
session, then enrichers see an `Event` built field by field from the hit, so the IP and
the raw user agent stop at the session stage. Sinks are called one at a time, so a failing
sink is named and the others still receive the batch.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from types import TracebackType
from typing import Any

from ferrite.core.config import Config, load_config
from ferrite.core.delivery import RetryableSinkError, RetryPolicy, Spool, deliver
from ferrite.core.errors import ConfigError, FerriteError, SinkError
from ferrite.core.event import PRIVATE_HEADERS, Agent, Event, Hit, new_event_id
from ferrite.core.manager import FIRST_ANSWER, Plugins
from ferrite.core.metrics import Metrics
from ferrite.core.urls import url_path, without_query

#: `ferrite serve --debug` shows why each discarded hit was discarded: site, page path and
#: reason, and the browser summary for bots; never an IP address or a user agent.
DISCARDS = logging.getLogger("ferrite.discards")
log = logging.getLogger("ferrite")

UNKNOWN_AGENT = Agent()
ENRICH_FAILED = "enrich_failed"


@dataclass
class Processed:
    """What the chain made of a group of hits."""

    events: list[Event] = field(default_factory=list)
    bots: list[Event] = field(default_factory=list)
    discarded: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.events) + len(self.bots) + sum(self.discarded.values())


@dataclass
class Totals:
    """Counts from `Pipeline.run`."""

    events: int = 0
    bots: int = 0
    discarded: Counter[str] = field(default_factory=Counter)


def public_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers enrichers may see: everything but identity and forwarding headers."""
    return {k: v for k, v in headers.items() if k not in PRIVATE_HEADERS}


class Pipeline:
    """One configured chain. Use as a context manager, or call `start` and `close`."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        extra_plugins: list[tuple[str, object]] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config or load_config()
        self.plugins = Plugins(self.config, extra_plugins)
        self.metrics = metrics or Metrics()
        self.batch_size = self.config.pipeline.batch_size
        hook = self.plugins.hook
        first = {name: first_result(getattr(hook, name)) for name in FIRST_ANSWER}
        self._client_ip = first["ferrite_client_ip"]
        self._user_agent = first["ferrite_user_agent"]
        self._bot_reason = first["ferrite_bot_reason"]
        self._session = first["ferrite_session"]
        self._enrichers = [(i.plugin_name, i.function, i.argnames)
                           for i in reversed(hook.ferrite_enrich.get_hookimpls())]
        # Filtering the headers costs a dict per hit: only when an enricher asks for them.
        self._enrichers_want_headers = any("headers" in a for _, _, a in self._enrichers)
        self._sinks = self.plugins.sinks()
        self._bot_sinks = self.plugins.bot_sinks()
        table = self.config.pipeline
        self.retry = RetryPolicy(attempts=table.retry_attempts,
                                 initial=table.retry_initial_seconds,
                                 maximum=table.retry_max_seconds)
        self.spool = Spool(table.spool_dir) if table.spool_dir else None
        self.failing_sinks: dict[str, str] = {}  # sink -> its last error, until it succeeds
        self._rng = random.Random()
        self.started = False

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start every plugin. A plugin whose server cannot be reached yet (it raises
        RetryableSinkError) is retried for [pipeline] startup_wait_seconds, so nodes and
        their database may boot in any order."""
        table = self.config.pipeline
        deadline = time.monotonic() + table.startup_wait_seconds
        wait = max(table.retry_initial_seconds, 0.5)
        while True:
            try:
                self.plugins.hook.ferrite_startup()
                break
            except RetryableSinkError as exc:
                if time.monotonic() + wait > deadline:
                    raise FerriteError(f"{exc} (still, after waiting [pipeline] "
                                       f"startup_wait_seconds = "
                                       f"{table.startup_wait_seconds:g})") from None
                log.warning("%s; retrying in %.1f s", exc, wait)
                self._shutdown_quietly()
                time.sleep(wait)
                wait = min(wait * 2, 10.0)
        self.started = True

    def _shutdown_quietly(self) -> None:
        """Undo a partial start before the next attempt (plugins that did start)."""
        for impl in reversed(self.plugins.hook.ferrite_shutdown.get_hookimpls()):
            try:
                impl.function()
            except Exception:
                log.debug("shutdown of %s after a failed start", impl.plugin_name,
                          exc_info=True)

    def close(self) -> None:
        """Shut every plugin down, even when one of them fails, then report the failures."""
        failures: dict[str, BaseException] = {}
        for impl in reversed(self.plugins.hook.ferrite_shutdown.get_hookimpls()):
            try:
                impl.function()
            except Exception as exc:
                failures[impl.plugin_name] = exc
        self.started = False
        if failures:
            raise SinkError(failures)

    def __enter__(self) -> Pipeline:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- the chain ------------------------------------------------------------------------

    def process(self, hits: Iterable[Hit]) -> Processed:
        out = Processed()
        for hit in hits:
            self._process_one(hit, out)
        self.metrics.inc("received", len(out))
        for reason, n in out.discarded.items():
            self.metrics.inc("discarded", n, reason=reason)
        for event in out.bots:
            self.metrics.inc("discarded", reason=f"bot:{event.bot}")
            if DISCARDS.isEnabledFor(logging.DEBUG):
                DISCARDS.debug("discarded %r %r: bot:%s (%s on %s, %s)", event.site, event.path,
                               event.bot, event.browser, event.os, event.device)
        return out

    def _process_one(self, hit: Hit, out: Processed) -> None:
        client_ip = self._client_ip(peer=hit.peer, headers=hit.headers) or hit.peer
        agent = self._user_agent(user_agent=hit.user_agent) or UNKNOWN_AGENT
        event = Event(
            id=hit.id or new_event_id(hit.ts.timestamp()),
            ts=hit.ts,
            site=hit.site,
            name=hit.name,
            url=hit.url,
            path=url_path(hit.url),
            referrer=hit.referrer,
            browser=agent.browser,
            os=agent.os,
            device=agent.device,
            props=dict(hit.props),
        )
        reason = self._bot_reason(hit=hit, agent=agent)
        if reason:
            # Bots skip the enrichers, so cut the referrer here: its query may carry anything.
            event.bot = reason
            event.referrer = without_query(hit.referrer)
            out.bots.append(event)
            return
        event.session = self._session(hit=hit, client_ip=client_ip) or ""
        if self._enrichers:
            headers = public_headers(hit.headers) if self._enrichers_want_headers else {}
            discard = self._enrich(event, headers)
            if discard:
                out.discarded[discard] += 1
                if DISCARDS.isEnabledFor(logging.DEBUG):
                    DISCARDS.debug("discarded %r %r: %s", event.site, event.path, discard)
                return
        out.events.append(event)

    def _enrich(self, event: Event, headers: dict[str, str]) -> str | None:
        kwargs: dict[str, Any] = {"event": event, "headers": headers}
        for name, function, argnames in self._enrichers:
            try:
                reason = function(*[kwargs[a] for a in argnames])
            except Exception:
                # Keep the event: an enricher's bug must not lose a visitor's hit.
                self.metrics.inc("errors", component=name, stage="enrich")
                continue
            if reason:
                return str(reason)
        return None

    # --- sinks ----------------------------------------------------------------------------

    def write(self, processed: Processed) -> None:
        """Hand events to every sink and bot events to the sinks that keep them.

        Each sink gets its retries; a batch it still refuses goes to the dead-letter spool,
        which counts as stored. Raises `SinkError` naming each sink whose batch could be
        neither written nor spooled, after every sink had its turn.
        """
        failures: dict[str, BaseException] = {}
        for batch, sinks, stage in ((processed.events, self._sinks, "write"),
                                    (processed.bots, self._bot_sinks, "write_bots")):
            if not batch:
                continue
            for name, write in sinks:
                error = self._deliver(name, write, batch, stage)
                if error is not None:
                    failures[name] = error
        if processed.events:
            self.metrics.inc("batches")
        if failures:
            raise SinkError(failures)

    def sink_targets(self) -> list[tuple[str, str, Callable[..., None]]]:
        """(name, stage, write) for every sink hook: "write" for events, "write_bots"."""
        return ([(name, "write", write) for name, write in self._sinks]
                + [(name, "write_bots", write) for name, write in self._bot_sinks])

    def _deliver(self, name: str, write: Callable[..., None], batch: list[Event],
                 stage: str) -> BaseException | None:
        new: list[int] = []

        def call(events: list[Event]) -> None:
            result = write(events=events)
            if isinstance(result, int) and not isinstance(result, bool) and result >= 0:
                new.append(result)

        error, attempts = deliver(
            call, batch, policy=self.retry, rng=self._rng,
            on_retry=lambda exc: self.metrics.inc("retries", component=name, stage=stage))
        if error is None and new and stage == "write":
            self.metrics.inc("new", new[-1], component=name)
        return self.settle(name, stage, batch, error, attempts)

    def settle(self, name: str, stage: str, batch: list[Event], error: BaseException | None,
               attempts: int) -> BaseException | None:
        """Book a delivery's outcome; spool a refused batch. Returns the error that remains
        (None when the batch was stored or spooled)."""
        if error is None:
            self.failing_sinks.pop(name, None)
            self.metrics.inc("sent", len(batch), component=name, stage=stage)
            return None
        self.failing_sinks[name] = f"{type(error).__name__}: {error}"[:200]
        self.metrics.inc("errors", component=name, stage=stage)
        if self.spool is None:
            return error
        spool_name = name if stage == "write" else f"{name}.bots"
        try:
            self.spool.add(spool_name, batch, error, attempts)
        except OSError as spool_error:
            self.metrics.inc("errors", component="spool", stage=stage)
            return spool_error
        self.metrics.inc("dead_lettered", len(batch), component=name, stage=stage)
        return None

    def replay(self, only: str | None = None) -> dict[str, tuple[int, int]]:
        """Send spooled batches back through their sinks; {spool: (replayed, left)}."""
        if self.spool is None:
            return {}
        writers = {name: write for name, write in self._sinks}
        writers |= {f"{name}.bots": write for name, write in self._bot_sinks}
        if only and only not in writers and only.removesuffix(".bots") not in writers:
            sinks = ", ".join(name for name, _ in self._sinks) or "(none)"
            raise ConfigError(f"--sink {only!r} is not a sink of this chain; sinks: {sinks}")
        results = {}
        for spool_name in sorted(set(self.spool.counts()) | ({only} if only else set())):
            if only and spool_name not in (only, f"{only}.bots"):
                continue
            write = writers.get(spool_name)
            if write is None:
                continue
            results[spool_name] = self.spool.replay(
                spool_name, lambda events, w=write: w(events=events))
        return results

    def run(self, hits: Iterable[Hit]) -> Totals:
        """Process and write `hits` in batches of `batch_size`, keeping memory flat."""
        totals = Totals()
        for chunk in _chunks(hits, self.batch_size):
            processed = self.process(chunk)
            self.write(processed)
            totals.events += len(processed.events)
            totals.bots += len(processed.bots)
            totals.discarded.update(processed.discarded)
        return totals


def first_result(caller: Any) -> Callable[..., Any]:
    """A per-hit caller for a firstresult hook that skips pluggy's generic dispatch.

    Same order (tryfirst/trylast, then registration) and same rule (the first answer that is
    not None wins), at a fraction of the cost per call: pluggy's machinery was a third of the
    chain's time. Hook wrappers need pluggy itself, so with any of them the caller is kept.
    """
    impls = caller.get_hookimpls()
    if any(i.hookwrapper or getattr(i, "wrapper", False) for i in impls):
        return caller
    order = [(i.function, i.argnames) for i in reversed(impls)]
    if len(order) == 1:
        ((function, argnames),) = order
        return lambda **kwargs: function(*[kwargs[a] for a in argnames])

    def call(**kwargs: Any) -> Any:
        for function, argnames in order:
            result = function(*[kwargs[a] for a in argnames])
            if result is not None:
                return result
        return None

    return call


def _chunks(items: Iterable[Hit], size: int) -> Iterator[list[Hit]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
