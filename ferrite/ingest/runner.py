"""`ferrite ingest`: access-log lines through the same chain and sinks as live hits.

Only page views count: GET or HEAD, status 2xx or 304, not an asset. Each hit keeps its own
timestamp, so the session stage salts it with its own UTC day's salt (an ephemeral one for
days before yesterday). Event ids come from each line's content and position, so importing
the same file twice stores nothing twice.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import TextIO
from urllib.parse import urlsplit

from ferrite.core.config import IngestTable
from ferrite.core.errors import FerriteError
from ferrite.core.event import Hit
from ferrite.core.pipeline import Pipeline, Processed
from ferrite.ingest.formats import LogRecord, Malformed, caddy_record
from ferrite.ingest.reader import IDLE, Idle, Line

SHOWN_MALFORMED = 5


@dataclass
class Summary:
    lines: int = 0
    events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: list[tuple[str, int, str, str]] = field(default_factory=list)

    def render(self, elapsed: float) -> str:
        rate = self.lines / elapsed if elapsed > 0 else 0.0
        out = [f"{self.lines:,} lines read in {elapsed:.1f} s ({rate:,.0f} lines/s); "
               f"{self.events:,} events passed to the sinks (which ignore ones they have)"]
        if self.skipped:
            out.append("skipped: " + ", ".join(f"{reason} {n:,}" for reason, n
                                                 in sorted(self.skipped.items())))
        for source, number, message, text in self.malformed[:SHOWN_MALFORMED]:
            out.append(f"  malformed {source}:{number}: {message}: {text[:100]!r}")
        hidden = self.skipped["malformed"] - min(len(self.malformed), SHOWN_MALFORMED)
        if hidden > 0:
            out.append(f"  ... and {hidden:,} more malformed lines")
        return "\n".join(out)


def event_id(record: LogRecord, line: Line) -> str:
    """Time-ordered like live ids, but derived from the line and its position."""
    ms = int(record.ts.timestamp() * 1000)
    digest = blake2b(f"{line.number}\n{line.text}".encode(), digest_size=10).hexdigest()
    return f"{ms:012x}{digest}"


def bare_site(host: str) -> str:
    host = host.lower().rpartition("@")[2]
    host = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    return host.removeprefix("www.")


class Ingest:
    def __init__(self, pipeline: Pipeline, parse: Callable[[str], LogRecord],
                 settings: IngestTable, *, site: str | None = None,
                 caddy: bool = False) -> None:
        self.pipeline = pipeline
        self.parse = parse
        self.site = site
        self.assets = frozenset(ext.lower().lstrip(".") for ext in settings.assets)
        self.caddy = caddy
        self.summary = Summary()
        self._batch: list[Hit] = []
        self._pending_json: list[Line] = []

    # --- one line -----------------------------------------------------------------------

    def _record(self, line: Line) -> LogRecord | None:
        if not self.caddy or not (self._pending_json or line.text.lstrip().startswith("{")):
            return self.parse(line.text)
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

    def _skip(self, record: LogRecord) -> str | None:
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

    def feed(self, line: Line) -> None:
        self.summary.lines += 1
        if not line.text.strip():
            return
        try:
            record = self._record(line)
        except Malformed as exc:
            self.summary.skipped["malformed"] += 1
            if len(self.summary.malformed) < SHOWN_MALFORMED:
                self.summary.malformed.append((line.source, line.number, str(exc), line.text))
            return
        if record is None:
            return
        reason = self._skip(record)
        if reason is not None:
            self.summary.skipped[reason] += 1
            return
        site = self.site or bare_site(record.host)
        if not site:
            raise FerriteError(f"{line.source}:{line.number}: the log names no site (no "
                               f"virtual host); pass --site example.com")
        url = record.target if "://" in record.target else f"https://{site}{record.target}"
        headers = {"user-agent": record.user_agent} if record.user_agent else {}
        self._batch.append(Hit(site=site, url=url, referrer=record.referrer, peer=record.ip,
                               headers=headers, ts=record.ts, id=event_id(record, line)))
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

    def run(self, lines: Iterable[Line | Idle], progress: Callable[[int], None] | None = None,
            ) -> Summary:
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


Update = Callable[[int], None]


def progress_bar(out: TextIO = sys.stderr) -> tuple[Update | None, Callable[[], None]]:
    """A tqdm counter of lines with lines/s on a terminal; nothing otherwise."""
    if not out.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(unit=" lines", unit_scale=True, file=out, dynamic_ncols=True, leave=False)
    return bar.update, bar.close
