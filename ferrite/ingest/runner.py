"""`ferrite ingest`: access-log lines through the same chain and sinks as live hits.

Only page views count: GET or HEAD, status 2xx or 304, not an asset. Each hit keeps its own
timestamp, so the session stage salts it with its own UTC day's salt (an ephemeral one for
days before yesterday). Event ids come from each line's content and position, so importing
the same file twice stores nothing twice.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import blake2b
from typing import Any, TextIO
from urllib.parse import urlsplit

from ferrite.core.errors import FerriteError
from ferrite.core.event import Hit
from ferrite.core.pipeline import Pipeline, Processed
from ferrite.core.urls import site_name
from ferrite.ingest.formats import NOT_HTTP, LogRecord, Malformed, caddy_record
from ferrite.ingest.reader import IDLE, Idle, Line
from ferrite.ingest.settings import IngestTable

SHOWN_MALFORMED = 5


@dataclass
class Summary:
    lines: int = 0
    events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: list[tuple[str, int, str, str]] = field(default_factory=list)
    #: Events each sink said were new to it (sinks that report it: sqlite does).
    new: dict[str, float] = field(default_factory=dict)

    def render(self, elapsed: float) -> str:
        rate = self.lines / elapsed if elapsed > 0 else 0.0
        out = [f"{self.lines:,} lines read in {elapsed:.1f} s ({rate:,.0f} lines/s); "
               f"{self.events:,} events passed to the sinks (which ignore ones they have)"]
        if self.new:
            out.append("new: " + ", ".join(
                f"{sink} {int(n):,}" for sink, n in sorted(self.new.items()))
                + (f" ({self.events - int(min(self.new.values())):,} were already stored)"
                   if min(self.new.values()) < self.events else ""))
        if self.skipped:
            out.append("skipped: " + ", ".join(f"{reason} {n:,}" for reason, n
                                                 in sorted(self.skipped.items())))
        for source, number, message, text in self.malformed[:SHOWN_MALFORMED]:
            out.append(f"  malformed {source}:{number}: {message}: {text[:100]!r}")
        hidden = self.skipped["malformed"] - min(len(self.malformed), SHOWN_MALFORMED)
        if hidden > 0:
            out.append(f"  ... and {hidden:,} more malformed lines")
        return "\n".join(out)


def event_id(ts: datetime, number: int, text: str) -> str:
    """Time-ordered like live ids, but derived from the line and its position."""
    ms = int(ts.timestamp() * 1000)
    digest = blake2b(f"{number}\n{text}".encode(), digest_size=10).hexdigest()
    return f"{ms:012x}{digest}"


#: What a kept line becomes, small enough to pass between processes cheaply:
#: (site, url, referrer, ip, user agent, epoch seconds, event id).
Kept = tuple[str, str, str, str, str, float, str]


@dataclass
class Chunk:
    """What the filter made of a run of lines."""

    lines: int = 0
    kept: list[Kept] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: list[tuple[str, int, str, str]] = field(default_factory=list)


class LineFilter:
    """Parse a line and decide whether it is a page view; no chain, no storage, so it can
    run in a second process while the first runs the chain."""

    def __init__(self, parse: Callable[[str], LogRecord], assets: Iterable[str],
                 site: str | None) -> None:
        self.parse = parse
        self.assets = frozenset(ext.lower().lstrip(".") for ext in assets)
        self.site = site

    def skip_reason(self, record: LogRecord) -> str | None:
        if record.method == NOT_HTTP:
            return "not_http"
        if record.method not in ("GET", "HEAD"):
            return "method"
        if not (200 <= record.status < 300 or record.status == 304):
            return "status"
        path = urlsplit(record.target).path if "://" in record.target else \
            record.target.partition("?")[0]
        last = path.rpartition("/")[2]
        if "." in last and last.rpartition(".")[2].lower() in self.assets:
            return "asset"
        return None

    def kept(self, record: LogRecord, source: str, number: int, text: str) -> Kept:
        site = self.site or bare_site(record.host)
        if not site:
            raise FerriteError(f"{source}:{number}: the log names no site (no virtual host); "
                               f"pass --site example.com")
        url = record.target if "://" in record.target else f"https://{site}{record.target}"
        return (site, url, record.referrer, record.ip, record.user_agent,
                record.ts.timestamp(), event_id(record.ts, number, text))

    def chunk(self, source: str, first: int, texts: list[str]) -> Chunk:
        out = Chunk(lines=len(texts))
        for number, text in enumerate(texts, first):
            if not text.strip():
                continue
            try:
                record = self.parse(text)
            except Malformed as exc:
                out.skipped["malformed"] += 1
                if len(out.malformed) < SHOWN_MALFORMED:
                    out.malformed.append((source, number, str(exc), text))
                continue
            reason = self.skip_reason(record)
            if reason is None:
                out.kept.append(self.kept(record, source, number, text))
            else:
                out.skipped[reason] += 1
        return out


_worker: LineFilter | None = None


def _start_worker(fmt: str, assets: list[str], site: str | None) -> None:
    global _worker
    from ferrite.ingest.formats import parser_for

    _worker = LineFilter(parser_for(fmt), assets, site)


def _filter_in_worker(source: str, first: int, texts: list[str]) -> Chunk:
    assert _worker is not None
    return _worker.chunk(source, first, texts)


def bare_site(host: str) -> str:
    host = host.lower().rpartition("@")[2]
    host = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    return site_name(host)


class Ingest:
    def __init__(self, pipeline: Pipeline, parse: Callable[[str], LogRecord],
                 settings: IngestTable, *, site: str | None = None,
                 caddy: bool = False) -> None:
        self.pipeline = pipeline
        self.filter = LineFilter(parse, settings.assets, site)
        self.caddy = caddy
        self.summary = Summary()
        self._batch: list[Hit] = []
        self._pending_json: list[Line] = []

    # --- in this process, line by line (followed files, Caddy's multi-line JSON) ---------

    def _record(self, line: Line) -> LogRecord | None:
        if not self.caddy or not (self._pending_json or line.text.lstrip().startswith("{")):
            return self.filter.parse(line.text)
        # Caddy writes one object a line; pretty-printed objects span several lines.
        self._pending_json.append(line)
        text = "\n".join(p.text for p in self._pending_json)
        try:
            data = json.loads(text)
        except ValueError:
            if len(self._pending_json) < 200:
                return None
            self._pending_json = []
            raise Malformed("unterminated JSON object") from None
        self._pending_json = []
        return caddy_record(data)

    def feed(self, line: Line) -> None:
        self.summary.lines += 1
        if not line.text.strip():
            return
        try:
            record = self._record(line)
        except Malformed as exc:
            self._malformed(line.source, line.number, str(exc), line.text)
            return
        if record is None:
            return
        reason = self.filter.skip_reason(record)
        if reason is not None:
            self.summary.skipped[reason] += 1
            return
        self._add(self.filter.kept(record, line.source, line.number, line.text))

    def _malformed(self, source: str, number: int, message: str, text: str) -> None:
        self.summary.skipped["malformed"] += 1
        if len(self.summary.malformed) < SHOWN_MALFORMED:
            self.summary.malformed.append((source, number, message, text))

    def _add(self, kept: Kept) -> None:
        site, url, referrer, ip, user_agent, ts, event_id_ = kept
        headers = {"user-agent": user_agent} if user_agent else {}
        self._batch.append(Hit(site=site, url=url, referrer=referrer, peer=ip, headers=headers,
                               ts=datetime.fromtimestamp(ts, UTC), id=event_id_))
        if len(self._batch) >= self.pipeline.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        processed: Processed = self.pipeline.process(self._batch)
        self._batch = []
        self.pipeline.write(processed)
        self.summary.events += len(processed.events)
        for event in processed.bots:
            self.summary.skipped[f"bot:{event.bot}"] += 1
        self.summary.skipped.update(processed.discarded)

    def run(self, lines: Iterable[Line | Idle], progress: Update | None = None) -> Summary:
        """Feed every line; flush at each batch and whenever a followed file is idle."""
        seen = 0
        try:
            for item in lines:
                if item is IDLE:
                    self.flush()
                    continue
                assert isinstance(item, Line)
                self.feed(item)
                seen += 1
                if progress is not None and seen % 2000 == 0:
                    progress(2000)
        finally:
            self.flush()  # also on Ctrl-C: what was read is stored
            if progress is not None:
                progress(seen % 2000)
        return self.summary

    # --- with a second process parsing and filtering (files read to their end) ----------

    def run_parallel(self, lines: Iterable[Line], fmt: str, progress: Update | None = None,
                     chunk_lines: int = 5000, in_flight: int = 4) -> Summary:
        """Parse and filter in a second process while this one runs the chain: on two cores
        the two halves of the work overlap. At most `in_flight` chunks wait, so memory stays
        flat however long the file."""
        context = multiprocessing.get_context("spawn")
        initargs = (fmt, sorted(self.filter.assets), self.filter.site)
        with context.Pool(1, initializer=_start_worker, initargs=initargs) as pool:
            pending: deque[Any] = deque()
            try:
                for source, first, texts in _chunks(lines, chunk_lines):
                    pending.append(pool.apply_async(_filter_in_worker, (source, first, texts)))
                    if len(pending) >= in_flight:
                        self._take(pending.popleft().get(), progress)
                while pending:
                    self._take(pending.popleft().get(), progress)
            finally:
                self.flush()
        return self.summary

    def _take(self, chunk: Chunk, progress: Update | None) -> None:
        self.summary.lines += chunk.lines
        self.summary.skipped.update(chunk.skipped)
        room = SHOWN_MALFORMED - len(self.summary.malformed)
        self.summary.malformed.extend(chunk.malformed[:max(room, 0)])
        for kept in chunk.kept:
            self._add(kept)
        if progress is not None:
            progress(chunk.lines)


def _chunks(lines: Iterable[Line], size: int) -> Iterator[tuple[str, int, list[str]]]:
    """Runs of consecutive lines of one source, as (source, first line number, texts)."""
    source, first, texts = "", 0, []
    for line in lines:
        if texts and (line.source != source or len(texts) >= size):
            yield source, first, texts
            texts = []
        if not texts:
            source, first = line.source, line.number
        texts.append(line.text)
    if texts:
        yield source, first, texts


Update = Callable[[int], None]


def progress_bar(out: TextIO = sys.stderr) -> tuple[Update | None, Callable[[], None]]:
    """A tqdm counter of lines with lines/s on a terminal; nothing otherwise."""
    if not out.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(unit=" lines", unit_scale=True, file=out, dynamic_ncols=True, leave=False)
    return bar.update, bar.close
