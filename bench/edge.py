"""Pixel hits/s and latency of `ferrite serve` (ack = stored, default chain into SQLite)
against a bare hypercorn-trio ASGI app returning the same GIF, both driven by wrk on
loopback in the same run; then resident memory after a 60 s soak.

    .venv/bin/python bench/edge.py [--seconds 10] [--rounds 3] [--soak 60]

Needs wrk (Debian package `wrk`). wrk runs on the same 2 cores as the servers, so absolute
figures are lower than on a dedicated load generator; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/131.0.0.0 Safari/537.36")
PATH = "/p.gif?u=https%3A%2F%2Fexample.com%2Fdocs&r=https%3A%2F%2Fduckduckgo.com%2F"


def start(command: list[str], cwd: Path, pattern: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.search(pattern, line)
        if match:
            return process, match.group(1)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"{command} did not start")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


def ferrite(cwd: Path, workers: int) -> tuple[subprocess.Popen, str]:
    return start([PYTHON, "-m", "ferrite", "serve", "--bind", "127.0.0.1:0",
                  "--workers", str(workers)], cwd, r"listening on (http://\S+)")


def bare(cwd: Path, workers: int) -> tuple[subprocess.Popen, str]:
    hypercorn = str(Path(PYTHON).parent / "hypercorn")
    return start([hypercorn, "-k", "trio", "-w", str(workers), "-b", "127.0.0.1:0",
                  "--log-level", "info", "--access-logfile", "/dev/null",
                  f"{ROOT / 'bench' / 'bare_gif.py'}:app"], cwd,
                 r"Running on (http://\S+)")


def wrk(url: str, seconds: int, connections: int = 32) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s",
                          "--latency", "-H", f"User-Agent: {UA}", url + PATH],
                         capture_output=True, text=True, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()
        result[f"p{pct}"] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = float(errors.group(1)) if errors else 0.0
    return result


def rss_mb(pid: int) -> list[float]:
    """VmRSS of the process and its children (the workers), in MB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    sizes = []
    for p in pids:
        status = Path(f"/proc/{p}/status").read_text()
        sizes.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--soak", type=int, default=60)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench/edge.py needs wrk: apt-get install wrk")
    for workers in args.workers:
        results: dict[str, list[dict[str, float]]] = {"ferrite": [], "bare": []}
        for _ in range(args.rounds):
            for name, launcher in (("ferrite", ferrite), ("bare", bare)):
                with tempfile.TemporaryDirectory() as tmp:
                    process, url = launcher(Path(tmp), workers)
                    try:
                        wrk(url, 2)  # warm-up: caches, SQLite pages, JIT-free but warm
                        results[name].append(wrk(url, args.seconds))
                    finally:
                        stop(process)
        medians = {name: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
                   for name, rows in results.items()}
        f, b = medians["ferrite"], medians["bare"]
        print(f"workers={workers}: ferrite {f['rps']:,.0f} hits/s (p50 {f['p50']:.1f} ms, "
              f"p99 {f['p99']:.1f} ms, non-2xx {f['non2xx']:.0f}); bare {b['rps']:,.0f} hits/s "
              f"(p50 {b['p50']:.1f} ms, p99 {b['p99']:.1f} ms); ratio {f['rps'] / b['rps']:.2f} "
              f"(target >= 0.8)", flush=True)
    if args.soak:
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as tmp:
                process, url = ferrite(Path(tmp), workers)
                try:
                    result = wrk(url, args.soak)
                    sizes = rss_mb(process.pid)
                    stored = subprocess.run(
                        [PYTHON, "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1])"
                         ".execute('select count(*) from events').fetchone()[0])",
                         os.path.join(tmp, "ferrite.db")], capture_output=True, text=True).stdout
                finally:
                    stop(process)
            worker_sizes = sizes[1:] or sizes
            print(f"soak workers={workers}: {args.soak} s at {result['rps']:,.0f} hits/s, "
                  f"{stored.strip()} events stored; RSS per worker "
                  f"{', '.join(f'{s:.0f}' for s in worker_sizes)} MB (target < 150 MB)"
                  + (f", parent {sizes[0]:.0f} MB" if len(sizes) > 1 else ""), flush=True)


if __name__ == "__main__":
    main()
