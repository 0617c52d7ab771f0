"""Describing a question file, so that generated sets can be compared with ART-E's own.

The numbers are the ones that tell a realistic set from a junk one: questions that are short and in the first
person, answers that are short facts, a realism score that is actually spread out, one or two sources per question,
and no single inbox swamping the set.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from typing import Any

from inboxrl.questions.schema import Question

_FIRST_PERSON = re.compile(r"\b(i|me|my|mine|myself|i'm|i've|i'd|i'll|im)\b", re.IGNORECASE)
REALISM_BINS = [(0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0001)]


def is_first_person(question: str) -> bool:
    return bool(_FIRST_PERSON.search(question.replace("\u2019", "'")))


def _words(s: str) -> int:
    return len(s.split())


def _quantile(xs: list[float], q: float) -> float:
    """Nearest-rank quantile: a value that occurs in the data, stable for tiny files."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _dist(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"mean": None, "p10": None, "median": None, "p90": None, "max": None}
    return {
        "mean": round(statistics.fmean(xs), 3),
        "p10": _quantile(xs, 0.1),
        "median": _quantile(xs, 0.5),
        "p90": _quantile(xs, 0.9),
        "max": max(xs),
    }


def question_stats(questions: list[Question]) -> dict[str, Any]:
    n = len(questions)
    realism = [q.how_realistic for q in questions if q.how_realistic is not None]
    bins = {f"{lo:.1f}-{min(hi, 1.0):.1f}": 0 for lo, hi in REALISM_BINS}
    for r in realism:
        for (lo, hi), key in zip(REALISM_BINS, bins):
            if lo <= r < hi:
                bins[key] += 1
                break
    sources = Counter(len(q.message_ids) for q in questions)
    per_inbox = Counter(q.inbox_address for q in questions)
    counts = list(per_inbox.values())
    return {
        "questions": n,
        "question_words": _dist([_words(q.question) for q in questions]),
        "answer_words": _dist([_words(q.answer) for q in questions]),
        "first_person_rate": round(sum(is_first_person(q.question) for q in questions) / n, 4) if n else None,
        "question_mark_rate": round(sum(q.question.rstrip().endswith("?") for q in questions) / n, 4)
        if n else None,
        "how_realistic": {**_dist(realism), "missing": n - len(realism), "histogram": bins},
        "sources_per_question": {
            **_dist([float(len(q.message_ids)) for q in questions]),
            "counts": {str(k) if k < 5 else "5+": 0 for k in range(6)} | _source_counts(sources),
        },
        "questions_per_inbox": {
            "inboxes": len(per_inbox),
            **_dist([float(c) for c in counts]),
            "min": min(counts) if counts else None,
            "top": dict(per_inbox.most_common(5)),
        },
        "query_dates": {
            "first": min((q.query_date for q in questions), default=None),
            "last": max((q.query_date for q in questions), default=None),
        },
    }


def _source_counts(c: Counter[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in c.items():
        key = str(k) if k < 5 else "5+"
        out[key] = out.get(key, 0) + v
    return out
