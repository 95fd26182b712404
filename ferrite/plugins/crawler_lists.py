"""The two maintained crawler lists, matched in linear time.

crawler-user-agents and CrawlerDetect ship about 1,500 patterns each. Python's `re` tries
every alternative at every position of a user agent: 0.24 ms and 0.75 ms per agent it has
not seen, which made the bot layers a fifth of the chain's cost on a cold cache and slowed
`ferrite ingest`. RE2 (google-re2) compiles each list into one automaton and answers in a
few microseconds. The handful of patterns RE2 cannot express (look-arounds) stay on
Python's `re`. Verdicts are the lists' own: tests compare them with the packages'
`is_crawler` on every labelled corpus.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import crawleruseragents
import re2
from crawlerdetect.providers.crawlers import data as crawler_detect_patterns
from crawlerdetect.providers.exclusions import data as crawler_detect_exclusions

#: Syntax RE2 does not have; such patterns go to Python's `re` without asking RE2 first
#: (RE2 logs every pattern it refuses to stderr).
PERL_ONLY = re.compile(r"\(\?[=!<]|\\[1-9]")


class PatternList:
    """Does any of `patterns` match? One RE2 automaton, plus `re` for the rest."""

    def __init__(self, patterns: Iterable[str], *, ignore_case: bool) -> None:
        fast: list[str] = []
        slow: list[str] = []
        for pattern in patterns:
            (slow if PERL_ONLY.search(pattern) else fast).append(pattern)
        options = re2.Options()
        options.case_sensitive = not ignore_case
        options.max_mem = 64 << 20
        self._fast = re2.compile("|".join(f"(?:{p})" for p in fast), options=options) \
            if fast else None
        flags = re.IGNORECASE if ignore_case else 0
        self._slow = re.compile("|".join(f"(?:{p})" for p in slow), flags) if slow else None

    def search(self, text: str) -> bool:
        return bool((self._fast is not None and self._fast.search(text))
                    or (self._slow is not None and self._slow.search(text)))


class CrawlerUserAgents:
    """monperrus/crawler-user-agents: case-sensitive patterns, as its `is_crawler`."""

    def __init__(self) -> None:
        self._list = PatternList((d["pattern"] for d in
                                  crawleruseragents.CRAWLER_USER_AGENTS_DATA),
                                 ignore_case=False)

    def is_crawler(self, user_agent: str) -> bool:
        return self._list.search(user_agent)


class CrawlerDetect:
    """JayBizzle/CrawlerDetect: exclusions cut out first, then case-insensitive patterns,
    as its `is_crawler`."""

    def __init__(self) -> None:
        self._exclusions = re.compile("|".join(crawler_detect_exclusions), re.IGNORECASE)
        self._list = PatternList(crawler_detect_patterns, ignore_case=True)

    def is_crawler(self, user_agent: str) -> bool:
        # Most agents match nothing even before the exclusions are cut out; only the rest
        # pay for the cut (removing text could in theory join a match across it: the
        # corpora test checks the verdicts stay the package's own).
        if not self._list.search(user_agent):
            return False
        agent = self._exclusions.sub("", user_agent.strip())
        return bool(agent) and self._list.search(agent)
