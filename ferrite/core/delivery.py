"""Getting a batch into one sink: retries with backoff, and a dead-letter spool after that.

A sink raises `RetryableSinkError` (or any exception) for a failure that may pass, and
`FatalSinkError` for a batch that can never be written. Transient failures are retried
with exponential backoff, jitter and a cap; past the retry budget, or at once for a fatal
failure, the batch goes to the spool: one JSON-lines file per sink, fsynced, holding the
events (without their URL), the error, the attempts and the time. `ferrite replay` sends
spooled batches back through their sink once it works again. Only when the spool itself
cannot be written does the batch count as failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferrite.core.errors import FerriteError
from ferrite.core.event import Event, iso_utc


class RetryableSinkError(FerriteError):
    """A sink failure that may pass (a lock, a network blip): the batch is retried."""


class FatalSinkError(FerriteError):
    """This batch can never be written by this sink: it goes to the spool at once."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # in all, the first included
    initial: float = 0.1  # seconds before the first retry
    maximum: float = 2.0  # cap on any one wait
    multiplier: float = 2.0
    jitter: float = 0.5  # each wait is scaled by a random factor in [1 - jitter, 1]

    def delays(self, rng: random.Random) -> Iterator[float]:
        delay = self.initial
        for _ in range(self.attempts - 1):
            yield min(self.maximum, delay) * (1 - self.jitter * rng.random())
            delay *= self.multiplier


def event_to_json(event: Event) -> dict[str, Any]:
    data = dataclasses.asdict(event)
    data["ts"] = iso_utc(event.ts)
    data["url"] = ""  # not stored by sinks; may hold a query string
    return data


def event_from_json(data: dict[str, Any]) -> Event:
    fields = {f.name for f in dataclasses.fields(Event)}
    values = {k: v for k, v in data.items() if k in fields}
    values["ts"] = datetime.fromisoformat(values["ts"].replace("Z", "+00:00")).astimezone(UTC)
    return Event(**values)


class Spool:
    """Dead letters: `<dir>/<sink>.jsonl`, appended and read under an flock so a running
    server and `ferrite replay` never interleave."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        #: Each file's (size, mtime) and count, so /readyz re-reads a file only after it
        #: changed instead of parsing the whole spool on every probe.
        self._counted: dict[Path, tuple[tuple[int, int], int]] = {}

    def path(self, sink: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in sink)
        return self.directory / f"{safe}.jsonl"

    @contextlib.contextmanager
    def _locked(self, sink: str, mode: str) -> Iterator[Any]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.path(sink), mode, encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def add(self, sink: str, events: list[Event], error: BaseException, attempts: int) -> None:
        entry = {"time": iso_utc(datetime.now(UTC)), "sink": sink, "attempts": attempts,
                 "error": f"{type(error).__name__}: {error}"[:500],
                 "events": [event_to_json(e) for e in events]}
        with self._locked(sink, "a") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def counts(self) -> dict[str, int]:
        """Spooled events per sink; a file is read again only when it has changed."""
        out: dict[str, int] = {}
        if not self.directory.is_dir():
            return out
        for path in sorted(self.directory.glob("*.jsonl")):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            stamp = (stat.st_size, stat.st_mtime_ns)
            cached = self._counted.get(path)
            if cached is not None and cached[0] == stamp:
                total = cached[1]
            else:
                with path.open(encoding="utf-8") as handle:
                    total = sum(len(json.loads(line)["events"])
                                for line in handle if line.strip())
                self._counted[path] = (stamp, total)
            if total:
                out[path.stem] = total
        return out

    def replay(self, sink: str, write: Callable[[list[Event]], None]) -> tuple[int, int]:
        """Write each spooled batch of `sink` again, oldest first; keep the ones that fail.
        Returns (events replayed, events still spooled)."""
        if not self.path(sink).exists():
            return 0, 0
        with self._locked(sink, "r+") as handle:
            entries = [json.loads(line) for line in handle if line.strip()]
            kept, replayed = [], 0
            for entry in entries:
                if kept:  # keep the order: once one fails, the rest wait too
                    kept.append(entry)
                    continue
                try:
                    write([event_from_json(e) for e in entry["events"]])
                    replayed += len(entry["events"])
                except Exception as exc:
                    entry["error"] = f"{type(exc).__name__}: {exc}"[:500]
                    entry["attempts"] = entry.get("attempts", 0) + 1
                    kept.append(entry)
            handle.seek(0)
            handle.truncate()
            handle.writelines(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n"
                              for e in kept)
            handle.flush()
            os.fsync(handle.fileno())
        return replayed, sum(len(e["events"]) for e in kept)


class Attempts:
    """The retry decisions for one batch and one sink, shared by every delivery loop (the
    blocking one below, for `ferrite ingest` and `Pipeline.run`, and the edge's async sink
    workers, which add timeouts): count an attempt, then either stop or wait and retry."""

    def __init__(self, policy: RetryPolicy, rng: random.Random,
                 on_retry: Callable[[BaseException], None] = lambda exc: None) -> None:
        self.count = 0
        self._waits = policy.delays(rng)
        self._on_retry = on_retry

    def after(self, error: BaseException | None) -> float | None:
        """Book an attempt that ended with `error` (None: stored). Returns how long to wait
        before the next one, or None to stop: stored, fatal, or out of retries."""
        self.count += 1
        if error is None or isinstance(error, FatalSinkError):
            return None
        wait = next(self._waits, None)
        if wait is not None:
            self._on_retry(error)
        return wait


def deliver(write: Callable[[list[Event]], None], events: list[Event], *,
            policy: RetryPolicy, rng: random.Random,
            on_retry: Callable[[BaseException], None] = lambda exc: None,
            sleep: Callable[[float], None] = time.sleep) -> tuple[BaseException | None, int]:
    """Write with retries, blocking. Returns (the last error or None, attempts made)."""
    attempts = Attempts(policy, rng, on_retry)
    while True:
        error: BaseException | None = None
        try:
            write(events)
        except Exception as exc:
            error = exc
        wait = attempts.after(error)
        if wait is None:
            return error, attempts.count
        sleep(wait)
