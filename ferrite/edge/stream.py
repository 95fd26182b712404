"""Streaming hits into the pipeline with group commit and acknowledgements.

Front ends (the edge) submit hits without blocking; one writer task takes every
submission waiting and runs the chain on them as one batch in a worker thread. No timer:
under light load a batch is one request, under heavy load batches grow by themselves.

Each sink then gets the batch through its own bounded buffer, task and thread, so a slow
or hanging sink holds back only itself (and, once its buffer is full, the writer). A
write that takes longer than `sink_timeout_seconds` counts as failed and the sink is
skipped (its batches retried, then spooled) until the stuck write returns. A batch is
acknowledged once every sink stored or spooled it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from ferrite.core.delivery import Attempts
from ferrite.core.errors import SinkError
from ferrite.core.event import Event, Hit
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


@dataclass(eq=False)
class Job:
    """One processed batch on its way through the sinks."""

    submissions: list[Submission]
    parts: list[Processed]
    pending: int
    started: float
    failures: dict[str, BaseException] = field(default_factory=dict)
    done: trio.Event = field(default_factory=trio.Event)

    def finish(self, name: str, error: BaseException | None) -> None:
        if error is not None:
            self.failures[name] = error
        self.pending -= 1
        if self.pending <= 0:
            self.done.set()


class SinkWorker:
    """One sink hook's buffer, task and thread."""

    def __init__(self, pipeline: Pipeline, name: str, stage: str,
                 write: Callable[..., None]) -> None:
        table = pipeline.config.pipeline
        self.pipeline, self.name, self.stage, self.write = pipeline, name, stage, write
        self.timeout = table.sink_timeout_seconds
        self.send, self.receive = trio.open_memory_channel[tuple[Job, list[Event]]](
            table.sink_buffer_batches)
        self.limiter = trio.CapacityLimiter(1)
        self.stuck = False  # a write timed out and its thread has not returned yet

    async def run(self) -> None:
        async for job, batch in self.receive:
            with trio.CancelScope(shield=True):  # a batch taken is stored or spooled
                error = await self.deliver(batch)
            job.finish(self.name, error)

    def _write(self, batch: list[Event]) -> None:
        try:
            self.write(events=batch)
        finally:
            self.stuck = False  # a write given up on clears the flag when it returns

    async def deliver(self, batch: list[Event]) -> BaseException | None:
        pipeline = self.pipeline
        attempts = Attempts(pipeline.retry, pipeline._rng, lambda exc: pipeline.metrics.inc(
            "retries", component=self.name, stage=self.stage))
        while True:
            error: BaseException | None = None
            if self.stuck:
                error = TimeoutError(f"an earlier write to {self.name} has not returned")
            else:
                with trio.move_on_after(self.timeout) as scope:
                    try:
                        await trio.to_thread.run_sync(self._write, batch, limiter=self.limiter,
                                                      abandon_on_cancel=True)
                    except Exception as exc:
                        error = exc
                if scope.cancelled_caught:
                    self.stuck = True
                    error = TimeoutError(f"{self.name} did not answer within {self.timeout} s")
            wait = attempts.after(error)
            if wait is None:
                if error is None:  # only bookkeeping: no need for a thread
                    return pipeline.settle(self.name, self.stage, batch, None, attempts.count)
                return await trio.to_thread.run_sync(pipeline.settle, self.name, self.stage,
                                                     batch, error, attempts.count)
            await trio.sleep(wait)


class HitStream:
    def __init__(self, pipeline: Pipeline, *, queue_size: int = 1000,
                 on_batch: BatchObserver | None = None) -> None:
        self.pipeline = pipeline
        self.batch_size = pipeline.batch_size
        self.queue_size = queue_size
        self._send, self._receive = trio.open_memory_channel[Submission](queue_size)
        self._limiter = trio.CapacityLimiter(1)  # one chain thread
        self._workers = [SinkWorker(pipeline, name, stage, write)
                         for name, stage, write in pipeline.sink_targets()]
        self._on_batch = on_batch
        self._nursery: trio.Nursery | None = None
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
        """The writer and the sink workers; run until `close`, then drain what is left."""
        self._running = True
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for worker in self._workers:
                    nursery.start_soon(worker.run)
                task_status.started()
                try:
                    async for first in self._receive:
                        await self._dispatch(self._take_more([first]))
                finally:
                    with trio.CancelScope(shield=True):
                        for worker in self._workers:
                            await worker.send.aclose()  # they finish their buffers, then end
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

    async def _dispatch(self, batch: list[Submission]) -> None:
        """Run the chain, hand the result to every sink's buffer, acknowledge later."""
        assert self._nursery is not None
        with trio.CancelScope(shield=True):  # once taken off the queue, a batch goes through
            started = time.perf_counter()
            try:
                parts = await trio.to_thread.run_sync(self._process, batch,
                                                      limiter=self._limiter)
            except Exception as exc:
                self._fail(batch, exc)
                return
            events = [e for part in parts for e in part.events]
            bots = [e for part in parts for e in part.bots]
            targets = [(w, events if w.stage == "write" else bots) for w in self._workers]
            targets = [(w, b) for w, b in targets if b]
            job = Job(batch, parts, pending=len(targets), started=started)
            if events:
                self.pipeline.metrics.inc("batches")
            if not targets:
                job.done.set()
            for worker, its_batch in targets:
                await worker.send.send((job, its_batch))  # waits while its buffer is full
            self._nursery.start_soon(self._acknowledge, job)

    async def _acknowledge(self, job: Job) -> None:
        with trio.CancelScope(shield=True):
            await job.done.wait()
        if job.failures:
            self._fail(job.submissions, SinkError(job.failures))
            return
        self.failing = None
        if self._on_batch is not None:
            self._on_batch(sum(len(s.hits) for s in job.submissions),
                           time.perf_counter() - job.started)
        self._succeed(job.submissions, job.parts)

    @staticmethod
    def _succeed(batch: list[Submission], parts: list[Processed]) -> None:
        for submission, part in zip(batch, parts, strict=True):
            submission.stored = len(part.events)
            submission.filtered = len(submission.hits) - submission.stored
            submission.done.set()

    def _fail(self, batch: list[Submission], exc: BaseException) -> None:
        self.failing = exc
        for submission in batch:
            submission.error = exc
            submission.done.set()

    def _process(self, batch: list[Submission]) -> list[Processed]:
        return [self.pipeline.process(s.hits) for s in batch]

    def _process_and_write(self, batch: list[Submission]) -> list[Processed]:
        parts = self._process(batch)
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
                await self._stopped.wait()  # the writer drains the queue, the workers theirs
            while True:  # the writer task is gone (never started, or cancelled): do it here
                try:
                    first = self._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                batch = self._take_more([first])
                try:
                    parts = await trio.to_thread.run_sync(self._process_and_write, batch)
                except Exception as exc:
                    self._fail(batch, exc)
                    continue
                self._succeed(batch, parts)
