"""A paired before/after comparison of two sets of episodes on the same questions (`inboxrl compare`).

Each side is an eval output directory (its trajectories.jsonl) or a trajectories JSONL file (e.g. a training run's
validation/step-N.jsonl), reduced to one model's last episode per question. Questions are paired by id; only the
questions scored on both sides count, and the others are listed. Rates use `metrics.RATES`, the definitions of
`inboxrl eval`, and each difference gets a paired bootstrap interval (`intervals.paired_difference`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inboxrl.evaluation.intervals import RESAMPLES, SEED, PairedDifference, paired_difference
from inboxrl.evaluation.metrics import RATES, latest_per_pair
from inboxrl.trajectory import EVAL_TRAJECTORIES, Rubric, Trajectory, eval_trajectories, read_jsonl

# (metrics key, label) of the compared rates, in the order they are printed.
COMPARED: tuple[tuple[str, str], ...] = (
    ("accuracy", "accuracy"),
    ("hallucination_rate", "wrong answers"),
    ("dont_know_rate", "I don't know"),
    ("out_of_turns_rate", "out of turns"),
    ("format_error_rate", "format errors"),
)
OUTCOMES = ("right", "wrong", "dont_know", "no_answer")


class CompareError(ValueError):
    """A side cannot be read or its model is ambiguous; the message says what to pass instead."""


def outcome(r: Rubric) -> str:
    """right / wrong (an answer, judged) / dont_know / no_answer (out of turns, a format error, no final answer)."""
    if RATES["accuracy"](r):
        return "right"
    if RATES["hallucination_rate"](r):
        return "wrong"
    if RATES["dont_know_rate"](r):
        return "dont_know"
    return "no_answer"


@dataclass
class Side:
    path: Path
    model: str
    episodes: dict[str, Trajectory]  # question id -> the model's last episode of that question
    repeated: int = 0  # episodes dropped because a later one of the same question followed


def trajectories_file(path: Path) -> Path:
    if path.is_dir():
        f = eval_trajectories(path)
        if not f.is_file():
            raise CompareError(f"{path} is a directory without {EVAL_TRAJECTORIES} (pass an eval output directory or a "
                               f"trajectories JSONL file)")
        return f
    if not path.is_file():
        raise CompareError(f"{path}: no such file or directory")
    return path


def load_side(path: Path, model: str | None = None) -> Side:
    """One model's episodes from a run directory or file; `model` is required when the file holds several."""
    f = trajectories_file(path)
    try:
        trajs = list(read_jsonl(f))
    except (OSError, UnicodeDecodeError) as e:
        raise CompareError(f"{f}: cannot read ({e})") from e
    if not trajs:
        raise CompareError(f"{f}: no trajectories in it")
    models = list(dict.fromkeys(t.model for t in trajs))
    if model is None:
        if len(models) > 1:
            raise CompareError(f"{f} holds {len(models)} models; choose one with --model (or --before-model / "
                               f"--after-model): {', '.join(models)}")
        model = models[0]
    elif model not in models:
        raise CompareError(f"{f} has no episodes of model {model!r}; it has: {', '.join(models)}")
    mine = [t for t in trajs if t.model == model]
    last = latest_per_pair(mine)
    return Side(path=path, model=model, episodes={t.question_id: t for t in last}, repeated=len(mine) - len(last))


@dataclass
class Comparison:
    before: Side
    after: Side
    paired: list[str]  # question ids scored on both sides, the denominator of every rate below
    rates: dict[str, PairedDifference]
    transitions: dict[str, dict[str, int]]  # before outcome -> after outcome -> questions
    changed: list[tuple[str, str, str]]  # (question id, before outcome, after outcome), outcome changed
    only_before: list[str] = field(default_factory=list)  # question ids missing from the after side
    only_after: list[str] = field(default_factory=list)
    unscored: list[str] = field(default_factory=list)  # on both sides, but without a rubric on one of them
    resamples: int = RESAMPLES
    seed: int = SEED

    def to_json(self) -> dict[str, Any]:
        def side(s: Side) -> dict[str, Any]:
            return {"path": str(s.path), "model": s.model, "episodes": len(s.episodes), "repeated": s.repeated}

        return {
            "before": side(self.before), "after": side(self.after),
            "n_paired": len(self.paired),
            "excluded": {"only_before": self.only_before, "only_after": self.only_after, "unscored": self.unscored},
            "rates": {k: {"before": d.before, "after": d.after, "diff": d.diff, "diff_ci95_lo": d.lo,
                          "diff_ci95_hi": d.hi} for k, d in self.rates.items()},
            "transitions": self.transitions,
            "changed": [{"question_id": q, "before": b, "after": a} for q, b, a in self.changed],
            "bootstrap": {"method": "paired percentile", "resamples": self.resamples, "seed": self.seed},
        }


def compare(before: Side, after: Side, *, resamples: int = RESAMPLES, seed: int = SEED) -> Comparison:
    b, a = before.episodes, after.episodes
    common = [q for q in b if q in a]
    rb: dict[str, Rubric] = {}
    ra: dict[str, Rubric] = {}
    for q in common:
        x, y = b[q].rubric, a[q].rubric
        if x is not None and y is not None:
            rb[q], ra[q] = x, y
    paired = list(rb)
    rates = {key: paired_difference({q: RATES[key](r) for q, r in rb.items()},
                                    {q: RATES[key](r) for q, r in ra.items()}, resamples=resamples, seed=seed)
             for key, _ in COMPARED}
    moves: Counter[tuple[str, str]] = Counter()
    changed: list[tuple[str, str, str]] = []
    for q in paired:
        ob, oa = outcome(rb[q]), outcome(ra[q])
        moves[(ob, oa)] += 1
        if ob != oa:
            changed.append((q, ob, oa))
    return Comparison(
        before=before, after=after, paired=paired, rates=rates,
        transitions={ob: {oa: moves[(ob, oa)] for oa in OUTCOMES} for ob in OUTCOMES},
        changed=sorted(changed),
        only_before=sorted(q for q in b if q not in a), only_after=sorted(q for q in a if q not in b),
        unscored=sorted(q for q in common if q not in rb), resamples=resamples, seed=seed,
    )
