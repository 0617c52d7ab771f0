"""Prefill speed of the in-house engine as an episode's cache grows: 8 episodes in lock-step, each turn appending one
real Enron mail (up to 3,000 characters, the agent's body cut) to every episode, as the agent's reads do.

Both ways of masked attention over the cache, in one run on the same episodes:
- `grouped`: SDPA takes the key/value head groups as they are (`enable_gqa`; the engine's default on CPU,
  `models.kvcache.grouped_query_sdpa`);
- `copied`: transformers' default for a masked call, every key/value head copied once per query head.

    python benchmarks/bench_prefill_context.py --db /work/data/enron.db
    python benchmarks/bench_prefill_context.py --db data/enron.db --batch 4 --turns 3 --json /tmp/prefill.json
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import provenance  # the benchmarks folder is not a package

from inboxrl.models.base import ChatRequest
from inboxrl.models.kvcache import GQA_SWITCH
from inboxrl.models.registry import load_backend

SYSTEM = {"role": "system", "content": "You are an email research agent. Search the inbox, read, then answer."}


def mails(db: Path, n: int, chars: int) -> list[str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("SELECT body FROM messages WHERE length(body) > ? ORDER BY id LIMIT ?", (chars, 5 * n))
    return [r[0][:chars] for r in rows][::5][:n]


def run(backend: Any, bodies: list[str], batch: int, turns: int, prefix: str) -> list[dict[str, Any]]:
    """Per turn: the context each episode had before it, the tokens prefilled and their speed."""
    hist = {i: [SYSTEM, {"role": "user", "content": f"Question {i}: when did the meeting about item {i} move?"}]
            for i in range(batch)}
    out = []
    context = 0
    for t in range(turns + 1):
        if t:
            for i in range(batch):
                hist[i] = hist[i] + [{"role": "assistant", "content": "I will read it."},
                                     {"role": "user", "content": bodies[(i + t) % len(bodies)]}]
        rs = backend.generate([ChatRequest(f"{prefix}{i}", hist[i], max_tokens=1) for i in range(batch)])
        s = backend.last_stats
        out.append({"turn": t, "context_tokens": context, "prefill_tokens": s["prefill_tokens"],
                    "prefill_s": s["prefill_s"], "tok_s": s["prefill_tokens"] / s["prefill_s"]})
        # the longest episode so far: what the next turn's new tokens attend over
        context = max(len(r.input_ids or []) + len(r.output_ids or []) for r in rs) + (context if t else 0)
        print(f"  {prefix} turn {t}: context {context}, {s['prefill_tokens']} tokens, "
              f"{out[-1]['tok_s']:.0f} tok/s", file=sys.stderr, flush=True)
    for i in range(batch):
        backend.end_episode(f"{prefix}{i}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, default=Path("data/enron.db"))
    ap.add_argument("--model", default="local/qwen2.5-coder-0.5b")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--turns", type=int, default=3, help="mails appended to every episode")
    ap.add_argument("--chars", type=int, default=3000, help="characters of each mail (the agent's body cut)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    backend = load_backend(args.model, dtype=args.dtype, threads=args.threads, shared=False)
    bodies = mails(args.db, args.batch, args.chars)
    if len(bodies) < args.batch:
        sys.exit(f"error: fewer than {args.batch} mails of {args.chars}+ characters in {args.db}")
    run(backend, bodies, args.batch, 1, "warm")  # unmeasured: first calls pay one-off costs
    results: dict[str, Any] = {}
    for mode in ("grouped", "copied"):
        if mode == "copied":
            os.environ[GQA_SWITCH] = "0"
        results[mode] = run(backend, bodies, args.batch, args.turns, mode)
        os.environ.pop(GQA_SWITCH, None)
    rep = {"provenance": {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          **provenance.git_state(), "machine": provenance.machine(),
                          "load_average": os.getloadavg()},
           "model": args.model, "dtype": args.dtype, "batch": args.batch, "results": results}
    print("| turn | context tokens | grouped tok/s | copied tok/s | grouped / copied |")
    print("|---|---|---|---|---|")
    for g, c in zip(results["grouped"], results["copied"]):
        print(f"| {g['turn']} | {g['context_tokens']} | {g['tok_s']:.0f} | {c['tok_s']:.0f} | "
              f"{g['tok_s'] / c['tok_s']:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
