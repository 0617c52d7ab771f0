"""Bootstrap intervals with known answers: one rate, a paired difference, and their place in `metrics()`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inboxrl.evaluation.intervals import paired_difference, rate_interval
from inboxrl.evaluation.metrics import INTERVAL_RATES, metrics
from inboxrl.evaluation.table import markdown_table
from inboxrl.trajectory import Rubric, Trajectory

RIGHT = Rubric(answer_correct=True, attempted_answer=True)
WRONG = Rubric(attempted_answer=True)
IDK = Rubric(said_dont_know=True)


def hits(k: int, n: int) -> list[bool]:
    return [True] * k + [False] * (n - k)


def literal_bootstrap(x: np.ndarray, resamples: int = 10_000, seed: int = 1) -> tuple[float, float]:
    """The textbook bootstrap: draw n indices with replacement, take the mean, 2.5th and 97.5th percentiles."""
    idx = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))
    lo, hi = np.percentile(x[idx].mean(axis=1), [2.5, 97.5])
    return float(lo), float(hi)


def test_eleven_of_53_contains_the_rate_and_is_wide_and_reproducible():
    lo, hi = rate_interval(hits(11, 53))
    assert lo < 11 / 53 < hi
    assert 0.08 <= lo and hi <= 0.35
    assert hi - lo > 0.15  # about +-11 points at n=53: the width is the finding
    assert rate_interval(hits(11, 53)) == (lo, hi)  # fixed seed: the same figures every time
    assert rate_interval(hits(11, 53), seed=0) == (lo, hi)


def test_interval_narrows_as_n_grows():
    widths = [hi - lo for lo, hi in (rate_interval(hits(11 * m, 53 * m)) for m in (1, 4, 16))]
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < widths[0] / 3  # ~1/sqrt(n): 16x the episodes, a quarter of the width


def test_all_or_nothing_and_empty():
    assert rate_interval(hits(0, 42)) == (0.0, 0.0)
    assert rate_interval(hits(42, 42)) == (1.0, 1.0)
    lo, hi = rate_interval([])
    assert math.isnan(lo) and math.isnan(hi)


def test_binomial_draws_match_resampling_episodes():
    """The shortcut (a resample's hit count is Binomial(n, k/n)) gives the textbook bootstrap's interval."""
    lo, hi = rate_interval(hits(11, 53))
    llo, lhi = literal_bootstrap(np.array(hits(11, 53), dtype=float))
    assert abs(lo - llo) <= 1.5 / 53 and abs(hi - lhi) <= 1.5 / 53


def test_paired_difference_of_a_run_with_itself_is_exactly_zero():
    run = {f"q{i}": i % 5 == 0 for i in range(53)}
    d = paired_difference(run, run)
    assert (d.n, d.diff, d.lo, d.hi) == (53, 0.0, 0.0, 0.0)
    assert d.before == d.after == pytest.approx(11 / 53)


def test_ten_of_forty_flipping_wrong_to_right_excludes_zero():
    before = {f"q{i}": i < 10 for i in range(40)}  # 10 right
    after = {f"q{i}": i < 20 for i in range(40)}  # the same 10 and 10 more
    d = paired_difference(before, after)
    assert d.diff == pytest.approx(0.25)
    assert 0 < d.lo < 0.25 < d.hi


def test_pairing_resolves_what_two_separate_intervals_cannot():
    """6 of 40 gained, none lost: the rates' own intervals overlap, the paired difference's excludes 0."""
    before = {f"q{i}": i < 10 for i in range(40)}
    after = {f"q{i}": i < 16 for i in range(40)}
    (_, b_hi), (a_lo, _) = rate_interval(list(before.values())), rate_interval(list(after.values()))
    assert a_lo < b_hi  # unpaired, the two intervals overlap
    assert paired_difference(before, after).lo > 0


def test_flips_that_cancel_give_an_interval_around_zero():
    before = {f"q{i}": i < 10 for i in range(40)}
    after = {f"q{i}": 5 <= i < 15 for i in range(40)}  # 5 lost, 5 gained
    d = paired_difference(before, after)
    assert d.diff == 0 and d.lo < 0 < d.hi


def test_multinomial_draws_match_resampling_question_ids():
    before = {f"q{i}": i < 10 for i in range(40)}
    after = {f"q{i}": 3 <= i < 16 for i in range(40)}  # 3 lost, 6 gained
    d = paired_difference(before, after)
    diffs = np.array([after[q] - before[q] for q in before], dtype=float)
    llo, lhi = literal_bootstrap(diffs)
    assert abs(d.lo - llo) <= 1.5 / 40 and abs(d.hi - lhi) <= 1.5 / 40


def test_questions_on_one_side_only_are_listed_and_left_out():
    before = {"a": True, "b": False, "c": True}
    after = {"b": True, "c": True, "d": False}
    d = paired_difference(before, after)
    assert (d.n, d.only_before, d.only_after) == (2, ["a"], ["d"])
    assert d.before == 0.5 and d.after == 1.0 and d.diff == 0.5
    empty = paired_difference({"a": True}, {"b": True})
    assert empty.n == 0 and math.isnan(empty.lo)


def traj(qid: str, rubric: Rubric | None) -> Trajectory:
    return Trajectory(question_id=qid, question="?", inbox_address="a@b.c", query_date="2001-01-01", model="m",
                      rubric=rubric, reward=0.0 if rubric else None, stop_reason="answered")


def test_metrics_carry_the_intervals_of_the_same_hits():
    ts = ([traj(f"r{i}", RIGHT) for i in range(11)] + [traj(f"w{i}", WRONG) for i in range(19)]
          + [traj(f"k{i}", IDK) for i in range(23)] + [traj("u", None)])  # the unscored one is in no denominator
    m = metrics(ts)
    assert m["n_scored"] == 53 and m["accuracy"] == pytest.approx(11 / 53)
    assert (m["accuracy_ci95_lo"], m["accuracy_ci95_hi"]) == rate_interval(hits(11, 53))
    assert (m["hallucination_rate_ci95_lo"], m["hallucination_rate_ci95_hi"]) == rate_interval(hits(19, 53))
    assert (m["dont_know_rate_ci95_lo"], m["dont_know_rate_ci95_hi"]) == rate_interval(hits(23, 53))
    row = markdown_table({"m": m}).splitlines()[2]
    lo, hi = rate_interval(hits(11, 53))
    assert f"| 20.8% [{100 * lo:.1f}–{100 * hi:.1f}] |" in row


def test_metrics_stay_scalar_but_for_the_documented_dicts():
    """Training validation logs every scalar through `Trainer.log`; metrics.json keeps the two count dicts."""
    for ts in ([traj("1", RIGHT), traj("2", WRONG), traj("3", None)], [], [traj("1", None)]):
        m = metrics(ts)
        dicts = {k for k, v in m.items() if isinstance(v, dict)}
        assert dicts == {"format_errors", "stop_reasons"}
        assert all(isinstance(v, (int, float)) for k, v in m.items() if k not in dicts), m
        for k in INTERVAL_RATES:
            assert f"{k}_ci95_lo" in m and f"{k}_ci95_hi" in m
    empty = metrics([traj("1", None)])
    assert math.isnan(empty["accuracy_ci95_lo"])
