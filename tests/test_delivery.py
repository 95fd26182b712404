"""Delivery: the retry decisions every loop shares, and the dead-letter spool's counts."""

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


def test_attempts_decide_every_delivery_loops_retries():
    """One place decides: stored and fatal stop at once, others wait until the policy's
    attempts are used up, and each retry is booked."""
    import random

    from ferrite import FatalSinkError
    from ferrite.core.delivery import Attempts, RetryPolicy

    policy = RetryPolicy(attempts=3, initial=0.1, maximum=1.0)
    retried: list[str] = []
    attempts = Attempts(policy, random.Random(1), lambda exc: retried.append(str(exc)))
    assert attempts.after(OSError("a")) is not None
    assert attempts.after(OSError("b")) is not None
    assert attempts.after(OSError("c")) is None  # third attempt: give up
    assert (attempts.count, retried) == (3, ["a", "b"])

    assert Attempts(policy, random.Random(1)).after(None) is None
    fatal = Attempts(policy, random.Random(1))
    assert fatal.after(FatalSinkError("never")) is None and fatal.count == 1
