"""`[ingest]`: `ferrite ingest`'s settings, registered with core like the edge's."""

from __future__ import annotations

from pydantic import Field

from ferrite.core.config import Table, register_table

DEFAULT_ASSETS = (
    "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico",
    "bmp", "tif", "tiff", "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "ogg",
    "wav", "flac", "pdf", "zip", "gz", "tgz", "bz2", "xz", "7z", "rar", "dmg", "exe", "iso",
    "xml", "txt", "json", "rss", "atom", "wasm",
)


class IngestTable(Table):
    """`[ingest]`: `ferrite ingest` for access logs."""

    format: str = Field("auto", description="auto, combined, common, combined-vhost, "
                        "common-vhost, caddy, bunny, or an Apache LogFormat string.")
    site: str | None = Field(None, description="Site of every line; default: the logged "
                             "virtual host.")
    assets: list[str] = Field(default_factory=lambda: list(DEFAULT_ASSETS),
                              description="File extensions that are not page views.")
    poll_seconds: float = Field(0.5, gt=0, le=60,
                                description="How often --follow looks for new lines.")
    parallel: bool = Field(True, description="Parse in a second process while this one runs "
                           "the chain (files read to their end, on machines with 2+ cores).")


register_table("ingest", IngestTable)
