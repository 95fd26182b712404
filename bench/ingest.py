"""Lines/s of `ferrite ingest` into SQLite against GoAccess on the same file.

    .venv/bin/python bench/ingest.py [--copies 50] [--rounds 3]

The 10,000-line real Apache log from ../shared/data repeated `copies` times (500,000 lines
by default). Ferrite runs the whole default chain and stores every page view; GoAccess
(Debian package `goaccess`) parses with --log-format=COMBINED and writes its JSON report.
Both run as whole commands, start-up included, alternating, in fresh folders; medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT.parent / "shared" / "data" / "access-logs" / "apache_combined_10k.log"


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("goaccess"):
        sys.exit("bench/ingest.py needs GoAccess: apt-get install goaccess")
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "access.log"
        data = LOG.read_bytes()
        with big.open("wb") as out:
            for _ in range(args.copies):
                out.write(data)
        lines = data.count(b"\n") * args.copies
        print(f"{lines:,} lines, {big.stat().st_size / 1e6:.0f} MB")
        ferrite, goaccess = [], []
        for r in range(args.rounds):
            work = Path(tmp) / f"round{r}"
            work.mkdir()
            ferrite.append(lines / timed([sys.executable, "-m", "ferrite", "ingest", str(big),
                                          "--site", "semicomplete.com", "--format",
                                          "combined"], work))
            goaccess.append(lines / timed(["goaccess", str(big), "--log-format=COMBINED",
                                           "-o", str(work / "report.json")], work))
            print(f"round {r + 1}: ferrite {ferrite[-1]:>9,.0f} lines/s   "
                  f"goaccess {goaccess[-1]:>9,.0f} lines/s", flush=True)
        f, g = statistics.median(ferrite), statistics.median(goaccess)
        print(f"median: ferrite {f:,.0f} lines/s, goaccess {g:,.0f} lines/s, ratio {f / g:.2f} "
              f"(target >= 0.6)")


if __name__ == "__main__":
    main()
