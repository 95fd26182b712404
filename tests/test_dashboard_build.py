"""The committed dashboard files are what dashboard-ui builds to, from pinned npm packages,
and a first load stays small."""

from __future__ import annotations

import gzip
import subprocess

import pytest

from .conftest import ROOT

UI = ROOT / "dashboard-ui"
STATIC = ROOT / "ferrite" / "dashboard" / "static"


def test_committed_build_is_fresh(tmp_path):
    if not (UI / "node_modules" / "uplot").exists():
        pytest.fail("dashboard-ui/node_modules is missing: run `npm ci --prefix dashboard-ui` "
                    "(bash scripts/test.sh does)")
    subprocess.run(["node", "build.mjs", str(tmp_path)], cwd=UI, check=True)
    built = sorted(p.name for p in tmp_path.iterdir())
    assert built == sorted(p.name for p in STATIC.iterdir())
    for name in built:
        assert (tmp_path / name).read_bytes() == (STATIC / name).read_bytes(), (
            f"ferrite/dashboard/static/{name} is stale: run `npm run build --prefix "
            f"dashboard-ui` and commit it")


def test_the_static_files_are_small(capsys):
    sizes = {p.name: (len(p.read_bytes()), len(gzip.compress(p.read_bytes(), 9)))
             for p in STATIC.iterdir()}
    total = sum(gz for _, gz in sizes.values())
    with capsys.disabled():
        print(f"\ndashboard static files: {sizes} (gzip total {total} bytes)")
    assert total < 40_000  # the first-load budget is 150 KB with the page itself
