"""95% intervals on rates of episodes: a percentile bootstrap of one rate, and a paired bootstrap of a difference.

Why percentile bootstrap: one method for a rate and for a paired difference, no normal approximation; with the 42
to 53 questions of a test split a rate near 20% gets an interval about 20 points wide, and showing that is the point.
Fixed seed, so the same episodes always give the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

RESAMPLES = 10_000
SEED = 0
LEVEL = 0.95


def _percentiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return float(lo), float(hi)


def rate_interval(hits: Sequence[bool], *, resamples: int = RESAMPLES, seed: int = SEED,
                  level: float = LEVEL) -> tuple[float, float]:
    """(lo, hi) of the rate of True in `hits` over bootstrap resamples of the episodes; (nan, nan) for none.
    0 of n gives (0, 0): a resample cannot hold an event that never happened (read it as "none in n")."""
    n = len(hits)
    if n == 0:
        return math.nan, math.nan
    k = int(sum(bool(h) for h in hits))
    # The number of hits in a resample of n episodes is Binomial(n, k/n): the same draws in O(resamples) memory.
    counts = np.random.default_rng(seed).binomial(n, k / n, size=resamples)
    return _percentiles(counts / n, level)


@dataclass
class PairedDifference:
    """after - before of a rate over the questions both sides have, with its paired bootstrap interval."""

    n: int  # questions on both sides (the denominator)
    before: float
    after: float
    diff: float
    lo: float
    hi: float
    only_before: list[str] = field(default_factory=list)  # question ids excluded: missing on the other side
    only_after: list[str] = field(default_factory=list)


def paired_difference(before: Mapping[str, bool], after: Mapping[str, bool], *, resamples: int = RESAMPLES,
                      seed: int = SEED, level: float = LEVEL) -> PairedDifference:
    """Paired by question id: each resample draws question ids with replacement and takes both sides' outcome for
    each, so a question that is hard for both models moves both rates together and cancels in the difference."""
    common = [q for q in before if q in after]
    only_before = sorted(q for q in before if q not in after)
    only_after = sorted(q for q in after if q not in before)
    n = len(common)
    if n == 0:
        return PairedDifference(0, math.nan, math.nan, math.nan, math.nan, math.nan, only_before, only_after)
    b = np.array([bool(before[q]) for q in common])
    a = np.array([bool(after[q]) for q in common])
    gained, lost = int(np.sum(a & ~b)), int(np.sum(b & ~a))
    # The difference of a resample depends only on how many gained (0->1) and lost (1->0) questions it draws, which
    # is Multinomial(n, shares): the same draws as resampling ids, in O(resamples) memory.
    draws = np.random.default_rng(seed).multinomial(n, [gained / n, lost / n, (n - gained - lost) / n],
                                                    size=resamples)
    lo, hi = _percentiles((draws[:, 0] - draws[:, 1]) / n, level)
    return PairedDifference(n, float(b.mean()), float(a.mean()), (gained - lost) / n, lo, hi, only_before,
                            only_after)
