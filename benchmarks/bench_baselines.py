"""Prompted baselines: the bundled models as agents on grounded Kaminski questions, judged, with the metrics table.

    python benchmarks/bench_baselines.py --db data/enron.db --n 50 --out runs/baselines

The question selection is fixed and seeded: the in-scope grounded questions of the shared kaminski-train file (every
source mail in the store, in the inbox, before the question's date), sorted by id, then `random.Random(seed)
.sample(n)`. The chosen ids are written to OUT/selection.json. The run is resumable (it is `inboxrl eval` underneath):
re-running with the same --out only runs what is missing. Generation speed is measured per model on the episodes
run in this invocation: sampled tokens / wall time of that model's phase (batching included, prefill included).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INBOXRL_SHARED", REPO.parent / "shared"))
DEFAULT_QUESTIONS = SHARED / "data" / "art-e-questions" / "kaminski-train.jsonl"
DEFAULT_MODELS = ["local/qwen2.5-coder-0.5b", "local/smollm2-135m"]


def select(db: Path, questions: Path, n: int, seed: int) -> list:
    from inboxrl.questions.grounding import grounded_questions
    from inboxrl.questions.schema import load_questions

    qs = load_questions(questions)
    grounded = sorted(grounded_questions(db, qs, in_scope=True), key=lambda q: int(q.id) if q.id.isdigit() else q.id)
    if len(grounded) < n:
        print(f"only {len(grounded)} grounded questions; using all of them", file=sys.stderr)
        return grounded
    return random.Random(seed).sample(grounded, n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, default=REPO / "data" / "enron.db")
    ap.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", action="append", dest="models", help="repeatable; default: both bundled models")
    ap.add_argument("--judge", default="lexical")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "baselines")
    ap.add_argument("--batch", type=int, default=8, help="episodes generated together (local batch size)")
    ap.add_argument("--config", type=Path, help="agent config file; default: AgentConfig()")
    ap.add_argument("--max-turns", type=int)
    ap.add_argument("--threads", type=int, help="torch threads for the local models")
    ap.add_argument("--log-events", action="store_true", help="print every search/read/error as it happens")
    ap.add_argument("--combine", type=Path, nargs="+", help="only print one table from these run directories")
    ap.add_argument("--rejudge", help="only re-score the trajectories in --combine/--out dirs with this judge "
                                      "spec (e.g. an LLM judge) and print that table")
    args = ap.parse_args()
    if args.combine or args.rejudge:
        return report(args.combine or [args.out], args.rejudge)

    from rich.console import Console

    from inboxrl.agent.config import AgentConfig
    from inboxrl.evaluation.run import TRAJECTORIES, evaluate
    from inboxrl.evaluation.table import markdown_table
    from inboxrl.judge.registry import load_judge
    from inboxrl.trajectory import read_jsonl

    console = Console(stderr=True)
    cfg = AgentConfig.load(args.config) if args.config else AgentConfig()
    if args.max_turns:
        cfg = cfg.model_copy(update={"max_turns": args.max_turns})
    qs = select(args.db, args.questions, args.n, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "selection.json").write_text(json.dumps(
        {"seed": args.seed, "n": len(qs), "questions_file": str(args.questions), "db": str(args.db),
         "ids": [q.id for q in qs]}, indent=2))
    console.print(f"{len(qs)} grounded questions (seed {args.seed}) → {args.out}")
    judge = load_judge(args.judge)
    speed: dict[str, dict] = {}
    models = args.models or DEFAULT_MODELS
    metrics = {}
    for spec in models:
        opts = {"threads": args.threads} if args.threads else {}
        before = {(t.model, t.question_id) for t in read_jsonl(args.out / TRAJECTORIES)} \
            if (args.out / TRAJECTORIES).exists() else set()
        done_n = [0]

        def progress(name: str, t: object, done_n: list[int] = done_n) -> None:
            done_n[0] += 1
            r = getattr(t, "rubric", None)
            mark = "✓" if r and r.answer_correct else ("?" if r and r.said_dont_know else "✗")
            console.print(f"  {name} {done_n[0]}: {mark} {getattr(t, 'stop_reason', 'backend_error')} "
                          f"turns={len(getattr(t, 'turns', []))} wall={getattr(t, 'wall_time_s', 0):.0f}s",
                          highlight=False)

        def event(ev: object) -> None:
            d = {k: v for k, v in ev.data.items() if k not in ("result", "content")}
            if ev.kind == "model":
                d = {"text": str(d.get("text", ""))[:160], "tokens": d.get("completion_tokens"),
                     "latency_s": round(d.get("latency_s", 0), 1)}
            console.print(f"    [{ev.question_id} t{ev.turn}] {ev.kind} {json.dumps(d, default=str)[:300]}",
                          highlight=False, markup=False)

        t0 = time.perf_counter()
        res = evaluate(qs, [spec], args.db, judge, cfg, args.out, concurrency=args.batch, backend_opts=opts,
                       on_progress=progress, on_event=event if args.log_events else None)
        wall = time.perf_counter() - t0
        new = [t for t in read_jsonl(args.out / TRAJECTORIES) if t.model == spec and (t.model, t.question_id)
               not in before]
        sampled = sum(t.completion_tokens for t in new)
        if new:
            speed[spec] = {"episodes": len(new), "wall_s": round(wall, 1), "sampled_tokens": sampled,
                           "tokens_per_s": round(sampled / wall, 2), "batch": args.batch}
        metrics = res.metrics
    doc = {"selection": [q.id for q in qs], "metrics": metrics, "speed_this_invocation": speed,
           "date": time.strftime("%Y-%m-%d")}
    (args.out / "bench.json").write_text(json.dumps(doc, indent=2))
    print(markdown_table(metrics["models"]))
    print(json.dumps(speed, indent=2))
    return 0


def report(dirs: list[Path], rejudge: str | None) -> int:
    """One table over several run directories (each model may have run in its own process and directory);
    with `rejudge`, every trajectory is scored again with that judge (rubric and reward recomputed)."""
    from inboxrl.evaluation.metrics import latest_per_pair, metrics_by_model
    from inboxrl.evaluation.table import markdown_table
    from inboxrl.trajectory import read_jsonl

    trajs = []
    for d in dirs:
        trajs += latest_per_pair(read_jsonl(d / "trajectories.jsonl"))
    if rejudge:
        from inboxrl.judge.registry import load_judge
        from inboxrl.scoring.score import score_trajectories

        sel = json.loads((dirs[0] / "selection.json").read_text())
        score_trajectories(trajs, load_judge(rejudge), db=sel["db"])
    by = metrics_by_model(trajs)
    print(markdown_table(by))
    print(json.dumps({m: {k: v for k, v in x.items() if k in ("accuracy", "hallucination_rate", "dont_know_rate",
                                                                "n_scored")} for m, x in by.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
