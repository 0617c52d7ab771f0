"""Search latency: >= 1,000 scoped searches with keywords drawn from the real ART-E questions, on the whole store.

Each query takes 1 to 3 words (stop words removed) of a random question and searches that question's inbox before
its query date, as the agent would. Every query runs through `InboxTools.search_inbox` (the whole tool: scope,
ranking, snippets) with BM25 and with date order, and, as the peer, through ART-E's own query shape (FTS MATCH
joined to the messages, the inbox checked per match, date order) on the same store, interleaved so that all three
see the same machine load. Scope set-up (once per episode) is timed separately. Besides wall-clock time, each
query's CPU time (time.thread_time) is recorded: on a shared machine it shows the cost of the code itself.

    python benchmarks/bench_search.py [--db data/enron.db] [--n 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
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

ARTE_SQL = (  # ART-E's search_emails, translated to this schema: FTS drives, scope checked per matching row
    "SELECT m.message_id, snippet(messages_fts, -1, '[', ']', '…', 16) FROM messages m "
    "JOIN messages_fts ON m.id = messages_fts.rowid WHERE messages_fts MATCH ? "
    "AND EXISTS (SELECT 1 FROM participants p WHERE p.address = ? AND p.message_rowid = m.id) "
    "AND m.date_ok = 1 AND m.date < ? ORDER BY m.date DESC LIMIT 10"
)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "p50_ms": round(pct(xs, 50) * 1e3, 3), "p90_ms": round(pct(xs, 90) * 1e3, 3),
            "p99_ms": round(pct(xs, 99) * 1e3, 3), "max_ms": round(max(xs) * 1e3, 3),
            "mean_ms": round(statistics.mean(xs) * 1e3, 3)}


def make_queries(questions_path: Path, n: int, seed: int) -> list[tuple[str, str, list[str]]]:
    rng = random.Random(seed)
    qs = load_questions(questions_path)
    out = []
    while len(out) < n:
        q = rng.choice(qs)
        words = [w for w in terms_from_keywords(q.question).words if w not in STOP_WORDS and len(w) > 1]
        if not words:
            continue
        k = min(len(words), rng.choice((1, 2, 2, 3)))
        out.append((q.inbox_address, q.query_date, rng.sample(words, k)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=str(REPO / "data" / "enron.db"))
    ap.add_argument("--questions", default=str(SHARED / "data" / "art-e-questions" / "kaminski-train.jsonl"))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-peer", action="store_true", help="skip ART-E's query (it is slow on common words)")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    if not Path(args.db).is_file():
        sys.exit(f"no store at {args.db}; build it with: inboxrl ingest {SHARED}/data/enron-mbox --db {args.db}")

    queries = make_queries(Path(args.questions), args.n, args.seed)
    conn = schema.connect(args.db, readonly=True)
    n_messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    peers = ["bm25", "date"] + ([] if args.no_peer else ["arte_peer"])
    times: dict[str, list[float]] = {}
    capped = empty = 0
    slowest: list[tuple[float, str, list[str]]] = []
    t_all = time.perf_counter()
    # Pass 1 is cold: every word is new to the process's document-frequency cache. Pass 2 repeats the queries
    # warm, as a long agent or training run sees them. Within a query the order of the contenders rotates, so no
    # one always profits from pages another just read.
    for pass_name in ("cold", "warm"):
        for i, (inbox, day, words) in enumerate(queries):
            order = peers[i % len(peers):] + peers[: i % len(peers)]
            for mode in order:
                if mode == "arte_peer":
                    expr = " ".join(f'"{w}"' for w in words)
                    t0, c0 = time.perf_counter(), time.thread_time()
                    conn.execute(ARTE_SQL, (expr, inbox, day)).fetchall()
                    t1, c1 = time.perf_counter(), time.thread_time()
                else:
                    s0 = time.perf_counter()
                    tools = InboxTools(conn, Scope(inbox=inbox, before=day), ToolsConfig(ranking=mode))
                    tools.search_inbox(["zzqxjv"])  # builds the scope table: once per episode, timed as set-up
                    times.setdefault(f"scope_setup_{pass_name}", []).append(time.perf_counter() - s0)
                    t0, c0 = time.perf_counter(), time.thread_time()
                    hits = tools.search_inbox(words)
                    t1, c1 = time.perf_counter(), time.thread_time()
                    tools.close()
                    if mode == "bm25" and pass_name == "warm":
                        capped += bool(hits.note and "very many" in hits.note)
                        empty += not hits
                times.setdefault(f"{mode}_{pass_name}", []).append(t1 - t0)
                times.setdefault(f"{mode}_{pass_name}_cpu", []).append(c1 - c0)
                if pass_name == "warm":
                    slowest.append((t1 - t0, mode, words))
            if (i + 1) % 200 == 0:
                print(f"{pass_name}: {i + 1}/{len(queries)} queries", file=sys.stderr)
    slowest.sort(reverse=True)
    result = {
        "date_run": time.strftime("%Y-%m-%d"),
        "db": args.db, "store_messages": n_messages, "queries": len(queries), "seed": args.seed,
        "wall_s": round(time.perf_counter() - t_all, 1),
        "load_avg_1min_at_end": round(os.getloadavg()[0], 2),
        "latency": {name: summary(xs) for name, xs in sorted(times.items())},
        "bm25_capped_queries": capped, "bm25_queries_without_hits": empty,
        "slowest_warm": [{"ms": round(t * 1e3, 2), "mode": m, "keywords": w} for t, m, w in slowest[:8]],
    }
    lat = result["latency"]
    if "arte_peer_warm" in lat:
        result["ratios_vs_peer"] = {
            f"{mode}_{p}_{q}": round(lat[f"{mode}_{p}"][f"{q}_ms"] / lat[f"arte_peer_{p}"][f"{q}_ms"], 3)
            for mode in ("bm25", "date") for p in ("cold", "warm") for q in ("p50", "p99")
        }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
