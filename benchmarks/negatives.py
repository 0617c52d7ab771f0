"""How many "don't know" demonstrations can share their question's search (`warm_start.negatives: same_search`),
and how many in a run's `warm-start/demonstrations.jsonl` actually did.

Why: the eighth CPU run asked for same-search negatives and silently got the other kind (docs/benchmarks.md);
these two counts are the figures behind that finding and behind "601 of 621" in `training.demonstrations`.

    python benchmarks/negatives.py plan --config configs/cpu-demo.yaml --questions runs/cpu-demo/data/train.jsonl
    python benchmarks/negatives.py played runs/cpu-demo/warm-start/demonstrations.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

app = typer.Typer(add_completion=False)


@app.command()
def plan(config: Path = typer.Option(...), questions: Path = typer.Option(...)) -> None:
    """Questions with a correct plan, with a negative, and with a same-search negative (its correct twin)."""
    from inboxrl.agent.runner import make_tools, open_store
    from inboxrl.questions.schema import Question
    from inboxrl.training.config import TrainConfig
    from inboxrl.training.demonstrations import DemoReport, plan_question

    cfg = TrainConfig.load(config).resolved(Path.cwd())
    agent_cfg = cfg.agent_config()
    qs = [Question(**json.loads(line)) for line in questions.read_text().splitlines() if line.strip()]
    conn = open_store(cfg.data.db)
    planned = negatives = twins = 0
    report = DemoReport()
    try:
        for q in qs:
            ok, neg = plan_question(q, make_tools(conn, q, agent_cfg), report, "same_search")
            planned += ok is not None
            negatives += neg is not None
            twins += neg is not None and neg.partner is not None
    finally:
        conn.close()
    print(json.dumps({"questions": len(qs), "planned": planned, "with_negative": negatives,
                      "same_search": twins, "skipped": report.skipped}))


@app.command()
def played(demonstrations: Path) -> None:
    """Negatives whose search equals their question's correct demonstration's, in a run's demonstrations."""
    rows = [json.loads(line) for line in demonstrations.read_text().splitlines() if line.strip()]
    searches = {r["question_id"]: r["tool_events"][0]["arguments"] for r in rows
                if r["meta"].get("demonstration") == "correct"}
    negs = [r for r in rows if r["meta"].get("demonstration") == "dont_know"]
    same = sum(searches.get(r["question_id"].split("#")[0]) == r["tool_events"][0]["arguments"] for r in negs)
    print(json.dumps({"negatives": len(negs), "same_search_as_correct": same}))


if __name__ == "__main__":
    sys.exit(app())
