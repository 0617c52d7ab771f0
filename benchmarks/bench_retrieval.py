"""Retrieval quality: how often a search built from the question's own words puts a source mail in the top 10.

For every ART-E question whose source mails are all in the store (Message-IDs resolve, aliases included), the
search is the question's words minus stop words, run with the question's scope (its inbox, mail before its date)
through `InboxTools.search_inbox`, exactly as the agent's tool runs it. A question counts as found when any of
its sources is among the 10 hits. Ranking by BM25 and by date (ART-E's order), each with and without the OR
fallback (an AND of a whole question's words rarely matches anything, so the fallback is what makes such a
search work at all).

    python benchmarks/bench_retrieval.py [--db data/enron.db] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from inboxrl.questions.schema import load_questions
from inboxrl.store import schema
from inboxrl.tools.base import Scope
from inboxrl.tools.inbox import InboxTools, ToolsConfig
from inboxrl.tools.query import STOP_WORDS, terms_from_keywords

SHARED = Path(os.environ.get("INBOXRL_SHARED", REPO.parent / "shared"))

# Words that are in almost every question and say nothing about the mail sought.
QUESTION_WORDS = {"what", "when", "where", "which", "who", "whom", "why", "how", "did", "does", "do", "was", "were",
                  "is", "are", "will", "would", "should", "could", "can", "i", "my", "me", "mine", "we", "our"}

MODES = {
    "bm25+or": dict(ranking="bm25", or_fallback=True),
    "bm25": dict(ranking="bm25", or_fallback=False),
    "date+or": dict(ranking="date", or_fallback=True),
    "date": dict(ranking="date", or_fallback=False),
}


def question_keywords(text: str) -> list[str]:
    return [w for w in terms_from_keywords(text).words if w not in STOP_WORDS and w not in QUESTION_WORDS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=str(REPO / "data" / "enron.db"))
    ap.add_argument("--questions", default=str(SHARED / "data" / "art-e-questions" / "kaminski-train.jsonl"))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--extra", action="append", default=[],
                    help="extra mode NAME:JSON of ToolsConfig fields, e.g. 'bm25-subject2:{\"bm25_subject_weight\": 2}'")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    if not Path(args.db).is_file():
        sys.exit(f"no store at {args.db}; build it with: inboxrl ingest {SHARED}/data/enron-mbox --db {args.db}")
    modes = dict(MODES)
    for spec in args.extra:
        name, _, cfg = spec.partition(":")
        modes[name] = json.loads(cfg)

    conn = schema.connect(args.db, readonly=True)
    questions = load_questions(args.questions)
    grounded, in_scope = [], []
    for q in questions:
        rows = [conn.execute("SELECT message_rowid FROM aliases WHERE alias = ?", (m,)).fetchone()
                for m in q.message_ids]
        if q.message_ids and all(rows):
            grounded.append(q)
            tools = InboxTools(conn, Scope(q.inbox_address, before=q.query_date))
            if all(tools.canonical_id(m) for m in q.message_ids):
                in_scope.append(q)

    found = {m: 0 for m in modes}
    ranks: dict[str, list[int]] = {m: [] for m in modes}
    times: dict[str, list[float]] = {m: [] for m in modes}
    for q in grounded:  # untimed pass: word frequencies are probed once per process and cached, for every mode
        InboxTools(conn, Scope(q.inbox_address, before=q.query_date)).search_inbox(question_keywords(q.question))
    for q in grounded:
        words = question_keywords(q.question)
        for name, cfg in modes.items():
            tools = InboxTools(conn, Scope(q.inbox_address, before=q.query_date), ToolsConfig(**cfg))
            sources = {tools.canonical_id(m) for m in q.message_ids} - {None}
            tools.search_inbox(["zzqxjv"])  # builds the episode's scope table, untimed (bench_search times it)
            t0 = time.perf_counter()
            hits = tools.search_inbox(words, max_results=args.k) if words else []
            times[name].append(time.perf_counter() - t0)
            ids = [h["message_id"] for h in hits]
            rank = next((i + 1 for i, mid in enumerate(ids) if mid in sources), 0)
            found[name] += rank > 0
            ranks[name].append(rank)

    n = len(grounded)
    result = {
        "date_run": time.strftime("%Y-%m-%d"), "db": args.db, "questions": len(questions),
        "grounded_questions": n, "sources_in_scope": len(in_scope), "k": args.k,
        "modes": {
            name: {
                "config": modes[name],
                "found_in_top_k": found[name],
                "recall_at_k": round(found[name] / n, 3) if n else 0.0,
                "mrr": round(sum(1 / r for r in ranks[name] if r) / n, 3) if n else 0.0,
                "mean_ms": round(1e3 * sum(times[name]) / max(1, len(times[name])), 2),
            }
            for name in modes
        },
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
