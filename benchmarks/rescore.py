"""Re-scores saved episodes with the current judge and reward weights, and counts what the agent did in them.

    python benchmarks/rescore.py runs/eval-demo/qwen-prompted/trajectories.jsonl \
        runs/cpu-demo/validation/step-000007.jsonl --db data/enron.db --max-turns 5
    python benchmarks/rescore.py runs/cpu-demo/rollouts/*.jsonl --db data/enron.db --max-turns 5 --pool

Why: a reward change (docs/reward.md) must be checked against real episodes, not only against the property test.
This reads trajectory files written by `inboxrl eval`, by training validation or by rollouts. For each file it
prints the mean reward as stored and as re-scored now, the accuracy, and the behaviour counts used in
docs/benchmarks.md: episodes that searched, found the source, and had an answer refused before any search, with
the total number of refusals, each reward tier's count and mean reward (the break-even arithmetic of the
third training run), and each tier split by what the episode saw of the source (read it; found it in a search but
read another mail; never found it): where wrong answers come from. `--pool` scores all the files as one set; `--changes` adds, for each file and the next, how many
questions moved from one tier to another (what GRPO changed between two validations); `--only-questions-of` compares two runs on
the questions they share (the refusal ablation: a partial run against the same questions of a full one). Nothing
is written.

    python benchmarks/rescore.py runs/eval-demo/qwen-prompted-v1-partial/trajectories.jsonl \
        runs/eval-demo/qwen-prompted/trajectories.jsonl --max-turns 5 \
        --only-questions-of runs/eval-demo/qwen-prompted-v1-partial/trajectories.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path

from inboxrl.judge.registry import load_judge
from inboxrl.scoring.reward import RewardConfig, tier
from inboxrl.scoring.score import score_trajectories
from inboxrl.trajectory import ANSWER_BEFORE_SEARCH, Trajectory


def load(path: Path) -> list[Trajectory]:
    with path.open(encoding="utf-8") as f:
        return [Trajectory.model_validate(json.loads(line)) for line in f if line.strip()]


def report(name: str, trajs: list[Trajectory], judge: object, db: str, max_turns: int,
           reward_cfg: RewardConfig) -> dict:
    stored = [t.reward for t in trajs if t.reward is not None]
    score_trajectories(trajs, judge, reward_cfg, db=db, max_turns=max_turns)  # type: ignore[arg-type]
    rub = [t.rubric for t in trajs if t.rubric is not None]
    refusals = [sum(e.error == ANSWER_BEFORE_SEARCH for e in t.tool_events) for t in trajs]
    by_tier: dict[str, list[float]] = {}
    by_evidence: dict[str, dict[str, int]] = {}
    for t in trajs:
        if t.rubric is not None and t.reward is not None:
            by_tier.setdefault(tier(t.rubric), []).append(t.reward)
            seen = ("read_source" if t.rubric.read_source else
                    "found_read_other" if t.rubric.found_source_in_search else "not_found")
            row = by_evidence.setdefault(tier(t.rubric), {})
            row[seen] = row.get(seen, 0) + 1
    return {
        "file": name,
        "n": len(trajs),
        "mean_reward_stored": round(statistics.fmean(stored), 3) if stored else None,
        "mean_reward_now": round(statistics.fmean(t.reward for t in trajs if t.reward is not None), 3),
        "accuracy": round(statistics.fmean(r.answer_correct for r in rub), 3),
        "stop_reasons": {s: sum(t.stop_reason == s for t in trajs) for s in sorted({str(t.stop_reason) for t in trajs})},
        "searched": sum(any(e.name == "search_inbox" and e.ok for e in t.tool_events) for t in trajs),
        "found_source": sum(r.found_source_in_search for r in rub),
        "episodes_with_refused_answer": sum(n > 0 for n in refusals),
        "refused_answers": sum(refusals),
        "tiers": {k: {"n": len(v), "mean_reward": round(statistics.fmean(v), 3)} for k, v in sorted(by_tier.items())},
        "tiers_by_evidence": {k: dict(sorted(v.items())) for k, v in sorted(by_evidence.items())},
    }


def changes(a: tuple[str, list[Trajectory]], b: tuple[str, list[Trajectory]]) -> dict:
    """Per question, how the tier moved from one file to the next (both already re-scored): what GRPO changed
    between two validations, which the per-file counts alone cannot tell."""
    before = {t.question_id: t for t in a[1]}
    moved: dict[str, int] = {}
    text_changed = 0
    for t in b[1]:
        old = before.get(t.question_id)
        if old is None or old.rubric is None or t.rubric is None:
            continue
        text_changed += (old.final_answer or "").strip() != (t.final_answer or "").strip()
        if tier(old.rubric) != tier(t.rubric):
            key = f"{tier(old.rubric)}->{tier(t.rubric)}"
            moved[key] = moved.get(key, 0) + 1
    return {"from": a[0], "to": b[0], "tier_changes": dict(sorted(moved.items())), "answers_changed": text_changed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", type=Path, nargs="+", help="trajectory JSONL files")
    ap.add_argument("--db", default="data/enron.db", help="the store the episodes ran on (resolves source aliases)")
    ap.add_argument("--judge", default="lexical")
    ap.add_argument("--max-turns", type=int, default=None, help="the turn budget the episodes ran with")
    ap.add_argument("--reward-config", type=Path, default=None, help="reward weights (default: RewardConfig())")
    ap.add_argument("--pool", action="store_true", help="score all files as one set")
    ap.add_argument("--only-questions-of", type=Path, default=None,
                    help="keep only episodes whose question is in this trajectory file (a like-for-like subset)")
    ap.add_argument("--changes", action="store_true",
                    help="also print, for each file and the next, the questions whose tier moved between them")
    args = ap.parse_args()
    try:
        judge = load_judge(args.judge)
        reward_cfg = RewardConfig.load(args.reward_config) if args.reward_config else RewardConfig()
        keep = {t.question_id for t in load(args.only_questions_of)} if args.only_questions_of else None
        groups = ([("+".join(p.name for p in args.files), [t for p in args.files for t in load(p)])] if args.pool
                  else [(str(p), load(p)) for p in args.files])
    except (OSError, ValueError) as e:
        sys.exit(f"error: {str(e).splitlines()[0] if str(e) else e}")
    if keep is not None:
        groups = [(name, [t for t in trajs if t.question_id in keep]) for name, trajs in groups]
    for name, trajs in groups:
        print(json.dumps(report(name, trajs, judge, args.db, args.max_turns, reward_cfg)))
    if args.changes:
        for a, b in itertools.pairwise(groups):
            print(json.dumps(changes(a, b)))


if __name__ == "__main__":
    main()
