"""Train/test splits that do not leak.

Split by inbox: a test inbox is never seen in training, so the test measures generalisation to a new person's mail
(questions from one inbox share people, topics and phrasing). Split by time: every test question is dated after
every training one, for when there is a single inbox.
"""

from __future__ import annotations

import random
from typing import Literal

from inboxrl.questions.schema import Question


class SplitError(ValueError):
    """A split that cannot be made (one inbox split by inbox, an unknown test inbox)."""


def choose_test_inboxes(inboxes: list[str], test_fraction: float, seed: int,
                        explicit: list[str] | None = None) -> list[str]:
    uniq = sorted(set(inboxes))
    if explicit:
        unknown = [a for a in explicit if a not in uniq]
        if unknown:
            raise SplitError(f"test inbox not among the inboxes: {', '.join(unknown)}")
        if set(explicit) == set(uniq):
            raise SplitError("every inbox is a test inbox; leave at least one for training")
        return sorted(set(explicit))
    if len(uniq) < 2:
        raise SplitError("a split by inbox needs at least two inboxes (use --split time for one inbox)")
    n_test = min(max(1, round(test_fraction * len(uniq))), len(uniq) - 1)
    rng = random.Random(f"split:{seed}")
    return sorted(rng.sample(uniq, n_test))


def split_questions(
    questions: list[Question],
    how: Literal["inbox", "time"],
    test_fraction: float = 0.2,
    seed: int = 0,
    test_inboxes: list[str] | None = None,
    inboxes: list[str] | None = None,
) -> dict[str, list[Question]]:
    """`inboxes`: the inboxes the questions were generated from. The test inboxes are drawn from these, so the
    choice depends only on the inbox list and the seed, not on how many questions each inbox happened to yield."""
    if how == "inbox":
        universe = list(inboxes) if inboxes else [q.inbox_address for q in questions]
        test = set(choose_test_inboxes(universe, test_fraction, seed, test_inboxes))
        return {
            "train": [q for q in questions if q.inbox_address not in test],
            "test": [q for q in questions if q.inbox_address in test],
        }
    if how == "time":
        if len(questions) < 2:
            raise SplitError("a time split needs at least two questions")
        dates = sorted(q.query_date for q in questions)
        cutoff = dates[min(len(dates) - 1, max(1, round(len(dates) * (1 - test_fraction))))]
        if cutoff == dates[0]:  # every question on one day: nothing can be strictly later
            raise SplitError("all questions share one date; a time split is impossible")
        return {
            "train": [q for q in questions if q.query_date < cutoff],
            "test": [q for q in questions if q.query_date >= cutoff],
        }
    raise SplitError(f"unknown split: {how}")
