"""Bot detection on labelled public corpora: people flagged and robots caught, per corpus.

    .venv/bin/python bench/bots.py [--show N] [--corpus NAME ...] [--layers a,b,...]

Corpora come from pinned registry packages (tests/bot_corpora.py). Those marked "tuned"
were looked at while writing the heuristics; the others are held out and are the figures
to quote. --show N prints N examples of each kind of mistake.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ferrite.plugins.bots import ALL_LAYERS, Bots, Settings  # noqa: E402
from ferrite.plugins.useragent import Settings as UaSettings  # noqa: E402
from ferrite.plugins.useragent import UserAgents  # noqa: E402
from ferrite.testing import make_hit  # noqa: E402
from tests import bot_corpora  # noqa: E402

#: Runtime lists made from a corpus: its robots are measured a second time without them.
BUILT_FROM = {"crawlerdetect": "crawler_detect", "crawler-user-agents": "crawler_list"}


def verdicts(bots: Bots, agents: UserAgents, uas: list[str]) -> list[str | None]:
    return [bots.ferrite_bot_reason(hit=make_hit(user_agent=ua), agent=agents.summarize(ua))
            for ua in uas]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="append", choices=bot_corpora.ALL)
    parser.add_argument("--show", type=int, default=0)
    parser.add_argument("--layers", help="comma-separated layers (default: all)")
    args = parser.parse_args()
    layers = args.layers.split(",") if args.layers else list(ALL_LAYERS)
    bots = Bots(Settings(layers=layers, cache_size=0))
    agents = UserAgents(UaSettings(cache_size=0))
    print(f"{'corpus':<21} {'tuned':<6} {'people':>8} {'flagged':>8} "
          f"{'robots':>7} {'caught':>8}  reasons")
    for name in args.corpus or bot_corpora.ALL:
        corpus = bot_corpora.load(name)
        started = time.perf_counter()
        on_humans = verdicts(bots, agents, corpus.humans)
        on_robots = verdicts(bots, agents, corpus.robots)
        elapsed = time.perf_counter() - started
        flagged = [(ua, r) for ua, r in zip(corpus.humans, on_humans, strict=True) if r]
        missed = [ua for ua, r in zip(corpus.robots, on_robots, strict=True) if not r]
        reasons = Counter(r for _, r in flagged)
        fp = f"{len(flagged) / len(corpus.humans):.2%}" if corpus.humans else "-"
        tp = (f"{1 - len(missed) / len(corpus.robots):.2%}" if corpus.robots else "-")
        print(f"{name:<21} {'yes' if corpus.tuned else 'no':<6} {len(corpus.humans):>8} "
              f"{fp:>8} {len(corpus.robots):>7} {tp:>8}  "
              f"{dict(reasons.most_common()) or ''} ({elapsed:.1f} s)")
        built_from = BUILT_FROM.get(name)
        if built_from and built_from in layers and corpus.robots:
            without = Bots(Settings(layers=[x for x in layers if x != built_from], cache_size=0))
            left = sum(1 for r in verdicts(without, agents, corpus.robots) if r)
            print(f"{'':<37}without {built_from} (the list made from this corpus): "
                  f"{left / len(corpus.robots):.2%} of robots caught")
        for ua, why in flagged[:args.show]:
            print(f"    flagged ({why}): {ua[:160]}")
        for ua in missed[:args.show]:
            print(f"    missed: {ua[:160]}")
    print(f"source: {', '.join(f'{n}: {bot_corpora.load(n).source}' for n in bot_corpora.ALL)}")


if __name__ == "__main__":
    main()
