"""/metrics in Prometheus text format, from the pipeline's counters and the edge's own.

A registry per app (no global), so tests and several apps in one process do not mix.

With --workers N a scrape reaches one worker, so the workers share their figures through
prometheus-client's multiprocess mode: `ferrite serve` points PROMETHEUS_MULTIPROC_DIR at
a fresh folder before the workers start, each worker mirrors its counters and gauges into
that folder's memory-mapped files (every second, and at each scrape), and any worker's
/metrics sums every worker's files. One process alone labels its series with `pid`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from ferrite.core.metrics import Metrics
from ferrite.edge.stream import HitStream

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Set (by `ferrite serve --workers N`, or by the operator) to share metrics across workers.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SYNC_SECONDS = 1.0

COUNTERS = {
    # core metric name: (exposed name, help)
    "received": ("ferrite_received_events", "Hits that entered the chain."),
    "sent": ("ferrite_sent_events", "Events a sink stored, by sink and stage."),
    "discarded": ("ferrite_discarded_events", "Hits dropped on purpose, by reason."),
    "errors": ("ferrite_errors", "Plugin failures, by plugin and stage."),
    "rejected": ("ferrite_rejected_requests", "Requests refused as bad input, by reason."),
    "overloaded": ("ferrite_overloaded_requests", "Requests answered 503 on a full queue."),
    "retries": ("ferrite_sink_retries", "Batches a sink was asked to take again."),
    "dead_lettered": ("ferrite_dead_lettered_events",
                      "Events spooled because a sink refused them after its retries."),
    "stats_requests": ("ferrite_stats_requests", "Stats API requests, by endpoint and status."),
}


class _CoreCollector:
    def __init__(self, metrics: Metrics, stream: HitStream) -> None:
        self.metrics = metrics
        self.stream = stream
        self.pid = str(os.getpid())

    def collect(self) -> Iterator[Metric]:
        snapshot = dict(self.metrics.counters)
        for core_name, (name, help_text) in COUNTERS.items():
            rows = [(dict(labels), value) for (n, labels), value in snapshot.items()
                    if n == core_name]
            keys = sorted({k for labels, _ in rows for k in labels})
            family = CounterMetricFamily(name, help_text, labels=[*keys, "pid"])
            for labels, value in rows:
                family.add_metric([*(labels.get(k, "") for k in keys), self.pid], value)
            yield family
        depth = GaugeMetricFamily("ferrite_queue_depth", "Requests waiting for the writer.",
                                  labels=["pid"])
        depth.add_metric([self.pid], self.stream.depth())
        yield depth
        capacity = GaugeMetricFamily("ferrite_queue_capacity", "Queue size before 503s.",
                                     labels=["pid"])
        capacity.add_metric([self.pid], self.stream.queue_size)
        yield capacity
        failing = GaugeMetricFamily("ferrite_sink_failing",
                                    "1 while a sink's last batch failed.",
                                    labels=["component", "pid"])
        for name in sorted(self.stream.pipeline.failing_sinks):
            failing.add_metric([name, self.pid], 1)
        yield failing


class _SharedMirror:
    """Copies this worker's counters and gauges into multiprocess-mode metrics."""

    def __init__(self, metrics: Metrics, stream: HitStream) -> None:
        self.metrics = metrics
        self.stream = stream
        self.counters: dict[str, Counter] = {}
        self.synced: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.depth = Gauge("ferrite_queue_depth", "Requests waiting for the writer.",
                           multiprocess_mode="livesum", registry=None)
        self.capacity = Gauge("ferrite_queue_capacity", "Queue size before 503s.",
                              multiprocess_mode="livesum", registry=None)
        self.failing = Gauge("ferrite_sink_failing", "1 while a sink's last batch failed.",
                             ["component"], multiprocess_mode="livemax", registry=None)
        self.failing_before: set[str] = set()

    def sync(self) -> None:
        for (name, labels), value in list(self.metrics.counters.items()):
            if name not in COUNTERS:
                continue
            delta = value - self.synced.get((name, labels), 0)
            if not delta:
                continue
            counter = self.counters.get(name)
            if counter is None:
                exposed, help_text = COUNTERS[name]
                counter = Counter(exposed, help_text, [k for k, _ in labels], registry=None)
                self.counters[name] = counter
            (counter.labels(*(v for _, v in labels)) if labels else counter).inc(delta)
            self.synced[(name, labels)] = value
        self.depth.set(self.stream.depth())
        self.capacity.set(self.stream.queue_size)
        failing = set(self.stream.pipeline.failing_sinks)
        for name in failing | self.failing_before:
            self.failing.labels(name).set(1 if name in failing else 0)
        self.failing_before = failing


class EdgeMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.registry = CollectorRegistry()
        self.shared = bool(os.environ.get(MULTIPROC_ENV))
        own = None if self.shared else self.registry  # shared ones live in the folder
        self.batch_events = Histogram(
            "ferrite_batch_events", "Hits per group-committed batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000), registry=own)
        self.write_seconds = Histogram(
            "ferrite_write_seconds", "Time to run the chain and every sink on one batch.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=own)
        self.mirror: _SharedMirror | None = None

    def watch(self, stream: HitStream) -> None:
        if self.shared:
            self.mirror = _SharedMirror(self.metrics, stream)
            MultiProcessCollector(self.registry)
        else:
            self.registry.register(_CoreCollector(self.metrics, stream))

    def sync(self) -> None:
        """Publish this worker's figures to the shared folder (a no-op alone)."""
        if self.mirror is not None:
            self.mirror.sync()

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_events.observe(size)
        self.write_seconds.observe(seconds)

    def render(self) -> bytes:
        self.sync()
        return generate_latest(self.registry)
