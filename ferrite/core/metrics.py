"""Counters the pipeline keeps, named after Vector's component metrics.

Labels are plugin names and discard reasons, never anything from a visitor, so no metric
can carry an IP address or a user agent.
"""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    """Thread-safe counters keyed by (metric name, label tuple)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self.counters[key] += amount

    def get(self, name: str, **labels: str) -> float:
        return self.counters.get((name, tuple(sorted(labels.items()))), 0)

    def total(self, name: str) -> float:
        return sum(v for (n, _), v in self.counters.items() if n == name)

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (n, labels), value in self.counters.items():
            if n == name:
                key = dict(labels).get(label, "")
                out[key] = out.get(key, 0) + value
        return out

    def snapshot(self) -> dict[str, float]:
        """Flat {"name{label=value}": count} view for printing and JSON."""
        with self._lock:
            items = list(self.counters.items())
        out = {}
        for (name, labels), value in sorted(items):
            inner = ",".join(f'{k}="{v}"' for k, v in labels)
            out[f"{name}{{{inner}}}" if inner else name] = value
        return out
