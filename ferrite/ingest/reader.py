"""Lines from files, gzip files, stdin, or a file followed as it grows and rotates."""

from __future__ import annotations

import gzip
import io
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO


@dataclass(frozen=True, slots=True)
class Line:
    source: str
    number: int
    text: str


class Idle:
    """Yielded by `follow` when it has caught up, so the caller can flush its batch."""


IDLE = Idle()


def _open(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def read_lines(path: str) -> Iterator[Line]:
    """Every line of `path` ("-" is stdin; gzip is recognised by its magic bytes)."""
    source = "<stdin>" if path == "-" else path
    stream = _open(path)
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="\n")
    try:
        for number, line in enumerate(text, 1):
            yield Line(source, number, line.rstrip("\r\n"))
    finally:
        if stream is sys.stdin.buffer:
            text.detach()
        else:
            text.close()


def follow(path: str, poll_seconds: float = 0.5) -> Iterator[Line | Idle]:
    """Read `path` to the end, then keep reading what is appended, like `tail -n +1 -F`.

    Rotation (the file renamed and a new one created, or the file truncated) is noticed at
    each poll: the rest of the old file is read first, then the new one from its start.
    Stops only when the caller stops iterating (for `ferrite ingest`, on SIGINT/SIGTERM).
    """
    stream = open(path, "rb")  # noqa: SIM115
    inode = os.fstat(stream.fileno()).st_ino
    number, partial = 0, b""
    try:
        while True:
            raw = stream.readline()
            if raw.endswith(b"\n"):
                number += 1
                yield Line(path, number, (partial + raw).decode("utf-8", "replace")
                           .rstrip("\r\n"))
                partial = b""
                continue
            partial += raw  # a line still being written
            yield IDLE
            time.sleep(poll_seconds)
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                continue  # rotated, the new file not there yet
            if stat.st_ino != inode or stat.st_size < stream.tell():
                for raw in stream:  # what was written to the old file before rotation
                    number += 1
                    yield Line(path, number, (partial + raw).decode("utf-8", "replace")
                               .rstrip("\r\n"))
                    partial = b""
                stream.close()
                stream = open(path, "rb")  # noqa: SIM115
                inode = os.fstat(stream.fileno()).st_ino
                number, partial = 0, b""
    finally:
        stream.close()
