"""The committed tracker build is what the source builds to, and it stays small."""

from __future__ import annotations

import gzip
import json
import shlex
import subprocess

import pytest

from .conftest import ROOT

TRACKER = ROOT / "tracker"
BUILT = ROOT / "ferrite" / "edge" / "static" / "script.js"
MINIFIED_TARGET, GZIPPED_TARGET = 2048, 1024


def rebuild(tmp_path):
    if not (TRACKER / "node_modules" / ".bin" / "terser").exists():
        pytest.fail("tracker/node_modules is missing: run `npm ci --prefix tracker` "
                    "(bash scripts/test.sh does)")
    command = json.loads((TRACKER / "package.json").read_text())["scripts"]["build"]
    args = shlex.split(command)
    out = tmp_path / "script.js"
    args[args.index("--output") + 1] = str(out)
    args[0] = str(TRACKER / "node_modules" / ".bin" / args[0])
    subprocess.run(args, cwd=TRACKER, check=True)
    return out.read_bytes()


def test_committed_build_is_fresh(tmp_path):
    assert rebuild(tmp_path) == BUILT.read_bytes(), (
        "ferrite/edge/static/script.js is stale: run `npm run build --prefix tracker` "
        "and commit it")


def test_size(capsys):
    data = BUILT.read_bytes()
    minified, gzipped = len(data), len(gzip.compress(data, compresslevel=9))
    with capsys.disabled():
        print(f"\ntracker: {minified} bytes minified (target {MINIFIED_TARGET}), "
              f"{gzipped} bytes gzipped -9 (target {GZIPPED_TARGET})")
    assert minified <= MINIFIED_TARGET
    # The gzip target is not met yet (docs/benchmarks.md); this only stops it growing.
    assert gzipped <= 1200
