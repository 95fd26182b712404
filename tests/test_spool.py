"""The dead-letter spool's counts, as /readyz reads them on every probe."""

from __future__ import annotations

from pathlib import Path

from ferrite.core.delivery import Spool
from ferrite.testing import make_hit, run_chain


def events(n: int):
    return run_chain([make_hit(url=f"https://example.com/{i}") for i in range(n)]).events


def test_counts_follow_appends_and_reread_only_changed_files(tmp_path: Path, monkeypatch):
    spool = Spool(tmp_path / "spool")
    assert spool.counts() == {}
    spool.add("sqlite", events(3), attempts=4, error=OSError("disk full"))
    spool.add("jsonl", events(2), attempts=4, error=OSError("gone"))
    assert spool.counts() == {"sqlite": 3, "jsonl": 2}

    opened: list[str] = []
    real_open = Path.open

    def counting_open(self: Path, *args, **kwargs):
        opened.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_open)
    assert spool.counts() == {"sqlite": 3, "jsonl": 2}
    assert opened == []  # nothing changed: no file is read again
    monkeypatch.undo()

    spool.add("sqlite", events(1), attempts=4, error=OSError("disk full"))
    monkeypatch.setattr(Path, "open", counting_open)
    assert spool.counts() == {"sqlite": 4, "jsonl": 2}
    assert opened == ["sqlite.jsonl"]
