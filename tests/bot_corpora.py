"""Labelled user-agent corpora from public registry packages, for measuring bot detection.

Each corpus is a pinned package version fetched from PyPI or npm on first use into
``.cache/corpora/`` (gitignored) and reduced to a TSV of ``label<TAB>user agent``, where
label is ``human`` or ``robot``. Nothing here is read by Ferrite at run time.

Which corpora Ferrite's heuristics were tuned on, and which are held out, is recorded in
``TUNED_ON``: report the held-out ones as the honest figure (docs/bots.md).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("FERRITE_CORPORA", ROOT / ".cache" / "corpora"))
LOCAL = ROOT / "tests" / "data" / "bots"

#: Corpora whose mistakes were looked at while writing the heuristics.
TUNED_ON = frozenset({"matomo", "local"})


@dataclass(frozen=True)
class Corpus:
    name: str
    source: str
    humans: list[str]
    robots: list[str]

    @property
    def tuned(self) -> bool:
        return self.name in TUNED_ON


def _pip_sdist(spec: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", ":all:", "--disable-pip-version-check", "-d", str(into), spec],
                   check=True, stdout=subprocess.DEVNULL)
    return next(into.glob("*.tar.gz"))


def npm_pack(spec: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "pack", "--silent", spec], cwd=into, check=True,
                   stdout=subprocess.DEVNULL)
    return next(into.glob("*.tgz"))


def _members(archive: Path, suffix: str) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(suffix):
                handle = tar.extractfile(member)
                if handle is not None:
                    yield member.name, handle.read()


def _text_lines(data: bytes) -> list[str]:
    return [line.strip() for line in data.decode("utf-8", "replace").splitlines()
            if line.strip()]


def _crawlerdetect(work: Path) -> tuple[list[str], list[str]]:
    """JayBizzle's CrawlerDetect fixtures, as shipped in the Python port's sdist."""
    archive = _pip_sdist("crawlerdetect==0.4.2", work)
    files = dict(_members(archive, ".txt"))
    pick = {name.rsplit("/", 2)[-2] + "/" + name.rsplit("/", 1)[-1]: data
            for name, data in files.items() if "/fixtures/user_agent/" in name}
    return _text_lines(pick["user_agent/devices.txt"]), _text_lines(pick["user_agent/crawlers.txt"])


#: Matomo client types that a person uses to open a page or an app.
MATOMO_HUMAN_CLIENTS = frozenset({"browser", "mobile app"})


def _matomo(work: Path) -> tuple[list[str], list[str]]:
    """Matomo device-detector's fixtures, as shipped in the Python port's sdist.

    Humans are fixtures whose client is a browser or a mobile app; libraries, feed readers,
    media players and mail clients are left out of both sides.
    """
    import yaml

    archive = _pip_sdist("device_detector==6.5.1", work)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    humans: list[str] = []
    robots: list[str] = []
    for name, data in _members(archive, ".yml"):
        if "/tests/fixtures/upstream/" not in name:
            continue
        entries = yaml.load(data, Loader=loader) or []
        for entry in entries:
            ua = str(entry.get("user_agent") or "").strip()
            if not ua:
                continue
            if name.endswith("/bots.yml"):
                robots.append(ua)
            elif (entry.get("client") or {}).get("type") in MATOMO_HUMAN_CLIENTS:
                humans.append(ua)
    return humans, robots


def _user_agents(work: Path) -> tuple[list[str], list[str]]:
    """Intoli's user-agents: browser user agents seen on real sites, refreshed daily."""
    archive = npm_pack("user-agents@2.1.198", work)
    data = dict(_members(archive, "dist/user-agents.json"))
    raw = next(iter(data.values()))
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return sorted({row["userAgent"] for row in json.loads(raw)}), []


FETCHERS: dict[str, tuple[str, Callable[[Path], tuple[list[str], list[str]]]]] = {
    "crawlerdetect": ("PyPI crawlerdetect 0.4.2 (JayBizzle/Crawler-Detect fixtures)",
                      _crawlerdetect),
    "matomo": ("PyPI device_detector 6.5.1 (matomo-org/device-detector fixtures)", _matomo),
    "user-agents": ("npm user-agents 2.1.198 (Intoli, real-traffic browsers)", _user_agents),
}


def _read_tsv(path: Path) -> tuple[list[str], list[str]]:
    humans: list[str] = []
    robots: list[str] = []
    for line in path.read_text("utf-8").splitlines():
        label, _, ua = line.partition("\t")
        (humans if label == "human" else robots).append(ua)
    return humans, robots


def _write_tsv(path: Path, humans: list[str], robots: list[str]) -> None:
    def clean(ua: str) -> str:
        return ua.replace("\t", " ").replace("\n", " ").replace("\r", " ")
    rows = [f"human\t{clean(ua)}" for ua in humans] + [f"robot\t{clean(ua)}" for ua in robots]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(rows) + "\n", "utf-8")
    tmp.replace(path)


def load(name: str) -> Corpus:
    """One corpus by name, fetching it on first use."""
    if name == "local":
        def lines(file: str) -> list[str]:
            return [x for x in (LOCAL / file).read_text().splitlines() if x]
        return Corpus("local", "tests/data/bots (issue 2's samples)",
                      lines("browsers.txt"), lines("crawlers.txt"))
    if name == "crawler-user-agents":
        import crawleruseragents
        listed = sorted({i for d in crawleruseragents.CRAWLER_USER_AGENTS_DATA
                         for i in d.get("instances", [])})
        return Corpus(name, "PyPI crawler-user-agents instances (Ferrite's runtime list)", [],
                      listed)
    source, fetch = FETCHERS[name]
    CACHE.mkdir(parents=True, exist_ok=True)
    tsv = CACHE / f"{name}.tsv"
    if not tsv.exists():
        with tempfile.TemporaryDirectory() as tmp:
            humans, robots = fetch(Path(tmp))
        _write_tsv(tsv, humans, robots)
    humans, robots = _read_tsv(tsv)
    return Corpus(name, source, humans, robots)


ALL = ("crawlerdetect", "matomo", "user-agents", "crawler-user-agents", "local")


if __name__ == "__main__":  # fetch every corpus, as scripts/test.sh does before the suite
    for corpus_name in ALL:
        corpus = load(corpus_name)
        print(f"{corpus.name}: {len(corpus.humans)} humans, {len(corpus.robots)} robots")
