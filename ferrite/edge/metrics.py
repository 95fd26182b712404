"""/metrics in Prometheus text format, from the pipeline's counters and the edge's own.

A registry per app (no global), so tests and several apps in one process do not mix.
With --workers N each process answers for itself; the `pid` label tells them apart.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ferrite.core.metrics import Metrics
from ferrite.core.stream import HitStream

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

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


class EdgeMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.registry = CollectorRegistry()
        self.batch_events = Histogram(
            "ferrite_batch_events", "Hits per group-committed batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000), registry=self.registry)
        self.write_seconds = Histogram(
            "ferrite_write_seconds", "Time to run the chain and every sink on one batch.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry)

    def watch(self, stream: HitStream) -> None:
        self.registry.register(_CoreCollector(self.metrics, stream))

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_events.observe(size)
        self.write_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
