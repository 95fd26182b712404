"""Streaming hits into the pipeline with group commit and acknowledgements.

Front ends (the edge, a followed log file) submit hits without blocking; one writer task
takes every submission waiting, runs the chain and the sinks on them as one batch in a
worker thread, then wakes each submitter. No timer: under light load a batch is one
request and is written at once; under heavy load batches grow by themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from ferrite.core.event import Hit
from ferrite.core.pipeline import Pipeline, Processed


class QueueFull(Exception):
    """The stream holds as many submissions as it may; answer 503 and let the client retry."""


class StreamClosed(Exception):
    """The stream is shutting down and takes no more hits."""


@dataclass(eq=False)
class Submission:
    """Hits from one request, and what became of them once `done` is set."""

    hits: list[Hit]
    done: trio.Event = field(default_factory=trio.Event)
    error: BaseException | None = None
    stored: int = 0
    filtered: int = 0

    async def wait(self) -> None:
        await self.done.wait()


BatchObserver = Callable[[int, float], None]


class HitStream:
    def __init__(self, pipeline: Pipeline, *, queue_size: int = 1000,
                 on_batch: BatchObserver | None = None) -> None:
        self.pipeline = pipeline
        self.batch_size = pipeline.batch_size
        self.queue_size = queue_size
        self._send, self._receive = trio.open_memory_channel[Submission](queue_size)
        self._limiter = trio.CapacityLimiter(1)  # one writer thread: SQLite wants that
        self._on_batch = on_batch
        self.closed = False
        self._running = False
        self._stopped = trio.Event()
        self.failing: BaseException | None = None  # the last batch's error, until one succeeds

    def submit_nowait(self, hits: list[Hit]) -> Submission:
        if self.closed:
            raise StreamClosed("the stream is shutting down")
        submission = Submission(hits)
        try:
            self._send.send_nowait(submission)
        except trio.WouldBlock:
            raise QueueFull(f"{self.queue_size} requests already wait to be written") from None
        return submission

    def depth(self) -> int:
        return self._send.statistics().current_buffer_used

    def is_full(self) -> bool:
        return self.depth() >= self.queue_size

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer loop; runs until `close` and then drains what is left."""
        self._running = True
        task_status.started()
        try:
            async for first in self._receive:
                await self._write_batch(self._take_more([first]))
        finally:
            self._running = False
            self._stopped.set()

    def _take_more(self, batch: list[Submission]) -> list[Submission]:
        count = sum(len(s.hits) for s in batch)
        while count < self.batch_size:
            try:
                submission = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            batch.append(submission)
            count += len(submission.hits)
        return batch

    async def _write_batch(self, batch: list[Submission]) -> None:
        # Shielded: once taken off the queue, a batch is written and acknowledged even if
        # shutdown cancels the writer meanwhile.
        with trio.CancelScope(shield=True):
            started = time.perf_counter()
            try:
                parts = await trio.to_thread.run_sync(self._process_and_write, batch,
                                                      limiter=self._limiter)
            except Exception as exc:
                self.failing = exc
                for submission in batch:
                    submission.error = exc
                    submission.done.set()
                return
            self.failing = None
            if self._on_batch is not None:
                self._on_batch(sum(len(s.hits) for s in batch), time.perf_counter() - started)
            for submission, part in zip(batch, parts, strict=True):
                submission.stored = len(part.events)
                submission.filtered = len(submission.hits) - submission.stored
                submission.done.set()

    def _process_and_write(self, batch: list[Submission]) -> list[Processed]:
        parts = [self.pipeline.process(s.hits) for s in batch]
        merged = Processed()
        for part in parts:
            merged.events.extend(part.events)
            merged.bots.extend(part.bots)
        self.pipeline.write(merged)
        return parts

    async def close(self) -> None:
        """Stop taking hits, then write everything already accepted."""
        self.closed = True
        await self._send.aclose()
        with trio.CancelScope(shield=True):
            if self._running:
                await self._stopped.wait()  # it finishes its batch, then drains the rest
            while True:
                try:
                    first = self._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                await self._write_batch(self._take_more([first]))
