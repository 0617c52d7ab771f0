"""Metrics of a set of scored trajectories. Pure: no I/O, so training validation reuses it as is.

Every rate is over `n_scored` (episodes with a rubric), not over answered episodes: a model that answers rarely but
well must not look accurate. The keys (one dict per model, as in `metrics.json` under "models"):

| key | meaning |
|---|---|
| n, n_scored | episodes given; episodes with a rubric (the denominators below) |
| accuracy | judged correct / n_scored |
| hallucination_rate | attempted an answer and was wrong / n_scored |
| dont_know_rate | answered "I don't know" / n_scored |
| <rate>_ci95_lo, <rate>_ci95_hi | for accuracy, hallucination_rate, dont_know_rate: 95% percentile-bootstrap interval over the scored episodes (`evaluation.intervals`, fixed seed); NaN with no scored episode |
| out_of_turns_rate | ran out of turns (or context) / n_scored |
| format_error_rate | had at least one format error (any kind, repeated-call refusals included) / n_scored |
| ended_by_format_error_rate | stopped by a format error ("end" mode) / n_scored |
| format_errors | total count per `FormatErrorKind` value |
| sources_correct_rate | cited only golden sources (and at least one) / n_scored |
| found_source_rate, read_source_rate | a golden source appeared in search results / was read / n_scored |
| avg_turns | mean model calls per episode |
| avg_tool_calls | mean executed tool calls per episode |
| latency_p50_s, latency_p95_s | episode wall time (with batching: time from the episode's first request to its end) |
| avg_prompt_tokens, avg_completion_tokens, avg_tokens | per episode, summed over turns |
| cost_per_1000_usd | mean estimated cost x 1,000; unknown (NaN, null in JSON) when a model's price is unknown |
| mean_reward | mean reward of scored episodes |
| stop_reasons | count per stop reason |
| backend_errors | episodes stopped by a backend error |
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from inboxrl.evaluation.intervals import rate_interval
from inboxrl.trajectory import Rubric, Trajectory

# What each episode rate counts, from the rubric alone: `metrics` and the paired `compare` share these definitions.
RATES: dict[str, Callable[[Rubric], bool]] = {
    "accuracy": lambda r: r.attempted_answer and r.answer_correct,
    "hallucination_rate": lambda r: r.attempted_answer and not r.answer_correct,
    "dont_know_rate": lambda r: r.said_dont_know,
    "out_of_turns_rate": lambda r: r.ran_out_of_turns,
    "format_error_rate": lambda r: r.total_format_errors > 0,
    "ended_by_format_error_rate": lambda r: r.ended_by_format_error,
    "sources_correct_rate": lambda r: r.sources_correct,
    "found_source_rate": lambda r: r.found_source_in_search,
    "read_source_rate": lambda r: r.read_source,
}
# The rates that get a 95% interval in `metrics` (the before/after figures).
INTERVAL_RATES = ("accuracy", "hallucination_rate", "dont_know_rate")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100, numpy's default method); NaN for no values."""
    return float(np.percentile(values, q)) if len(values) else math.nan


def _mean(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if xs else math.nan


def metrics(trajs: Iterable[Trajectory]) -> dict[str, Any]:
    """Metrics of one model's episodes (see the module docstring for every key)."""
    ts = list(trajs)
    scored = [t for t in ts if t.rubric is not None]
    rubrics = [t.rubric for t in scored if t.rubric is not None]
    ns = len(rubrics)
    out: dict[str, Any] = {"n": len(ts), "n_scored": ns}
    for k, pred in RATES.items():
        hits = [bool(pred(r)) for r in rubrics]
        out[k] = sum(hits) / ns if ns else math.nan
        if k in INTERVAL_RATES:
            out[f"{k}_ci95_lo"], out[f"{k}_ci95_hi"] = rate_interval(hits)

    fe: Counter[str] = Counter()
    for r in rubrics:
        fe.update({k: v for k, v in r.format_errors.items() if v})
    rewards = [t.reward for t in scored if t.reward is not None]
    return {
        **out,
        "format_errors": dict(sorted(fe.items())),
        "avg_turns": _mean([len(t.turns) for t in ts]),
        "avg_tool_calls": _mean([len(t.tool_events) for t in ts]),
        "latency_p50_s": percentile([t.wall_time_s for t in ts], 50),
        "latency_p95_s": percentile([t.wall_time_s for t in ts], 95),
        "avg_prompt_tokens": _mean([t.prompt_tokens for t in ts]),
        "avg_completion_tokens": _mean([t.completion_tokens for t in ts]),
        "avg_tokens": _mean([t.prompt_tokens + t.completion_tokens for t in ts]),
        "cost_per_1000_usd": _cost_per_1000(ts),
        "mean_reward": _mean(rewards),
        "stop_reasons": dict(sorted(Counter(t.stop_reason or "none" for t in ts).items())),
        "backend_errors": sum(1 for t in ts if t.stop_reason == "backend_error"),
    }


def _cost_per_1000(ts: Sequence[Trajectory]) -> float:
    """Unknown (NaN) if any episode's cost is unknown: a partial sum would understate the cost."""
    costs = [t.cost_usd for t in ts]
    if not costs or any(c is None for c in costs):
        return math.nan
    return _mean([float(c) for c in costs if c is not None]) * 1000


def metrics_by_model(trajs: Iterable[Trajectory]) -> dict[str, dict[str, Any]]:
    """`metrics` per `Trajectory.model`, in order of first appearance."""
    groups: dict[str, list[Trajectory]] = {}
    for t in trajs:
        groups.setdefault(t.model, []).append(t)
    return {m: metrics(ts) for m, ts in groups.items()}


def latest_per_pair(trajs: Iterable[Trajectory]) -> list[Trajectory]:
    """One trajectory per (model, question): the last one written wins (a resumed run may have retried it)."""
    last: dict[tuple[str, str], Trajectory] = {}
    for t in trajs:
        last[(t.model, t.question_id)] = t
    return list(last.values())


def json_safe(obj: Any) -> Any:
    """NaN is not JSON: it becomes null, so metrics.json stays readable by any parser."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj
