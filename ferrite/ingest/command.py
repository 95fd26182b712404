"""The `ferrite ingest` command: choose the format, read the files, show progress."""

from __future__ import annotations

import itertools
import os
import re
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from types import FrameType

from ferrite.core.config import Config
from ferrite.core.errors import FerriteError
from ferrite.core.pipeline import Pipeline
from ferrite.core.urls import site_name
from ferrite.ingest.formats import FORMATS, detect, parser_for
from ferrite.ingest.reader import Idle, Line, follow, read_lines
from ferrite.ingest.runner import Ingest, progress_bar


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _lines(files: list[str]) -> Iterator[Line]:
    for path in files:
        yield from read_lines(path)


#: A site is a host name: letters, digits, dots and dashes (a port is allowed).
SITE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$")
#: Formats that log no virtual host: every line needs --site.
NO_HOST = frozenset({"combined", "common"})
#: Share of malformed lines past which the format is surely wrong.
MOSTLY_MALFORMED = 0.5


def check_site(site: str) -> str:
    cleaned = site_name(site)
    if "://" in cleaned or "/" in cleaned or not SITE.match(cleaned):
        raise FerriteError(f"--site takes a domain such as example.com, not {site!r}")
    return cleaned


def main(config: Config, files: list[str], *, fmt: str | None, site: str | None,
         follow_file: bool) -> int:
    settings = config.ingest
    fmt = fmt or settings.format
    site = settings.site if site is None else site
    if site is not None:
        site = check_site(site)
    if follow_file and (len(files) != 1 or files[0] == "-"):
        raise FerriteError("--follow takes exactly one file path (not -)")
    for path in files:
        if path != "-":
            try:
                open(path, "rb").close()
            except OSError as exc:
                raise FerriteError(f"cannot read {path}: {exc.strerror}") from None
    lines: Iterable[Line | Idle] = (follow(files[0], settings.poll_seconds) if follow_file
                                    else _lines(files))
    if fmt == "auto":
        iterator = iter(lines)
        head = [x for x in itertools.islice(iterator, 50) if isinstance(x, Line)]
        try:
            fmt = detect(line.text for line in head)
        except ValueError as exc:
            raise FerriteError(str(exc)) from None
        print(f"format: {fmt} (detected from the first lines; --format to choose)",
              file=sys.stderr)
        lines = itertools.chain(head, iterator)
    try:
        parse = parser_for(fmt)
    except ValueError as exc:
        raise FerriteError(str(exc)) from None
    if site is None and (fmt in NO_HOST or (fmt not in FORMATS and "%v" not in fmt
                                            and "%V" not in fmt)):
        # before the sinks open: a run that cannot store anything creates no database
        raise FerriteError(f"the {fmt} format logs no virtual host, so the site is unknown; "
                           f"pass --site example.com")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    update, close = progress_bar()
    started = time.perf_counter()
    interrupted = False
    with Pipeline(config) as pipeline:
        ingest = Ingest(pipeline, parse, settings, site=site, caddy=fmt == "caddy")
        parallel = (settings.parallel and not follow_file and fmt != "caddy"
                    and (os.cpu_count() or 1) > 1)
        try:
            if parallel:
                ingest.run_parallel(lines, fmt, update)  # type: ignore[arg-type]
            else:
                ingest.run(lines, update)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            close()
            signal.signal(signal.SIGTERM, previous)
    summary = ingest.summary
    summary.new = pipeline.metrics.by_label("new", "component")
    print(summary.render(time.perf_counter() - started))
    if interrupted and not follow_file:
        print("interrupted: the lines read so far were stored", file=sys.stderr)
        return 130
    malformed = summary.skipped["malformed"]
    if malformed and malformed > MOSTLY_MALFORMED * summary.lines:
        print(f"ferrite: error: {malformed:,} of {summary.lines:,} lines do not match the "
              f"{fmt} format; choose the log's format with --format (or --format auto)",
              file=sys.stderr)
        return 1
    return 0
