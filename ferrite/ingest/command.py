"""The `ferrite ingest` command: choose the format, read the files, show progress."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from types import FrameType

from ferrite.core.config import Config
from ferrite.core.errors import FerriteError
from ferrite.core.pipeline import Pipeline
from ferrite.ingest.formats import detect, parser_for
from ferrite.ingest.reader import Idle, Line, follow, read_lines
from ferrite.ingest.runner import Ingest, progress_bar


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _lines(files: list[str]) -> Iterator[Line]:
    for path in files:
        yield from read_lines(path)


def main(config: Config, files: list[str], *, fmt: str | None, site: str | None,
         follow_file: bool) -> int:
    settings = config.ingest
    fmt = fmt or settings.format
    site = site or settings.site
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
    print(ingest.summary.render(time.perf_counter() - started))
    if interrupted and not follow_file:
        print("interrupted: the lines read so far were stored", file=sys.stderr)
        return 130
    return 0
