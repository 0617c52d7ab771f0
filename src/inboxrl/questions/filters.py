"""The realism filter, near-duplicate removal and question dates.

ART-E's generator scored realism and the pipeline never used the score; here the score gates a question. Duplicates
are judged on normalised question tokens (no hub model needed, so it runs anywhere): "When is my meeting with
John?" and "when's the meeting with John" collide, while questions about different facts do not.
"""

from __future__ import annotations

import hashlib
import random
import re
from datetime import date, timedelta

_STOP = frozenset(
    "a an the is are was were be been do does did of to in on at for from with about by and or my me i we our "
    "us what when where who whom which how why that this these those it its s".split()
)


def realistic_enough(score: float, threshold: float) -> bool:
    return score >= threshold


def question_tokens(text: str) -> frozenset[str]:
    text = re.sub(r"['\u2019]s\b", "", text.lower())  # "when's", "John's" -> "when", "john"
    words = re.findall(r"[a-z0-9]+", text.replace("'", "").replace("\u2019", ""))
    content = frozenset(w for w in words if w not in _STOP)
    return content or frozenset(words)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class NearDuplicateIndex:
    """Questions kept so far; `add` refuses one too similar to any of them (first one wins)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._seen: list[frozenset[str]] = []
        self._by_token: dict[str, list[int]] = {}

    def is_duplicate(self, text: str) -> bool:
        toks = question_tokens(text)
        candidates: set[int] = set()
        for t in toks:
            candidates.update(self._by_token.get(t, ()))
        if not toks and self._seen:
            candidates = set(range(len(self._seen)))
        return any(jaccard(toks, self._seen[i]) >= self.threshold for i in candidates)

    def add(self, text: str) -> bool:
        if self.is_duplicate(text):
            return False
        toks = question_tokens(text)
        idx = len(self._seen)
        self._seen.append(toks)
        for t in toks:
            self._by_token.setdefault(t, []).append(idx)
        return True


def stable_int(*parts: object) -> int:
    """A seed from content, so a question's date and id do not depend on processing order or concurrency."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big")


def query_date(latest_source_day: str, seed: int, key: str, min_days: int = 1, max_days: int = 30) -> str:
    """Latest source mail's date plus 1..30 seeded days: the agent then sees the sources (mail sent before the
    date) but not what came long after."""
    d = date.fromisoformat(latest_source_day[:10])
    rng = random.Random(stable_int(seed, key))
    return (d + timedelta(days=rng.randint(min_days, max_days))).isoformat()
