"""The dashboard's static files (built by `npm run build` in dashboard-ui/ and committed),
held in memory with a content hash in their URLs so browsers may cache them for a year."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


class Assets:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str, str]] = {}
        self._gzipped: dict[str, bytes] = {}
        folder = resources.files("ferrite.dashboard").joinpath("static")
        for item in folder.iterdir():
            suffix = "." + item.name.rsplit(".", 1)[-1]
            if item.is_file() and suffix in TYPES:
                body = item.read_bytes()
                self.files[item.name] = (body, TYPES[suffix],
                                         hashlib.sha256(body).hexdigest()[:16])

    def get(self, name: str) -> tuple[bytes, str, str] | None:
        return self.files.get(name)

    def gzipped(self, name: str) -> bytes:
        if name not in self._gzipped:
            self._gzipped[name] = gzip.compress(self.files[name][0], 9, mtime=0)
        return self._gzipped[name]

    def url(self, name: str) -> str:
        return f"/dashboard/static/{name}?v={self.files[name][2]}"
