from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path) -> Path:
    """Every test runs in a fresh working directory (no ferrite.toml there), so nothing a
    test writes by a relative path (ferrite.db, ferrite-spool/) lands in the checkout."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def sqlite_config(db: Path, *plugins: str, **sqlite: object) -> dict:
    names = list(plugins) or ["client_ip", "useragent", "bots", "session", "referrer"]
    return {"pipeline": {"plugins": [*names, "sqlite"], "spool_dir": str(db.parent / "spool"),
                         "retry_initial_seconds": 0},
            "plugins": {"sqlite": {"path": str(db), **sqlite}}}
